//! The core stays sans-IO: no async runtime and no socket crate among its normal dependencies.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "smol",
    "async-io",
    "async-net",
    "async-std",
    "async-executor",
    "polling",
    "socket2",
    "futures",
    "futures-lite",
];

#[test]
fn core_has_no_async_runtime_or_socket_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "fastway-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"fastway-core"),
        "unexpected cargo tree output: {tree}"
    );
    for name in FORBIDDEN {
        assert!(
            !crates.contains(name),
            "fastway-core depends on {name}:\n{tree}"
        );
    }
}
