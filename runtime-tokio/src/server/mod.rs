//! The gateway server: listeners, per-connection tasks, the timer task and graceful shutdown
//! around one [`Gateway`] core.
//!
//! Layout:
//! * `config`: [`ServerConfig`], what the adapter needs besides the core's config;
//! * `shared`: the lock around the core and the dispatch of its actions;
//! * `listener`: bind with socket2, accept with back-off;
//! * `connection`: a reader and a writer per connection;
//! * `timer`: the task that fires the core's deadlines;
//! * `rng`: challenge randomness drawn outside the lock.

mod config;
mod connection;
mod listener;
mod rng;
mod shared;
mod timer;

pub use config::ServerConfig;

use config::MIN_READ_BUFFER;
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::{Gateway, GatewayStats, PeerInfo, Side};
use listener::Acceptor;
use log::{error, info, warn};
use shared::{Conn, Effects, State};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::{JoinHandle, JoinSet};

/// How long a graceful shutdown waits for connections to write their last bytes before it closes
/// them anyway.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// A bound, not yet running gateway.
///
/// [`bind`](Self::bind) opens both listeners so the caller can learn the real addresses (ephemeral
/// ports) before serving; [`run`](Self::run) serves until [`GatewayHandle::shutdown`]. The caller
/// owns the tokio runtime: current-thread and multi-thread both work.
///
/// # Example
///
/// ```
/// use fastway_tokio::{GatewayServer, ServerConfig};
///
/// # fn main() -> std::io::Result<()> {
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// runtime.block_on(async {
///     let config = ServerConfig {
///         client_addr: "127.0.0.1:0".parse().expect("address"),
///         server_addr: "127.0.0.1:0".parse().expect("address"),
///         ..ServerConfig::default()
///     };
///     let server = GatewayServer::bind(config).await?;
///     println!("clients: {}, servers: {}", server.client_addr(), server.server_addr());
///     let handle = server.handle();
///     let serving = tokio::spawn(server.run());
///     // ... later, e.g. on SIGTERM:
///     handle.shutdown();
///     serving.await.map_err(std::io::Error::other)??;
///     Ok(())
/// })
/// # }
/// ```
#[derive(Debug)]
pub struct GatewayServer {
    state: Arc<State>,
    client: Acceptor,
    server: Acceptor,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    client_read_buffer: usize,
    server_read_buffer: usize,
    decoder: FrameDecoder,
}

/// A cheap, cloneable view of a running (or bound) gateway: read its counters and connections,
/// or stop it. `Send + Sync`, so signal handlers and command handlers on any thread can hold one.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    state: Arc<State>,
}

impl GatewayHandle {
    /// The core's counters now (connections, vconns, frames routed, drops by cause, …).
    pub fn stats(&self) -> GatewayStats {
        self.state.lock().gateway.stats()
    }

    /// Every connection the core knows, ordered by handle, for the `conns` command.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.state.lock().gateway.peers()
    }

    /// Asks the server to stop: it stops accepting, sends each peer what is still owed (Close frames
    /// of the shutdown cascade included) for up to [`SHUTDOWN_FLUSH_TIMEOUT`], closes every socket,
    /// and [`GatewayServer::run`] returns. Idempotent; may be called before `run` starts.
    pub fn shutdown(&self) {
        self.state.request_shutdown();
    }
}

impl GatewayServer {
    /// Binds both listeners and logs `setup client listener at - <addr>` /
    /// `setup server listener at - <addr>` with the addresses actually bound.
    ///
    /// Must be called within a tokio runtime. Fails if either address cannot be bound; the error
    /// says which listener and why.
    pub async fn bind(config: ServerConfig) -> io::Result<Self> {
        let client = listener::bind("client", config.client_addr, config.reuse_port)?;
        let client = Acceptor::new(client, "client");
        let client_addr = client.local_addr()?;
        info!("setup client listener at - {client_addr}");
        let server = listener::bind("server", config.server_addr, config.reuse_port)?;
        let server = Acceptor::new(server, "server");
        let server_addr = server.local_addr()?;
        info!("setup server listener at - {server_addr}");
        let decoder = FrameDecoder::new(config.gateway.max_packet);
        Ok(Self {
            state: Arc::new(State::new(Gateway::new(config.gateway))),
            client,
            server,
            client_addr,
            server_addr,
            client_read_buffer: config.client_read_buffer.max(MIN_READ_BUFFER),
            server_read_buffer: config.server_read_buffer.max(MIN_READ_BUFFER),
            decoder,
        })
    }

