//! The endpoint library: what a game client or game server embeds to talk to a fastway gateway.
//!
//! An [`Endpoint`] owns one TCP connection to the gateway and multiplexes virtual connections
//! ([`VConn`]s) over it. A game client connects to the gateway's client port with
//! [`Endpoint::connect_client`] and [`dial`](Endpoint::dial)s a server id; a game server connects to
//! the server port with [`Endpoint::connect_server`] (which answers the gateway's auth challenge) and
//! [`accept`](Endpoint::accept)s the vconns clients open to it. Either side can dial and accept.
//!
//! The protocol itself (framing, keepalive, dial correlation, limits) is
//! [`fastway_core::endpoint`]; this module only moves bytes, time and calls between it and tokio.
//! Per link there is a reader task, a writer task and a timer task, spawned on the runtime that
//! called `connect_*`; both the current-thread and multi-thread runtimes work.
//!
//! Behaviour worth knowing:
//! * Dials may run concurrently; each times out after [`EndpointOptions::dial_timeout`].
//! * A vconn's inbound messages wait in a queue of [`EndpointOptions::recv_queue`] messages; if it
//!   fills, that vconn is closed and its `recv` reports [`RecvError::Overflow`].
//! * [`VConn::send`] waits (back-pressure) while more than about 4 MiB wait to be written.
//! * When the remote closes a vconn or the link ends, queued messages are still delivered before
//!   the error; after a local close, `recv` reports `Closed` at once.
//! * Dropping the last [`Endpoint`] handle closes the link; dropping a [`VConn`] closes the vconn.
//!
//! # snet: a link that reconnects by itself
//! With [`EndpointOptions::snet`] set, the link runs over snet (SNET.md), which the gateway speaks on
//! the ports configured for it (`ClientSnet*` for the client port, `ServerSnet*` for the server
//! port). Use it for players on flaky networks (or game servers far from the gateway): when the TCP
//! connection breaks, the endpoint **reconnects by itself** to the same address, both sides resend
//! what the other missed, and vconns, dials and messages carry on as if nothing happened — every
//! message arrives exactly once, in order. Both ends must agree: snet on a port that expects plain
//! TCP (or the reverse) fails, and `enable_crypt` must equal the port's setting.
//!
//! * `connect_*` runs the snet handshake first (the server auth exchange then runs inside the snet
//!   stream). The first connection is not retried: if it fails, `connect_*` returns the error
//!   ([`ConnectError::Snet`] for a wrong or late answer).
//! * While the link is down, `send` keeps queueing (up to the usual back-pressure limit) and the
//!   keepalive Pings queue too; nothing is written until the reconnect succeeds.
//! * The first reconnect attempt starts at once, later ones every 3 s; each attempt must finish
//!   within `handshake_timeout`. If no attempt succeeds within `reconn_wait_timeout` (or the gateway
//!   refuses the reconnect because it forgot the session), the endpoint gives up: the link ends with
//!   [`LinkError::SocketClosed`] — vconns and dials fail with it — and
//!   [`Endpoint::snet_close_reason`] says why (e.g. "no reconnect within the wait timeout"). The
//!   gateway side gives up after its own `ReconnWaitTimeout`, then closes the game server's vconns.
//! * **Keepalive**: with [`PingTimeoutPolicy::KeepOpen`], an unanswered Ping makes the endpoint drop
//!   the current connection and reconnect (a half-dead connection that TCP does not notice); with
//!   the default [`PingTimeoutPolicy::Close`] a ping timeout ends the link as without snet — and
//!   since Pings go unanswered during an outage, an outage longer than the ping timeout then ends
//!   it too. **With snet, choose `KeepOpen`** and let `reconn_wait_timeout` decide when to give up.
//! * [`Endpoint::close`] flushes the last frames only if the link is up at that moment; the snet
//!   session is closed with the socket (the gateway notices after its wait timeout, but the vconns'
//!   Close frames, when flushed, close them at once).
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
//! # Differences from the other runtimes
//! * `connect_*` must be called inside a tokio runtime: the link's tasks are spawned on it.
//! * No `recv_timeout`/`accept_timeout`: wrap the futures in `tokio::time::timeout`.
//! * [`Endpoint::close`] flushes queued Close frames for up to 2 s (smol and std: about 1 s).
//! * [`Endpoint::closed`] resolves as soon as the link has ended (smol: once its socket is closed).
//! * [`ConnectError`] variants follow what can fail here: `Config`, `Io`, `Timeout`,
//!   `Handshake(LinkError)`, `Snet(SnetClientError)` (first snet handshake; see above).

