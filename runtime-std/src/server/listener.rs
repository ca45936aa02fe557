//! Binding the two listeners (socket2, optional reuse-port) and accepting on them from the event
//! loop, with a back-off after failures.

use fastway_core::gateway::Side;
use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Backlog of both listeners.
const BACKLOG: i32 = 1024;
/// First pause after a failed `accept` (EMFILE, ECONNABORTED, ...); doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between failed `accept`s.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Binds a listener for `side` at `addr` and logs the address actually bound.
///
/// The error says which listener failed and where, in the original's words
/// (`setup client listener at <addr> failed - <err>`).
pub(crate) fn bind(
    side: Side,
    addr: SocketAddr,
    reuse_port: bool,
) -> io::Result<std::net::TcpListener> {
    let listener = bind_socket(addr, reuse_port).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("setup {side} listener at {addr} failed - {err}"),
        )
    })?;
    let local = listener.local_addr()?;
    log::info!("setup {side} listener at - {local}");
    Ok(listener)
}

fn bind_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if reuse_port {
        socket.set_reuse_address(true)?;
        set_reuse_port(&socket)?;
    } else if cfg!(unix) {
        // What std's `TcpListener::bind` does on Unix: a restarted gateway can rebind at once.
        socket.set_reuse_address(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn set_reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not supported on this platform",
    ))
}

/// One listening port in the event loop: the non-blocking listener and its accept back-off.
///
/// mio reports a listener's readiness as an edge: every accept round drains it until `WouldBlock`.
/// A failed `accept` (out of file descriptors, an aborted handshake, ...) is logged and the port
/// rests for a growing pause (the pending connection stays in the backlog), after which the loop
/// tries again; a success resets the pause.
#[derive(Debug)]
pub(crate) struct Acceptor {
    /// Which port this is.
    pub(crate) side: Side,
    /// The listening socket, registered with the loop's poll.
    pub(crate) listener: TcpListener,
    /// The pause after the last failure, while failures go on.
    backoff: Option<Duration>,
    /// When to try again after a failure.
    retry_at: Option<Instant>,
}

impl Acceptor {
    /// Wraps a bound listener (made non-blocking here).
    pub(crate) fn new(side: Side, listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            side,
            listener: TcpListener::from_std(listener),
            backoff: None,
            retry_at: None,
        })
    }

    /// When the loop must wake up to retry after a failed accept.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Accepts every pending socket, handing each to `open`, unless the port rests after a failure
    /// (until `now` passes its retry time).
    pub(crate) fn accept_all(
        &mut self,
        now: Instant,
        mut open: impl FnMut(TcpStream, SocketAddr, Side),
    ) {
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        self.retry_at = None;
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => {
                    self.backoff = None;
                    open(stream, addr, self.side);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let delay = self
                        .backoff
                        .map_or(MIN_BACKOFF, |last| (last * 2).min(MAX_BACKOFF));
                    self.backoff = Some(delay);
                    self.retry_at = Some(now + delay);
                    let side = self.side;
                    log::warn!(
                        "accept on the {side} listener failed: {err}; retrying in {delay:?}"
                    );
                    return;
                }
            }
        }
    }
}
