//! The `fastway` binary as a child process on ephemeral loopback ports: it serves, answers SIGUSR1 +
//! `fastway.cmd`, exits 0 on SIGTERM/SIGINT and removes its pid file, and takes the original's flags.

mod common;

use common::raw::Raw;
use fastway::config::RuntimeKind;
use fastway_core::frame::Command;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const STARTUP: Duration = Duration::from_secs(20);

/// A temporary working directory for one gateway process.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("fastway-bin-{name}-{}", std::process::id()));
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

/// A running `fastway` process and its log.
struct Gateway {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
    dir: TempDir,
}

impl Gateway {
    fn spawn(name: &str, args: &[&str], rust_log: Option<&str>) -> Gateway {
        let dir = TempDir::new(name);
        let mut command = Process::new(env!("CARGO_BIN_EXE_fastway"));
        command
            .args(args)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match rust_log {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let mut child = command.spawn().expect("start fastway");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Gateway {
            child,
            lines,
            log: Vec::new(),
            dir,
        }
    }

    /// Waits for a log line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "no log line with {needle:?}; log so far:\n{}",
                        self.log.join("\n")
                    )
                }
            }
        }
    }

    /// The address logged as `setup <side> listener at - <addr>`.
    fn bound(&mut self, side: &str) -> SocketAddr {
        let line = self.wait_for(&format!("setup {side} listener at - "));
        let addr = line.rsplit("- ").next().expect("address");
        addr.trim().parse().expect("socket address")
    }

    fn signal(&self, name: &str) {
        let status = Process::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "fastway did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.0.join(file)
    }

    /// Waits until the pid file exists: the control loop is running.
    fn wait_pid_file(&self, file: &str) -> String {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(text) = std::fs::read_to_string(self.path(file)) {
                if !text.is_empty() {
                    return text;
                }
            }
            assert!(Instant::now() < deadline, "no pid file");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LOOPBACK: [&str; 2] = ["-ClientAddr=127.0.0.1:0", "-ServerAddr=127.0.0.1:0"];

#[test]
fn original_flag_spelling_serves_and_sigterm_exits_0_removing_the_pid_file() {
    let mut gw = Gateway::spawn(
        "orig",
        &[
            "-ClientAddr=127.0.0.1:0",
            "-ServerAddr",
            "127.0.0.1:0",
            "-ServerAuthKey=k",
            "-ClientMaxConn=4",
            "-ClientIdleTimeout=1m30s",
            "-ReusePort=false",
            "-MemPoolType=sync",
            "-MaxPacket",
            "0x10000",
        ],
        None,
    );
    let client_addr = gw.bound("client");
    let server_addr = gw.bound("server");
    let pid = gw.wait_pid_file("fastway.pid");
    assert_eq!(
        pid,
        gw.child.id().to_string(),
        "pid file holds the decimal pid, no newline"
    );

    let mut server = Raw::server(server_addr, 7, "k");
    gw.wait_for("accept server 7 from");
    let mut client = Raw::connect(client_addr);
    let conn = client.dial(7);
    assert_eq!(server.expect_connect(), (conn, 1));
    client.send_data(conn, b"through the binary");
    server.expect_data(conn, b"through the binary");

    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
    gw.wait_for("fastway killed");
    assert!(!gw.path("fastway.pid").exists(), "pid file removed");
}

#[test]
fn sigusr1_runs_the_command_file_and_sigint_exits_0() {
    let mut gw = Gateway::spawn("cmd", &LOOPBACK, None);
    let client_addr = gw.bound("client");
    gw.wait_pid_file("fastway.pid");
    let mut client = Raw::connect(client_addr);
    client.ping();

    std::fs::write(gw.path("fastway.cmd"), "  stats \n").expect("write cmd");
    gw.signal("USR1");
    let stats = gw.wait_for("stats: clients");
    assert!(stats.contains("clients 1"), "{stats}");
    assert!(stats.contains("rss"), "{stats}");

    std::fs::write(gw.path("fastway.cmd"), "conns").expect("write cmd");
    gw.signal("USR1");
    gw.wait_for("connections to");
    let dump = std::fs::read_to_string(gw.path("fastway.conns")).expect("conns dump");
    assert!(dump.lines().any(|l| l.contains(" client 1 ")), "{dump}");

    std::fs::write(gw.path("fastway.cmd"), "bogus command").expect("write cmd");
    gw.signal("USR1");
    gw.wait_for("unsupported command: bogus command");
    std::fs::write(gw.path("fastway.cmd"), "lookup gc").expect("write cmd");
    gw.signal("USR1");
    gw.wait_for("lookup gc 0: memory");
    std::fs::remove_file(gw.path("fastway.cmd")).expect("remove cmd");
    gw.signal("USR1");
    gw.wait_for("read ");

    client.ping();
    gw.signal("INT");
    assert_eq!(gw.wait_exit().code(), Some(0));
    assert!(!gw.path("fastway.pid").exists());
}

#[test]
fn empty_auth_key_is_warned_about() {
    let mut gw = Gateway::spawn("nokey", &LOOPBACK, None);
    gw.wait_for("ServerAuthKey is empty");
    gw.wait_pid_file("fastway.pid");
    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
}

#[test]
fn every_compiled_runtime_serves_from_the_binary() {
    for kind in RuntimeKind::compiled() {
        let runtime = format!("--runtime={}", kind.name());
        let mut gw = Gateway::spawn(kind.name(), &[LOOPBACK[0], LOOPBACK[1], &runtime], None);
        let client_addr = gw.bound("client");
        let server_addr = gw.bound("server");
        gw.wait_for(&format!("running on {}", kind.name()));
        gw.wait_pid_file("fastway.pid");
        let mut server = Raw::server(server_addr, 3, "");
        gw.wait_for("accept server 3 from");
        let mut client = Raw::connect(client_addr);
        let conn = client.dial(3);
        assert_eq!(server.expect_connect().0, conn);
        client.send_command(Command::Close { conn });
        client.expect_command(Command::Close { conn });
        gw.signal("TERM");
        assert_eq!(gw.wait_exit().code(), Some(0), "{}", kind.name());
    }
}

#[test]
fn rust_log_overrides_the_log_level_flag() {
    let args = [LOOPBACK[0], LOOPBACK[1], "--log-level=debug"];
    let mut gw = Gateway::spawn("rustlog", &args, Some("warn"));
    gw.wait_pid_file("fastway.pid");
    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
    while let Ok(line) = gw.lines.recv_timeout(Duration::from_millis(200)) {
        gw.log.push(line);
    }
    assert!(
        !gw.log.iter().any(|l| l.contains("settings:")),
        "{:?}",
        gw.log
    );
    assert!(
        !gw.log.iter().any(|l| l.contains("setup client listener")),
        "{:?}",
        gw.log
    );
}

#[test]
fn unwritable_pid_file_exits_1() {
    let args = [
        LOOPBACK[0],
        LOOPBACK[1],
        "--pid-file",
        "missing-dir/fastway.pid",
    ];
    let mut gw = Gateway::spawn("nopid", &args, None);
    assert_eq!(gw.wait_exit().code(), Some(1));
    gw.wait_for("cannot write pid file");
}

#[test]
fn a_port_in_use_exits_1_with_a_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("-ClientAddr={}", taken.local_addr().expect("addr"));
    let mut gw = Gateway::spawn("inuse", &[&addr, LOOPBACK[1]], None);
    assert_eq!(gw.wait_exit().code(), Some(1));
    gw.wait_for("setup listeners failed");
}