mod driver;
mod error;
mod snet;
mod vconn;

pub use error::{ConnectError, DialError, RecvError, SendError};
pub use fastway_core::endpoint::api::EndpointOptions;
pub use fastway_core::endpoint::{EndpointConfig, LinkError, PingTimeoutPolicy};
pub use fastway_core::snet::{CloseReason as SnetCloseReason, SnetClientError, SnetConfig};
pub use vconn::{VConn, VConnSender};

use driver::{DialReply, Shared};
use fastway_core::auth::RESPONSE_LEN;
use fastway_core::endpoint::{DialId, Endpoint as CoreEndpoint, EndpointError, Role};
use std::fmt;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::oneshot;

/// A connection to a fastway gateway, carrying any number of [`VConn`]s.
///
/// Cheap to clone (an `Arc` inside), `Send + Sync`: hand clones to as many tasks as you like.
/// **Dropping the last clone closes the link** (as [`close`](Self::close) does), even if `VConn`s
/// are still alive; they then report [`RecvError::Link`].
///
/// # Example: a game client
///
/// ```no_run
/// use fastway_tokio::endpoint::{Endpoint, EndpointOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // Connect to the gateway's client port and open a vconn to game server 7.
/// let endpoint = Endpoint::connect_client("127.0.0.1:10010", EndpointOptions::default()).await?;
/// let mut vconn = endpoint.dial(7).await?;
/// vconn.send(&b"hello"[..]).await?;
/// let reply = vconn.recv().await?;
/// println!("server {} said {:?}", vconn.remote_id(), reply);
/// vconn.close();
/// endpoint.close();
/// # Ok(())
/// # }
/// ```
///
/// # Example: a game server
///
/// ```no_run
/// use fastway_tokio::endpoint::{Endpoint, EndpointOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // Connect to the gateway's server port as server 7; the auth key is the gateway's ServerAuthKey.
/// let endpoint =
///     Endpoint::connect_server("127.0.0.1:10020", 7, b"secret", EndpointOptions::default()).await?;
/// // Echo every message of every client that dials us.
/// while let Ok(mut vconn) = endpoint.accept().await {
///     tokio::spawn(async move {
///         while let Ok(msg) = vconn.recv().await {
///             if vconn.send(msg).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// println!("link ended: {}", endpoint.closed().await);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    handle: Arc<Handle>,
}

