//! The gateway server: two listeners, a reader and a writer per socket, one timer, all sharing one
//! [`Switchboard`] (the gateway plus snet, socket by socket) behind a lock.
//!
//! * `listener` binds with socket2 and accepts with back-off;
//! * `connection` registers each socket with the core and runs its reader and writer;
//! * `arena` is the shared chunk that sockets holding no pending bytes read into;
//! * `rng` draws the randomness the core needs before the lock is taken;
//! * `shared` holds the lock and turns the core's actions into wake-ups and closes;
//! * `timer` calls the core when its next deadline comes;
//! * `signal` has the wake-up primitives (no wake-up can be lost).

mod arena;
mod connection;
mod listener;
mod rng;
mod shared;
mod signal;
mod timer;

use fastway_core::gateway::{GatewayConfig, GatewayStats, PeerInfo, Side};
use fastway_core::snet::SnetConfig;
use fastway_core::switchboard::{Switchboard, SwitchboardConfig};
use log::{info, warn};
use shared::Inner;
use smol::{Async, Executor};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

/// Smallest read buffer accepted; smaller configured values are raised to it so a read can never be
/// asked to fill zero bytes.
const MIN_READ_BUFFER: usize = 64;

/// Everything the smol adapter needs besides the core's [`GatewayConfig`] and [`SnetConfig`]s. The
/// same shape in every fastway runtime, so the binary and the conformance tests can drive any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The rules the core enforces (limits, timeouts, auth key, queue bounds).
    pub gateway: GatewayConfig,
    /// snet (SNET.md) on the client port (`ClientSnet*` flags): reconnectable, optionally encrypted
    /// streams, handled entirely by the core. `None` (the default) is plain TCP.
    pub client_snet: Option<SnetConfig>,
    /// snet on the server port (`ServerSnet*` flags). `None` (the default) is plain TCP.
    pub server_snet: Option<SnetConfig>,
    /// Where game clients connect (`ClientAddr`); port 0 picks a free port, see
    /// [`GatewayServer::client_addr`].
    pub client_addr: SocketAddr,
    /// Where game servers connect (`ServerAddr`).
    pub server_addr: SocketAddr,
    /// Bind both listeners with `SO_REUSEADDR` and `SO_REUSEPORT` (`ReusePort`), so several gateway
    /// processes can share the ports.
    pub reuse_port: bool,
    /// Initial read-buffer capacity per client connection (`ClientBufferSize`, default 2048). It is
    /// allocated only once a client sends something, and grows for a frame that does not fit.
    pub client_read_buffer: usize,
    /// Initial read-buffer capacity per server connection (`ServerBufferSize`, default 65536).
    pub server_read_buffer: usize,
}

impl ServerConfig {
    /// The original gateway's defaults (CONFIG.md §2) on the given addresses: plain TCP (no snet) on
    /// both ports.
    pub fn new(client_addr: SocketAddr, server_addr: SocketAddr) -> Self {
        Self {
            gateway: GatewayConfig::default(),
            client_snet: None,
            server_snet: None,
            client_addr,
            server_addr,
            reuse_port: false,
            client_read_buffer: 2048,
            server_read_buffer: 65536,
        }
    }
}

/// A bound gateway, ready to [`run`](GatewayServer::run).
///
/// Binding and running are separate so the caller learns the actual addresses (ephemeral ports
/// resolved) and takes a [`GatewayHandle`] before serving starts. `run` brings its own executor for
/// the connection tasks, so it works when awaited from smol, from async-std, or any other executor.
///
/// ```
/// use fastway_smol::{GatewayServer, ServerConfig};
///
/// # fn main() -> std::io::Result<()> {
/// let localhost = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
/// let mut config = ServerConfig::new(localhost, localhost);
/// config.gateway.auth_key = b"secret".to_vec();
/// smol::block_on(async {
///     let server = GatewayServer::bind(config).await?;
///     println!("clients connect to {}", server.client_addr());
///     let handle = server.handle();
///     // Usually called from a signal handler or another task; `run` then returns.
///     handle.shutdown();
///     server.run().await
/// })
/// # }
/// ```
pub struct GatewayServer {
    inner: Arc<Inner>,
    client_listener: Async<TcpListener>,
    server_listener: Async<TcpListener>,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
}

impl fmt::Debug for GatewayServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayServer")
            .field("client_addr", &self.client_addr)
            .field("server_addr", &self.server_addr)
            .finish_non_exhaustive()
    }
}

