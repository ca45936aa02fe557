//! A fault-injecting TCP proxy for loopback reconnect tests (after `fastway/tests/common/proxy.rs`):
//! it relays bytes both ways between its clients and one upstream address, and can cut every
//! relayed connection, freeze them (bytes silently vanish, sockets stay open), and refuse or
//! blackhole new connections.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Relay it to the upstream.
    Relay = 0,
    /// Close it at once.
    Refuse = 1,
    /// Keep it open but never answer (nothing is relayed).
    Blackhole = 2,
}

/// One relayed connection: both sockets, and whether its bytes are being dropped.
struct Link {
    streams: Vec<TcpStream>,
    dead: Arc<AtomicBool>,
}

/// A running proxy; stops accepting and closes everything when dropped.
pub struct FaultyProxy {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<Link>>>,
    /// Frozen or blackholed connections, kept open until the proxy is dropped.
    parked: Arc<Mutex<Vec<TcpStream>>>,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    /// Connections accepted so far (whatever the mode).
    pub accepted: Arc<AtomicUsize>,
}

impl FaultyProxy {
    /// Listens on 127.0.0.1 (ephemeral port) and relays every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let links: Arc<Mutex<Vec<Link>>> = Arc::default();
        let parked: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let mode = Arc::new(AtomicU8::new(Mode::Relay as u8));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        {
            let (links, parked, mode, stop, accepted) = (
                links.clone(),
                parked.clone(),
                mode.clone(),
                stop.clone(),
                accepted.clone(),
            );
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            let _ = client.set_nonblocking(false);
                            match mode.load(Ordering::Relaxed) {
                                1 => {
                                    let _ = client.shutdown(Shutdown::Both);
                                    continue;
                                }
                                2 => {
                                    parked.lock().unwrap().push(client);
                                    continue;
                                }
                                _ => {}
                            }
                            let Ok(server) = TcpStream::connect(upstream) else {
                                continue;
                            };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let dead = Arc::new(AtomicBool::new(false));
                            if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                                links.lock().unwrap().push(Link {
                                    streams: vec![c, s],
                                    dead: dead.clone(),
                                });
                            }
                            pipe(&client, &server, dead.clone());
                            pipe(&server, &client, dead);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(2)),
                    }
                }
            });
        }
        Self {
            addr,
            links,
            parked,
            mode,
            stop,
            accepted,
        }
    }

    /// What to do with new connections from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Cuts every connection relayed so far, in both directions (bytes in flight are lost).
    pub fn cut_all(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            for stream in link.streams {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// Every connection relayed so far goes silent: its sockets stay open, but from now on the
    /// bytes either side sends vanish (a half-dead link that TCP does not notice).
    pub fn freeze_all(&self) {
        let mut parked = self.parked.lock().unwrap();
        for link in self.links.lock().unwrap().drain(..) {
            link.dead.store(true, Ordering::Relaxed);
            parked.extend(link.streams);
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut_all();
        for stream in self.parked.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` → `to` on a thread until either side fails (dropping the bytes once `dead`); then
/// shuts both down.
fn pipe(from: &TcpStream, to: &TcpStream, dead: Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if dead.load(Ordering::Relaxed) => {}
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}
