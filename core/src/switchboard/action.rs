//! What the switchboard asks its runtime to do, socket by socket.

use super::SocketId;
use crate::gateway::{self, AcceptError, Side};
use crate::snet::HandshakeError;
use bytes::Bytes;
use std::fmt;

/// An instruction for the runtime, pulled with [`Switchboard::poll_action`](super::Switchboard::poll_action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `socket` has bytes waiting: its writer should call
    /// [`Switchboard::poll_transmit`](super::Switchboard::poll_transmit) until that returns nothing.
    Transmit(SocketId),
    /// Stop reading from `socket` (backpressure from a server it sends to).
    PauseReading(SocketId),
    /// Reading may go on; feed the bytes the socket's buffer still holds first.
    ResumeReading(SocketId),
    /// A game server on `socket` proved it knows the key and is registered as `server_id`.
    ServerAuthenticated {
        /// The socket.
        socket: SocketId,
        /// The id it claimed.
        server_id: u32,
    },
    /// An snet session ended while it had no socket (its client was away): nothing to close, but the
    /// runtime logs why. Its vconns were closed at the other members.
    SessionEnded {
        /// Which port the session belonged to.
        side: Side,
        /// Why it ended.
        reason: SocketCloseReason,
    },
    /// The switchboard has forgotten `socket`: write `flush`, then close it. Every socket ends with
    /// exactly one of these.
    Close {
        /// The socket to close.
        socket: SocketId,
        /// Why, for the log.
        reason: SocketCloseReason,
        /// Bytes still owed (an snet refusal, or a shutdown's last frames), to write before closing.
        flush: Vec<Bytes>,
    },
}

/// Why a socket is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketCloseReason {
    /// The gateway dropped the peer this socket carried (its reason says why).
    Peer(gateway::CloseReason),
    /// The runtime reported the socket closed or failed (on an snet port the session waits for a
    /// reconnect).
    Disconnected,
    /// The snet handshake failed or the reconnect was refused.
    Snet(HandshakeError),
    /// An snet reconnect moved the session to a newer socket.
    Replaced,
    /// The snet session this socket resumed no longer has a peer.
    SessionGone,
    /// The gateway would not take another client.
    Refused(AcceptError),
    /// The snet session's link stayed down for `*SnetWaitTimeout`.
    SnetWaitTimeout,
    /// The gateway is shutting down.
    Shutdown,
}

impl SocketCloseReason {
    /// True for ordinary ends (the peer left, a reconnect replaced the socket, shutdown), which runtimes
    /// log at info level; the rest deserve a warning.
    pub fn is_routine(&self) -> bool {
        match self {
            Self::Peer(reason) => reason.is_routine(),
            Self::Disconnected | Self::Replaced | Self::Shutdown => true,
            Self::Snet(_) | Self::SessionGone | Self::Refused(_) | Self::SnetWaitTimeout => false,
        }
    }
}

impl fmt::Display for SocketCloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Peer(reason) => reason.fmt(f),
            Self::Disconnected => f.write_str("connection closed by peer or network"),
            Self::Snet(err) => err.fmt(f),
            Self::Replaced => f.write_str("snet session moved to a newer connection"),
            Self::SessionGone => f.write_str("snet session has no gateway peer any more"),
            Self::Refused(err) => err.fmt(f),
            Self::SnetWaitTimeout => {
                f.write_str("snet client did not reconnect within the wait timeout")
            }
            Self::Shutdown => f.write_str("gateway shutting down"),
        }
    }
}
