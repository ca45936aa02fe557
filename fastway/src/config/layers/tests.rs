//! The layers with explicit environments and temporary files: no process-global state is touched.

use super::*;
use crate::config::{ConfigError, LogFormat};
use std::path::Path;

/// A config file in a fresh temporary directory, removed on drop.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let dir =
            std::env::temp_dir().join(format!("fastway-layers-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join("fastway.toml");
        std::fs::write(&path, text).expect("write config");
        TempFile { dir, path }
    }

    fn arg(&self) -> String {
        format!("--config={}", self.path.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn load_with(args: &[&str], env: &[(&str, &str)]) -> Result<Loaded, CliError> {
    load(
        std::iter::once("fastway").chain(args.iter().copied()),
        env.iter().map(|&(k, v)| (k, v)),
    )
}

fn loaded(args: &[&str], env: &[(&str, &str)]) -> Loaded {
    load_with(args, env).unwrap_or_else(|e| panic!("{args:?} {env:?} rejected: {e}"))
}

fn error(args: &[&str], env: &[(&str, &str)]) -> String {
    match load_with(args, env) {
        Ok(l) => panic!("{args:?} {env:?} accepted: {:?}", l.settings),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        }
    }
}

fn origin_of(l: &Loaded, long: &str) -> Origin {
    l.effective
        .iter()
        .find(|v| v.long == long)
        .unwrap_or_else(|| panic!("no effective value for {long}"))
        .origin
        .clone()
}

#[test]
fn each_layer_beats_the_ones_below() {
    let file = TempFile::new(
        "precedence",
        "max-packet = 1000\nClientMaxConn = 3\nworker-threads = 2\nserver-auth-key = \"file\"\n",
    );
    let arg = file.arg();
    let env = [
        ("FASTWAY_CLIENT_MAX_CONN", "4"),
        ("FASTWAY_WORKER_THREADS", "5"),
        ("FASTWAY_SERVER_AUTH_KEY", "env"),
    ];
    let l = loaded(&[&arg, "--worker-threads", "6", "-ServerAuthKey=cli"], &env);
    let s = &l.settings;
    // file only / file < env / file < env < flag / default.
    assert_eq!(s.max_packet, 1000);
    assert_eq!(s.client_max_conn, 4);
    assert_eq!(s.worker_threads, 6);
    assert_eq!(s.auth_key, "cli");
    assert_eq!(s.client_buffer_size, 2048);
    assert!(
        matches!(origin_of(&l, "max-packet"), Origin::File { line: 1, column: 1, ref key, .. } if key == "max-packet")
    );
    assert!(
        matches!(origin_of(&l, "client-max-conn"), Origin::Env { ref var } if var == "FASTWAY_CLIENT_MAX_CONN")
    );
    assert_eq!(origin_of(&l, "worker-threads"), Origin::CommandLine);
    assert_eq!(origin_of(&l, "client-buffer-size"), Origin::Default);

    // Without the command line the environment wins; without both, the file.
    let l = loaded(&[&arg], &env);
    assert_eq!(l.settings.worker_threads, 5);
    assert_eq!(l.settings.auth_key, "env");
    let l = loaded(&[&arg], &[]);
    assert_eq!(l.settings.worker_threads, 2);
    assert_eq!(l.settings.client_max_conn, 3);
    assert_eq!(l.settings.auth_key, "file");
}

#[test]
fn env_alone_and_config_from_env() {
    let l = loaded(
        &[],
        &[
            ("FASTWAY_CLIENT_ADDR", "127.0.0.1:0"),
            ("FASTWAY_REUSE_PORT", "T"),
            ("FASTWAY_CLIENT_IDLE_TIMEOUT", "1m30s"),
            ("FASTWAY_LOG_FORMAT", "json"),
            ("PATH", "/bin"),
        ],
    );
    assert_eq!(l.settings.client_addr, "127.0.0.1:0".parse().expect("addr"));
    assert!(l.settings.reuse_port);
    assert_eq!(
        l.settings.client_idle_timeout,
        Some(std::time::Duration::from_secs(90))
    );
    assert_eq!(l.settings.log_format, LogFormat::Json);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);

    let file = TempFile::new("config-env", "ServerAddr = \":0\"\n");
    let path = file.path.display().to_string();
    let l = loaded(&[], &[("FASTWAY_CONFIG", &path)]);
    assert_eq!(l.settings.server_addr, "0.0.0.0:0".parse().expect("addr"));
    // --config on the command line beats FASTWAY_CONFIG.
    let other = TempFile::new("config-cli", "ServerAddr = \":1\"\n");
    let l = loaded(&[&other.arg()], &[("FASTWAY_CONFIG", &path)]);
    assert_eq!(l.settings.server_addr, "0.0.0.0:1".parse().expect("addr"));
}

#[test]
fn unknown_fastway_variables_warn_and_meta_flags_have_no_variable() {
    let l = loaded(
        &[],
        &[("FASTWAY_CLIENT_ADR", ":1"), ("FASTWAY_PRINT_CONFIG", "1")],
    );
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(
        l.warnings[0].contains("FASTWAY_CLIENT_ADR"),
        "{:?}",
        l.warnings
    );
    assert_eq!(l.print_config, None);
}

#[test]
fn env_errors_name_the_variable() {
    let e = error(&[], &[("FASTWAY_MAX_PACKET", "lots")]);
    assert!(e.contains("FASTWAY_MAX_PACKET=\"lots\""), "{e}");
    assert!(e.contains("not an integer"), "{e}");
    let e = error(&[], &[("FASTWAY_SERVER_SNET_ENABLE", "yes")]);
    assert!(
        e.contains("FASTWAY_SERVER_SNET_ENABLE") && e.contains("not a boolean"),
        "{e}"
    );
    // Parses, fails the range check: the error still says where the value came from.
    let e = error(&[], &[("FASTWAY_MAX_PACKET", "4")]);
    assert!(
        e.contains("must be from 9") && e.contains("from env FASTWAY_MAX_PACKET"),
        "{e}"
    );
    // A command-line value overriding a bad environment value is not enough: the variable is
    // still wrong and says so (a typo there would otherwise lie in wait).
    let e = error(&["--max-packet=100"], &[("FASTWAY_MAX_PACKET", "x")]);
    assert!(e.contains("FASTWAY_MAX_PACKET"), "{e}");
}

#[cfg(unix)]
#[test]
fn env_value_not_utf8_names_the_variable() {
    use std::os::unix::ffi::OsStringExt;
    let result = load(
        ["fastway"],
        [(
            OsString::from("FASTWAY_PID_FILE"),
            OsString::from_vec(vec![0xff, 0xfe]),
        )],
    );
    match result {
        Err(CliError::Env(e)) => assert!(e.to_string().contains("FASTWAY_PID_FILE"), "{e}"),
        other => panic!("accepted or wrong error: {other:?}"),
    }
}

/// The error for a config file holding `text`.
fn file_error(name: &str, text: &str) -> String {
    let file = TempFile::new(name, text);
    error(&[&file.arg()], &[])
}

#[test]
fn file_errors_name_file_line_column_and_key() {
    let e = file_error(
        "unknown",
        "# comment\nmax-packet = 4096\n\nClientAdr = \":1\"\n",
    );
    assert!(
        e.contains("fastway.toml, line 4, column 1, key \"ClientAdr\": unknown key"),
        "{e}"
    );
    let e = file_error("type", "max-packet = 1.5\n");
    assert!(
        e.contains("line 1, column 1, key \"max-packet\": expected an integer"),
        "{e}"
    );
    assert!(e.contains("found a float"), "{e}");
    let e = file_error("bool-type", "client-addr = true\n");
    assert!(
        e.contains("key \"client-addr\": expected a string, found a boolean"),
        "{e}"
    );
    let e = file_error("value", "\n  ClientIdleTimeout = \"30\"\n");
    assert!(
        e.contains("line 2, column 23, key \"ClientIdleTimeout\""),
        "{e}"
    );
    assert!(e.contains("missing unit"), "{e}");
    let e = file_error("enum", "runtime = \"go\"\n");
    assert!(
        e.contains("key \"runtime\"") && e.contains("tokio, smol, std"),
        "{e}"
    );
    let e = file_error("range", "x = 1\n");
    assert!(e.contains("key \"x\": unknown key"), "{e}");
    let e = file_error("out-of-range", "\nMaxPacket = 4\n");
    assert!(
        e.contains("must be from 9") && e.contains("fastway.toml:2:1 key MaxPacket"),
        "{e}"
    );
    let e = file_error("syntax", "max-packet = 1\nclient-addr = \"unterminated\n");
    assert!(e.contains("line 2") && e.contains("invalid TOML"), "{e}");
    let e = file_error("dup", "client-addr = \":1\"\nClientAddr = \":2\"\n");
    assert!(e.contains("line 2, column 1, key \"ClientAddr\": sets the same flag as key \"client-addr\" on line 1"), "{e}");
    let e = file_error("meta", "print-config = \"full\"\n");
    assert!(e.contains("key \"print-config\": not a setting"), "{e}");
    let e = file_error("table", "[client]\naddr = \":1\"\n");
    assert!(e.contains("key \"client\": unknown key"), "{e}");
    let e = error(&["--config=/nonexistent/fastway.toml"], &[]);
    assert!(
        e.contains("/nonexistent/fastway.toml: cannot read it"),
        "{e}"
    );
}

#[test]
fn file_accepts_both_names_and_the_flags_value_syntax() {
    let file = TempFile::new(
        "syntax",
        "ReusePort = true\nclient-snet-enable = \"T\"\nMaxPacket = \"0x1000\"\nserver-idle-timeout = 0\n\
         client-idle-timeout = \"-1s\"\nmem-pool-type = \"chan\"\nlog-level = \"debug\"\n",
    );
    let s = loaded(&[&file.arg()], &[]).settings;
    assert!(s.reuse_port && s.client_snet.enable);
    assert_eq!(s.max_packet, 4096);
    assert_eq!(s.server_idle_timeout, None);
    assert_eq!(s.client_idle_timeout, None);
    assert_eq!(s.mem_pool.kind, crate::config::MemPoolKind::Chan);
    assert_eq!(s.log_level, log::LevelFilter::Debug);
}

#[test]
fn every_setting_has_a_file_key_and_a_variable() {
    let cmd = Args::command();
    let table = FlagTable::new(&cmd);
    let longs: Vec<&str> = table.iter().map(|f| f.long).collect();
    assert!(
        longs.contains(&"client-addr") && longs.contains(&"log-format"),
        "{longs:?}"
    );
    for meta in crate::config::args::META_FLAGS {
        assert!(!longs.contains(meta), "{meta} must not be a setting");
    }
    let flag = table.get("ClientSnetWaitTimeout").expect("alias lookup");
    assert_eq!(flag.long, "client-snet-wait-timeout");
    assert_eq!(flag.env_var, "FASTWAY_CLIENT_SNET_WAIT_TIMEOUT");
    assert_eq!(table.get("max-packet").map(|f| f.kind), Some(FlagKind::Int));
    assert_eq!(table.get("ReusePort").map(|f| f.kind), Some(FlagKind::Bool));
    assert_eq!(
        table.get("client-addr").map(|f| f.kind),
        Some(FlagKind::Text)
    );
}

/// Writes `text` as a config file and loads it with nothing else.
fn reload(name: &str, text: &str) -> Loaded {
    let file = TempFile::new(name, text);
    loaded(&[&file.arg()], &[])
}

#[test]
fn print_config_round_trips() {
    let file = TempFile::new(
        "rt-src",
        "MaxPacket = \"0x2000\"\nclient-snet-enable = true\n",
    );
    let original = loaded(
        &[
            &file.arg(),
            "-ClientAddr=:0",
            "--server-auth-key=s3cr\"et",
            "--client-idle-timeout=1m30s",
            "--pid-file=/tmp/x y.pid",
        ],
        &[
            ("FASTWAY_WORKER_THREADS", "3"),
            ("FASTWAY_RUNTIME", "tokio"),
        ],
    );
    let full = original.render(PrintMode::Full);
    let again = reload("rt-full", &full);
    assert_eq!(again.settings, original.settings, "{full}");
    // Printing the reloaded configuration gives the same values (origins now all "from file").
    let strip = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split(" # ").next().unwrap_or(l).to_owned())
            .collect()
    };
    assert_eq!(strip(&again.render(PrintMode::Full)), strip(&full));
    assert!(full.contains("max-packet = 8192 # from file"), "{full}");
    assert!(
        full.contains("worker-threads = 3 # from env FASTWAY_WORKER_THREADS"),
        "{full}"
    );
    assert!(
        full.contains("client-addr = \":0\" # from the command line"),
        "{full}"
    );
    assert!(
        full.contains("client-buffer-size = 2048 # default"),
        "{full}"
    );
    assert!(
        full.contains("client-snet-enable = true # from file"),
        "{full}"
    );
}

