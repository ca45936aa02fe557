//! Listening sockets: created with socket2 (so `SO_REUSEPORT` can be set), registered with async-io,
//! and the accept loop that hands each new socket to [`connection::start`].

use super::connection;
use super::shared::Inner;
use fastway_core::gateway::Side;
use log::warn;
use smol::{Async, Executor, Timer};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// First pause after a failed accept; doubled on each further failure.
const BACKOFF_START: Duration = Duration::from_millis(5);
/// Longest pause between accept retries.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Pending-connection queue length passed to `listen`.
const BACKLOG: i32 = 1024;

/// Binds and listens on `addr`. With `reuse_port`, sets `SO_REUSEADDR` and `SO_REUSEPORT` first so
/// several gateway processes can share the port. Errors say which listener failed and where.
pub(crate) fn bind(
    side: Side,
    addr: SocketAddr,
    reuse_port: bool,
) -> io::Result<Async<TcpListener>> {
    let context = |err: io::Error| {
        io::Error::new(
            err.kind(),
            format!("setup {side} listener at {addr} failed - {err}"),
        )
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(context)?;
    if reuse_port {
        set_reuse_port(&socket).map_err(context)?;
    }
    socket.bind(&addr.into()).map_err(context)?;
    socket.listen(BACKLOG).map_err(context)?;
    Async::new(TcpListener::from(socket)).map_err(context)
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)
}

/// Where the platform has no `SO_REUSEPORT`, address reuse is the most we can do.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)
}

/// Accepts connections forever, starting a reader and a writer on `executor` for each. Failed
/// accepts (EMFILE, ECONNABORTED, ...) are logged and retried after a pause of 5 ms that doubles up
/// to 1 s, so a full file table does not spin the CPU. Cancelled (and the listener closed) by dropping
/// the future.
pub(crate) async fn accept_loop(
    side: Side,
    listener: Async<TcpListener>,
    executor: &Executor<'static>,
    inner: &Arc<Inner>,
) {
    let mut backoff: Option<Duration> = None;
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                backoff = None;
                if let Err(err) = stream.get_ref().set_nodelay(true) {
                    warn!("set TCP_NODELAY on {side} from {addr} failed: {err}");
                }
                connection::start(executor, inner, stream, addr, side);
            }
            Err(err) => {
                let pause = backoff.map_or(BACKOFF_START, |last| (last * 2).min(BACKOFF_MAX));
                backoff = Some(pause);
                warn!("accept on {side} listener failed: {err}; retrying in {pause:?}");
                Timer::after(pause).await;
            }
        }
    }
}
