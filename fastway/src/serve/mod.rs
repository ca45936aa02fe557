//! Starting a gateway on the runtime the user picked, on a thread of its own, and controlling it.
//!
//! The binary and the tests go through [`start`]: it binds both listeners (so bind errors come back at
//! once), runs the chosen runtime's `GatewayServer` on a dedicated thread, and returns a
//! [`RunningGateway`] for stats, the `conns` dump and graceful shutdown. Signals are handled by the
//! caller on its own thread, the same way for every runtime.

#[cfg(feature = "rt-smol")]
mod smol;
#[cfg(feature = "rt-std")]
mod std_threads;
#[cfg(feature = "rt-tokio")]
mod tokio;

use crate::config::{RuntimeKind, Settings, SnetSettings};
use crate::control::GatewayView;
use fastway_core::gateway::{GatewayConfig, GatewayStats, PeerInfo, QueueLimits};
use fastway_core::snet::SnetConfig;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// Everything needed to run a gateway, whatever the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// The rules the core enforces.
    pub gateway: GatewayConfig,
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// Where game servers connect.
    pub server_addr: SocketAddr,
    /// Bind with SO_REUSEADDR + SO_REUSEPORT so several gateways share the ports.
    pub reuse_port: bool,
    /// Initial read-buffer size per client connection.
    pub client_read_buffer: usize,
    /// Initial read-buffer size per server connection.
    pub server_read_buffer: usize,
    /// Worker threads for runtimes that have a pool (tokio); 1 runs a single-threaded runtime, which
    /// batches best on small machines.
    pub worker_threads: usize,
    /// snet on the client port (`ClientSnet*`), or `None` for plain TCP.
    pub client_snet: Option<SnetConfig>,
    /// snet on the server port (`ServerSnet*`), or `None` for plain TCP.
    pub server_snet: Option<SnetConfig>,
}

impl ServeOptions {
    /// Both listeners on 127.0.0.1 with ephemeral ports: what tests and examples use.
    pub fn loopback(gateway: GatewayConfig) -> Self {
        let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            gateway,
            client_addr: any_port,
            server_addr: any_port,
            reuse_port: false,
            client_read_buffer: 2048,
            server_read_buffer: 65536,
            worker_threads: 1,
            client_snet: None,
            server_snet: None,
        }
    }

    /// The options a command line asked for.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            gateway: GatewayConfig {
                max_packet: settings.max_packet,
                client_max_conn: settings.client_max_conn,
                max_clients: settings.max_clients,
                client_idle_timeout: settings.client_idle_timeout,
                server_idle_timeout: settings.server_idle_timeout,
                auth_key: settings.auth_key.as_bytes().to_vec(),
                handshake_timeout: fastway_core::auth::HANDSHAKE_TIMEOUT,
                client_queue: QueueLimits {
                    max_frames: settings.client_send_queue_frames,
                    max_bytes: settings.client_send_queue_bytes,
                },
                server_queue: QueueLimits {
                    max_frames: settings.server_send_queue_frames,
                    max_bytes: settings.server_send_queue_bytes,
                },
            },
            client_addr: settings.client_addr,
            server_addr: settings.server_addr,
            reuse_port: settings.reuse_port,
            client_read_buffer: settings.client_buffer_size,
            server_read_buffer: settings.server_buffer_size,
            worker_threads: settings.worker_threads,
            client_snet: snet_config(&settings.client_snet),
            server_snet: snet_config(&settings.server_snet),
        }
    }
}

/// The snet settings of one side, or `None` when snet is off there.
fn snet_config(settings: &SnetSettings) -> Option<SnetConfig> {
    settings.enable.then(|| SnetConfig {
        enable_crypt: settings.encrypt,
        rewriter_buffer_size: settings.buffer,
        handshake_timeout: settings.init_timeout.unwrap_or(Duration::ZERO),
        reconn_wait_timeout: settings.wait_timeout,
    })
}

/// What [`RunningGateway`] needs from a runtime's gateway handle.
trait Control: Send + Sync {
    fn stats(&self) -> GatewayStats;
    fn peers(&self) -> Vec<PeerInfo>;
    fn shutdown(&self);
}

/// A cheap, cloneable way to read a running gateway's counters from another thread (the metrics
/// endpoint), without owning the [`RunningGateway`] that the main thread shuts down. It keeps working
/// after the gateway stopped: it then reports the last counters.
#[derive(Clone)]
pub struct StatsHandle(Arc<dyn Control>);

impl StatsHandle {
    /// The core's counters now.
    pub fn stats(&self) -> GatewayStats {
        self.0.stats()
    }
}

impl std::fmt::Debug for StatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsHandle").finish_non_exhaustive()
    }
}

/// A gateway serving on its own thread.
pub struct RunningGateway {
    runtime: RuntimeKind,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    control: Arc<dyn Control>,
    thread: JoinHandle<io::Result<()>>,
}

