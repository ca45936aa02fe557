//! A fault-injecting TCP proxy for loopback reconnect tests (std threads): it relays bytes both ways
//! between its clients and one upstream address, and on demand cuts every current connection, freezes
//! them (bytes are swallowed, the sockets stay open: a silent network), or treats new connections
//! badly (refuse: accept and close at once; blackhole: accept and never answer).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy does with new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Relay them to the upstream.
    Forward = 0,
    /// Accept and close at once (as if the gateway were unreachable).
    Refuse = 1,
    /// Accept and never answer (the socket stays open until the proxy is dropped).
    Blackhole = 2,
}

/// One relayed connection: both sockets and its freeze flag.
struct Link {
    client: TcpStream,
    server: TcpStream,
    frozen: Arc<AtomicBool>,
}

#[derive(Default)]
struct Inner {
    links: Mutex<Vec<Link>>,
    held: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
    mode: AtomicU8,
    accepted: AtomicUsize,
}

/// A running proxy; stops and closes everything when dropped.
pub struct FaultyProxy {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl FaultyProxy {
    /// Listens on 127.0.0.1 (ephemeral port) and relays every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let inner = Arc::new(Inner::default());
        let accept = Arc::clone(&inner);
        thread::spawn(move || accept_loop(&accept, &listener, upstream));
        Self { addr, inner }
    }

    /// Sets what happens to new connections.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Connections accepted so far (in any mode).
    pub fn accepted(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }

    /// Cuts every current connection in both directions (bytes in flight are lost).
    pub fn cut_all(&self) {
        for link in self.inner.links.lock().unwrap().drain(..) {
            let _ = link.client.shutdown(Shutdown::Both);
            let _ = link.server.shutdown(Shutdown::Both);
        }
    }

    /// Makes every current connection silent: what is read is dropped, nothing is closed.
    pub fn freeze_all(&self) {
        for link in self.inner.links.lock().unwrap().iter() {
            link.frozen.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.cut_all();
        for socket in self.inner.held.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(inner: &Inner, listener: &TcpListener, upstream: SocketAddr) {
    while !inner.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        inner.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nonblocking(false);
        match inner.mode.load(Ordering::SeqCst) {
            1 => {
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
            2 => {
                inner.held.lock().unwrap().push(client);
                continue;
            }
            _ => {}
        }
        let Ok(server) = TcpStream::connect(upstream) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let frozen = Arc::new(AtomicBool::new(false));
        pipe(&client, &server, &frozen);
        pipe(&server, &client, &frozen);
        inner.links.lock().unwrap().push(Link {
            client,
            server,
            frozen,
        });
    }
}

/// Copies `from` → `to` on a thread until either side fails (then shuts both down); while `frozen`,
/// drops what it reads.
fn pipe(from: &TcpStream, to: &TcpStream, frozen: &Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let frozen = Arc::clone(frozen);
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if frozen.load(Ordering::SeqCst) => {}
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
