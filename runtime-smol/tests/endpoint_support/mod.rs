//! Test-only gateways for the endpoint tests: a real `fastway_core::gateway::Gateway` driven by a
//! simple blocking loop on non-blocking std sockets in a thread, and a "silent" gateway that accepts,
//! records what it receives and never answers. Loopback, ephemeral ports only.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use fastway_core::gateway::{Action, Gateway, GatewayConfig, PeerId, QueueLimits};
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const AUTH_KEY: &[u8] = b"secret";

/// A fixed-seed generator: challenges need not be secret in a test.
struct TestRng(u64);

impl rand_core::TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Ok(self.0 >> 11)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for byte in dst {
            *byte = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

struct Conn {
    stream: TcpStream,
    read_buf: BytesMut,
    out: Vec<u8>,
    closing: bool,
    paused: bool,
}

/// A gateway on two loopback ports, run by the core in a thread until dropped.
pub struct FakeGateway {
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    authenticated: Arc<Mutex<Vec<u32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeGateway {
    pub fn start() -> Self {
        // Bursts of thousands of tiny frames to one client are part of the tests; the default
        // client queue (1024 frames) would rightly drop that client.
        Self::with_config(GatewayConfig {
            auth_key: AUTH_KEY.to_vec(),
            client_queue: QueueLimits {
                max_frames: 1 << 20,
                max_bytes: 256 << 20,
            },
            ..GatewayConfig::default()
        })
    }

    pub fn with_config(config: GatewayConfig) -> Self {
        let clients = TcpListener::bind("127.0.0.1:0").unwrap();
        let servers = TcpListener::bind("127.0.0.1:0").unwrap();
        clients.set_nonblocking(true).unwrap();
        servers.set_nonblocking(true).unwrap();
        let client_addr = clients.local_addr().unwrap();
        let server_addr = servers.local_addr().unwrap();
        let authenticated = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let authenticated = authenticated.clone();
            let stop = stop.clone();
            std::thread::spawn(move || run(config, clients, servers, authenticated, stop))
        };
        Self {
            client_addr,
            server_addr,
            authenticated,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits (at most 5 s) until server `id` has passed the challenge.
    pub fn wait_server(&self, id: u32) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.authenticated.lock().unwrap().contains(&id) {
            assert!(Instant::now() < deadline, "server {id} never authenticated");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    config: GatewayConfig,
    clients: TcpListener,
    servers: TcpListener,
    authenticated: Arc<Mutex<Vec<u32>>>,
    stop: Arc<AtomicBool>,
) {
    let mut gw = Gateway::new(config);
    let mut rng = TestRng(7);
    let mut conns: HashMap<PeerId, Conn> = HashMap::new();
    let mut scratch = vec![0u8; 64 * 1024];
    let mut batch: Vec<Bytes> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut busy = false;
        for (listener, server) in [(&clients, false), (&servers, true)] {
            while let Ok((stream, _)) = listener.accept() {
                busy = true;
                stream.set_nonblocking(true).unwrap();
                stream.set_nodelay(true).unwrap();
                let peer = if server {
                    gw.accept_server(now, &mut rng)
                } else {
                    gw.accept_client(now).unwrap()
                };
                let conn = Conn {
                    stream,
                    read_buf: BytesMut::new(),
                    out: Vec::new(),
                    closing: false,
                    paused: false,
                };
                conns.insert(peer, conn);
            }
        }
        let peers: Vec<PeerId> = conns.keys().copied().collect();
        for peer in &peers {
            let conn = conns.get_mut(peer).unwrap();
            if conn.closing || conn.paused {
                continue;
            }
            match conn.stream.read(&mut scratch) {
                Ok(0) => {
                    conn.closing = true;
                    gw.handle_closed(*peer, now);
                }
                Ok(n) => {
                    busy = true;
                    conn.read_buf.extend_from_slice(&scratch[..n]);
                    gw.handle_input(*peer, &mut conn.read_buf, now);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    conn.closing = true;
                    gw.handle_closed(*peer, now);
                }
            }
        }
        if gw.poll_timeout().is_some_and(|at| at <= now) {
            gw.handle_timeout(now);
        }
        while let Some(action) = gw.poll_action() {
            match action {
                Action::Transmit(_) => {}
                Action::PauseReading(peer) | Action::ResumeReading(peer) => {
                    if let Some(conn) = conns.get_mut(&peer) {
                        conn.paused = matches!(action, Action::PauseReading(_));
                        if !conn.paused && !conn.read_buf.is_empty() {
                            gw.handle_input(peer, &mut conn.read_buf, now);
                        }
                    }
                }
                Action::ServerAuthenticated { server_id, .. } => {
                    authenticated.lock().unwrap().push(server_id);
                }
                Action::Close { peer, flush, .. } => {
                    if let Some(conn) = conns.get_mut(&peer) {
                        for bytes in flush {
                            conn.out.extend_from_slice(&bytes);
                        }
                        conn.closing = true;
                    }
                }
            }
        }
        for peer in &peers {
            let Some(conn) = conns.get_mut(peer) else {
                continue;
            };
            batch.clear();
            gw.poll_transmit(*peer, now, &mut batch);
            for bytes in &batch {
                conn.out.extend_from_slice(bytes);
            }
            while !conn.out.is_empty() {
                match conn.stream.write(&conn.out) {
                    Ok(n) if n > 0 => {
                        busy = true;
                        conn.out.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    _ => {
                        conn.out.clear();
                        conn.closing = true;
                    }
                }
            }
            if conn.closing && conn.out.is_empty() {
                let _ = conn.stream.shutdown(Shutdown::Both);
                conns.remove(peer);
                // Harmless if the core already forgot it.
                gw.handle_closed(*peer, now);
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A gateway that accepts connections, records every byte it receives, optionally writes a fixed
/// greeting, and otherwise never answers (no Accept, no Refuse, no Ping reply).
pub struct SilentGateway {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentGateway {
    pub fn start(greeting: &'static [u8]) -> Self {
        Self::start_with(greeting, false)
    }

    /// `close_at_once`: accept and close immediately (after writing the greeting).
    pub fn start_with(greeting: &'static [u8], close_at_once: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = received.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut streams: Vec<TcpStream> = Vec::new();
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((mut stream, _)) = listener.accept() {
                        let _ = stream.write_all(greeting);
                        if close_at_once {
                            let _ = stream.shutdown(Shutdown::Both);
                            continue;
                        }
                        stream.set_nonblocking(true).unwrap();
                        streams.push(stream);
                    }
                    for stream in &mut streams {
                        if let Ok(n) = stream.read(&mut buf) {
                            received.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Self {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for SilentGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
