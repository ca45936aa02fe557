//! The `fastway` binary's command line: rejected command lines exit at once with a status and a
//! message (running gateways are tested in `binary.rs`).

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
