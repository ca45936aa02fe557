//! The gateway server: two listeners, threads per connection, one timer, graceful shutdown.
//!
//! * [`shared`]: the core (a [`Switchboard`]) behind one lock, and the dispatch of its actions;
//! * [`connection`]: a socket's control block, reader thread and writer thread;
//! * [`writer`]: a connection's writer thread, started on demand;
//! * [`send`]: blocking and non-blocking vectored writes of a batch of frames;
//! * [`listener`]: binding with socket2 and the accept threads;
//! * [`timer`]: the thread that fires the core's deadlines;
//! * [`rng`]: OS randomness for server challenges and snet handshakes, drawn outside the lock;
//! * [`sync`]: poison-tolerant lock helpers.

mod connection;
mod listener;
mod rng;
mod send;
mod shared;
mod sync;
mod timer;
mod writer;

use fastway_core::gateway::{GatewayConfig, GatewayStats, PeerInfo, Side};
use fastway_core::snet::SnetConfig;
use fastway_core::switchboard::{Switchboard, SwitchboardConfig};
use shared::{FLUSH_TIMEOUT, Inner, Settings};
use socket2::Socket;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Extra time `run` gives connection threads after the flush timeout before it force-closes sockets.
const FLUSH_GRACE: Duration = Duration::from_millis(500);
/// How long `run` waits for threads after force-closing their sockets.
const FINAL_WAIT: Duration = Duration::from_secs(1);
/// How long `run` waits for an accept or timer thread to return.
const JOIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Stack size of the accept and timer threads.
const SERVICE_STACK_SIZE: usize = 128 * 1024;

/// Everything the adapter needs: the core's [`GatewayConfig`], snet per port, addresses and buffers.
///
/// All three fastway runtimes take the same fields, so the binary and the shared conformance tests
/// can drive any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The rules the core enforces (limits, timeouts, auth key).
    pub gateway: GatewayConfig,
    /// Where game clients connect (`ClientAddr`); port 0 picks a free port, see
    /// [`GatewayServer::client_addr`].
    pub client_addr: SocketAddr,
    /// Where game servers connect (`ServerAddr`).
    pub server_addr: SocketAddr,
    /// Bind both listeners with `SO_REUSEADDR` + `SO_REUSEPORT` (`ReusePort`), so several gateway
    /// processes can share the ports.
    pub reuse_port: bool,
    /// Initial read-buffer capacity per client connection (`ClientBufferSize`, 2048). It grows for a
    /// frame larger than this.
    pub client_read_buffer: usize,
    /// Initial read-buffer capacity per server connection (`ServerBufferSize`, 65536).
    pub server_read_buffer: usize,
    /// snet on the client port (`ClientSnet*` flags: reconnectable, optionally RC4-encrypted
    /// streams, SNET.md); `None` (the default) = plain TCP.
    pub client_snet: Option<SnetConfig>,
    /// snet on the server port (`ServerSnet*` flags); `None` (the default) = plain TCP.
    pub server_snet: Option<SnetConfig>,
}

impl ServerConfig {
    /// A configuration with the original's buffer sizes, no reuse-port and plain TCP on both ports
    /// (no snet), listening at the given addresses with the rules in `gateway`.
    pub fn new(gateway: GatewayConfig, client_addr: SocketAddr, server_addr: SocketAddr) -> Self {
        Self {
            gateway,
            client_addr,
            server_addr,
            reuse_port: false,
            client_read_buffer: 2048,
            server_read_buffer: 65536,
            client_snet: None,
            server_snet: None,
        }
    }
}

/// A fastway gateway over blocking std threads: bound, ready to [`run`](GatewayServer::run).
///
/// [`bind`](GatewayServer::bind) opens both listeners (so the ports are known and errors surface
/// before anything runs); [`run`](GatewayServer::run) serves on the calling thread until
/// [`GatewayHandle::shutdown`] and then shuts down gracefully. Threads: one accept thread per listener,
/// a reader per connection and, while it has work or for a while after, a writer (64 KiB stacks), one
/// timer thread.
///
/// # Example
///
/// ```
/// use fastway_std::{GatewayConfig, GatewayServer, ServerConfig};
///
/// # fn main() -> std::io::Result<()> {
/// let local = "127.0.0.1:0".parse().expect("a valid address");
/// let server = GatewayServer::bind(ServerConfig::new(GatewayConfig::default(), local, local))?;
/// println!("clients connect to {}, servers to {}", server.client_addr(), server.server_addr());
/// let handle = server.handle();
/// let serving = std::thread::spawn(move || server.run());
/// // ... later, e.g. on SIGTERM:
/// handle.shutdown();
/// serving.join().expect("the gateway thread does not panic")?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct GatewayServer {
    inner: Arc<Inner>,
    client_listener: TcpListener,
    server_listener: TcpListener,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
}

