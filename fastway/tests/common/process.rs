//! The `fastway` binary as a child process on ephemeral loopback ports, with its log, its resident
//! memory (`/proc/<pid>/status`) and its counters (the `stats` command over SIGUSR1).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command as Process, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long the process may take to start, answer a command or exit.
pub const STARTUP: Duration = Duration::from_secs(20);

/// Both listeners on 127.0.0.1 with ephemeral ports.
pub const LOOPBACK: [&str; 2] = ["-ClientAddr=127.0.0.1:0", "-ServerAddr=127.0.0.1:0"];

/// Runs the binary in `dir` with `args` and the extra environment `env` (`RUST_LOG` cleared) and
/// waits for it to exit: for command lines that must end by themselves (rejected flags, `--help`,
/// `--print-config`, `--man`, `--completions`).
pub fn run_to_exit(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Process::new(env!("CARGO_BIN_EXE_fastway"));
    command
        .args(args)
        .current_dir(&dir.0)
        .env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run fastway")
}

/// A temporary working directory for one gateway process.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
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

/// A running `fastway` process and its log. Killed when dropped.
pub struct GatewayProcess {
    pub child: Child,
    pub lines: Receiver<String>,
    pub log: Vec<String>,
    pub dir: TempDir,
}

/// The counters of a `stats:` log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoggedStats {
    pub clients: u64,
    pub servers: u64,
    pub handshaking: u64,
    pub vconns: u64,
    pub queue_full: u64,
    pub timeout: u64,
}

impl GatewayProcess {
    pub fn spawn(name: &str, args: &[&str], rust_log: Option<&str>) -> GatewayProcess {
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
        GatewayProcess {
            child,
            lines,
            log: Vec::new(),
            dir,
        }
    }

    /// Starts `fastway` on loopback with `extra` flags and waits until both listeners are bound.
    pub fn start(name: &str, extra: &[&str]) -> (GatewayProcess, SocketAddr, SocketAddr) {
        let mut args = LOOPBACK.to_vec();
        args.extend_from_slice(extra);
        let mut gw = GatewayProcess::spawn(name, &args, None);
        let client = gw.bound("client");
        let server = gw.bound("server");
        gw.wait_pid_file("fastway.pid");
        (gw, client, server)
    }

    /// Waits for a log line containing `needle` (also among lines already seen) and returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        self.wait_for_new(needle)
    }

    /// Waits for a log line containing `needle` that arrives from now on.
    pub fn wait_for_new(&mut self, needle: &str) -> String {
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

    /// Collects the log lines that arrived so far without waiting.
    pub fn drain_log(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    /// The address logged as `setup <side> listener at - <addr>`.
    pub fn bound(&mut self, side: &str) -> SocketAddr {
        let line = self.wait_for(&format!("setup {side} listener at - "));
        let addr = line.rsplit("- ").next().expect("address");
        addr.trim().parse().expect("socket address")
    }

    pub fn signal(&self, name: &str) {
        let status = Process::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "fastway did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.0.join(file)
    }

    /// Waits until the pid file exists: the control loop is running.
    pub fn wait_pid_file(&self, file: &str) -> String {
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

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// Peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    /// Asks for the `stats` command (command file + SIGUSR1) and parses the line it logs.
    pub fn stats(&mut self) -> LoggedStats {
        std::fs::write(self.path("fastway.cmd"), "stats").expect("write cmd");
        self.signal("USR1");
        let line = self.wait_for_new("stats: clients");
        let field = |name: &str| -> u64 {
            let rest = line.split(&format!("{name} ")).nth(1).expect("field");
            rest.split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .expect("number")
        };
        LoggedStats {
            clients: field("clients"),
            servers: field("servers"),
            handshaking: field("handshaking"),
            vconns: field("vconns"),
            queue_full: field("queue-full"),
            timeout: field("timeout"),
        }
    }

    /// Polls [`stats`](Self::stats) until `check` holds or `wait` passes; returns the last stats.
    pub fn stats_until(
        &mut self,
        wait: Duration,
        check: impl Fn(&LoggedStats) -> bool,
    ) -> LoggedStats {
        let deadline = Instant::now() + wait;
        loop {
            let stats = self.stats();
            if check(&stats) || Instant::now() >= deadline {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
