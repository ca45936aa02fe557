//! The endpoint library a game client or game server embeds to talk to the gateway, over blocking
//! std sockets and threads (ENDPOINT.md).
//!
//! An [`Endpoint`] is one TCP link to the gateway; [`VConn`]s are the virtual connections multiplexed
//! over it. The protocol itself (framing, handshake, dial correlation, keepalive, error rules) is
//! [`fastway_core::endpoint`]; this module only moves bytes, time and user calls between it and the
//! socket:
//!
//! * `driver`: the shared state (core endpoint behind one mutex) and the reader, writer and timer
//!   threads;
//! * `vconn`: [`VConn`], [`VConnSender`] and the per-vconn inbound queue;
//! * `error`: [`ConnectError`], [`DialError`], [`SendError`], [`RecvError`].
//!
//! # Same in every runtime
//! The three endpoint libraries (`fastway_tokio::endpoint`, `fastway_smol::endpoint`,
//! `fastway_std::endpoint`) share their user-visible rules, checked by one conformance suite
//! (`fastway/tests/endpoints.rs`) against each runtime's gateway:
//! * `recv` after a **remote** close, a receive-queue overflow or the end of the link delivers every
//!   message that had arrived, then the error (`Closed`, `Overflow`, `Link(reason)`);
//! * `recv` after a **local** close (`VConn::close`, `VConnSender::close`, drop) returns
//!   `RecvError::Closed` at once: queued messages are discarded (the user is done with them);
//! * `try_recv` never waits; `VConn::id`/`remote_id` and `VConnSender::id`/`remote_id`;
//! * `SendError` is `TooLarge` (above `max_packet - 4`; the vconn stays usable), `Closed` (the vconn
//!   is closed) or `Link(reason)`; `send` waits while more than 4 MiB wait to be written;
//! * `Endpoint::close_reason`, `is_closed`, `conn_count`, `local_addr`, `peer_addr`; dropping the last
//!   `Endpoint` clone closes the link; dials run concurrently and time out after `dial_timeout`.
//!
//! # Differences from the async runtimes
//! * Calls block; bounded variants take a timeout: [`VConn::recv_timeout`],
//!   [`Endpoint::accept_timeout`], [`Endpoint::closed_timeout`] (the async libraries leave that to
//!   the runtime's own timeout combinators).
//! * Each link costs three threads (reader, writer, timer).
//! * [`Endpoint::close`] flushes queued Close frames for at most about 1 s (tokio: 2 s).
//! * [`ConnectError`] variants follow what can fail here: `Config`, `Resolve`, `Connect`,
//!   `Handshake(io::Error)`, `Io`.

mod driver;
mod error;
mod vconn;

pub use error::{ConnectError, DialError, RecvError, SendError};
pub use fastway_core::endpoint::{EndpointConfig, LinkError, PingTimeoutPolicy};
pub use vconn::{VConn, VConnSender};

use bytes::BytesMut;
use driver::Shared;
use fastway_core::auth::{CHALLENGE_LEN, HANDSHAKE_TIMEOUT};
use fastway_core::endpoint::{Endpoint as CoreEndpoint, EndpointError, Role};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Settings of an [`Endpoint`]: the protocol's [`EndpointConfig`] plus what the adapter adds around
/// it. `Default` gives sensible values; the `max_packet` in `core` must match the gateway's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointOptions {
    /// Protocol settings: `max_packet` (match the gateway's MaxPacket), ping interval, ping timeout and
    /// what a ping timeout does.
    pub core: EndpointConfig,
    /// How long [`Endpoint::dial`] waits for the gateway's answer; `None` waits until the link ends.
    /// Default 10 s.
    pub dial_timeout: Option<Duration>,
    /// How many received messages one vconn may hold before the application reads them. When a
    /// message arrives with the queue full, that vconn is closed (as in the original) and `recv`
    /// reports [`RecvError::Overflow`] after the queued messages: a stuck reader must not make the
    /// endpoint buffer without bound. 0 is taken as 1. Default 4096.
    pub recv_queue: usize,
    /// How long the TCP connect may take, per resolved address; `None` uses the OS's timeout.
    /// Default 10 s.
    pub connect_timeout: Option<Duration>,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        Self {
            core: EndpointConfig::default(),
            dial_timeout: Some(Duration::from_secs(10)),
            recv_queue: 4096,
            connect_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// One link to the gateway, as a game client or as a game server, with blocking calls.
///
/// Three small named threads drive it (`fastway-ep-read`, `fastway-ep-write`, `fastway-ep-timer`);
/// every call below is safe from any thread. The handle is cheap to clone (an `Arc` inside). When the
/// **last clone is dropped the link is closed** as by [`close`](Self::close), even if [`VConn`]s are
/// still alive: they then fail with [`LinkError::Shutdown`]. Keep an `Endpoint` for as long as you
/// use its vconns.
///
/// # Example
///
/// A game server (id 7) that echoes, and a game client that dials it:
///
/// ```no_run
/// use fastway_std::endpoint::{Endpoint, EndpointOptions};
/// use std::thread;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Game server: authenticate on the gateway's server port, then serve every vconn on a thread.
/// let server = Endpoint::connect_server("127.0.0.1:10020", 7, b"secret", EndpointOptions::default())?;
/// thread::spawn(move || {
///     while let Ok(mut vconn) = server.accept() {
///         thread::spawn(move || {
///             while let Ok(message) = vconn.recv() {
///                 if vconn.send(message).is_err() {
///                     break;
///                 }
///             }
///         });
///     }
/// });
///
/// // Game client: connect to the client port and open a vconn to server 7.
/// let client = Endpoint::connect_client("127.0.0.1:10010", EndpointOptions::default())?;
/// let mut vconn = client.dial(7)?;
/// vconn.send(&b"hello"[..])?;
/// let reply = vconn.recv()?;
/// assert_eq!(&reply[..], b"hello");
/// vconn.close();
/// client.close();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    handle: Arc<Handle>,
}

