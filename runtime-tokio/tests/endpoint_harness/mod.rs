//! A fake gateway for the endpoint tests: the real `fastway_core::gateway::Gateway` state machine,
//! driven by a plain blocking loop over non-blocking `std::net` sockets in one thread. It exists so
//! the endpoint can be tested without the runtime's own gateway server.

#![allow(clippy::unwrap_used, dead_code)]

use bytes::{Bytes, BytesMut};
use fastway_core::frame::PING_FRAME;
use fastway_core::gateway::{Action, Gateway, GatewayConfig, PeerId, QueueLimits};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The auth key every fake gateway expects.
pub const KEY: &[u8] = b"test key";

/// A deterministic RNG for challenges (the test does not need secrecy).
struct Rng(u64);

impl rand_core::TryRng for Rng {
    type Error = core::convert::Infallible;
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
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

/// Knobs and counters shared with the gateway thread.
#[derive(Default)]
pub struct Control {
    stop: AtomicBool,
    /// While set, input from peers is read and discarded: no dial is answered, no Ping replied.
    pub deaf: AtomicBool,
    /// Ping frames seen from peers.
    pub pings: AtomicUsize,
    /// Servers that passed the challenge.
    pub servers: AtomicUsize,
    /// Connections the gateway closed because a server failed the challenge.
    pub auth_failures: AtomicUsize,
    /// Open vconns, as the gateway core counts them.
    pub vconns: AtomicUsize,
}

/// A running fake gateway; stops when dropped.
pub struct FakeGateway {
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    pub control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl FakeGateway {
    /// Starts a gateway with `max_packet` and no idle timeouts on two loopback ephemeral ports.
    pub fn start(max_packet: u32) -> Self {
        let config = GatewayConfig {
            max_packet,
            client_max_conn: 0,
            client_idle_timeout: None,
            server_idle_timeout: None,
            auth_key: KEY.to_vec(),
            // One 64 KiB read from a server can hold thousands of small frames for one client; the
            // default client queue (1024 frames) would drop the client in the many-messages test.
            client_queue: QueueLimits {
                max_frames: 1 << 20,
                max_bytes: 64 << 20,
            },
            ..GatewayConfig::default()
        };
        let clients = TcpListener::bind("127.0.0.1:0").unwrap();
        let servers = TcpListener::bind("127.0.0.1:0").unwrap();
        clients.set_nonblocking(true).unwrap();
        servers.set_nonblocking(true).unwrap();
        let control = Arc::new(Control::default());
        let client_addr = clients.local_addr().unwrap();
        let server_addr = servers.local_addr().unwrap();
        let thread = {
            let control = Arc::clone(&control);
            std::thread::spawn(move || run(Gateway::new(config), clients, servers, &control))
        };
        Self {
            client_addr,
            server_addr,
            control,
            thread: Some(thread),
        }
    }

    /// Whether `n` servers have authenticated within 5 s.
    pub fn wait_servers(&self, n: usize) -> bool {
        wait_until(Duration::from_secs(5), || {
            self.control.servers.load(Ordering::SeqCst) >= n
        })
    }

    pub fn set_deaf(&self, deaf: bool) {
        self.control.deaf.store(deaf, Ordering::SeqCst);
    }

    pub fn pings(&self) -> usize {
        self.control.pings.load(Ordering::SeqCst)
    }

    pub fn vconns(&self) -> usize {
        self.control.vconns.load(Ordering::SeqCst)
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `cond` every few ms for up to `limit` (a blocking helper; fine in the gateway's tests).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

struct Conn {
    sock: TcpStream,
    buf: BytesMut,
}

fn run(mut gw: Gateway, clients: TcpListener, servers: TcpListener, control: &Control) {
    let mut rng = Rng(7);
    let mut conns: HashMap<PeerId, Conn> = HashMap::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while !control.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let mut busy = false;
        while let Ok((sock, _)) = clients.accept() {
            busy = true;
            if let Ok(peer) = gw.accept_client(now) {
                add(&mut conns, peer, sock);
            }
        }
        while let Ok((sock, _)) = servers.accept() {
            busy = true;
            let peer = gw.accept_server(now, &mut rng);
            add(&mut conns, peer, sock);
        }
        let mut gone = Vec::new();
        for (&peer, conn) in conns.iter_mut() {
            match conn.sock.read(&mut chunk) {
                Ok(0) => gone.push(peer),
                Ok(n) => {
                    busy = true;
                    let data = &chunk[..n];
                    let pings = data
                        .windows(PING_FRAME.len())
                        .filter(|w| *w == PING_FRAME)
                        .count();
                    control.pings.fetch_add(pings, Ordering::SeqCst);
                    if !control.deaf.load(Ordering::SeqCst) {
                        conn.buf.extend_from_slice(data);
                        gw.handle_input(peer, &mut conn.buf, now);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => gone.push(peer),
            }
        }
        for peer in gone {
            conns.remove(&peer);
            gw.handle_closed(peer, now);
        }
        if gw.poll_timeout().is_some_and(|at| at <= now) {
            gw.handle_timeout(now);
        }
        while let Some(action) = gw.poll_action() {
            match action {
                Action::ServerAuthenticated { .. } => {
                    control.servers.fetch_add(1, Ordering::SeqCst);
                }
                Action::Close {
                    peer,
                    reason,
                    flush,
                } => {
                    if matches!(reason, fastway_core::gateway::CloseReason::Auth(_)) {
                        control.auth_failures.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Some(mut conn) = conns.remove(&peer) {
                        write_all(&mut conn.sock, &flush);
                        let _ = conn.sock.shutdown(Shutdown::Both);
                    }
                }
                Action::Transmit(_) | Action::PauseReading(_) | Action::ResumeReading(_) => {}
            }
        }
        let mut out = Vec::new();
        let mut failed = Vec::new();
        for (&peer, conn) in conns.iter_mut() {
            while gw.poll_transmit(peer, now, &mut out) > 0 {
                busy = true;
                if !write_all(&mut conn.sock, &out) {
                    failed.push(peer);
                    break;
                }
                out.clear();
            }
            out.clear();
        }
        for peer in failed {
            conns.remove(&peer);
            gw.handle_closed(peer, now);
        }
        control.vconns.store(gw.stats().vconns, Ordering::SeqCst);
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn add(conns: &mut HashMap<PeerId, Conn>, peer: PeerId, sock: TcpStream) {
    sock.set_nonblocking(true).unwrap();
    sock.set_nodelay(true).unwrap();
    conns.insert(
        peer,
        Conn {
            sock,
            buf: BytesMut::new(),
        },
    );
}

/// Writes every buffer, retrying on `WouldBlock` for up to 5 s; false on failure.
fn write_all(sock: &mut TcpStream, bufs: &[Bytes]) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    for buf in bufs {
        let mut rest = &buf[..];
        while !rest.is_empty() {
            match sock.write(rest) {
                Ok(0) => return false,
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return false,
            }
        }
    }
    true
}
