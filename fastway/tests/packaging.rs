//! The binary's packaging flags: `fastway --man` and `fastway --completions <SHELL>` print to stdout
//! and exit 0 without starting a gateway (no listener, no pid file).

mod common;

use common::process::{TempDir, run_to_exit};
use std::process::Output;

/// Runs the binary in `dir` with `args` until it exits.
fn run(dir: &TempDir, args: &[&str]) -> Output {
    run_to_exit(dir, args, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_prints_the_page_and_starts_no_gateway() {
    let dir = TempDir::new("man");
    for flag in ["--man", "-man"] {
        let out = run(&dir, &[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {out:?}");
        let page = stdout(&out);
        assert!(page.contains(".TH fastway 1"), "{page}");
        assert!(page.contains(".SH OPTIONS"), "{page}");
        assert!(page.contains("\\-\\-client\\-addr"), "{page}");
    }
    assert!(!dir.0.join("fastway.pid").exists(), "a gateway started");
}

#[test]
fn completions_print_a_script_for_every_shell() {
    let dir = TempDir::new("completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&dir, &["--completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let script = stdout(&out);
        assert!(script.contains("client-addr"), "{shell}: {script}");
    }
    let bash = stdout(&run(&dir, &["--completions=bash"]));
    assert!(bash.contains("complete -F"), "{bash}");
    assert!(!dir.0.join("fastway.pid").exists(), "a gateway started");
}

#[test]
fn bad_packaging_requests_exit_2() {
    let dir = TempDir::new("bad");
    let unknown_shell = run(&dir, &["--completions", "tcsh"]);
    assert_eq!(unknown_shell.status.code(), Some(2), "{unknown_shell:?}");
    let stderr = String::from_utf8_lossy(&unknown_shell.stderr);
    assert!(stderr.contains("tcsh"), "{stderr}");
    let mixed = run(&dir, &["--man", "-ClientAddr=127.0.0.1:0"]);
    assert_eq!(mixed.status.code(), Some(2), "{mixed:?}");
    assert!(stdout(&mixed).is_empty(), "printed a page anyway");
}

#[test]
fn help_documents_the_packaging_flags() {
    let dir = TempDir::new("help");
    let help = stdout(&run(&dir, &["--help"]));
    assert!(help.contains("--completions <SHELL>"), "{help}");
    assert!(help.contains("--man"), "{help}");
}