/// The part of an endpoint only user handles own; its drop closes the link. The driver tasks and the
/// vconns hold [`Shared`] directly, so they do not keep the link open.
struct Handle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
    dial_timeout: Option<Duration>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.handle.local_addr)
            .field("peer_addr", &self.handle.peer_addr)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Connects to the gateway's **client port** as a game client. Clients have no handshake, so the
    /// endpoint is usable as soon as TCP connects.
    pub async fn connect_client(
        addr: impl ToSocketAddrs,
        options: EndpointOptions,
    ) -> Result<Endpoint, ConnectError> {
        Self::connect(addr, Role::Client, options).await
    }

    /// Connects to the gateway's **server port** as game server `server_id`, and completes the auth
    /// exchange (reads the 8-byte challenge, writes the 20-byte answer) before returning.
    ///
    /// The gateway never confirms the key: a wrong `auth_key` is not an error here, the gateway
    /// closes the link right after, which [`closed`](Self::closed) reports as
    /// [`LinkError::SocketClosed`].
    pub async fn connect_server(
        addr: impl ToSocketAddrs,
        server_id: u32,
        auth_key: &[u8],
        options: EndpointOptions,
    ) -> Result<Endpoint, ConnectError> {
        let role = Role::Server {
            id: server_id,
            auth_key: auth_key.to_vec(),
        };
        let endpoint = Self::connect(addr, role, options).await?;
        let shared = &endpoint.handle.shared;
        loop {
            let mut drained = pin!(shared.drained.notified());
            drained.as_mut().enable();
            {
                let st = shared.lock();
                // Checked first: once the answer is out, a closing link is the gateway's verdict on
                // the key, which the caller learns from `closed`.
                if st.ready && st.written >= RESPONSE_LEN as u64 {
                    break;
                }
                if let Some(reason) = st.link_error {
                    return Err(ConnectError::Handshake(reason));
                }
            }
            drained.await;
        }
        Ok(endpoint)
    }

    async fn connect(
        addr: impl ToSocketAddrs,
        role: Role,
        options: EndpointOptions,
    ) -> Result<Endpoint, ConnectError> {
        options.core.validate()?;
        let mut stream = match options.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, TcpStream::connect(addr))
                .await
                .map_err(|_| ConnectError::Timeout)??,
            None => TcpStream::connect(addr).await?,
        };
        stream.set_nodelay(true)?;
        let local_addr = stream.local_addr()?;
        let peer_addr = stream.peer_addr()?;
        let shared = match options.snet {
            Some(config) => {
                let (client, plain) = snet::handshake(&mut stream, config).await?;
                log::debug!(
                    "snet session {:?} with the gateway at {peer_addr} is up",
                    client.conn_id()
                );
                let core = CoreEndpoint::new(role, options.core, Instant::now())?;
                let start = snet::SnetStart {
                    client,
                    stream,
                    plain,
                    addr: peer_addr,
                    connect_timeout: options.connect_timeout,
                    out_limit: (config.rewriter_buffer_size / 2).clamp(1, 64 * 1024),
                };
                Shared::start_snet(core, options.recv_queue, start)
            }
            None => {
                let core = CoreEndpoint::new(role, options.core, Instant::now())?;
                let (read, write) = stream.into_split();
                Shared::start(core, options.recv_queue, read, write)
            }
        };
        log::debug!("connected to the gateway at {peer_addr} from {local_addr}");
        Ok(Endpoint {
            handle: Arc::new(Handle {
                shared,
                local_addr,
                peer_addr,
                dial_timeout: options.dial_timeout,
            }),
        })
    }

    /// Opens a vconn to `remote`: a server id (from a client) or a client's id (from a server, as
    /// learned from [`VConn::remote_id`] of a vconn that client opened).
    ///
    /// Any number of dials may run at once, from any tasks. Fails with [`DialError::Refused`] if the
    /// gateway has nobody under that id (or this client hit its vconn limit), [`DialError::Timeout`]
    /// after [`EndpointOptions::dial_timeout`], and [`DialError::Closed`] if the link ends. Dropping
    /// the future abandons the dial cleanly (a late vconn is closed).
    pub async fn dial(&self, remote: u32) -> Result<VConn, DialError> {
        let shared = &self.handle.shared;
        let (tx, rx) = oneshot::channel();
        let dial = {
            let mut st = shared.lock();
            let dial = st.core.dial(remote).map_err(|error| match error {
                EndpointError::Closed(reason) => DialError::Closed(reason),
                EndpointError::Protocol(error) => DialError::Closed(LinkError::Protocol(error)),
            })?;
            st.dials.insert(dial, tx);
            shared.settle(&mut st);
            dial
        };
        let mut guard = DialGuard {
            shared,
            dial,
            rx: Some(rx),
        };
        let reply = match (self.handle.dial_timeout, guard.rx.as_mut()) {
            (Some(limit), Some(rx)) => match tokio::time::timeout(limit, rx).await {
                Ok(reply) => reply.ok(),
                Err(_) => return guard.expire(),
            },
            (None, Some(rx)) => rx.await.ok(),
            (_, None) => None,
        };
        guard.rx = None;
        match reply {
            Some(Ok(new)) => Ok(VConn::new(Arc::clone(shared), new)),
            Some(Err(error)) => Err(error),
            // The reply channel only closes unanswered if the link ended.
            None => Err(DialError::Closed(
                shared.link_error().unwrap_or(LinkError::Shutdown),
            )),
        }
    }

    /// Waits for the next vconn another peer opened to us (a gateway Connect). Fails once the link
    /// has ended, with the reason. Vconns that arrive while nobody accepts are queued (messages on
    /// them too); cancel-safe.
    pub async fn accept(&self) -> Result<VConn, LinkError> {
        let shared = &self.handle.shared;
        loop {
            let mut changed = pin!(shared.changed.notified());
            changed.as_mut().enable();
            {
                let mut st = shared.lock();
                if let Some(reason) = st.link_error {
                    return Err(reason);
                }
                if let Some(new) = st.accept.pop_front() {
                    drop(st);
                    return Ok(VConn::new(Arc::clone(shared), new));
                }
            }
            changed.await;
        }
    }

    /// Closes the link: sends Close for every open vconn (best effort, flushed for up to 2 s in the
    /// background), closes the socket, and fails every pending dial, accept and recv with
    /// [`LinkError::Shutdown`]. Idempotent; does not wait.
    pub fn close(&self) {
        self.handle.shared.close();
    }

    /// Waits until the link ends and says why: [`LinkError::Shutdown`] after [`close`](Self::close),
    /// [`LinkError::SocketClosed`] if the gateway closed it (or the network failed; with snet: once
    /// the snet session gave up, see [`snet_close_reason`](Self::snet_close_reason)),
    /// [`LinkError::PingTimeout`] if the gateway stopped answering pings, and so on.
    pub async fn closed(&self) -> LinkError {
        let shared = &self.handle.shared;
        loop {
            let mut changed = pin!(shared.changed.notified());
            changed.as_mut().enable();
            if let Some(reason) = shared.link_error() {
                return reason;
            }
            changed.await;
        }
    }

    /// Why the link ended, or `None` while it is open. Never waits.
    pub fn close_reason(&self) -> Option<LinkError> {
        self.handle.shared.link_error()
    }

    /// Whether the link has ended (see [`close_reason`](Self::close_reason) for why). Never waits.
    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// With [`EndpointOptions::snet`]: why the snet session gave up, once it has, e.g.
    /// `SnetClientError::Closed(CloseReason::WaitTimeout)` ("snet session closed: no reconnect
    /// within the wait timeout"), or `Closed(Refused)` when the gateway no longer knew the session.
    /// The link then ended with [`LinkError::SocketClosed`]. `None` while the session lives, for a
    /// link that ended for another reason (e.g. [`close`](Self::close)), and without snet. Never
    /// waits.
    pub fn snet_close_reason(&self) -> Option<SnetClientError> {
        self.handle.shared.lock().snet_error
    }

    /// Over snet: how many times the link has reconnected after a socket failure. Always 0 on plain
    /// TCP.
    pub fn snet_reconnects(&self) -> u64 {
        self.handle.shared.lock().snet_reconnects
    }

    /// This side's address of the TCP connection (with snet: of the first connection; reconnects use
    /// new local ports).
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// The gateway's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.handle.peer_addr
    }

    /// Open vconns on this link, including incoming ones not yet accepted.
    pub fn conn_count(&self) -> usize {
        self.handle.shared.lock().core.conn_count()
    }
}

/// Abandons a dial whose future is dropped or times out, so that no vconn leaks.
struct DialGuard<'a> {
    shared: &'a Arc<Shared>,
    dial: DialId,
    /// `None` once the reply was taken.
    rx: Option<oneshot::Receiver<DialReply>>,
}

impl DialGuard<'_> {
    /// The timeout fired: cancel the dial, unless the answer came in the meantime.
    fn expire(mut self) -> Result<VConn, DialError> {
        let late = {
            let mut st = self.shared.lock();
            st.core.cancel_dial(self.dial);
            st.dials.remove(&self.dial);
            self.rx.take().and_then(|mut rx| rx.try_recv().ok())
        };
        match late {
            Some(Ok(new)) => Ok(VConn::new(Arc::clone(self.shared), new)),
            Some(Err(error)) => Err(error),
            None => Err(DialError::Timeout),
        }
    }
}

impl Drop for DialGuard<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let mut st = self.shared.lock();
        st.core.cancel_dial(self.dial);
        st.dials.remove(&self.dial);
        if let Ok(Ok(new)) = rx.try_recv() {
            st.close_conn(new.conn, RecvError::Closed);
        }
        self.shared.settle(&mut st);
    }
}
