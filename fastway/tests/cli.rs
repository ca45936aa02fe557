//! The `fastway` binary's command line: exit statuses, messages and the pid file, end to end.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("fastway-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary in `dir` with `args`, addresses on loopback only and `RUST_LOG` cleared.
fn run(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fastway"))
        .args(args)
        .current_dir(&dir.0)
        .env_remove("RUST_LOG")
        .output()
        .expect("run fastway")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_exits_0_on_stdout() {
    let dir = TempDir::new("help");
    for flag in ["-h", "-help", "--help"] {
        let out = run(&dir, &[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("--client-addr"), "{flag}: {stdout}");
    }
}

#[test]
fn unknown_flag_exits_2_with_the_go_message() {
    let dir = TempDir::new("unknown");
    let out = run(&dir, &["-NoSuchFlag=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("flag provided but not defined: -NoSuchFlag"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_values_exit_2_with_a_message() {
    let dir = TempDir::new("bad");
    for (args, needle) in [
        (&["-ClientIdleTimeout", "30"][..], "missing unit"),
        (&["-MaxPacket=4"], "must be from 9 to"),
        (&["-ReusePort", "false"], "-ReusePort=false"),
        (&["-MemPoolType=slab"], "sync, atom or chan"),
        (&["-ServerSendChanSize=0"], "must be at least 1"),
    ] {
        let out = run(&dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert!(
        !dir.0.join("fastway.pid").exists(),
        "no pid file on a rejected command line"
    );
}

#[test]
fn valid_flags_write_then_remove_the_pid_file() {
    let dir = TempDir::new("run");
    let out = run(
        &dir,
        &[
            "-ClientAddr=127.0.0.1:0",
            "--server-addr",
            "127.0.0.1:0",
            "--log-level=debug",
            "--pid-file",
            "gw.pid",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("runtime not wired yet"), "{err}");
    assert!(
        err.contains("client_addr: 127.0.0.1:0"),
        "settings logged at debug: {err}"
    );
    assert!(!dir.0.join("gw.pid").exists(), "pid file removed on exit");
}

#[test]
fn unwritable_pid_file_exits_1() {
    let dir = TempDir::new("nopid");
    let out = run(&dir, &["--pid-file", "missing-dir/fastway.pid"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot write pid file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rust_log_overrides_log_level() {
    let dir = TempDir::new("rustlog");
    let out = Command::new(env!("CARGO_BIN_EXE_fastway"))
        .args(["--log-level=debug", "--pid-file", "gw.pid"])
        .current_dir(&dir.0)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run fastway");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("client_addr"),
        "debug log suppressed: {}",
        stderr(&out)
    );
}
