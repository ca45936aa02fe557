//! The endpoint library game clients and game servers embed to talk to a fastway gateway, over smol.
//!
//! An [`Endpoint`] is one TCP link to the gateway (its client port for a game client, its server port
//! for a game server); a [`VConn`] is one virtual connection multiplexed over it. The protocol rules
//! live in [`fastway_core::endpoint`]; this module only moves bytes, time and user calls between the
//! socket and that state machine (see `driver.rs` for how).
//!
//! # Executors
//! The futures returned here run under any executor: `smol::block_on`, `smol::spawn`,
//! `async_std::task::block_on`, or a hand-rolled one. The link's reader, writer and timer run as tasks
//! on smol's global executor, which starts its own thread, so they make progress whoever polls the
//! user's futures.
//!
//! # snet: a link that reconnects by itself
//! With [`EndpointOptions::snet`] set, the link runs over snet (SNET.md): a reconnectable, optionally
//! RC4-encrypted byte stream. Use it when the gateway port you connect to is configured for snet
//! (`ClientSnet*` / `ServerSnet*` flags; `ServerConfig::client_snet` / `server_snet` here) and the
//! network may drop TCP links (mobile clients, flaky Wi-Fi): when the socket breaks, the endpoint
//! reconnects on a new socket to the same address, both sides resend what the other missed, and the
//! vconns carry on as if nothing happened: no message is lost, duplicated or reordered. Both ends must
//! agree: snet on the port and here, and the same `enable_crypt` (it is not negotiated; a mismatch
//! turns the stream into garbage and the link fails). Plain TCP (`None`) cannot talk to an snet port
//! and vice versa.
//!
//! * The first connection is not retried: if it (or its snet handshake) fails, `connect_*` returns
//!   the error ([`ConnectError::Snet`] for the handshake).
//! * After a socket failure the first reconnect attempt starts at once, later ones every 3 s; each
//!   attempt gets `handshake_timeout`. If no reconnect succeeds within `reconn_wait_timeout`, or the
//!   gateway refuses it (it forgot the session, e.g. its own wait timeout passed or it restarted), the
//!   link ends: vconns fail with [`LinkError::SocketClosed`], [`Endpoint::closed`] resolves, and
//!   [`Endpoint::snet_close_reason`] says why (e.g. "snet session closed: no reconnect within the wait
//!   timeout").
//! * While the link is down, sends queue in the endpoint (and wait once more than 4 MiB are queued);
//!   pings queue too. Dials wait for the link (or their `dial_timeout`).
//! * **Keepalive**: a socket can die silently (no error, no EOF). With
//!   [`PingTimeoutPolicy::KeepOpen`], an unanswered Ping makes the endpoint drop the socket and
//!   reconnect instead of ending the link; with the default [`PingTimeoutPolicy::Close`] a ping
//!   timeout ends the link as on plain TCP — including one that happens during an outage, so prefer
//!   `KeepOpen` with snet.
//! * `rewriter_buffer_size` bounds how many sent bytes can be resent: it must cover what can be in
//!   flight when a link breaks (socket buffers on both sides); otherwise the reconnect fails with
//!   "byte counts cannot be reconciled" and the link ends.
//! * A local [`Endpoint::close`] while the link is down ends it at once; the gateway then learns of the
//!   close only when its own wait timeout passes.
//!
//! # Layout
//! * `mod.rs`: [`Endpoint`], [`EndpointOptions`];
//! * `vconn.rs`: [`VConn`], [`VConnSender`];
//! * `error.rs`: [`ConnectError`], [`DialError`], [`SendError`], [`RecvError`];
//! * `connect.rs`: TCP connect and the game server's auth handshake;
//! * `snet.rs`: the snet handshake and the reader/writer of an snet link (its sockets come and go);
//! * `driver.rs`: the shared state and the reader/writer/timer tasks.
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
//! * The link's tasks run on smol's global executor, so the futures work under any executor.
//! * No `recv_timeout`/`accept_timeout`: race the futures with a `smol::Timer`.
//! * [`Endpoint::closed`] resolves once the socket is closed, not just when the link ended (tokio and
//!   std report the end at once; [`Endpoint::close_reason`] does so here too).
//! * [`ConnectError`] variants follow what can fail here: `Config`, `Resolve`, `NoAddress`,
//!   `Connect`, `Timeout`, `HandshakeTimeout`, `Handshake(io::Error)`, `Snet(SnetClientError)`.

mod connect;
mod driver;
mod error;
mod snet;
mod vconn;

