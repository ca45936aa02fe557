//! Binding the two listeners (socket2, optional reuse-port) and the accept threads.

use super::connection;
use super::shared::Inner;
use fastway_core::gateway::Side;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Backlog of both listeners.
const BACKLOG: i32 = 1024;
/// First pause after a failed `accept` (EMFILE, ECONNABORTED, ...); doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between failed `accept`s.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long the shutdown wake-up connection may take.
const WAKE_TIMEOUT: Duration = Duration::from_millis(500);

/// Binds a listener for `side` at `addr` and logs the address actually bound.
///
/// The error says which listener failed and where, in the original's words
/// (`setup client listener at <addr> failed - <err>`).
pub(crate) fn bind(side: Side, addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
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

fn bind_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
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

/// Body of an accept thread: accept until the gateway stops, registering each socket. Failed accepts
/// (out of file descriptors, aborted handshakes, ...) are logged and retried after a growing pause.
pub(crate) fn accept_loop(inner: &Arc<Inner>, listener: TcpListener, side: Side) {
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = listener.accept();
        if inner.is_stopping() {
            return;
        }
        match accepted {
            Ok((stream, addr)) => {
                backoff = None;
                connection::open(inner, stream, addr, side);
            }
            Err(err) => {
                let delay = backoff.map_or(MIN_BACKOFF, |last| (last * 2).min(MAX_BACKOFF));
                backoff = Some(delay);
                log::warn!("accept on the {side} listener failed: {err}; retrying in {delay:?}");
                thread::sleep(delay);
                if inner.is_stopping() {
                    return;
                }
            }
        }
    }
}

/// Wakes an accept thread blocked in `accept` on `local` so it sees the stop flag: connect to the
/// listener itself. If that fails, shut the listening socket down (which also wakes `accept` on Linux).
pub(crate) fn wake(local: SocketAddr, listener: Option<&Socket>) {
    let target = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port())
        }
        _ => local,
    };
    match TcpStream::connect_timeout(&target, WAKE_TIMEOUT) {
        Ok(stream) => drop(stream),
        Err(err) => {
            log::debug!("wake-up connection to {target} failed: {err}");
            if let Some(socket) = listener {
                let _ = socket.shutdown(Shutdown::Read);
            }
        }
    }
}
