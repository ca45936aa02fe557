//! Test-only gateways for the endpoint tests: a real routing gateway (the core `Gateway` driven by a
//! few blocking threads) and a silent one that records what it receives and never answers.

#![allow(dead_code, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use fastway_core::gateway::{Action, Gateway, GatewayConfig, PeerId, QueueLimits};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const KEY: &[u8] = b"test key";
pub const MAX_PACKET: u32 = 64 * 1024;

/// A deterministic RNG for the gateway's challenges.
struct TestRng(u64);

impl rand_core::TryRng for TestRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Ok(self.0 >> 11)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for byte in dst {
            *byte = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

struct Core {
    gw: Gateway,
    sockets: HashMap<PeerId, TcpStream>,
    rng: TestRng,
    authenticated: Vec<u32>,
}

struct Inner {
    core: Mutex<Core>,
    stop: AtomicBool,
}

/// The core gateway on two loopback ports. Writes happen under the lock (test volumes are small, and
/// endpoints always drain their sockets).
pub struct FakeGateway {
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    inner: Arc<Inner>,
}

impl FakeGateway {
    pub fn start() -> Self {
        let config = GatewayConfig {
            max_packet: MAX_PACKET,
            auth_key: KEY.to_vec(),
            // Like the original's tests (SendChanSize 6000 x CPUs): bursts of small messages from a
            // server arrive in one read and would overflow the default 1024-frame client queue.
            client_queue: QueueLimits {
                max_frames: 100_000,
                max_bytes: 64 << 20,
            },
            ..GatewayConfig::default()
        };
        let inner = Arc::new(Inner {
            core: Mutex::new(Core {
                gw: Gateway::new(config),
                sockets: HashMap::new(),
                rng: TestRng(42),
                authenticated: Vec::new(),
            }),
            stop: AtomicBool::new(false),
        });
        let clients = TcpListener::bind("127.0.0.1:0").unwrap();
        let servers = TcpListener::bind("127.0.0.1:0").unwrap();
        let gateway = Self {
            client_addr: clients.local_addr().unwrap(),
            server_addr: servers.local_addr().unwrap(),
            inner: Arc::clone(&inner),
        };
        for (listener, server) in [(clients, false), (servers, true)] {
            let inner = Arc::clone(&inner);
            thread::spawn(move || accept_loop(&inner, &listener, server));
        }
        let timer = Arc::clone(&inner);
        thread::spawn(move || {
            while !timer.stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(10));
                let mut core = timer.core.lock().unwrap();
                core.gw.handle_timeout(Instant::now());
                process(&mut core);
            }
        });
        gateway
    }

    /// Waits (bounded) until a server has authenticated under `id`.
    pub fn wait_server(&self, id: u32) {
        wait_until(Duration::from_secs(5), || {
            self.inner.core.lock().unwrap().authenticated.contains(&id)
        });
    }

    /// The gateway's count of open vconns.
    pub fn vconns(&self) -> usize {
        self.inner.core.lock().unwrap().gw.stats().vconns
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        let mut core = self.inner.core.lock().unwrap();
        for (_, socket) in core.sockets.drain() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(inner: &Arc<Inner>, listener: &TcpListener, server: bool) {
    listener.set_nonblocking(true).unwrap();
    while !inner.stop.load(Ordering::Relaxed) {
        let socket = match listener.accept() {
            Ok((socket, _)) => socket,
            Err(_) => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        socket.set_nonblocking(false).unwrap();
        socket.set_nodelay(true).unwrap();
        let peer = {
            let mut core = inner.core.lock().unwrap();
            let now = Instant::now();
            let core = &mut *core;
            let peer = if server {
                core.gw.accept_server(now, &mut core.rng)
            } else {
                core.gw.accept_client(now).unwrap()
            };
            core.sockets.insert(peer, socket.try_clone().unwrap());
            process(core);
            peer
        };
        let inner = Arc::clone(inner);
        thread::spawn(move || read_loop(&inner, peer, socket));
    }
}

fn read_loop(inner: &Inner, peer: PeerId, mut socket: TcpStream) {
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = socket.read(&mut chunk).unwrap_or(0);
        let mut core = inner.core.lock().unwrap();
        if n == 0 {
            core.gw.handle_closed(peer, Instant::now());
            process(&mut core);
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        core.gw.handle_input(peer, &mut buf, Instant::now());
        process(&mut core);
    }
}

/// Carries out the gateway's actions: writes, closes, registrations.
fn process(core: &mut Core) {
    while let Some(action) = core.gw.poll_action() {
        match action {
            Action::Transmit(peer) => {
                let mut out: Vec<Bytes> = Vec::new();
                while core.gw.poll_transmit(peer, Instant::now(), &mut out) > 0 {
                    if let Some(mut socket) = core.sockets.get(&peer) {
                        for bytes in out.drain(..) {
                            let _ = socket.write_all(&bytes);
                        }
                    }
                    out.clear();
                }
            }
            Action::Close {
                peer,
                flush,
                reason,
            } => {
                eprintln!("fake gateway: closing {peer:?}: {reason}");
                if let Some(mut socket) = core.sockets.remove(&peer) {
                    for bytes in flush {
                        let _ = socket.write_all(&bytes);
                    }
                    let _ = socket.shutdown(Shutdown::Both);
                }
            }
            Action::ServerAuthenticated { server_id, .. } => core.authenticated.push(server_id),
            Action::PauseReading(_) | Action::ResumeReading(_) => {}
        }
    }
}

/// A "gateway" that accepts client connections, records every byte and never writes.
pub struct SilentGateway {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
}

impl SilentGateway {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        thread::spawn(move || {
            while let Ok((mut socket, _)) = listener.accept() {
                let sink = Arc::clone(&sink);
                thread::spawn(move || {
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = socket.read(&mut chunk) {
                        if n == 0 {
                            return;
                        }
                        sink.lock().unwrap().extend_from_slice(&chunk[..n]);
                    }
                });
            }
        });
        Self { addr, received }
    }

    pub fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }
}

/// Polls `condition` every 5 ms; panics if it is still false after `timeout`.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}
