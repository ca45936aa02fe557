//! Listening sockets: bind with socket2, accept with back-off on errors.

use log::{debug, warn};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep_until};

/// Pending connections the kernel keeps per listener.
const BACKLOG: i32 = 1024;
/// First pause after a failed accept.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause between accept retries.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Binds a listener on `addr`. `SO_REUSEADDR` is always set (as `std` does on Unix, so a restart
/// does not wait for `TIME_WAIT`); `SO_REUSEPORT` only when `reuse_port` is asked for. `what` names
/// the listener in the error message (`client` / `server`).
pub(crate) fn bind(what: &str, addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let context = |err: io::Error| {
        io::Error::new(
            err.kind(),
            format!("setup {what} listener at {addr} failed - {err}"),
        )
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(context)?;
    #[cfg(unix)]
    socket.set_reuse_address(true).map_err(context)?;
    if reuse_port {
        set_reuse_port(&socket).map_err(context)?;
    }
    socket.set_nonblocking(true).map_err(context)?;
    socket.bind(&addr.into()).map_err(context)?;
    socket.listen(BACKLOG).map_err(context)?;
    TcpListener::from_std(socket.into()).map_err(context)
}

#[cfg(unix)]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)
}

#[cfg(not(unix))]
fn set_reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is only available on Unix",
    ))
}

/// A listener that never fails: accept errors (out of file descriptors, aborted handshakes, …) are
/// logged and retried after a pause of 5 ms doubling up to 1 s, so a burst of them neither spins
/// the CPU nor stops the gateway.
#[derive(Debug)]
pub(crate) struct Acceptor {
    listener: TcpListener,
    what: &'static str,
    backoff: Option<Duration>,
    retry_at: Option<Instant>,
}

impl Acceptor {
    pub(crate) fn new(listener: TcpListener, what: &'static str) -> Self {
        Self {
            listener,
            what,
            backoff: None,
            retry_at: None,
        }
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, with `TCP_NODELAY` set. Cancel-safe: a pending back-off survives being
    /// dropped from a `select!`.
    pub(crate) async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            if let Some(at) = self.retry_at {
                sleep_until(at).await;
                self.retry_at = None;
            }
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    self.backoff = None;
                    if let Err(err) = stream.set_nodelay(true) {
                        debug!("set TCP_NODELAY on {} {addr} failed: {err}", self.what);
                    }
                    return (stream, addr);
                }
                Err(err) => {
                    let delay = self
                        .backoff
                        .map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX));
                    self.backoff = Some(delay);
                    self.retry_at = Some(Instant::now() + delay);
                    warn!(
                        "accept on {} listener failed: {err}; retrying in {delay:?}",
                        self.what
                    );
                }
            }
        }
    }
}
