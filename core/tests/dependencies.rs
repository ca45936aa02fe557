//! The core stays sans-IO: no async runtime and no socket crate among its normal dependencies, and
//! with default features its direct dependencies are exactly the protocol's own.

use std::process::Command;

/// The direct dependencies an embedder gets with default features (`log` is an opt-in feature).
const DIRECT_DEFAULT: &[&str] = &["bytes", "md-5", "rand_core", "rc4"];

/// `cargo tree` for fastway-core's normal dependencies: one crate name per line.
fn tree(extra: &[&str]) -> Vec<String> {
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
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn default_features_pull_in_only_the_protocols_own_dependencies() {
    let mut direct = tree(&["--depth", "1"]);
    assert_eq!(direct.first().map(String::as_str), Some("fastway-core"));
    direct.remove(0);
    direct.sort();
    assert_eq!(direct, DIRECT_DEFAULT);
}

#[test]
fn the_log_feature_adds_only_the_log_facade() {
    let mut direct = tree(&["--depth", "1", "--features", "log"]);
    direct.remove(0);
    direct.sort();
    let mut expected: Vec<&str> = DIRECT_DEFAULT.to_vec();
    expected.push("log");
    expected.sort();
    assert_eq!(direct, expected);
}

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
    // With every optional feature, so that no feature can sneak one in either.
    let crates = tree(&["--all-features"]);
    assert!(
        crates.iter().any(|name| name == "fastway-core"),
        "unexpected cargo tree output: {crates:?}"
    );
    for name in FORBIDDEN {
        assert!(
            !crates.iter().any(|krate| krate == name),
            "fastway-core depends on {name}: {crates:?}"
        );
    }
}
