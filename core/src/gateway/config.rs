//! Gateway settings that the core enforces.

use crate::auth::HANDSHAKE_TIMEOUT;
use crate::frame::DEFAULT_MAX_PACKET;
use std::time::Duration;

/// How much one connection's outbound queue may hold before the core acts (PROTOCOL.md §6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most frames queued behind a batch the writer is still writing (`*SendChanSize`). A burst routed
    /// while the writer is idle is bounded by `max_bytes` only: it leaves in one write anyway.
    pub max_frames: usize,
    /// Most bytes queued or being written.
    pub max_bytes: usize,
}

impl QueueLimits {
    /// The fill level above which a server's senders are paused: half of either limit.
    pub(crate) fn high_water(&self) -> (usize, usize) {
        (self.max_frames / 2, self.max_bytes / 2)
    }

    /// The fill level below which paused senders resume: a quarter of either limit.
    pub(crate) fn low_water(&self) -> (usize, usize) {
        (self.max_frames / 4, self.max_bytes / 4)
    }
}

/// Everything the gateway state machine needs to know; see CONFIG.md for the matching flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Largest accepted `Length` field (`MaxPacket`), both sides.
    pub max_packet: u32,
    /// Most vconns a client may hold when it dials (`ClientMaxConn`); 0 = unlimited.
    pub client_max_conn: u32,
    /// Most client connections at once (`--max-clients`); 0 = unlimited.
    pub max_clients: usize,
    /// Drop a client that sends no complete frame for this long (`ClientIdleTimeout`); `None` disables.
    pub client_idle_timeout: Option<Duration>,
    /// Drop a server that sends no complete frame for this long (`ServerIdleTimeout`); `None` disables.
    pub server_idle_timeout: Option<Duration>,
    /// The key servers prove they know (`ServerAuthKey`).
    pub auth_key: Vec<u8>,
    /// Deadline for a server's answer to the challenge.
    pub handshake_timeout: Duration,
    /// Bounds of each client's outbound queue; overflow disconnects that client.
    pub client_queue: QueueLimits,
    /// Bounds of each server's outbound queue. Above half of them the clients sending to that server
    /// stop being read until it drains below a quarter; overflow disconnects the server.
    pub server_queue: QueueLimits,
}

impl Default for GatewayConfig {
    /// The original gateway's defaults (CONFIG.md §2) plus our byte bounds.
    fn default() -> Self {
        Self {
            max_packet: DEFAULT_MAX_PACKET,
            client_max_conn: 16,
            max_clients: 100_000,
            client_idle_timeout: Some(Duration::from_secs(30)),
            server_idle_timeout: Some(Duration::from_secs(30)),
            auth_key: Vec::new(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            client_queue: QueueLimits {
                max_frames: 1024,
                max_bytes: 4 << 20,
            },
            server_queue: QueueLimits {
                max_frames: 102_400,
                max_bytes: 64 << 20,
            },
        }
    }
}
