use super::*;
use crate::config::Args;
use clap::CommandFactory;

// ----- booleans -----

#[test]
fn go_bools() {
    for s in ["1", "t", "T", "TRUE", "true", "True"] {
        assert_eq!(parse_go_bool(s), Ok(true), "{s}");
    }
    for s in ["0", "f", "F", "FALSE", "false", "False"] {
        assert_eq!(parse_go_bool(s), Ok(false), "{s}");
    }
    for s in [
        "", "yes", "no", "on", "tRuE", "fALSE", " true", "true ", "2", "y",
    ] {
        assert_eq!(
            parse_go_bool(s),
            Err(BoolError {
                value: s.to_owned()
            }),
            "{s}"
        );
    }
    let msg = parse_go_bool("yes").expect_err("not a Go bool").to_string();
    assert!(msg.starts_with("\"yes\" is not a boolean"), "{msg}");
}

// ----- integers -----

#[test]
fn go_ints_in_every_base() {
    let table: &[(&str, i64)] = &[
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("7", 7),
        ("+42", 42),
        ("-42", -42),
        ("524288", 524_288),
        ("0x10", 16),
        ("0X1f", 31),
        ("-0xff", -255),
        ("010", 8),
        ("-010", -8),
        ("00", 0),
        ("0o17", 15),
        ("0O17", 15),
        ("0b101", 5),
        ("0B11", 3),
        ("1_000", 1000),
        ("1_000_000", 1_000_000),
        ("0x_ff", 255),
        ("0x_f_f", 255),
        ("0_10", 8),
        ("0b_1_0", 2),
        ("-1_0", -10),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
        ("0x7fffffffffffffff", i64::MAX),
        ("-0x8000000000000000", i64::MIN),
    ];
    for &(s, want) in table {
        assert_eq!(parse_go_int(s), Ok(want), "{s}");
    }
}

#[test]
fn go_int_syntax_errors() {
    for s in [
        "", "+", "-", "--1", "+-1", " 1", "1 ", "1.0", "1e3", "abc", "0x", "0b", "0o", "0x_", "08",
        "09", "0b2", "0o8", "0xg", "1_", "_1", "1__0", "0x__1", "-_1", "1_a", "١",
    ] {
        assert_eq!(
            parse_go_int(s),
            Err(IntError::Syntax(s.to_owned())),
            "{s:?}"
        );
    }
}

#[test]
fn go_int_range_errors() {
    for s in [
        "9223372036854775808",
        "-9223372036854775809",
        "0x8000000000000000",
        "99999999999999999999999",
        "0xFFFFFFFFFFFFFFFFF",
    ] {
        assert_eq!(parse_go_int(s), Err(IntError::Range(s.to_owned())), "{s}");
    }
    assert_eq!(
        IntError::Range("9e99".into()).to_string(),
        "\"9e99\" is out of the 64-bit integer range"
    );
}

// ----- durations -----

const NS: i64 = 1;
const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

fn dur(s: &str) -> i64 {
    match parse_go_duration(s) {
        Ok(d) => d.nanos,
        Err(e) => panic!("{s:?} rejected: {e}"),
    }
}

#[test]
fn go_durations() {
    let table: &[(&str, i64)] = &[
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("0s", 0),
        ("30s", 30 * S),
        ("1m30s", 90 * S),
        ("500ms", 500 * MS),
        ("1.5s", 1500 * MS),
        (".5s", 500 * MS),
        ("1.s", S),
        ("-3s", -3 * S),
        ("+3s", 3 * S),
        ("-1m30s", -90 * S),
        ("2h45m", 2 * H + 45 * M),
        ("1h1m1s1ms1us1ns", H + M + S + MS + US + NS),
        ("1ns", NS),
        ("1us", US),
        ("1µs", US),
        ("1μs", US),
        ("1.5h", 90 * M),
        ("0.1ns", 0),
        ("1.0000000001s", S),
        ("100ms2s", 2100 * MS),
        ("3s3s", 6 * S),
        ("0.000001ms", NS),
        ("10m", 10 * M),
        ("2562047h47m16.854775807s", i64::MAX),
        ("-2562047h47m16.854775808s", i64::MIN),
        ("9223372036854775807ns", i64::MAX),
        ("1.00000000000000000000000000001s", S),
    ];
    for &(s, want) in table {
        assert_eq!(dur(s), want, "{s}");
    }
}