impl GatewayServer {
    /// Binds the client and the server listener and logs `setup client listener at - <addr>` and
    /// `setup server listener at - <addr>` with the addresses actually bound. Nothing is accepted
    /// until [`run`](Self::run). An error names the listener and address that failed.
    pub async fn bind(config: ServerConfig) -> io::Result<Self> {
        let client_listener = listener::bind(Side::Client, config.client_addr, config.reuse_port)?;
        let client_addr = client_listener.get_ref().local_addr()?;
        info!("setup client listener at - {client_addr}");
        let server_listener = listener::bind(Side::Server, config.server_addr, config.reuse_port)?;
        let server_addr = server_listener.get_ref().local_addr()?;
        info!("setup server listener at - {server_addr}");
        let switchboard = Switchboard::new(SwitchboardConfig {
            gateway: config.gateway,
            client_snet: config.client_snet,
            server_snet: config.server_snet,
        });
        let inner = Arc::new(Inner::new(
            switchboard,
            config.client_read_buffer.max(MIN_READ_BUFFER),
            config.server_read_buffer.max(MIN_READ_BUFFER),
        ));
        Ok(Self {
            inner,
            client_listener,
            server_listener,
            client_addr,
            server_addr,
        })
    }

    /// The address clients connect to, with the port the OS chose when configured with port 0.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The address game servers connect to, with the port resolved.
    pub fn server_addr(&self) -> SocketAddr {
        self.server_addr
    }

    /// A handle to read counters and to stop the gateway from anywhere (any thread, any executor).
    pub fn handle(&self) -> GatewayHandle {
        GatewayHandle {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Serves until [`GatewayHandle::shutdown`], then shuts down gracefully: stops accepting, lets the
    /// core close every connection, gives each writer up to 2 s to write what it still owed, closes
    /// every socket and returns `Ok(())`.
    ///
    /// The connection tasks run on an executor owned by this future, driven whenever it is polled, so
    /// no global executor is needed and the future is `Send`. Dropping it closes everything at once.
    ///
    /// Under `smol::block_on` (async-io's) the blocked thread also waits in the socket reactor; under
    /// an executor-agnostic `block_on` async-io's own thread does, and every socket event costs a
    /// wake-up across threads (measured: ~1.5× the CPU per message).
    pub async fn run(self) -> io::Result<()> {
        let Self {
            inner,
            client_listener,
            server_listener,
            ..
        } = self;
        let executor = Executor::new();
        executor
            .run(async {
                let timer = executor.spawn(timer::run(Arc::clone(&inner)));
                let accepting = smol::future::or(
                    listener::accept_loop(Side::Client, client_listener, &executor, &inner),
                    listener::accept_loop(Side::Server, server_listener, &executor, &inner),
                );
                // The accept loops never end by themselves; when shutdown fires they are dropped and
                // with them both listeners.
                smol::future::or(inner.shutdown.wait(), accepting).await;
                info!("gateway shutting down");
                {
                    let mut shared = inner.lock();
                    shared.switchboard.shutdown(Instant::now());
                    shared.dispatch();
                }
                let deadline = Instant::now() + connection::FLUSH_TIMEOUT;
                if !inner.wait_tasks(deadline).await {
                    warn!("connections still open after the shutdown grace period; closing them");
                }
                drop(timer);
            })
            .await;
        // Dropping the executor cancels whatever is left, closing those sockets.
        drop(executor);
        info!("gateway stopped");
        Ok(())
    }
}

/// A cheap, cloneable, `Send + Sync` handle on a running (or bound) gateway: counters, the connection
/// list, and shutdown. It stays usable after [`GatewayServer::run`] returned.
#[derive(Clone)]
pub struct GatewayHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayHandle").finish_non_exhaustive()
    }
}

impl GatewayHandle {
    /// The core's counters now (for the `stats` command and monitoring).
    pub fn stats(&self) -> GatewayStats {
        self.inner.lock().switchboard.stats()
    }

    /// Every peer the core knows, ordered by handle (for the `conns` command). An snet peer whose
    /// client is reconnecting is listed although it has no socket right now.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.lock().switchboard.peers()
    }

    /// Asks [`GatewayServer::run`] to shut down gracefully and return. Idempotent; may be called
    /// before `run` starts, in which case `run` shuts down at once.
    pub fn shutdown(&self) {
        self.inner.shutdown.fire();
    }
}
