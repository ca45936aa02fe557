//! Helpers for the end-to-end tests: a gateway on a background thread under a chosen executor, raw
//! `std::net` clients and servers with read timeouts (so nothing can hang), frame builders, and a
//! logger that records lines for assertions.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use fastway_core::auth::{CHALLENGE_LEN, Challenge, server_response};
use fastway_smol::{GatewayHandle, GatewayServer, ServerConfig};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Upper bound for any single wait in a test.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Which executor drives [`GatewayServer::run`].
#[derive(Debug, Clone, Copy)]
pub enum Exec {
    /// `smol::block_on`.
    Smol,
    /// `async_std::task::block_on`.
    AsyncStdBlockOn,
    /// `async_std::task::spawn`, awaited from `async_std::task::block_on`.
    AsyncStdSpawn,
}

/// A gateway serving on a background thread.
pub struct Running {
    pub handle: GatewayHandle,
    pub client: SocketAddr,
    pub server: SocketAddr,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// Binds on 127.0.0.1:0 (both ports) with `tweak` applied to the default config and runs under
    /// smol.
    pub fn start(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_on(Exec::Smol, tweak)
    }

    pub fn start_on(exec: Exec, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        init_logger();
        let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = ServerConfig::new(localhost, localhost);
        config.gateway.auth_key = b"key".to_vec();
        tweak(&mut config);
        let server = smol::block_on(GatewayServer::bind(config)).expect("bind");
        let handle = server.handle();
        let (client, server_addr) = (server.client_addr(), server.server_addr());
        let thread = std::thread::spawn(move || match exec {
            Exec::Smol => smol::block_on(server.run()),
            Exec::AsyncStdBlockOn => async_std::task::block_on(server.run()),
            Exec::AsyncStdSpawn => async_std::task::block_on(async_std::task::spawn(server.run())),
        });
        Self {
            handle,
            client,
            server: server_addr,
            thread: Some(thread),
        }
    }

    /// Shuts down and waits (bounded) for `run` to return; returns its result.
    pub fn stop(mut self) -> io::Result<()> {
        self.handle.shutdown();
        let thread = self.thread.take().expect("thread");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !thread.is_finished() {
            assert!(
                Instant::now() < deadline,
                "run() did not return after shutdown"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        thread.join().expect("gateway thread panicked")
    }

    /// A raw client connection.
    pub fn client(&self) -> TcpStream {
        connect(self.client)
    }

    /// A raw server connection that passed the handshake as `id` (with the right key), after the
    /// gateway has registered it.
    pub fn server(&self, id: u32) -> TcpStream {
        let before = self.handle.stats().servers;
        let stream = auth_server(self.server, b"key", id);
        wait_until(|| self.handle.stats().servers > before);
        stream
    }

    /// A raw client that has dialed `server_id` and read its Accept; returns the stream and vconn.
    pub fn dialed_client(&self, server_id: u32) -> (TcpStream, u32) {
        let mut client = self.client();
        client.write_all(&dial(server_id)).unwrap();
        let accept = read_frame(&mut client).unwrap();
        assert_eq!(accept.len(), 17, "expected Accept, got {accept:02x?}");
        assert_eq!(accept[8], 1, "expected Accept, got {accept:02x?}");
        (client, u32_at(&accept, 9))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Connects with a read timeout and TCP_NODELAY.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads the 8-byte challenge and answers it with `key` and `id`.
pub fn auth_server(addr: SocketAddr, key: &[u8], id: u32) -> TcpStream {
    answer_challenge(connect(addr), key, id)
}

/// Connects with a small receive buffer (set before connecting, so the window stays small), to make
/// a peer that stops reading back up quickly.
pub fn connect_small_window(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect_timeout(&addr.into(), TIMEOUT).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads the 8-byte challenge on `stream` and answers it with `key` and `id`.
pub fn answer_challenge(mut stream: TcpStream, key: &[u8], id: u32) -> TcpStream {
    let mut challenge = [0u8; CHALLENGE_LEN];
    stream.read_exact(&mut challenge).expect("challenge");
    stream
        .write_all(&server_response(&Challenge(challenge), key, id))
        .unwrap();
    stream
}

/// Reads one whole frame (length field included).
pub fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut frame = len.to_vec();
    frame.resize(4 + u32::from_le_bytes(len) as usize, 0);
    stream.read_exact(&mut frame[4..])?;
    Ok(frame)
}

/// Asserts the gateway closes `stream` without sending anything more.
pub fn expect_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected close, got {:02x?}", &buf[..n]),
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {}
        Err(err) => panic!("expected close, got error {err}"),
    }
}

/// The u32 LE at `at`.
pub fn u32_at(frame: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(frame[at..at + 4].try_into().unwrap())
}

pub fn command(kind: u8, args: &[u32]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&(5 + 4 * args.len() as u32).to_le_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0, kind]);
    for arg in args {
        frame.extend_from_slice(&arg.to_le_bytes());
    }
    frame
}

pub fn dial(remote: u32) -> Vec<u8> {
    command(0, &[remote])
}

pub fn accept(conn: u32, remote: u32) -> Vec<u8> {
    command(1, &[conn, remote])
}

pub fn connect_cmd(conn: u32, remote: u32) -> Vec<u8> {
    command(2, &[conn, remote])
}

pub fn refuse(remote: u32) -> Vec<u8> {
    command(3, &[remote])
}

pub fn close(conn: u32) -> Vec<u8> {
    command(4, &[conn])
}

pub fn ping() -> Vec<u8> {
    command(5, &[])
}

pub fn data(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&(4 + payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&conn.to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Polls `cond` until it holds, failing after [`TIMEOUT`].
pub fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met in time");
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct TestLogger {
    lines: Mutex<Vec<String>>,
}

impl log::Log for TestLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.target().starts_with("fastway") {
            let line = format!("{} {}", record.level(), record.args());
            self.lines.lock().unwrap().push(line);
        }
    }

    fn flush(&self) {}
}

static LOGGER: OnceLock<&'static TestLogger> = OnceLock::new();

fn init_logger() {
    LOGGER.get_or_init(|| {
        let logger: &'static TestLogger = Box::leak(Box::new(TestLogger {
            lines: Mutex::new(Vec::new()),
        }));
        let _ = log::set_logger(logger);
        log::set_max_level(log::LevelFilter::Debug);
        logger
    });
}

/// Waits until a recorded log line contains `text`; returns that line ("LEVEL message").
pub fn wait_for_log(text: &str) -> String {
    let logger = *LOGGER.get().expect("logger");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(line) = logger
            .lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(text))
        {
            return line.clone();
        }
        assert!(Instant::now() < deadline, "no log line contains {text:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
