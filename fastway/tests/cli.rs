//! The `fastway` binary's command line: rejected command lines exit at once with a status and a
//! message (running gateways are tested in `binary.rs`).

mod common;

use common::process::{TempDir, run_to_exit};
use std::process::Output;

/// Runs the binary in `dir` with `args` until it exits.
fn run(dir: &TempDir, args: &[&str]) -> Output {
    run_to_exit(dir, args, &[])
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
