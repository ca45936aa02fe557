//! The process under test: a `fastway` gateway or the baseline relay started as a child process, so
//! that its CPU time and memory are its own. The bound addresses are read from its log on stderr;
//! the rest of the log is drained (and dropped) so the child never blocks on a full pipe.

use super::BenchError;
use super::relay::LISTENING;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a child may take to log its addresses.
const STARTUP: Duration = Duration::from_secs(20);

/// A running child process, killed when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// Closing it tells the relay to exit.
    _stdin: Option<ChildStdin>,
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// Where game servers connect (fastway only).
    pub server_addr: Option<SocketAddr>,
    scratch: Option<PathBuf>,
}

impl Process {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What a gateway child is started with.
#[derive(Debug, Clone)]
pub struct GatewayArgs<'a> {
    /// The `fastway` binary.
    pub bin: &'a Path,
    /// `--runtime` value.
    pub runtime: &'a str,
    /// `--worker-threads` value.
    pub worker_threads: usize,
    /// `-MaxPacket` value.
    pub max_packet: u32,
}

/// The `fastway` binary next to this executable.
pub fn default_gateway_bin() -> Result<PathBuf, BenchError> {
    let exe =
        std::env::current_exe().map_err(|err| BenchError::io("locate this executable", err))?;
    let bin = exe.with_file_name(format!("fastway{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(BenchError::Setup(format!(
            "no fastway binary at {} (build it: cargo build --release -p fastway --all-features, or pass --gateway-bin)",
            bin.display()
        )))
    }
}

/// Starts `fastway` on 127.0.0.1 ephemeral ports with every limit that would disturb a benchmark
/// lifted (vconns per client, client count, idle timeouts), and waits for its two addresses.
pub fn spawn_gateway(args: &GatewayArgs<'_>) -> Result<Process, BenchError> {
    let scratch =
        std::env::temp_dir().join(format!("fastway-bench-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&scratch).map_err(|err| BenchError::io("create a scratch dir", err))?;
    let mut command = Command::new(args.bin);
    command
        .arg(format!("--runtime={}", args.runtime))
        .arg("-ClientAddr=127.0.0.1:0")
        .arg("-ServerAddr=127.0.0.1:0")
        .arg("-ClientMaxConn=0")
        .arg("--max-clients=0")
        .arg("-ClientIdleTimeout=0")
        .arg("-ServerIdleTimeout=0")
        .arg(format!("-MaxPacket={}", args.max_packet))
        .arg(format!("--worker-threads={}", args.worker_threads))
        .arg("--pid-file")
        .arg(scratch.join("fastway.pid"))
        .arg("--cmd-file")
        .arg(scratch.join("fastway.cmd"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    let (child, stdin, lines) = spawn(command, args.bin)?;
    let mut process = Process {
        child,
        _stdin: stdin,
        client_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        server_addr: None,
        scratch: Some(scratch),
    };
    let (mut client, mut server) = (None, None);
    while client.is_none() || server.is_none() {
        let line = next_line(&lines, &mut process.child)?;
        client = client.or_else(|| address_after(&line, "setup client listener at - "));
        server = server.or_else(|| address_after(&line, "setup server listener at - "));
    }
    process.client_addr = client.unwrap_or(process.client_addr);
    process.server_addr = server;
    Ok(process)
}

/// Starts this executable's `relay-server` in front of `backends` and waits for its address.
pub fn spawn_relay(backends: &[SocketAddr], threads: usize) -> Result<Process, BenchError> {
    let exe =
        std::env::current_exe().map_err(|err| BenchError::io("locate this executable", err))?;
    let list: Vec<String> = backends.iter().map(ToString::to_string).collect();
    let mut command = Command::new(&exe);
    command
        .arg("relay-server")
        .arg("--listen=127.0.0.1:0")
        .arg(format!("--backend={}", list.join(",")))
        .arg(format!("--threads={threads}"))
        .stdin(Stdio::piped());
    let (child, stdin, lines) = spawn(command, &exe)?;
    let mut process = Process {
        child,
        _stdin: stdin,
        client_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        server_addr: None,
        scratch: None,
    };
    loop {
        let line = next_line(&lines, &mut process.child)?;
        if let Some(addr) = address_after(&line, LISTENING) {
            process.client_addr = addr;
            return Ok(process);
        }
    }
}

type Lines = mpsc::Receiver<String>;

fn spawn(
    mut command: Command,
    bin: &Path,
) -> Result<(Child, Option<ChildStdin>, Lines), BenchError> {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|err| BenchError::io(&format!("start {}", bin.display()), err))?;
    let stdin = child.stdin.take();
    let (tx, rx) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut forward = true;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Only the first lines matter; after that the channel is dropped and we just drain.
                if forward && tx.send(line).is_err() {
                    forward = false;
                }
            }
        });
    }
    Ok((child, stdin, rx))
}

fn next_line(lines: &Lines, child: &mut Child) -> Result<String, BenchError> {
    match lines.recv_timeout(STARTUP) {
        Ok(line) => Ok(line),
        Err(_) => {
            let status = child.try_wait().ok().flatten();
            Err(BenchError::Setup(format!(
                "the child process did not report its address within {STARTUP:?} (exit status: {status:?})"
            )))
        }
    }
}

fn address_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once(marker)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_in_log_lines() {
        let line = "[2025-01-01T00:00:00Z INFO  fastway_tokio::server] setup client listener at - 127.0.0.1:4321";
        assert_eq!(
            address_after(line, "setup client listener at - "),
            Some(SocketAddr::from(([127, 0, 0, 1], 4321)))
        );
        assert_eq!(address_after(line, "setup server listener at - "), None);
    }
}