#[test]
fn print_config_masks_the_auth_key_unless_full() {
    let l = loaded(&["--server-auth-key=hunter2"], &[]);
    let masked = l.render(PrintMode::Masked);
    assert!(!masked.contains("hunter2"), "{masked}");
    assert!(
        masked.contains("# server-auth-key = (hidden: 7 bytes) # from the command line"),
        "{masked}"
    );
    // Fed back, the masked output leaves the key unset rather than setting a wrong one.
    let back = reload("masked", &masked);
    assert_eq!(back.settings.auth_key, "");
    assert!(
        l.render(PrintMode::Full)
            .contains("server-auth-key = \"hunter2\"")
    );
    // An empty key is not a secret: it is printed, so the output shows it is unset.
    let empty = loaded(&[], &[]).render(PrintMode::Masked);
    assert!(
        empty.contains("server-auth-key = \"\" # default"),
        "{empty}"
    );
}

#[test]
fn print_config_flag_modes() {
    assert_eq!(
        loaded(&["--print-config"], &[]).print_config,
        Some(PrintMode::Masked)
    );
    assert_eq!(
        loaded(&["-print-config=full"], &[]).print_config,
        Some(PrintMode::Full)
    );
    assert_eq!(loaded(&[], &[]).print_config, None);
}

#[test]
fn the_example_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/fastway.toml");
    let text = std::fs::read_to_string(&path).expect("read deploy/fastway.toml");
    let example = reload("example", &text);
    assert_eq!(
        example.settings.client_addr,
        "0.0.0.0:8000".parse().expect("addr")
    );
    assert!(
        example
            .effective
            .iter()
            .any(|v| matches!(v.origin, Origin::File { .. })),
        "the example sets values"
    );
}

#[test]
fn config_error_flags_map_to_settings() {
    let cmd = Args::command();
    let table = FlagTable::new(&cmd);
    let errors = [
        ConfigError::UnknownMemPoolType("x".into()),
        ConfigError::MemPoolChunks { min: 2, max: 1 },
        ConfigError::RuntimeNotCompiled {
            requested: crate::config::RuntimeKind::Std,
            available: vec![],
        },
    ];
    for e in errors {
        assert!(table.get(e.flag()).is_some(), "{}", e.flag());
    }
}
