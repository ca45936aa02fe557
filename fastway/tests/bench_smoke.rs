//! A short run of `fastway-bench` (fastway and the baseline relay, JSON out): the tool works end to
//! end. The long measurements are on demand (BENCHMARKS.md), never in the suite.
#![allow(missing_docs, clippy::unwrap_used)]

use std::process::Command;

/// Pulls `"key":<number>` out of the first object that has `"subject":"<subject>"`.
fn number(json: &str, subject: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"subject\":\"{subject}\""))
        .unwrap_or_else(|| panic!("no {subject} in {json}"));
    let rest = &json[at..];
    let start = rest.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let end = rest[start..].find([',', '}']).unwrap();
    rest[start..start + end].parse().unwrap()
}

#[test]
fn a_short_run_against_fastway_and_the_relay_reports_sane_figures() {
    let output = Command::new(env!("CARGO_BIN_EXE_fastway-bench"))
        .args([
            "--mode",
            "both",
            "--clients",
            "4",
            "--inflight",
            "4",
            "--duration",
            "1",
            "--warmup",
            "0.3",
            "--json",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    assert!(stdout.trim_start().starts_with('{'), "{stdout}");
    for subject in ["relay", "fastway-tokio"] {
        assert!(number(&stdout, subject, "msgs_per_sec") > 0.0, "{stdout}");
        let p50 = number(&stdout, subject, "p50_us");
        let p99 = number(&stdout, subject, "p99_us");
        let p999 = number(&stdout, subject, "p999_us");
        let max = number(&stdout, subject, "max_us");
        assert!(
            0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
            "{stdout}"
        );
        assert!(max < 5_000_000.0, "{stdout}");
        assert_eq!(number(&stdout, subject, "failed_clients"), 0.0, "{stdout}");
        assert!(
            number(&stdout, subject, "cpu_us_per_msg") >= 0.0,
            "{stdout}"
        );
        assert!(number(&stdout, subject, "peak_rss_kib") > 0.0, "{stdout}");
    }
    assert!(
        number(&stdout, "fastway-tokio", "throughput") > 0.0,
        "{stdout}"
    );
    assert!(
        stderr.contains("vs relay"),
        "the table goes to stderr with --json: {stderr}"
    );
}

#[test]
fn idle_mode_reports_memory_per_connection() {
    let output = Command::new(env!("CARGO_BIN_EXE_fastway-bench"))
        .args(["--idle", "50", "--json", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        number(&stdout, "fastway-tokio", "rss_after_kib") > 0.0,
        "{stdout}"
    );
    assert!(
        number(&stdout, "fastway-tokio", "clients") == 50.0,
        "{stdout}"
    );
}