pub use error::{ConnectError, DialError, RecvError, SendError};
pub use fastway_core::endpoint::api::EndpointOptions;
pub use fastway_core::endpoint::{EndpointConfig, LinkError, PingTimeoutPolicy};
pub use fastway_core::snet::{CloseReason as SnetCloseReason, SnetClientError, SnetConfig};
pub use smol::net::AsyncToSocketAddrs;
pub use vconn::{VConn, VConnSender};

use driver::Shared;
use fastway_core::endpoint::Role;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A link to the fastway gateway, and the virtual connections ([`VConn`]) over it.
///
/// A game **client** connects to the gateway's client port with [`connect_client`](Self::connect_client)
/// and [`dial`](Self::dial)s game servers by id. A game **server** connects to the server port with
/// [`connect_server`](Self::connect_server), proving it knows the gateway's auth key, and
/// [`accept`](Self::accept)s the vconns clients open to it. Either side can do both.
///
/// `Endpoint` is cheap to clone (an `Arc` inside) and `Send + Sync`: share it between tasks. When the
/// **last clone is dropped the link is closed** (as by [`close`](Self::close)); vconns still held then
/// fail with [`LinkError::Shutdown`]. A background reader, writer and keepalive timer run on smol's
/// global executor until the link ends, so the futures here work under any executor.
///
/// # Example
/// ```no_run
/// use fastway_smol::endpoint::{Endpoint, EndpointOptions};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// smol::block_on(async {
///     // A game server: authenticate as server 7 and echo every message on every vconn.
///     let server =
///         Endpoint::connect_server("127.0.0.1:20000", 7, b"secret", EndpointOptions::default())
///             .await?;
///     smol::spawn(async move {
///         while let Ok(mut vconn) = server.accept().await {
///             smol::spawn(async move {
///                 while let Ok(msg) = vconn.recv().await {
///                     if vconn.send(msg).await.is_err() {
///                         break;
///                     }
///                 }
///             })
///             .detach();
///         }
///     })
///     .detach();
///
///     // A game client: open a vconn to server 7, send a message, read the echo.
///     let client = Endpoint::connect_client("127.0.0.1:10000", EndpointOptions::default()).await?;
///     let mut vconn = client.dial(7).await?;
///     vconn.send(&b"hello"[..]).await?;
///     let echo = vconn.recv().await?;
///     assert_eq!(&echo[..], b"hello");
///     vconn.close();
///     client.close();
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    handle: Arc<Handle>,
}

/// Counts the user's `Endpoint` clones: its drop (the last clone's) closes the link. The driver tasks
/// and vconns hold [`Shared`] directly, so they do not keep the link alive.
struct Handle {
    shared: Arc<Shared>,
    dial_timeout: Option<Duration>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

impl Endpoint {
    /// Connects to the gateway's **client** port as a game client. There is no handshake: the endpoint
    /// is ready when this returns. `addr` is anything smol can resolve (`"host:port"`,
    /// a `SocketAddr`, `("host", port)`).
    pub async fn connect_client(
        addr: impl AsyncToSocketAddrs,
        options: EndpointOptions,
    ) -> Result<Endpoint, ConnectError> {
        Self::connect(addr, Role::Client, options).await
    }

    /// Connects to the gateway's **server** port as game server `server_id`, and completes the auth
    /// handshake (reads the 8-byte challenge, writes the 20-byte answer) before returning.
    ///
    /// The gateway sends no acknowledgement: a wrong `auth_key` is not reported here but shows soon
    /// after as the link closing ([`closed`](Self::closed) resolves with [`LinkError::SocketClosed`]).
    pub async fn connect_server(
        addr: impl AsyncToSocketAddrs,
        server_id: u32,
        auth_key: &[u8],
        options: EndpointOptions,
    ) -> Result<Endpoint, ConnectError> {
        let role = Role::Server {
            id: server_id,
            auth_key: auth_key.to_vec(),
        };
        Self::connect(addr, role, options).await
    }

