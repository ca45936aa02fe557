//! The gateway server: one thread running a readiness loop over every socket, driving the core.
//!
//! * [`event_loop`]: the loop (`mio::Poll` over non-blocking sockets), the core's actions, timers,
//!   graceful shutdown;
//! * [`conn`]: one accepted socket as the loop sees it (read buffer, write queue, flags);
//! * [`open`]: taking a freshly accepted socket (options, randomness, registrations);
//! * [`send`]: non-blocking vectored writes of a batch of frames;
//! * [`listener`]: binding with socket2, accepting with a back-off after failures;
//! * [`control`]: what the loop shares with the handles (the core behind a lock, the stop flag and
//!   waker);
//! * [`log`]: the close log lines;
//! * [`rng`]: OS randomness for server challenges and snet handshakes;
//! * [`sync`]: poison-tolerant locking.

mod conn;
mod control;
mod event_loop;
mod listener;
mod log;
mod open;
mod rng;
mod send;
mod sync;

use control::Control;
use event_loop::{EventLoop, WAKER};
use fastway_core::gateway::{GatewayConfig, GatewayStats, PeerInfo, Side};
use fastway_core::snet::SnetConfig;
use fastway_core::switchboard::{Switchboard, SwitchboardConfig};
use listener::Acceptor;
use mio::{Poll, Waker};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

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

/// A fastway gateway on one blocking std thread: bound, ready to [`run`](GatewayServer::run).
///
/// [`bind`](GatewayServer::bind) opens both listeners (so the ports are known and errors surface
/// before anything runs); [`run`](GatewayServer::run) serves on the calling thread until
/// [`GatewayHandle::shutdown`] and then shuts down gracefully. No other thread is started: the
/// calling thread waits in `epoll` (through mio) for every socket at once, so a connection costs a
/// file descriptor and a small control block, and a read buffer only while bytes are in flight.
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
    event_loop: EventLoop,
    control: Arc<Control>,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
}

impl GatewayServer {
    /// Binds the client and the server listener and logs the addresses actually bound
    /// (`setup client listener at - <addr>`, `setup server listener at - <addr>`).
    ///
    /// Fails if either address cannot be bound (in use, not local, reuse-port unsupported); the error
    /// names the listener and the address. Also fails if the OS refuses an `epoll` instance.
    pub fn bind(config: ServerConfig) -> io::Result<Self> {
        let client_listener = listener::bind(Side::Client, config.client_addr, config.reuse_port)?;
        let server_listener = listener::bind(Side::Server, config.server_addr, config.reuse_port)?;
        let client_addr = client_listener.local_addr()?;
        let server_addr = server_listener.local_addr()?;
        let settings = conn::Settings {
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
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let control = Arc::new(Control::new(switchboard, waker));
        let acceptors = vec![
            Acceptor::new(Side::Client, client_listener)?,
            Acceptor::new(Side::Server, server_listener)?,
        ];
        let event_loop = EventLoop::new(poll, acceptors, settings, Arc::clone(&control))?;
        Ok(Self {
            event_loop,
            control,
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
            control: Arc::clone(&self.control),
        }
    }

    /// Serves on the calling thread until [`GatewayHandle::shutdown`] is called, then shuts down
    /// gracefully and returns.
    ///
    /// Shutdown: stop accepting, let the core close every connection (each peer gets the Close frames
    /// of its vconns), give the sockets up to 2 s to take those bytes, then close what is left. Fails
    /// only if waiting for the sockets fails (the gateway is still shut down first).
    pub fn run(self) -> io::Result<()> {
        self.event_loop.run()
    }
}

/// A cheap, cloneable, thread-safe handle to a running [`GatewayServer`]: read its counters and
/// connections, or stop it.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    control: Arc<Control>,
}

impl GatewayHandle {
    /// A snapshot of the gateway's counters (for the `stats` command and monitoring).
    pub fn stats(&self) -> GatewayStats {
        self.control.core().stats()
    }

    /// Every peer the gateway knows, ordered by handle (for the `conns` command). On an snet port a
    /// peer is a session: it stays listed while its link is down and it waits for a reconnect.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.control.core().peers()
    }

    /// Asks the gateway to stop; [`GatewayServer::run`] then shuts down gracefully and returns. Safe to
    /// call more than once, from any thread, also before `run` starts.
    pub fn shutdown(&self) {
        self.control.request_stop();
    }
}
