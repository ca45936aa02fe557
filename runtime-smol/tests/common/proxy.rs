//! A fault-injecting TCP proxy for the snet endpoint tests (loopback only): it relays bytes both ways
//! between its clients and one upstream address, and on demand
//! * cuts every relayed connection at once (both directions; bytes in flight are lost),
//! * freezes the current connections (bytes are held, nothing is closed: a silently dead link),
//! * refuses new connections (accepts and closes at once) or blackholes them (accepts, never answers).
//!
//! Plain std threads; every thread ends when its sockets are shut down (at the latest when the proxy
//! is dropped).

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
    /// Accept and close it at once.
    Refuse = 1,
    /// Accept it and never answer (nor close it until the proxy is dropped).
    Blackhole = 2,
}

/// One relayed connection: both sockets, and whether its relaying is frozen.
struct Link {
    sockets: [TcpStream; 2],
    frozen: Arc<AtomicBool>,
}

/// A running proxy; cuts everything and stops accepting when dropped.
pub struct FaultyProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<Link>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    /// Connections relayed so far.
    pub relayed: Arc<AtomicUsize>,
}

impl FaultyProxy {
    /// Listens on 127.0.0.1 (ephemeral port) and relays every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let proxy = Self {
            addr,
            links: Arc::default(),
            held: Arc::default(),
            mode: Arc::new(AtomicU8::new(Mode::Relay as u8)),
            stop: Arc::default(),
            relayed: Arc::default(),
        };
        let (links, held, mode, stop, relayed) = (
            proxy.links.clone(),
            proxy.held.clone(),
            proxy.mode.clone(),
            proxy.stop.clone(),
            proxy.relayed.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    Err(_) => {
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                match mode.load(Ordering::Relaxed) {
                    1 => {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    }
                    2 => {
                        held.lock().unwrap().push(client);
                        continue;
                    }
                    _ => {}
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                relayed.fetch_add(1, Ordering::Relaxed);
                let frozen = Arc::new(AtomicBool::new(false));
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    links.lock().unwrap().push(Link {
                        sockets: [c, s],
                        frozen: frozen.clone(),
                    });
                }
                pipe(&client, &server, frozen.clone());
                pipe(&server, &client, frozen);
            }
        });
        proxy
    }

    /// How new connections are treated from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Cuts every connection relayed so far, in both directions (bytes in flight are lost).
    pub fn cut_all(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.frozen.store(false, Ordering::Relaxed);
            for socket in &link.sockets {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }

    /// Stops relaying on every current connection without closing anything: each side sees a healthy
    /// socket that goes silent. New connections relay normally.
    pub fn freeze_all(&self) {
        for link in self.links.lock().unwrap().iter() {
            link.frozen.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut_all();
        for socket in self.held.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` → `to` on a thread until either side fails (holding bytes while `frozen`); then shuts
/// both down.
fn pipe(from: &TcpStream, to: &TcpStream, frozen: Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    while frozen.load(Ordering::Relaxed) {
                        thread::sleep(Duration::from_millis(2));
                    }
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