/// The user's side of the link; its drop (when the last `Endpoint` clone goes) closes the link. The
/// driver threads and the vconns hold the `Shared` directly so that they do not keep it open.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        close(&self.shared);
    }
}

impl Endpoint {
    /// Connects to the gateway's **client** port as a game client. Framing starts at once (there is no
    /// handshake), so this returns as soon as TCP is connected.
    pub fn connect_client(
        addr: impl ToSocketAddrs,
        options: EndpointOptions,
    ) -> Result<Self, ConnectError> {
        options.core.validate()?;
        let stream = tcp_connect(addr, options.connect_timeout)?;
        let core = CoreEndpoint::new(Role::Client, options.core.clone(), Instant::now())?;
        Self::start(stream, core, BytesMut::new(), &options)
    }

    /// Connects to the gateway's **server** port as game server `server_id`, proving it knows
    /// `auth_key` (the gateway's ServerAuthKey): reads the 8-byte challenge (5 s deadline) and writes
    /// the 20-byte answer before returning.
    ///
    /// The gateway does not acknowledge the answer: a **wrong key is not reported here** but shows as
    /// the link closing soon after ([`closed`](Self::closed) returns
    /// [`LinkError::SocketClosed`]).
    pub fn connect_server(
        addr: impl ToSocketAddrs,
        server_id: u32,
        auth_key: &[u8],
        options: EndpointOptions,
    ) -> Result<Self, ConnectError> {
        options.core.validate()?;
        let mut stream = tcp_connect(addr, options.connect_timeout)?;
        let role = Role::Server {
            id: server_id,
            auth_key: auth_key.to_vec(),
        };
        let mut core = CoreEndpoint::new(role, options.core.clone(), Instant::now())?;
        let buf = handshake(&mut stream, &mut core).map_err(ConnectError::Handshake)?;
        Self::start(stream, core, buf, &options)
    }

