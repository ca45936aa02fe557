//! Load helpers for the pressure and soak tests: an echoing game server, frame parsing, a
//! serialising lock so that throughput measurements do not overlap.
#![allow(dead_code)]

use super::raw::Raw;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Taken by every test that measures throughput or memory, so that they never run at once.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Splits whole frames off the front of `buf`: `(conn, frame)` with the length field included.
pub fn split_frames(buf: &mut Vec<u8>) -> Vec<(u32, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() >= at + 8 {
        let len = u32::from_le_bytes(buf[at..at + 4].try_into().expect("4")) as usize;
        if buf.len() < at + 4 + len {
            break;
        }
        let conn = u32::from_le_bytes(buf[at + 4..at + 8].try_into().expect("4"));
        frames.push((conn, buf[at..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    buf.drain(..at);
    frames
}

/// A game server that writes every data frame it receives back on the same vconn.
pub struct EchoServer {
    pub stop: Arc<AtomicBool>,
    pub echoed: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    stream: TcpStream,
}

impl EchoServer {
    pub fn start(addr: SocketAddr, id: u32, key: &str) -> EchoServer {
        let mut raw = Raw::server(addr, id, key);
        raw.ping();
        let stream = raw.stream.try_clone().expect("clone");
        raw.stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, echoed) = (Arc::clone(&stop), Arc::clone(&echoed));
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    match raw.stream.read(&mut chunk) {
                        Ok(0) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            continue;
                        }
                        Err(_) => return,
                    }
                    let mut out = Vec::new();
                    for (conn, frame) in split_frames(&mut buf) {
                        if conn != 0 {
                            out.extend_from_slice(&frame);
                            echoed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if !out.is_empty() && raw.stream.write_all(&out).is_err() {
                        return;
                    }
                }
            })
        };
        EchoServer {
            stop,
            echoed,
            thread: Some(thread),
            stream,
        }
    }

    /// Whether the gateway still holds the connection (a Ping on a cloned stream would race the
    /// echo thread's reads, so this only checks that writing works).
    pub fn writable(&self) -> bool {
        (&self.stream)
            .write_all(&fastway_core::frame::Command::Ping.to_bytes())
            .is_ok()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes `frame` whole, resuming after write timeouts; false once the socket fails or `stop` is set
/// between frames.
pub fn write_whole(stream: &mut TcpStream, frame: &[u8], stop: &AtomicBool) -> bool {
    let mut at = 0;
    let give_up = std::time::Instant::now() + super::raw::WAIT * 2;
    while at < frame.len() {
        if std::time::Instant::now() > give_up {
            return false;
        }
        match stream.write(&frame[at..]) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::Relaxed) && at == 0 {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}
