//! The gateway server: listeners, per-socket tasks, the timer task and graceful shutdown around one
//! [`Switchboard`] core (the gateway's routing plus, per port, snet).
//!
//! The adapter makes no protocol decisions: snet handshakes, decryption, encryption, reconnects and
//! wait timeouts all happen inside the switchboard; this module only moves bytes, time and closes.
//!
//! Layout:
//! * `config`: [`ServerConfig`], what the adapter needs besides the core's configs;
//! * `shared`: the lock around the core and the dispatch of its actions;
//! * `listener`: bind with socket2, accept with back-off;
//! * `connection`: a reader and a writer per socket;
//! * `read_buf`: read buffers drawn from a per-thread pool of chunks;
//! * `timer`: the task that fires the core's deadlines;
//! * `rng`: randomness (server challenges, snet handshakes) drawn outside the lock.

mod config;
mod connection;
mod listener;
mod read_buf;
mod rng;
mod shared;
mod timer;

pub use config::ServerConfig;

use config::MIN_READ_BUFFER;
use fastway_core::auth::Challenge;
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::{GatewayStats, PeerInfo, Side};
use fastway_core::switchboard::{Switchboard, SwitchboardConfig};
use listener::Acceptor;
use log::{error, info, warn};
use rng::PreDrawn;
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
    settings: ConnSettings,
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
        self.state.lock().switchboard.stats()
    }

    /// Every peer the core knows, ordered by handle, for the `conns` command. An snet peer whose
    /// link is down (waiting for its client to reconnect) is listed too.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.state.lock().switchboard.peers()
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
        let settings = ConnSettings {
            client_read_buffer: config.client_read_buffer.max(MIN_READ_BUFFER),
            server_read_buffer: config.server_read_buffer.max(MIN_READ_BUFFER),
            client_snet: config.client_snet.is_some(),
            server_snet: config.server_snet.is_some(),
            decoder: FrameDecoder::new(config.gateway.max_packet),
        };
        let switchboard = Switchboard::new(SwitchboardConfig {
            gateway: config.gateway,
            client_snet: config.client_snet,
            server_snet: config.server_snet,
        });
        Ok(Self {
            state: Arc::new(State::new(switchboard)),
            client,
            server,
            client_addr,
            server_addr,
            settings,
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
            settings,
            ..
        } = self;
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
        state.call(&mut fx, |sb| sb.shutdown(Instant::now()));
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

/// Per-socket settings copied from the config.
#[derive(Debug, Clone, Copy)]
struct ConnSettings {
    client_read_buffer: usize,
    server_read_buffer: usize,
    /// Whether the client port speaks snet.
    client_snet: bool,
    /// Whether the server port speaks snet.
    server_snet: bool,
    decoder: FrameDecoder,
}

/// Registers an accepted socket with the core and starts its task, or closes it at once if the core
/// refuses it.
///
/// Randomness is drawn from the OS here, before the lock: a plain server port's auth challenge, or an
/// snet port's pool for the socket's handshake (which the reader hands to the core).
fn accept(
    state: &Arc<State>,
    settings: &ConnSettings,
    conns: &mut JoinSet<()>,
    fx: &mut Effects,
    side: Side,
    stream: TcpStream,
    addr: SocketAddr,
) {
    let (snet, read_buffer) = match side {
        Side::Client => (settings.client_snet, settings.client_read_buffer),
        Side::Server => (settings.server_snet, settings.server_read_buffer),
    };
    // Ignored by the core for plain client ports and for snet ports.
    let mut challenge = Challenge([0; 8]);
    let mut rng = PreDrawn::empty();
    let drawn = if snet {
        PreDrawn::draw(rng::SNET_POOL).map(|pool| rng = pool)
    } else if side == Side::Server {
        PreDrawn::draw(8).map(|mut pool| challenge = Challenge::random(&mut pool))
    } else {
        Ok(())
    };
    if let Err(err) = drawn {
        error!("error happends when accept {side} from {addr}: {err}");
        return;
    }
    // Accept, register and dispatch in one lock hold: the core's first actions for this socket (the
    // server's challenge) must find its signals.
    let accepted = {
        let mut shared = state.lock();
        let socket = shared
            .switchboard
            .accept_with_challenge(side, Instant::now(), challenge);
        socket.map(|socket| {
            let conn = Arc::new(Conn::new(socket, side, addr));
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
        rng,
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