#[test]
fn go_duration_errors() {
    let missing = ["30", "1m30", "-30", "1.5", "00", "1s2"];
    for s in missing {
        assert_eq!(
            parse_go_duration(s),
            Err(DurationError::MissingUnit(s.to_owned())),
            "{s}"
        );
    }
    let invalid = [
        "",
        "-",
        "+",
        "s",
        ".s",
        "-.s",
        ".",
        "--1s",
        " 1s",
        "2562047h47m16.854775808s",
        "9223372036854775808ns",
        "-9223372036854775809ns",
        "99999999999999999999h",
        "3000000h",
    ];
    for s in invalid {
        assert_eq!(
            parse_go_duration(s),
            Err(DurationError::Invalid(s.to_owned())),
            "{s:?}"
        );
    }
    for (s, unit) in [
        ("1x", "x"),
        ("1sec", "sec"),
        ("1e3s", "e"),
        ("1S", "S"),
        ("1 s", " s"),
        ("1s ", "s "),
        ("1d", "d"),
    ] {
        assert_eq!(
            parse_go_duration(s),
            Err(DurationError::UnknownUnit {
                unit: unit.to_owned(),
                value: s.to_owned()
            }),
            "{s}"
        );
    }
    let msg = DurationError::MissingUnit("30".into()).to_string();
    assert!(msg.starts_with("missing unit in duration \"30\""), "{msg}");
    assert!(msg.contains("30s"), "{msg}");
}

#[test]
fn duration_helpers() {
    let d = |nanos| GoDuration { nanos };
    assert_eq!(d(30 * S).positive(), Some(Duration::from_secs(30)));
    assert_eq!(d(0).positive(), None);
    assert_eq!(d(-S).positive(), None);
    assert_eq!(d(-S).clamped(), Duration::ZERO);
    assert_eq!(d(MS).clamped(), Duration::from_millis(1));
}

// ----- argument rewriting -----

fn rewrite(args: &[&str]) -> Result<Vec<String>, ArgError> {
    let cmd = Args::command();
    let all = std::iter::once("fastway").chain(args.iter().copied());
    let out = rewrite_args(&cmd, all)?;
    assert_eq!(out[0], "fastway");
    Ok(out[1..]
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect())
}

fn ok(args: &[&str]) -> Vec<String> {
    match rewrite(args) {
        Ok(out) => out,
        Err(e) => panic!("{args:?} rejected: {e}"),
    }
}

#[test]
fn every_spelling_becomes_the_canonical_long_form() {
    let want = ["--client-addr=:8000"];
    for args in [
        &["-ClientAddr=:8000"][..],
        &["-ClientAddr", ":8000"],
        &["--ClientAddr=:8000"],
        &["--ClientAddr", ":8000"],
        &["--client-addr", ":8000"],
        &["--client-addr=:8000"],
        &["-client-addr", ":8000"],
    ] {
        assert_eq!(ok(args), want, "{args:?}");
    }
    assert_eq!(ok(&["-ReusePort"]), ["--reuse-port"]);
    assert_eq!(ok(&["--reuse-port"]), ["--reuse-port"]);
    assert_eq!(ok(&["-ReusePort=false"]), ["--reuse-port=false"]);
    assert_eq!(ok(&["--reuse-port=F"]), ["--reuse-port=F"]);
    assert_eq!(
        ok(&["-MaxPacket", "1024", "-ClientSnetEnable"]),
        ["--max-packet=1024", "--client-snet-enable"]
    );
    assert_eq!(ok(&["--runtime", "tokio"]), ["--runtime=tokio"]);
    assert_eq!(ok(&[]), Vec::<String>::new());
}

