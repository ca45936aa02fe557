//! Counters a runtime reads for the `stats` command and the metrics endpoint.
//!
//! Every number is a plain integer the core bumps where the event happens (no allocation, no lock of
//! its own), so a snapshot is exact and costs the hot path one or two additions per frame. Totals
//! only grow; gauges are `usize` counts of live things and so can never be negative.

use super::peer::Side;

/// A snapshot of the gateway's counters. Gauges say what is live now; totals count since start.
///
/// The first fields are the original summary the `stats` command prints; the later ones break those
/// totals down (by side, by reason) for the metrics endpoint. The breakdowns add up to the summary
/// totals where both exist (`timeout_drops == idle_drops + write_stall_drops`,
/// `dials_refused == dial_refusals.total()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Client connections now open.
    pub clients: usize,
    /// Authenticated server connections now open.
    pub servers: usize,
    /// Server connections still in the auth handshake.
    pub handshaking: usize,
    /// Virtual connections now open.
    pub vconns: usize,
    /// Data frames forwarded.
    pub frames_routed: u64,
    /// Bytes of data frames forwarded (headers included).
    pub bytes_routed: u64,
    /// Dials answered with Accept.
    pub dials_accepted: u64,
    /// Dials answered with Refuse.
    pub dials_refused: u64,
    /// Connections dropped for breaking the protocol.
    pub protocol_drops: u64,
    /// Connections dropped because their outbound queue overflowed.
    pub queue_full_drops: u64,
    /// Connections dropped by the idle timeout or a stalled write.
    pub timeout_drops: u64,
    /// Servers that failed the auth handshake (wrong digest, or no answer in time).
    pub auth_failures: u64,
    /// Client connections refused by the `max_clients` cap.
    pub clients_refused: u64,
    /// Complete frames (data and commands, headers included) received from each side. The server's
    /// 20-byte auth answer is not a frame and is not counted.
    pub received: BySide<Traffic>,
    /// Frames (forwarded data and the gateway's own commands) queued for the peers of each side, in
    /// the order their writers will send them. The auth challenge is not a frame and is not counted.
    pub sent: BySide<Traffic>,
    /// Why dials were refused; the parts add up to `dials_refused`.
    pub dial_refusals: DialRefusals,
    /// Connections dropped because no complete frame arrived within the idle timeout.
    pub idle_drops: u64,
    /// Connections dropped because their socket accepted no bytes for the idle timeout.
    pub write_stall_drops: u64,
    /// snet sessions resumed on a new socket after their link dropped, per port. Counted by the
    /// switchboard; always zero from a bare [`Gateway`](super::Gateway).
    pub snet_reconnects: BySide<u64>,
    /// snet reconnect attempts refused (unknown or closed session, counters that cannot be
    /// satisfied), per port. Counted by the switchboard, like `snet_reconnects`.
    pub snet_reconnects_refused: BySide<u64>,
    /// Every server id seen since start (bounded, see [`MAX_OFFLINE_SERVERS`]) and whether at least
    /// one authenticated connection holds it now, sorted by id. A server that leaves stays listed as
    /// offline, so a monitoring series does not vanish when the server goes down.
    pub server_status: Vec<ServerStatus>,
}

/// How many offline server ids [`GatewayStats::server_status`] keeps; past this the one that went
/// offline longest ago is forgotten. Online ids are always listed. Server ids are chosen by
/// authenticated servers, so the bound only matters for a fleet that churns through many ids.
pub const MAX_OFFLINE_SERVERS: usize = 1024;

/// One value per side of the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BySide<T> {
    /// The client port's value.
    pub client: T,
    /// The server port's value.
    pub server: T,
}

impl<T> BySide<T> {
    /// The value of `side`.
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// The value of `side`, to update it.
    pub fn get_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }
}

/// Frames and bytes that went one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Whole frames.
    pub frames: u64,
    /// Their bytes, headers included.
    pub bytes: u64,
}

impl Traffic {
    /// Counts one frame of `len` bytes.
    pub(crate) fn add(&mut self, len: usize) {
        self.frames += 1;
        self.bytes += len as u64;
    }
}

/// Dials answered with Refuse, by the reason the gateway had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialRefusals {
    /// A client dialed a server id no authenticated server holds.
    pub no_such_server: u64,
    /// A server dialed a client id that is not connected.
    pub no_such_client: u64,
    /// A client already held `client_max_conn` vconns.
    pub vconn_limit: u64,
}

impl DialRefusals {
    /// Every refusal.
    pub fn total(&self) -> u64 {
        self.no_such_server + self.no_such_client + self.vconn_limit
    }
}

/// Why the gateway refused a dial (the counter it bumps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    NoSuchServer,
    NoSuchClient,
    VconnLimit,
}

impl DialRefusals {
    pub(crate) fn count(&mut self, reason: Refusal) {
        match reason {
            Refusal::NoSuchServer => self.no_such_server += 1,
            Refusal::NoSuchClient => self.no_such_client += 1,
            Refusal::VconnLimit => self.vconn_limit += 1,
        }
    }
}

/// Whether a server id is held by an authenticated connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStatus {
    /// The server id servers authenticate with.
    pub id: u32,
    /// True while at least one authenticated connection holds the id.
    pub online: bool,
}
