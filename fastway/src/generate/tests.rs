use super::*;
use crate::config::Settings;
use clap::{Parser, ValueEnum};
use std::process::{Command, Stdio};

fn render(request: Request) -> String {
    let mut out = Vec::new();
    request.write(&mut out).expect("generation succeeds");
    String::from_utf8(out).expect("generated text is UTF-8")
}

#[test]
fn completions_for_every_shell_name_the_real_flags() {
    for &shell in Shell::value_variants() {
        let script = render(Request::Completions(shell));
        for flag in [
            "client-addr",
            "server-auth-key",
            "reuse-port",
            "completions",
        ] {
            assert!(script.contains(flag), "{shell}: no {flag} in\n{script}");
        }
        assert!(script.contains("fastway"), "{shell}: binary name missing");
    }
}

#[test]
fn bash_completion_offers_both_spellings_and_the_value_choices() {
    let script = render(Request::Completions(Shell::Bash));
    assert!(script.contains("complete -F"), "{script}");
    assert!(script.contains("--client-addr"), "{script}");
    assert!(script.contains("--ClientAddr"), "{script}");
    // --log-level and --completions complete their possible values.
    assert!(script.contains("error warn info debug trace"), "{script}");
    assert!(
        script.contains("bash elvish fish powershell zsh"),
        "{script}"
    );
}

#[test]
fn man_page_is_roff_with_the_standard_sections() {
    let page = render(Request::Man);
    assert!(page.contains(".TH fastway 1"), "{page}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH OPTIONS",
        ".SH VERSION",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    // roff escapes '-' in option names.
    assert!(page.contains("\\-\\-client\\-addr"), "{page}");
    assert!(page.contains("ClientAddr"), "Go spelling missing");
    assert!(page.contains("game gateway"), "NAME line missing");
    // The notes of --help (value syntax, snet, process control) are part of the page.
    assert!(page.contains("fastway.cmd"), "{page}");
}

/// Renders the page with groff when it is installed: no warnings, and the text reads as a man page.
#[test]
fn man_page_renders_with_groff_without_warnings() {
    let page = render(Request::Man);
    let child = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"]) // plain text: no overstrike, no SGR
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("groff is not installed: skipping the rendering check");
        return;
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(page.as_bytes()).expect("write to groff");
    drop(stdin);
    let out = child.wait_with_output().expect("groff runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "groff failed: {stderr}");
    assert!(stderr.trim().is_empty(), "groff warnings:\n{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    // groff may render '-' as U+2010/U+2212 depending on the device; compare on the letters.
    let plain: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .collect();
    for word in ["NAME", "SYNOPSIS", "OPTIONS", "clientaddr", "serverauthkey"] {
        assert!(plain.contains(word), "{word} not in rendered page:\n{text}");
    }
}

#[test]
fn packaging_flags_are_found_in_every_spelling() {
    let cases: &[(&[&str], Option<Request>)] = &[
        (&["fastway", "--man"], Some(Request::Man)),
        (&["fastway", "-man"], Some(Request::Man)),
        (
            &["fastway", "--completions", "bash"],
            Some(Request::Completions(Shell::Bash)),
        ),
        (
            &["fastway", "-completions=zsh"],
            Some(Request::Completions(Shell::Zsh)),
        ),
        (
            &["fastway", "--completions=powershell"],
            Some(Request::Completions(Shell::PowerShell)),
        ),
        (&["fastway"], None),
        (&["fastway", "-ClientAddr=:8000"], None),
        // Not parseable: left to the configuration parser, which reports the error.
        (&["fastway", "--completions", "tcsh"], None),
        (&["fastway", "--man", "--client-addr", ":1"], None),
    ];
    for (args, expected) in cases {
        assert_eq!(
            Request::from_command_line(args.iter()),
            *expected,
            "{args:?}"
        );
    }
}

#[test]
fn packaging_flags_are_exclusive_and_default_off() {
    let err = Settings::parse_from(["fastway", "--man", "-ClientAddr=:1"])
        .expect_err("--man with another flag is refused");
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("--man"), "{err}");
    let args = Args::try_parse_from(["fastway"]).expect("no flags parse");
    assert_eq!(Request::from_args(&args.generate), None);
}

/// A writer whose every write fails, like stdout after the reader of a pipe went away.
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

#[test]
fn a_failing_output_is_an_error_not_a_panic() {
    for request in [Request::Man, Request::Completions(Shell::Fish)] {
        let err = request.write(&mut Broken).expect_err("write fails");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}

#[test]
fn man_page_is_ascii_with_roff_escapes() {
    assert_eq!(
        escape_non_ascii("≥ 2, µs—ok"),
        "\\[u2265] 2, \\[u00B5]s\\[u2014]ok"
    );
    let page = render(Request::Man);
    assert!(page.is_ascii(), "non-ASCII left in the page");
    assert!(
        page.contains("\\[u2265]"),
        "the help's '≥' should be escaped"
    );
}
