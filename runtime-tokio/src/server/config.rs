//! What the adapter needs besides the core's [`GatewayConfig`] and [`SnetConfig`]s.

use fastway_core::gateway::GatewayConfig;
use fastway_core::snet::SnetConfig;
use std::net::{Ipv4Addr, SocketAddr};

/// Smallest read buffer the adapter uses, whatever is configured: a zero-sized buffer could never
/// make progress.
pub(crate) const MIN_READ_BUFFER: usize = 64;

/// Everything [`GatewayServer::bind`](super::GatewayServer::bind) needs: the core's rules (gateway
/// and snet) plus the sockets and buffers that only a runtime knows about.
///
/// The fields are public so that the binary can fill them from its flags (CONFIG.md) and tests can
/// use `127.0.0.1:0`. [`ServerConfig::default`] gives the original's defaults on ephemeral ports of
/// all interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The rules the core enforces (limits, timeouts, auth key, queue bounds).
    pub gateway: GatewayConfig,
    /// snet (SNET.md) on the client port (`ClientSnet*` flags): reconnectable, optionally encrypted
    /// streams. `None` (the default) is plain TCP.
    pub client_snet: Option<SnetConfig>,
    /// snet on the server port (`ServerSnet*` flags). `None` (the default) is plain TCP.
    pub server_snet: Option<SnetConfig>,
    /// Where game clients connect (`ClientAddr`). Port 0 picks an ephemeral port; read the real one
    /// with [`GatewayServer::client_addr`](super::GatewayServer::client_addr).
    pub client_addr: SocketAddr,
    /// Where game servers connect (`ServerAddr`).
    pub server_addr: SocketAddr,
    /// Bind both listeners with `SO_REUSEADDR` and `SO_REUSEPORT` (`ReusePort`), so several gateway
    /// processes can share the ports.
    pub reuse_port: bool,
    /// Read-buffer size per client connection (`ClientBufferSize`). Sizes up to 64 KiB read into
    /// 64 KiB chunks shared through a per-thread pool (fewer reads for large frames, memory that
    /// stays mapped); larger sizes get a buffer of their own. A buffer is held only while the client
    /// has unconsumed bytes, so idle clients cost none.
    pub client_read_buffer: usize,
    /// Read-buffer size per server connection (`ServerBufferSize`), pooled as for clients.
    pub server_read_buffer: usize,
}

impl Default for ServerConfig {
    /// CONFIG.md defaults: `:0` on both ports, plain TCP (no snet) on both, no reuse-port,
    /// 2048 / 65536 byte read buffers.
    fn default() -> Self {
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        Self {
            gateway: GatewayConfig::default(),
            client_snet: None,
            server_snet: None,
            client_addr: any,
            server_addr: any,
            reuse_port: false,
            client_read_buffer: 2048,
            server_read_buffer: 65536,
        }
    }
}