    /// The address clients connect to (the real port when 0 was asked for).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The address game servers connect to (the real port when 0 was asked for).
    pub fn server_addr(&self) -> SocketAddr {
        self.server_addr
    }

    /// A handle for stats, peers and shutdown; valid before, during and after [`run`](Self::run).
    pub fn handle(&self) -> GatewayHandle {
        GatewayHandle {
            state: Arc::clone(&self.state),
        }
    }

    /// Serves until [`GatewayHandle::shutdown`], then shuts down gracefully and returns `Ok(())`.
    ///
    /// Accept errors are logged and retried, connection errors only end that connection, so in
    /// practice this returns only on shutdown. Dropping the future instead aborts every task and
    /// closes every socket without the graceful part.
    pub async fn run(self) -> io::Result<()> {
        let GatewayServer {
            state,
            mut client,
            mut server,
            client_read_buffer,
            server_read_buffer,
            decoder,
            ..
        } = self;
        let settings = ConnSettings {
            client_read_buffer,
            server_read_buffer,
            decoder,
        };
        let _timer = AbortOnDrop(tokio::spawn(timer::run(Arc::clone(&state))));
        let mut conns = JoinSet::new();
        let mut fx = Effects::default();
        while !state.shutdown_requested() {
            tokio::select! {
                () = state.shutdown.notified() => {}
                (stream, addr) = client.accept() => {
                    accept(&state, &settings, &mut conns, &mut fx, Side::Client, stream, addr);
                }
                (stream, addr) = server.accept() => {
                    accept(&state, &settings, &mut conns, &mut fx, Side::Server, stream, addr);
                }
                Some(joined) = conns.join_next(), if !conns.is_empty() => reap(joined),
            }
        }
        drop((client, server));
        info!("gateway shutting down");
        state.call(&mut fx, |gw| gw.shutdown(Instant::now()));
        let drained = tokio::time::timeout(SHUTDOWN_FLUSH_TIMEOUT, async {
            while let Some(joined) = conns.join_next().await {
                reap(joined);
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                "{} connections did not finish flushing within {SHUTDOWN_FLUSH_TIMEOUT:?}; closing them",
                conns.len()
            );
            conns.shutdown().await;
        }
        info!("gateway stopped");
        Ok(())
    }
}

/// Per-connection settings copied from the config.
#[derive(Debug, Clone, Copy)]
struct ConnSettings {
    client_read_buffer: usize,
    server_read_buffer: usize,
    decoder: FrameDecoder,
}

/// Registers an accepted socket with the core and starts its task, or closes it at once if the core
/// refuses it.
fn accept(
    state: &Arc<State>,
    settings: &ConnSettings,
    conns: &mut JoinSet<()>,
    fx: &mut Effects,
    side: Side,
    stream: TcpStream,
    addr: SocketAddr,
) {
    let (rng, read_buffer) = match side {
        Side::Client => (None, settings.client_read_buffer),
        Side::Server => match rng::PreDrawn::draw() {
            Ok(rng) => (Some(rng), settings.server_read_buffer),
            Err(err) => {
                error!("error happends when accept server from {addr}: {err}");
                return;
            }
        },
    };
    // Accept, register and dispatch in one lock hold: the core's first actions for this peer (the
    // server's challenge) must find its signals.
    let accepted = {
        let mut shared = state.lock();
        let now = Instant::now();
        let peer = match rng {
            None => shared.gateway.accept_client(now),
            Some(mut rng) => Ok(shared.gateway.accept_server(now, &mut rng)),
        };
        peer.map(|peer| {
            let conn = Arc::new(Conn::new(peer, side, addr));
            shared.insert(Arc::clone(&conn));
            shared.dispatch(fx);
            conn
        })
    };
    fx.apply(state);
    let conn = match accepted {
        Ok(conn) => conn,
        Err(err) => {
            warn!("refuse client from {addr}: {err}");
            return;
        }
    };
    conns.spawn(connection::serve(
        Arc::clone(state),
        conn,
        stream,
        read_buffer,
        settings.decoder,
    ));
}

/// Logs a connection task that panicked (it should never happen; the core has already been told
/// the connection is gone by the task's drop guard).
fn reap(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        if err.is_panic() {
            error!("connection task panicked: {err}");
        }
    }
}

/// Aborts a task when dropped, so the timer never outlives `run`.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