impl GatewayServer {
    /// Binds the client and the server listener and logs the addresses actually bound
    /// (`setup client listener at - <addr>`, `setup server listener at - <addr>`).
    ///
    /// Fails if either address cannot be bound (in use, not local, reuse-port unsupported); the error
    /// names the listener and the address.
    pub fn bind(config: ServerConfig) -> io::Result<Self> {
        let client_listener = listener::bind(Side::Client, config.client_addr, config.reuse_port)?;
        let server_listener = listener::bind(Side::Server, config.server_addr, config.reuse_port)?;
        let client_addr = client_listener.local_addr()?;
        let server_addr = server_listener.local_addr()?;
        let settings = Settings {
            client_read_buffer: config.client_read_buffer,
            server_read_buffer: config.server_read_buffer,
            max_packet: config.gateway.max_packet,
            client_snet: config.client_snet.is_some(),
            server_snet: config.server_snet.is_some(),
        };
        let switchboard = Switchboard::new(SwitchboardConfig {
            gateway: config.gateway,
            client_snet: config.client_snet,
            server_snet: config.server_snet,
        });
        let inner = Inner::new(switchboard, settings);
        Ok(Self {
            inner,
            client_listener,
            server_listener,
            client_addr,
            server_addr,
        })
    }

    /// The address game clients connect to, with an ephemeral port resolved.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The address game servers connect to, with an ephemeral port resolved.
    pub fn server_addr(&self) -> SocketAddr {
        self.server_addr
    }

    /// A handle to inspect or stop the gateway from other threads (signal handlers, command files).
    pub fn handle(&self) -> GatewayHandle {
        GatewayHandle {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Serves until [`GatewayHandle::shutdown`] is called, then shuts down gracefully and returns.
    ///
    /// Shutdown: stop accepting, let the core close every connection (each peer gets the Close frames
    /// of its vconns), give writers up to 2 s to flush, force-close what is left, wait (bounded) for
    /// every thread. Fails only if the accept or timer threads cannot be started.
    pub fn run(self) -> io::Result<()> {
        let Self {
            inner,
            client_listener,
            server_listener,
            client_addr,
            server_addr,
        } = self;
        // Duplicates of the listening sockets, only to wake the accept threads at shutdown.
        let wakers = [
            (
                client_addr,
                client_listener.try_clone().map(Socket::from).ok(),
            ),
            (
                server_addr,
                server_listener.try_clone().map(Socket::from).ok(),
            ),
        ];
        let mut services: Vec<JoinHandle<()>> = Vec::new();
        let started = start_services(&inner, client_listener, server_listener, &mut services);
        if started.is_ok() {
            inner.wait_stop_requested();
        }
        log::info!("gateway shutting down");
        inner.begin_stopping();
        for (addr, socket) in &wakers {
            listener::wake(*addr, socket.as_ref());
        }
        inner.timer.stop();
        join_bounded(services, Instant::now() + JOIN_TIMEOUT);
        drop(wakers);

        inner.with_core(|shared| shared.switchboard.shutdown(Instant::now()));
        let left = inner.wait_live_empty(Instant::now() + FLUSH_TIMEOUT + FLUSH_GRACE);
        if left > 0 {
            log::warn!("{left} connections did not finish flushing; closing them");
            for conn in inner.live_conns() {
                conn.shutdown_socket();
            }
            let left = inner.wait_live_empty(Instant::now() + FINAL_WAIT);
            if left > 0 {
                log::warn!("{left} connections still have threads running; leaving them detached");
            }
        }
        log::info!("gateway stopped");
        started
    }
}

/// Starts the two accept threads and the timer thread.
fn start_services(
    inner: &Arc<Inner>,
    client_listener: TcpListener,
    server_listener: TcpListener,
    services: &mut Vec<JoinHandle<()>>,
) -> io::Result<()> {
    let timer_inner = Arc::clone(inner);
    services.push(spawn_service("fw-timer", move || timer::run(&timer_inner))?);
    for (side, listener) in [
        (Side::Client, client_listener),
        (Side::Server, server_listener),
    ] {
        let accept_inner = Arc::clone(inner);
        let name = format!("fw-accept-{side}");
        services.push(spawn_service(&name, move || {
            listener::accept_loop(&accept_inner, listener, side);
        })?);
    }
    Ok(())
}

fn spawn_service(name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.to_owned())
        .stack_size(SERVICE_STACK_SIZE)
        .spawn(body)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot start thread {name}: {err}")))
}

/// Joins `handles`, but gives up on (detaches) any that has not finished by `deadline`.
fn join_bounded(handles: Vec<JoinHandle<()>>, deadline: Instant) {
    for handle in handles {
        while !handle.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if handle.is_finished() {
            if handle.join().is_err() {
                log::error!("a gateway service thread panicked");
            }
        } else {
            let name = handle.thread().name().unwrap_or("?").to_owned();
            log::warn!("thread {name} did not stop in time; leaving it detached");
        }
    }
}

/// A cheap, cloneable, thread-safe handle to a running [`GatewayServer`]: read its counters and
/// connections, or stop it.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    inner: Arc<Inner>,
}

impl GatewayHandle {
    /// A snapshot of the gateway's counters (for the `stats` command and monitoring).
    pub fn stats(&self) -> GatewayStats {
        self.inner.inspect(Switchboard::stats)
    }

    /// Every peer the gateway knows, ordered by handle (for the `conns` command). On an snet port a
    /// peer is a session: it stays listed while its link is down and it waits for a reconnect.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.inspect(Switchboard::peers)
    }

    /// Asks the gateway to stop; [`GatewayServer::run`] then shuts down gracefully and returns. Safe to
    /// call more than once, from any thread, also before `run` starts.
    pub fn shutdown(&self) {
        self.inner.request_stop();
    }
}