    fn start(
        stream: TcpStream,
        core: CoreEndpoint,
        buf: BytesMut,
        options: &EndpointOptions,
    ) -> Result<Self, ConnectError> {
        let shared = Shared::start(stream, core, buf, options).map_err(ConnectError::Io)?;
        Ok(Self {
            handle: Arc::new(Handle { shared }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Opens a vconn to `remote` (a server id from a client; a client id, from
    /// [`VConn::remote_id`], from a server) and blocks until the gateway answers or
    /// [`EndpointOptions::dial_timeout`] passes. Any number of dials may run at once from different
    /// threads.
    pub fn dial(&self, remote: u32) -> Result<VConn, DialError> {
        let (answer, outcome) = mpsc::sync_channel(1);
        let timeout = self.shared().dial_timeout;
        let dial = {
            let mut st = self.shared().lock();
            let dial = st.core.dial(remote).map_err(|error| match error {
                EndpointError::Closed(reason) => DialError::Closed(reason),
                EndpointError::Protocol(error) => DialError::Closed(LinkError::Protocol(error)),
            })?;
            st.dials.insert(dial, answer);
            self.shared().after(&mut st);
            dial
        };
        let received = match timeout {
            None => outcome.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(timeout) => outcome.recv_timeout(timeout),
        };
        let result = match received {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                let mut st = self.shared().lock();
                st.dials.remove(&dial);
                if st.core.cancel_dial(dial) {
                    return Err(DialError::Timeout);
                }
                drop(st);
                // The answer was processed just before we cancelled: it is in the channel.
                outcome.try_recv().unwrap_or(Err(DialError::Timeout))
            }
            Err(RecvTimeoutError::Disconnected) => Err(DialError::Closed(self.link_error())),
        };
        let (conn, remote, inbox) = result?;
        Ok(VConn::new(Arc::clone(self.shared()), conn, remote, inbox))
    }

    /// Blocks until the next incoming vconn (a remote dialed us; for a game server, a client
    /// connected to it). Fails with the reason once the link has ended.
    pub fn accept(&self) -> Result<VConn, LinkError> {
        loop {
            if let Some(vconn) = self.accept_until(None)? {
                return Ok(vconn);
            }
        }
    }

    /// Like [`accept`](Self::accept) but gives up after `timeout`, returning `Ok(None)`.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<VConn>, LinkError> {
        self.accept_until(Some(Instant::now() + timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> Result<Option<VConn>, LinkError> {
        let incoming = self.shared().next_incoming(deadline)?;
        Ok(incoming.map(|(conn, remote, inbox)| {
            VConn::new(Arc::clone(self.shared()), conn, remote, inbox)
        }))
    }

    /// Closes the link: queues `Close` for every open vconn, fails every pending dial, accept and
    /// recv with [`LinkError::Shutdown`], writes what is queued (best effort, at most about 1 s) and
    /// closes the socket. Returns without waiting for the flush. Idempotent; also done when the last
    /// clone is dropped.
    pub fn close(&self) {
        close(self.shared());
    }

    /// Blocks until the link has ended and returns why: [`LinkError::Shutdown`] after
    /// [`close`](Self::close), [`LinkError::SocketClosed`] when the gateway closed the connection (for
    /// example a wrong auth key), [`LinkError::PingTimeout`] when it stopped answering.
    pub fn closed(&self) -> LinkError {
        loop {
            if let Some(reason) = self.shared().wait_closed(None) {
                return reason;
            }
        }
    }

    /// Like [`closed`](Self::closed) but gives up after `timeout`, returning `None` if the link is
    /// still up.
    pub fn closed_timeout(&self, timeout: Duration) -> Option<LinkError> {
        self.shared().wait_closed(Some(Instant::now() + timeout))
    }

    /// Why the link ended, or `None` while it is up. Never blocks.
    pub fn close_reason(&self) -> Option<LinkError> {
        self.shared().lock().link_error
    }

    /// Whether the link has ended (see [`close_reason`](Self::close_reason) for why). Never blocks.
    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// The local address of the TCP connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared().local_addr
    }

    /// The gateway's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared().peer_addr
    }

    /// Number of open vconns, including incoming ones not yet accepted.
    pub fn conn_count(&self) -> usize {
        self.shared().lock().core.conn_count()
    }

    fn link_error(&self) -> LinkError {
        self.close_reason().unwrap_or(LinkError::SocketClosed)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.local_addr())
            .field("peer_addr", &self.peer_addr())
            .finish_non_exhaustive()
    }
}

fn close(shared: &Shared) {
    let mut st = shared.lock();
    st.core.shutdown();
    shared.after(&mut st);
}

/// Resolves `addr` and connects to the first address that answers, with TCP_NODELAY set (the core
/// already batches frames; Nagle would only add latency).
fn tcp_connect(
    addr: impl ToSocketAddrs,
    timeout: Option<Duration>,
) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(ConnectError::Resolve)?
        .collect();
    let mut last_error = None;
    for addr in addrs {
        let connected = match timeout {
            Some(timeout) => TcpStream::connect_timeout(&addr, timeout),
            None => TcpStream::connect(addr),
        };
        match connected {
            Ok(stream) => {
                stream.set_nodelay(true).map_err(ConnectError::Io)?;
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        Some(error) => ConnectError::Connect(error),
        None => ConnectError::Resolve(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )),
    })
}

/// The server side of PROTOCOL.md §5, blocking: feeds the core until it has the challenge, writes its
/// answer. Returns the (empty) read buffer, for the reader thread to go on with.
fn handshake(stream: &mut TcpStream, core: &mut CoreEndpoint) -> io::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(CHALLENGE_LEN);
    let mut chunk = [0u8; CHALLENGE_LEN];
    let timed_out = || {
        io::Error::new(
            io::ErrorKind::TimedOut,
            LinkError::HandshakeTimeout.to_string(),
        )
    };
    while !core.is_ready() {
        let now = Instant::now();
        core.handle_timeout(now);
        let remaining = match core.poll_timeout() {
            Some(deadline) if deadline > now && !core.is_closed() => deadline - now,
            _ => return Err(timed_out()),
        };
        stream.set_read_timeout(Some(remaining))?;
        // Read no further than the challenge: nothing else may come before our answer anyway, and
        // this way every byte after it is the reader thread's.
        match stream.read(&mut chunk[..CHALLENGE_LEN.saturating_sub(buf.len()).max(1)]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the gateway closed the connection before sending its auth challenge",
                ));
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                core.handle_input(&mut buf, Instant::now())
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => return Err(error),
        }
    }
    stream.set_read_timeout(None)?;
    while core.poll_event().is_some() {} // just `Ready`
    stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    while let Some(bytes) = core.poll_transmit() {
        stream.write_all(&bytes)?;
    }
    stream.set_write_timeout(None)?;
    Ok(buf)
}
