//! The configuration layers through the real binary: `--print-config` with a file, environment
//! variables and flags shows the right winners, its output reads back, bad files and variables exit
//! 2 naming the line and key or the variable, and `--log-format json` writes one JSON object per line.
//! Environment variables are set on the child processes only.

mod common;

use common::process::{GatewayProcess, LOOPBACK, TempDir, run_to_exit as run};
use common::raw::Raw;
use fastway::config::RuntimeKind;
use fastway_core::frame::Command as Frame;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `key = value # origin` line of `key` in a printed configuration.
fn line_of<'a>(printed: &'a str, key: &str) -> &'a str {
    printed
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no line for {key} in:\n{printed}"))
}

#[test]
fn print_config_shows_the_winner_of_each_layer_and_exits_0() {
    let dir = TempDir::new("cfg-print");
    std::fs::write(
        dir.0.join("fastway.toml"),
        "MaxPacket = 1000\nworker-threads = 2\nclient-max-conn = 3\nserver-auth-key = \"from-file\"\n",
    )
    .expect("write config");
    let out = run(
        &dir,
        &[
            "--config",
            "fastway.toml",
            "-ClientMaxConn=7",
            "--print-config",
        ],
        &[
            ("FASTWAY_WORKER_THREADS", "5"),
            ("FASTWAY_CLIENT_MAX_CONN", "4"),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        line_of(&stdout, "max-packet"),
        "max-packet = 1000 # from file fastway.toml:1:1 key MaxPacket"
    );
    assert_eq!(
        line_of(&stdout, "worker-threads"),
        "worker-threads = 5 # from env FASTWAY_WORKER_THREADS"
    );
    assert_eq!(
        line_of(&stdout, "client-max-conn"),
        "client-max-conn = 7 # from the command line"
    );
    assert_eq!(
        line_of(&stdout, "client-buffer-size"),
        "client-buffer-size = 2048 # default"
    );
    assert!(
        !stdout.contains("from-file"),
        "the key is masked:\n{stdout}"
    );
    assert!(
        stdout.contains("# server-auth-key = (hidden: 9 bytes) # from file"),
        "{stdout}"
    );
    assert!(
        !dir.0.join("fastway.pid").exists(),
        "--print-config does not start the gateway"
    );
}

#[test]
fn print_config_output_reads_back_as_the_same_configuration() {
    let dir = TempDir::new("cfg-roundtrip");
    let first = run(
        &dir,
        &[
            "-ClientAddr=:0",
            "--client-idle-timeout=1m30s",
            "--server-auth-key=k\"ey",
            "--print-config=full",
        ],
        &[
            ("FASTWAY_MAX_PACKET", "0x2000"),
            ("FASTWAY_REUSE_PORT", "T"),
        ],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let printed = text(&first.stdout);
    std::fs::write(dir.0.join("printed.toml"), &printed).expect("write printed");
    let second = run(&dir, &["--config=printed.toml", "--print-config=full"], &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let values = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split(" # ").next().unwrap_or(l).to_owned())
            .collect()
    };
    assert_eq!(values(&text(&second.stdout)), values(&printed));
    assert!(printed.contains("max-packet = 8192 "), "{printed}");
    assert!(printed.contains("reuse-port = true "), "{printed}");
    assert!(printed.contains(r#"server-auth-key = 'k"ey'"#), "{printed}");
}

#[test]
fn a_bad_config_file_exits_2_naming_line_and_key() {
    let dir = TempDir::new("cfg-bad-file");
    std::fs::write(
        dir.0.join("bad.toml"),
        "# a comment\nclient-addr = \"127.0.0.1:0\"\nClientIdleTimeout = \"30\"\n",
    )
    .expect("write config");
    let out = run(&dir, &["--config", "bad.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("config file bad.toml, line 3, column 21, key \"ClientIdleTimeout\""),
        "{stderr}"
    );
    assert!(stderr.contains("missing unit"), "{stderr}");

    std::fs::write(dir.0.join("typo.toml"), "\n\nclient-adr = \":1\"\n").expect("write");
    let out = run(&dir, &[], &[("FASTWAY_CONFIG", "typo.toml")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 3, column 1, key \"client-adr\": unknown key"),
        "{stderr}"
    );
    assert!(!dir.0.join("fastway.pid").exists(), "no pid file");
}

#[test]
fn a_bad_environment_variable_exits_2_naming_it() {
    let dir = TempDir::new("cfg-bad-env");
    let out = run(&dir, &LOOPBACK, &[("FASTWAY_CLIENT_SNET_BUFFER", "-1")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("must be from 0") && stderr.contains("from env FASTWAY_CLIENT_SNET_BUFFER"),
        "{stderr}"
    );
    let out = run(&dir, &LOOPBACK, &[("FASTWAY_LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("FASTWAY_LOG_FORMAT=\"xml\"") && stderr.contains("text, json"),
        "{stderr}"
    );
}

/// Parses a JSON log line and checks its fields, returning the message.
fn json_message(line: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    for field in ["ts", "level", "target", "msg"] {
        assert!(value[field].is_string(), "no string {field:?} in {line}");
    }
    value["msg"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn json_log_format_writes_one_parseable_object_per_line() {
    for kind in RuntimeKind::compiled() {
        json_log_on(kind);
    }
}

/// The JSON log of a gateway on runtime `kind` through auth failure, server online, dial refusal,
/// server offline and shutdown.
fn json_log_on(kind: RuntimeKind) {
    let mut args = LOOPBACK.to_vec();
    let runtime = format!("--runtime={kind}");
    args.extend([
        "--log-format=json",
        "-ServerAuthKey=right",
        "-ClientMaxConn=1",
        &runtime,
    ]);
    let mut gw = GatewayProcess::spawn(&format!("cfg-json-{kind}"), &args, None);
    let line = gw.wait_for("setup server listener at - ");
    let msg = json_message(&line);
    let server_addr = msg
        .rsplit("- ")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {msg:?}"));
    gw.wait_pid_file("fastway.pid");
    let client_addr = json_message(&gw.wait_for("setup client listener at - "))
        .rsplit("- ")
        .next()
        .and_then(|a| a.parse().ok())
        .expect("client address");
    // Each event of the audit is one JSON line with its ids, address and reason.
    let _wrong = Raw::server(server_addr, 8, "wrong");
    let failure = json_message(&gw.wait_for("error happends when accept server from"));
    assert!(failure.contains("server auth failed"), "{failure}");
    let server = Raw::server(server_addr, 7, "right");
    json_message(&gw.wait_for("accept server 7 from"));
    let mut client = Raw::connect(client_addr);
    client.send_command(Frame::Dial { remote: 9 });
    let refusal = json_message(&gw.wait_for("refuse dial from client"));
    assert!(
        refusal.contains("to server 9: no server 9 is registered"),
        "{refusal}"
    );
    drop(server);
    let offline = json_message(&gw.wait_for("server 7 offline"));
    assert!(offline.contains("127.0.0.1:"), "{offline}");
    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
    gw.drain_log();
    assert!(gw.log.len() >= 4, "{:?}", gw.log);
    for line in &gw.log {
        json_message(line);
    }
}
