//! One physical connection as the gateway sees it.

use super::outbox::Outbox;
use crate::auth::Challenge;
use crate::idmap::IdSet;
use std::fmt;
use std::time::Instant;

/// Which port a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// A game client (public port).
    Client,
    /// A game server (private port, authenticated).
    Server,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Server => "server",
        })
    }
}

/// A handle for one physical connection, unique for the gateway's lifetime (never reused, unlike the
/// protocol's client ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) u64);

impl PeerId {
    /// The number behind the handle, for logs and maps.
    pub fn as_u64(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum PeerState {
    /// A server that has not yet answered its challenge. Boxed: only a server passes through it, for
    /// one round trip, while every peer (idle clients included) carries a `PeerState` in the
    /// gateway's peer map for life; inline, the challenge and deadline would cost each 16 bytes more.
    Handshake(Box<Handshake>),
    /// Registered and framing.
    Active,
}

/// What a server in the handshake is expected to answer, and by when.
#[derive(Debug)]
pub(crate) struct Handshake {
    /// The nonce it must answer with its HMAC.
    pub(crate) challenge: Challenge,
    /// When the gateway gives up waiting for the answer.
    pub(crate) deadline: Instant,
}

/// The gateway's record of one connection.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) side: Side,
    pub(crate) state: PeerState,
    /// Client id or server id on the wire (meaningless while handshaking).
    pub(crate) wire_id: u32,
    /// The vconns this peer is a member of.
    pub(crate) vconns: IdSet<u32>,
    /// When the last complete frame arrived (or the connection became active).
    pub(crate) last_input: Instant,
    /// Since when output has been pending without the writer coming back for more.
    pub(crate) write_since: Option<Instant>,
    pub(crate) outbox: Outbox,
    /// A `Transmit` action is out and the writer has not yet drained the queue.
    pub(crate) transmit_pending: bool,
    /// Not being read because a server it sends to is backed up.
    pub(crate) paused: bool,
    /// The deadline this peer's entry in the timer heap is for.
    pub(crate) scheduled: Option<Instant>,
    /// snet link down: the peer is waiting to reconnect, not idle.
    pub(crate) link_down: bool,
}

impl Peer {
    pub(crate) fn new(side: Side, state: PeerState, wire_id: u32, now: Instant) -> Self {
        Self {
            side,
            state,
            wire_id,
            vconns: IdSet::default(),
            last_input: now,
            write_since: None,
            outbox: Outbox::default(),
            transmit_pending: false,
            paused: false,
            scheduled: None,
            link_down: false,
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        matches!(self.state, PeerState::Active)
    }
}

/// What the `conns` command shows about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The connection handle.
    pub peer: PeerId,
    /// Which port it came in on.
    pub side: Side,
    /// Its client or server id; `None` for a server still in the handshake.
    pub id: Option<u32>,
    /// The vconns it is a member of, sorted.
    pub vconns: Vec<u32>,
    /// Bytes queued for it or being written to it.
    pub pending_bytes: usize,
    /// Whether reading from it is paused by backpressure.
    pub paused: bool,
}
