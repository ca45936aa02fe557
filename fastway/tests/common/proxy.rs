//! A fault-injecting TCP proxy for loopback tests: it relays bytes both ways between its clients and
//! one upstream address, and can cut every relayed connection on demand (both directions, at once),
//! like a network that drops links.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A running proxy; stops accepting when dropped.
pub struct FaultyProxy {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    /// Connections relayed so far.
    pub accepted: Arc<AtomicUsize>,
}

impl FaultyProxy {
    /// Listens on 127.0.0.1 (ephemeral port) and relays every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let links: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        {
            let (links, stop, accepted) = (links.clone(), stop.clone(), accepted.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let _ = client.set_nonblocking(false);
                            let Ok(server) = TcpStream::connect(upstream) else {
                                continue;
                            };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            accepted.fetch_add(1, Ordering::Relaxed);
                            if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                                let mut all = links.lock().expect("links");
                                all.push(c);
                                all.push(s);
                            }
                            pipe(&client, &server);
                            pipe(&server, &client);
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
            stop,
            accepted,
        }
    }

    /// Cuts every connection relayed so far, in both directions (bytes in flight are lost).
    pub fn cut_all(&self) {
        let mut all = self.links.lock().expect("links");
        for stream in all.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut_all();
    }
}

/// Copies `from` → `to` on a thread until either side fails; then shuts both down.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
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
