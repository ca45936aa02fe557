//! Counters a runtime reads for the `stats` command.

/// A snapshot of the gateway's counters. Gauges say what is live now; totals count since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    /// Servers that failed the auth handshake.
    pub auth_failures: u64,
    /// Client connections refused by the `max_clients` cap.
    pub clients_refused: u64,
}
