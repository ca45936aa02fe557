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
//! # Over snet: a link that reconnects by itself
//! With [`EndpointOptions::snet`] set, the link runs over snet (SNET.md): a byte stream that survives
//! TCP reconnects, optionally RC4-encrypted. Use it when the gateway's port is configured for snet
//! (`ServerConfig::client_snet` / `server_snet`) and the network may drop links (mobile clients, flaky
//! routes): when the TCP connection breaks, the endpoint **reconnects by itself** to the same address,
//! both sides resend what the other missed, and the vconns, pending dials and queued messages carry
//! on as if nothing happened (sends made during the outage wait in the queue, under the usual 4 MiB
//! back-pressure). Both ends must agree: snet on the gateway's port, the same `enable_crypt`, and a
//! `rewriter_buffer_size` large enough for the bytes in flight when a link breaks.
//!
//! * `connect_client` / `connect_server` run the snet handshake first (a game server's auth handshake
//!   then runs inside the snet stream). The first connection is not retried: if it fails, the connect
//!   fails ([`ConnectError::Snet`] for a wrong or late answer, [`ConnectError::Handshake`] when the
//!   socket closes or fails).
//! * Reconnects run on the endpoint's own threads (the reader reconnects, the writer waits while the
//!   link is down): the first attempt at once, then every 3 s, each bounded by `handshake_timeout`.
//! * When the link has been down for `reconn_wait_timeout` (or the gateway refuses the reconnect, or
//!   the byte counts cannot be reconciled), the endpoint gives up: the link ends with
//!   [`LinkError::SocketClosed`] like a plain TCP close, and
//!   [`Endpoint::snet_close_reason`] tells why (e.g. "snet session closed: no reconnect within the wait
//!   timeout"). The gateway closes its side after its own wait timeout.
//! * Keepalive: with [`PingTimeoutPolicy::KeepOpen`] an unanswered Ping drops the current socket and
//!   reconnects (a silent link is treated as broken) instead of ending the endpoint; with the default
//!   [`PingTimeoutPolicy::Close`] it ends the endpoint as on plain TCP. Pings keep being queued during
//!   an outage.
//! * [`Endpoint::local_addr`] and [`Endpoint::peer_addr`] are those of the first connection.
//! * [`Endpoint::close`] flushes the Close frames only if the link is up at that moment.
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
//! * `Endpoint::close_reason`, `is_closed`, `conn_count`, `local_addr`, `peer_addr`,
//!   `snet_close_reason`, `snet_reconnects`; dropping the last `Endpoint` clone closes the link;
//!   dials run concurrently and time out after `dial_timeout`;
//! * [`EndpointOptions`], [`DialError`], [`SendError`] and [`RecvError`] are one set of types,
//!   [`fastway_core::endpoint::api`], re-exported by every runtime; only [`ConnectError`] differs.
//!
//! # Differences from the async runtimes
//! * Calls block; bounded variants take a timeout: [`VConn::recv_timeout`],
//!   [`Endpoint::accept_timeout`], [`Endpoint::closed_timeout`] (the async libraries leave that to
//!   the runtime's own timeout combinators).
//! * Each link costs three threads (reader, writer, timer).
//! * [`Endpoint::close`] flushes queued Close frames for at most about 1 s (tokio: 2 s).
//! * [`ConnectError`] variants follow what can fail here: `Config`, `Resolve`, `Connect`,
//!   `Handshake(io::Error)`, `Snet(SnetClientError)` (first snet handshake; see above), `Io`.

mod driver;
mod error;
mod vconn;

pub use error::{ConnectError, DialError, RecvError, SendError};
pub use fastway_core::endpoint::api::EndpointOptions;
pub use fastway_core::endpoint::{EndpointConfig, LinkError, PingTimeoutPolicy};
pub use fastway_core::snet::{CloseReason as SnetCloseReason, SnetClientError, SnetConfig};
pub use vconn::{VConn, VConnSender};