    async fn connect(
        addr: impl AsyncToSocketAddrs,
        role: Role,
        options: EndpointOptions,
    ) -> Result<Endpoint, ConnectError> {
        options.core.validate()?;
        let shared = connect::connect(addr, role, &options).await?;
        Ok(Endpoint {
            handle: Arc::new(Handle {
                shared,
                dial_timeout: options.dial_timeout,
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Opens a vconn to `remote`: a server id (from a client), or a client id learned from
    /// [`VConn::remote_id`] (from a server).
    ///
    /// Any number of dials may be in flight at once, from any tasks. Waits at most `dial_timeout`; on
    /// timeout (or if this future is dropped) the dial is cancelled and a late acceptance is closed.
    pub async fn dial(&self, remote: u32) -> Result<VConn, DialError> {
        let shared = self.shared();
        let (dial, rx) = shared.start_dial(remote)?;
        let mut guard = DialGuard {
            shared,
            dial,
            rx: &rx,
            armed: true,
        };
        let answer = match self.handle.dial_timeout {
            None => rx.recv().await.ok(),
            Some(timeout) => {
                smol::future::or(async { rx.recv().await.ok() }, async {
                    smol::Timer::after(timeout).await;
                    None
                })
                .await
            }
        };
        guard.armed = false;
        let answer = match answer {
            Some(answer) => answer,
            // Timed out: cancel, unless the answer raced in (then use it).
            None if shared.cancel_dial(dial) => return Err(DialError::Timeout),
            None => rx.try_recv().unwrap_or(Err(DialError::Timeout)),
        };
        answer.map(|parts| VConn::new(shared.clone(), parts))
    }

    /// The next vconn a remote opened to this endpoint (a client dialing this server, or a server
    /// dialing this client), in arrival order. Incoming vconns wait in an unbounded queue until
    /// accepted; the gateway's own limits bound how many there can be.
    ///
    /// Fails with the link's reason once the link has ended. Cancel-safe.
    pub async fn accept(&self) -> Result<VConn, LinkError> {
        let shared = self.shared();
        match shared.accept_rx.recv().await {
            Ok(parts) => Ok(VConn::new(shared.clone(), parts)),
            Err(_) => Err(shared
                .lock()
                .core
                .close_reason()
                .unwrap_or(LinkError::Shutdown)),
        }
    }

    /// Closes the link: Close frames for the open vconns are flushed (best effort, at most 1 s), the
    /// socket is closed, and every pending dial, accept, send and recv fails with
    /// [`LinkError::Shutdown`]. Idempotent; returns at once (await [`closed`](Self::closed) to know the
    /// socket is closed).
    pub fn close(&self) {
        self.shared().shutdown();
    }

    /// Resolves when the link has ended and its socket is closed, with the first reason: a local
    /// [`close`](Self::close), the gateway closing the socket (e.g. a wrong auth key), a ping timeout,
    /// or a protocol error.
    pub async fn closed(&self) -> LinkError {
        self.shared().closed().await
    }

    /// Whether the link has ended (see [`closed`](Self::closed) for why).
    pub fn is_closed(&self) -> bool {
        self.shared().lock().core.is_closed()
    }

    /// Why the link ended, or `None` while it is up. Never waits. (The reason is known as soon as the
    /// link ends; [`closed`](Self::closed) additionally waits for the socket to be closed.)
    pub fn close_reason(&self) -> Option<LinkError> {
        self.shared().lock().core.close_reason()
    }

    /// Over snet: why the snet session ended, once it has — e.g. "no reconnect within the wait
    /// timeout" or "the server refused the reconnect" ([`SnetClientError::Closed`]), or
    /// `Closed(SnetCloseReason::Local)` when the endpoint ended it itself (a local close, a protocol
    /// error). The link's [`close_reason`](Self::close_reason) is then [`LinkError::SocketClosed`] for
    /// the session's own reasons. `None` while the session is alive, and always on plain TCP.
    pub fn snet_close_reason(&self) -> Option<SnetClientError> {
        self.shared()
            .lock()
            .snet
            .as_ref()
            .and_then(|link| link.close_reason())
    }

    /// Over snet: how many times the link has reconnected after a socket failure. Always 0 on plain
    /// TCP.
    pub fn snet_reconnects(&self) -> u64 {
        self.shared()
            .lock()
            .snet
            .as_ref()
            .map_or(0, |link| link.reconnects())
    }

    /// This side's socket address (over snet: of the first connection; reconnects use new ones).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared().local_addr
    }

    /// The gateway's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared().peer_addr
    }

    /// The number of open vconns (accepted but not yet taken by [`accept`](Self::accept) included).
    pub fn conn_count(&self) -> usize {
        self.shared().lock().core.conn_count()
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

/// Cancels a dial whose future is dropped before its answer, and closes a vconn that was opened for
/// it anyway.
struct DialGuard<'a> {
    shared: &'a Arc<Shared>,
    dial: fastway_core::endpoint::DialId,
    rx: &'a smol::channel::Receiver<driver::DialAnswer>,
    armed: bool,
}

impl Drop for DialGuard<'_> {
    fn drop(&mut self) {
        if !self.armed || self.shared.cancel_dial(self.dial) {
            return;
        }
        if let Ok(Ok(parts)) = self.rx.try_recv() {
            self.shared.close_vconn(parts.conn);
        }
    }
}