impl std::fmt::Debug for RunningGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningGateway")
            .field("runtime", &self.runtime)
            .field("client_addr", &self.client_addr)
            .field("server_addr", &self.server_addr)
            .finish_non_exhaustive()
    }
}

impl RunningGateway {
    /// The runtime serving.
    pub fn runtime(&self) -> RuntimeKind {
        self.runtime
    }

    /// The client listener's bound address (the real port when 0 was asked for).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The server listener's bound address.
    pub fn server_addr(&self) -> SocketAddr {
        self.server_addr
    }

    /// The core's counters now.
    pub fn stats(&self) -> GatewayStats {
        self.control.stats()
    }

    /// A handle that reads the counters from any thread, for as long as it is kept.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.control))
    }

    /// Every connection with its vconns.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.control.peers()
    }

    /// True once the serving thread has ended (after a shutdown, or if the runtime failed).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops accepting, flushes what is owed to each peer (bounded), closes everything and waits for the
    /// serving thread.
    pub fn shutdown(self) -> io::Result<()> {
        self.control.shutdown();
        self.thread
            .join()
            .map_err(|_| io::Error::other("gateway thread panicked"))?
    }
}

impl GatewayView for RunningGateway {
    fn stats(&self) -> GatewayStats {
        self.control.stats()
    }

    fn peers(&self) -> Vec<PeerInfo> {
        self.control.peers()
    }
}

/// Why a runtime could not be started.
fn not_compiled(kind: RuntimeKind) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "runtime {} is not compiled into this binary (enable the Cargo feature rt-{})",
            kind.name(),
            kind.name()
        ),
    )
}

/// Binds and starts a gateway on `kind`'s runtime; returns once both listeners are bound.
pub fn start(kind: RuntimeKind, options: ServeOptions) -> io::Result<RunningGateway> {
    match kind {
        #[cfg(feature = "rt-tokio")]
        RuntimeKind::Tokio => tokio::start(options),
        #[cfg(feature = "rt-smol")]
        RuntimeKind::Smol => smol::start(options),
        #[cfg(feature = "rt-std")]
        RuntimeKind::Std => std_threads::start(options),
        #[allow(unreachable_patterns)]
        other => Err(not_compiled(other)),
    }
}

/// What the serving thread reports once it has bound (or failed to).
type Bound = io::Result<(SocketAddr, SocketAddr, Box<dyn Control>)>;

/// Implements [`Control`] for a runtime crate's `GatewayHandle`, which has the same three methods in
/// every runtime.
macro_rules! impl_control {
    ($handle:ty) => {
        impl super::Control for $handle {
            fn stats(&self) -> fastway_core::gateway::GatewayStats {
                <$handle>::stats(self)
            }
            fn peers(&self) -> Vec<fastway_core::gateway::PeerInfo> {
                <$handle>::peers(self)
            }
            fn shutdown(&self) {
                <$handle>::shutdown(self)
            }
        }
    };
}
use impl_control;

/// Builds a runtime crate's `ServerConfig` (the same fields in every runtime) from [`ServeOptions`].
macro_rules! server_config {
    ($config:ident, $options:expr) => {{
        let options: super::ServeOptions = $options;
        $config {
            gateway: options.gateway,
            client_addr: options.client_addr,
            server_addr: options.server_addr,
            reuse_port: options.reuse_port,
            client_read_buffer: options.client_read_buffer,
            server_read_buffer: options.server_read_buffer,
            client_snet: options.client_snet,
            server_snet: options.server_snet,
        }
    }};
}
use server_config;

/// Reports the outcome of a bind through `bound` (a copy of the error, or the addresses and the
/// handle `control` gives) and hands the bound server back to be run.
fn report_bind<S>(
    bound: &mpsc::Sender<Bound>,
    bind: io::Result<S>,
    control: impl FnOnce(&S) -> (SocketAddr, SocketAddr, Box<dyn Control>),
) -> io::Result<S> {
    match bind {
        Ok(server) => {
            let _ = bound.send(Ok(control(&server)));
            Ok(server)
        }
        Err(err) => {
            let _ = bound.send(Err(io::Error::new(err.kind(), err.to_string())));
            Err(err)
        }
    }
}

/// Spawns the serving thread: `serve` binds, reports through the channel, then serves until shutdown.
fn spawn_serving(
    kind: RuntimeKind,
    serve: impl FnOnce(mpsc::Sender<Bound>) -> io::Result<()> + Send + 'static,
) -> io::Result<RunningGateway> {
    let (bound_tx, bound_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("fastway-{}", kind.name()))
        .spawn(move || serve(bound_tx))?;
    match bound_rx.recv() {
        Ok(Ok((client_addr, server_addr, control))) => Ok(RunningGateway {
            runtime: kind,
            client_addr,
            server_addr,
            control: Arc::from(control),
            thread,
        }),
        Ok(Err(err)) => {
            let _ = thread.join();
            Err(err)
        }
        Err(_) => match thread.join() {
            Ok(Err(err)) => Err(err),
            _ => Err(io::Error::other("gateway thread ended before binding")),
        },
    }
}
