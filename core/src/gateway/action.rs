//! What the gateway asks its runtime to do, and why it drops connections.

use super::PeerId;
use crate::auth::AuthError;
use crate::frame::{CommandType, FrameError};
use bytes::Bytes;
use std::fmt;

/// An instruction for the runtime, pulled with [`Gateway::poll_action`](super::Gateway::poll_action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `peer` has bytes waiting: its writer should call
    /// [`Gateway::poll_transmit`](super::Gateway::poll_transmit) until that returns nothing. Emitted once
    /// per idle→busy change, not per frame.
    Transmit(PeerId),
    /// Stop reading from `peer`: a server it sends to has a full queue (backpressure).
    PauseReading(PeerId),
    /// Reading from `peer` may go on; feed it the bytes it still holds first.
    ResumeReading(PeerId),
    /// A server proved it knows the key and is now registered under `server_id`.
    ServerAuthenticated {
        /// The connection.
        peer: PeerId,
        /// The id it claimed.
        server_id: u32,
    },
    /// The core has forgotten `peer`: write `flush` (non-empty only on graceful shutdown), then close the
    /// socket. Every peer the core knew ends with exactly one of these.
    Close {
        /// The connection to close.
        peer: PeerId,
        /// Why it is closed, for the log.
        reason: CloseReason,
        /// Bytes still owed to the peer, to write before closing if possible.
        flush: Vec<Bytes>,
    },
}

/// Why the gateway dropped a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The runtime reported the socket closed or failed.
    Disconnected,
    /// The bytes were not valid framing.
    Malformed(FrameError),
    /// The peer sent a command only the gateway may send.
    ForbiddenCommand(CommandType),
    /// The peer wrote on a vconn it is not a member of.
    ForeignVconn(u32),
    /// A server failed the challenge.
    Auth(AuthError),
    /// No complete frame arrived within the idle timeout.
    IdleTimeout,
    /// The peer's outbound queue overflowed (it reads too slowly).
    QueueFull,
    /// The peer's socket accepted no bytes for the idle timeout while output was pending.
    WriteStalled,
    /// The gateway is shutting down.
    Shutdown,
}

impl CloseReason {
    /// True for the ordinary ends of a connection (the peer left, or the gateway is stopping), which
    /// runtimes log at info level; every other reason deserves a warning.
    pub fn is_routine(&self) -> bool {
        matches!(self, Self::Disconnected | Self::Shutdown)
    }

    /// True when the peer broke the protocol (as opposed to leaving, timing out or being slow).
    pub fn is_violation(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_) | Self::ForbiddenCommand(_) | Self::ForeignVconn(_)
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected => f.write_str("connection closed by peer or network"),
            Self::Malformed(err) => write!(f, "malformed input: {err}"),
            Self::ForbiddenCommand(kind) => write!(f, "sent gateway-only command {kind:?}"),
            Self::ForeignVconn(conn) => write!(f, "wrote on vconn {conn} it does not own"),
            Self::Auth(err) => err.fmt(f),
            Self::IdleTimeout => f.write_str("idle timeout: no complete frame received"),
            Self::QueueFull => f.write_str("outbound queue full: peer reads too slowly"),
            Self::WriteStalled => {
                f.write_str("write stalled: peer accepted no bytes for the idle timeout")
            }
            Self::Shutdown => f.write_str("gateway shutting down"),
        }
    }
}

/// Why the gateway did not take a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// `max_clients` connections are already open.
    TooManyClients {
        /// The configured cap.
        max: usize,
    },
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyClients { max } => write!(f, "client limit of {max} connections reached"),
        }
    }
}

impl std::error::Error for AcceptError {}