#[test]
fn a_value_flag_takes_the_next_argument_whatever_it_looks_like() {
    assert_eq!(
        ok(&["-ClientIdleTimeout", "-3s"]),
        ["--client-idle-timeout=-3s"]
    );
    assert_eq!(ok(&["-MaxPacket", "-1"]), ["--max-packet=-1"]);
    assert_eq!(ok(&["-ServerAuthKey", "--"]), ["--server-auth-key=--"]);
    assert_eq!(ok(&["-ServerAuthKey="]), ["--server-auth-key="]);
    assert_eq!(ok(&["-ServerAuthKey=a=b"]), ["--server-auth-key=a=b"]);
}

#[test]
fn help_and_version_spellings() {
    for h in ["-h", "--help", "-help"] {
        assert_eq!(ok(&[h]), ["--help"], "{h}");
    }
    for v in ["-V", "--version", "-version"] {
        assert_eq!(ok(&[v]), ["--version"], "{v}");
    }
}

#[test]
fn rewriting_errors() {
    let err = |args: &[&str]| rewrite(args).expect_err("must be rejected");
    assert_eq!(err(&["-Foo"]), ArgError::UnknownFlag("-Foo".into()));
    assert_eq!(err(&["--Foo=1"]), ArgError::UnknownFlag("--Foo".into()));
    // Names are case-sensitive, and the README's ServerAuthPassword was never a flag.
    assert_eq!(
        err(&["-clientaddr=:1"]),
        ArgError::UnknownFlag("-clientaddr".into())
    );
    assert_eq!(
        err(&["-ServerAuthPassword=x"]),
        ArgError::UnknownFlag("-ServerAuthPassword".into())
    );
    assert_eq!(
        err(&["-MaxPacket"]),
        ArgError::MissingValue("-MaxPacket".into())
    );
    assert_eq!(
        err(&["--client-addr"]),
        ArgError::MissingValue("--client-addr".into())
    );
    assert_eq!(err(&["---x"]), ArgError::BadSyntax("---x".into()));
    assert_eq!(err(&["-=x"]), ArgError::BadSyntax("-=x".into()));
    assert_eq!(
        err(&["-ReusePort", "false", "-MaxPacket=1"]),
        ArgError::Positional {
            arg: "false".into(),
            after_bool: Some("-ReusePort".into())
        }
    );
    assert_eq!(
        err(&["-MaxPacket=1", "extra"]),
        ArgError::Positional {
            arg: "extra".into(),
            after_bool: None
        }
    );
    assert_eq!(
        err(&["-"]),
        ArgError::Positional {
            arg: "-".into(),
            after_bool: None
        }
    );
    assert_eq!(
        err(&["--", "-MaxPacket=1"]),
        ArgError::Positional {
            arg: "-MaxPacket=1".into(),
            after_bool: None
        }
    );
    // `--` with nothing after it ends the flags harmlessly, as in Go.
    assert_eq!(ok(&["-ReusePort", "--"]), ["--reuse-port"]);
}

#[test]
fn error_messages() {
    assert_eq!(
        ArgError::UnknownFlag("-Foo".into()).to_string(),
        "flag provided but not defined: -Foo"
    );
    let msg = ArgError::Positional {
        arg: "false".into(),
        after_bool: Some("-ReusePort".into()),
    }
    .to_string();
    assert!(msg.contains("-ReusePort=false"), "{msg}");
}

#[cfg(unix)]
#[test]
fn non_utf8_values_pass_through_but_not_as_flags() {
    use std::os::unix::ffi::OsStringExt;
    let cmd = Args::command();
    let path = OsString::from_vec(b"/tmp/pid\xff".to_vec());
    let out = rewrite_args(
        &cmd,
        [
            OsString::from("fastway"),
            OsString::from("--pid-file"),
            path,
        ],
    )
    .expect("value may be any bytes");
    let mut want = OsString::from("--pid-file=");
    want.push(OsString::from_vec(b"/tmp/pid\xff".to_vec()));
    assert_eq!(out[1], want);
    let bad = OsString::from_vec(b"-\xff".to_vec());
    assert!(matches!(
        rewrite_args(&cmd, [OsString::from("fastway"), bad]),
        Err(ArgError::NotUnicode(_))
    ));
}