use bytes::BytesMut;
use driver::Shared;
use fastway_core::auth::{CHALLENGE_LEN, HANDSHAKE_TIMEOUT};
use fastway_core::endpoint::{Endpoint as CoreEndpoint, EndpointError, Role};
use fastway_core::snet::SnetClient;
use getrandom::SysRng;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The OS's cryptographic randomness, drawn ahead (see [`fastway_core::rng`]).
type OsRandom = fastway_core::rng::PreDrawn<SysRng>;

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
    /// handshake), so this returns as soon as TCP is connected; with
    /// [`EndpointOptions::snet`], once the snet handshake is done.
    pub fn connect_client(
        addr: impl ToSocketAddrs,
        options: EndpointOptions,
    ) -> Result<Self, ConnectError> {
        options.core.validate()?;
        let mut stream = tcp_connect(addr, options.connect_timeout)?;
        let core = CoreEndpoint::new(Role::Client, options.core.clone(), Instant::now())?;
        let (snet, buf) = match options.snet {
            Some(config) => {
                let (client, plain) = snet_connect(&mut stream, config)?;
                (Some(client), plain)
            }
            None => (None, BytesMut::new()),
        };
        Self::start(stream, core, buf, snet, &options)
    }

    /// Connects to the gateway's **server** port as game server `server_id`, proving it knows
    /// `auth_key` (the gateway's ServerAuthKey): reads the 8-byte challenge (5 s deadline) and writes
    /// the 20-byte answer before returning.
    ///
    /// The gateway does not acknowledge the answer: a **wrong key is not reported here** but shows as
    /// the link closing soon after ([`closed`](Self::closed) returns
    /// [`LinkError::SocketClosed`]).
    ///
    /// With [`EndpointOptions::snet`], the snet handshake runs first and the auth handshake inside the
    /// snet stream.
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
        let (mut snet, plain) = match options.snet {
            Some(config) => {
                let (client, plain) = snet_connect(&mut stream, config)?;
                (Some(client), plain)
            }
            None => (None, BytesMut::new()),
        };
        let buf = handshake(&mut stream, &mut core, snet.as_mut(), plain)
            .map_err(ConnectError::Handshake)?;
        Self::start(stream, core, buf, snet, &options)
    }

    fn start(
        stream: TcpStream,
        core: CoreEndpoint,
        buf: BytesMut,
        snet: Option<SnetClient>,
        options: &EndpointOptions,
    ) -> Result<Self, ConnectError> {
        let shared = Shared::start(stream, core, buf, snet, options).map_err(ConnectError::Io)?;
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
    /// example a wrong auth key) or, over snet, when reconnecting failed (see
    /// [`snet_close_reason`](Self::snet_close_reason)), [`LinkError::PingTimeout`] when it stopped
    /// answering.
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

    /// Over snet ([`EndpointOptions::snet`]): why the snet stream ended, once it has, e.g.
    /// `Closed(WaitTimeout)` ("snet session closed: no reconnect within the wait timeout") when no
    /// reconnect succeeded in time, `Closed(Refused)` when the gateway no longer knew the session,
    /// `Closed(Local)` after [`close`](Self::close) or when the link ended for another reason (see
    /// [`close_reason`](Self::close_reason)). `None` while the stream is alive (even while it
    /// reconnects) and on plain TCP. Never blocks.
    pub fn snet_close_reason(&self) -> Option<SnetClientError> {
        let st = self.shared().lock();
        let link_over = st.link_error.is_some();
        st.snet
            .as_ref()
            .and_then(|snet| snet.close_reason(link_over))
    }

    /// Over snet: how many times the link has reconnected after a socket failure. Always 0 on plain
    /// TCP. Never blocks.
    pub fn snet_reconnects(&self) -> u64 {
        self.shared()
            .lock()
            .snet
            .as_ref()
            .map_or(0, |link| link.reconnects())
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
/// answer. `buf` holds stream bytes already read (after an snet handshake). Returns the read buffer
/// (stream bytes past the challenge), for the reader thread to go on with. With `snet`, reads go
/// through the snet client and the answer is encrypted.
fn handshake(
    stream: &mut TcpStream,
    core: &mut CoreEndpoint,
    mut snet: Option<&mut SnetClient>,
    mut buf: BytesMut,
) -> io::Result<BytesMut> {
    let mut chunk = [0u8; 512];
    let mut raw = BytesMut::new();
    let timed_out = || {
        io::Error::new(
            io::ErrorKind::TimedOut,
            LinkError::HandshakeTimeout.to_string(),
        )
    };
    let invalid = |error: EndpointError| io::Error::new(io::ErrorKind::InvalidData, error);
    if !buf.is_empty() {
        core.handle_input(&mut buf, Instant::now())
            .map_err(invalid)?;
    }
    while !core.is_ready() {
        let now = Instant::now();
        core.handle_timeout(now);
        let remaining = match core.poll_timeout() {
            Some(deadline) if deadline > now && !core.is_closed() => deadline - now,
            _ => return Err(timed_out()),
        };
        stream.set_read_timeout(Some(remaining))?;
        // On plain TCP, read no further than the challenge: nothing else may come before our answer
        // anyway, and this way every byte after it is the reader thread's. (snet decrypts whatever
        // arrives into `buf`, which goes to the reader thread.)
        let want = match snet {
            None => CHALLENGE_LEN.saturating_sub(buf.len()).max(1),
            Some(_) => chunk.len(),
        };
        match stream.read(&mut chunk[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the gateway closed the connection before sending its auth challenge",
                ));
            }
            Ok(n) => {
                match snet.as_deref_mut() {
                    None => buf.extend_from_slice(&chunk[..n]),
                    Some(client) => {
                        raw.extend_from_slice(&chunk[..n]);
                        client
                            .handle_input(&mut raw, &mut buf, Instant::now())
                            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
                        write_snet_control(stream, client)?;
                    }
                }
                core.handle_input(&mut buf, Instant::now())
                    .map_err(invalid)?;
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
        match snet.as_deref_mut() {
            None => stream.write_all(&bytes)?,
            Some(client) => {
                let mut data = bytes.to_vec();
                client
                    .encrypt(&mut data)
                    .map_err(|error| io::Error::new(io::ErrorKind::BrokenPipe, error))?;
                stream.write_all(&data)?;
            }
        }
    }
    stream.set_write_timeout(None)?;
    Ok(buf)
}

/// Runs the snet new-connection handshake (SNET.md §5) on `stream`, within the config's
/// `handshake_timeout`. Returns the client, its stream up, and the stream bytes that arrived with the
/// handshake (decrypted).
fn snet_connect(
    stream: &mut TcpStream,
    config: SnetConfig,
) -> Result<(SnetClient, BytesMut), ConnectError> {
    // The OS's randomness for the key pair, drawn up front so that an OS failure is a
    // `ConnectError` rather than a panic.
    let mut rng = OsRandom::draw(OsRandom::CAPACITY).map_err(|error| {
        ConnectError::Io(io::Error::other(format!(
            "the OS random number generator failed: {error}"
        )))
    })?;
    let mut client = SnetClient::new(config, Instant::now(), &mut rng);
    let mut plain = BytesMut::new();
    snet_handshake(stream, &mut client, &mut plain).map_err(|error| {
        // A wrong or late answer closed the client with its reason; a failed or closed socket (what a
        // plain-TCP port does) is an IO error.
        match client.close_reason() {
            Some(reason)
                if matches!(
                    error.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::InvalidData
                ) =>
            {
                ConnectError::Snet(reason)
            }
            _ => ConnectError::Handshake(error),
        }
    })?;
    Ok((client, plain))
}

fn snet_handshake(
    stream: &mut TcpStream,
    client: &mut SnetClient,
    plain: &mut BytesMut,
) -> io::Result<()> {
    let mut raw = BytesMut::new();
    let mut chunk = [0u8; 512];
    if let Some(deadline) = client.poll_timeout() {
        stream.set_write_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))?;
    }
    write_snet_control(stream, client)?;
    while !client.is_up() {
        let now = Instant::now();
        let timeout = match client.poll_timeout() {
            Some(deadline) if deadline <= now => {
                client.handle_timeout(now);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the gateway did not answer the snet handshake within handshake_timeout \
                     (is its port configured for snet?)",
                ));
            }
            Some(deadline) => Some(deadline - now),
            None => None,
        };
        stream.set_read_timeout(timeout)?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                client.socket_closed(Instant::now());
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the gateway closed the connection during the snet handshake \
                     (is its port configured for snet?)",
                ));
            }
            Ok(n) => {
                raw.extend_from_slice(&chunk[..n]);
                client
                    .handle_input(&mut raw, plain, Instant::now())
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
                write_snet_control(stream, client)?;
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
    stream.set_write_timeout(None)?;
    Ok(())
}

/// Writes the snet client's own bytes (handshake, proof).
fn write_snet_control(stream: &mut TcpStream, client: &mut SnetClient) -> io::Result<()> {
    while let Some(bytes) = client.poll_transmit() {
        stream.write_all(&bytes)?;
    }
    Ok(())
}
