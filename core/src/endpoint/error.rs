//! The endpoint's error types: why the link died, why a call was refused.

use crate::frame::{CommandType, FrameError};
use std::fmt;

/// The gateway sent something the protocol does not allow. The byte stream cannot be trusted after
/// this, so the link is closed; the adapter closes the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// The bytes are not valid framing: `Length` above MaxPacket, a frame too short for its kind, or an
    /// unknown command type.
    Frame(FrameError),
    /// A command only peers may send (Dial) came from the gateway.
    UnexpectedCommand(CommandType),
    /// Accept or Connect announced vconn 0, which on the wire means "command" and cannot carry data.
    ZeroConnId(CommandType),
    /// Accept or Connect announced a vconn id that is already open on this endpoint.
    ConnInUse {
        /// The announced vconn id.
        conn: u32,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(error) => write!(f, "the gateway sent an invalid frame: {error}"),
            Self::UnexpectedCommand(kind) => {
                write!(
                    f,
                    "the gateway sent a {kind:?} command, which only peers may send"
                )
            }
            Self::ZeroConnId(kind) => write!(
                f,
                "the gateway's {kind:?} announced virtual connection 0, which is reserved for commands"
            ),
            Self::ConnInUse { conn } => write!(
                f,
                "the gateway announced virtual connection {conn}, which is already open"
            ),
        }
    }
}

impl std::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Frame(error) => Some(error),
            _ => None,
        }
    }
}

impl From<FrameError> for ProtocolError {
    fn from(error: FrameError) -> Self {
        Self::Frame(error)
    }
}

/// Why the link to the gateway ended. Carried by [`Event::LinkClosed`](super::Event::LinkClosed) and by
/// every error returned after it, so a user always learns the first cause rather than "closed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The gateway broke the protocol.
    Protocol(ProtocolError),
    /// A Ping went unanswered for `ping_timeout` under [`PingTimeoutPolicy::Close`](super::PingTimeoutPolicy::Close).
    PingTimeout,
    /// A server endpoint did not receive the gateway's 8-byte challenge within 5 s.
    HandshakeTimeout,
    /// The adapter reported that the socket closed or failed.
    SocketClosed,
    /// [`Endpoint::shutdown`](super::Endpoint::shutdown) was called.
    Shutdown,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(error) => write!(f, "protocol error: {error}"),
            Self::PingTimeout => f.write_str("the gateway did not answer a Ping in time"),
            Self::HandshakeTimeout => {
                f.write_str("the gateway's auth challenge did not arrive within 5 s")
            }
            Self::SocketClosed => f.write_str("the connection to the gateway was closed"),
            Self::Shutdown => f.write_str("the endpoint was shut down"),
        }
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Protocol(error) => Some(error),
            _ => None,
        }
    }
}

/// Error of [`Endpoint::handle_input`](super::Endpoint::handle_input) and
/// [`Endpoint::dial`](super::Endpoint::dial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointError {
    /// This input broke the protocol; the link is now closed and the socket should be closed.
    Protocol(ProtocolError),
    /// The endpoint had already closed, for the given reason; nothing was done.
    Closed(LinkError),
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(error) => write!(f, "{error}; the link to the gateway is closed"),
            Self::Closed(reason) => write!(f, "the endpoint is closed: {reason}"),
        }
    }
}

impl std::error::Error for EndpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Protocol(error) => Some(error),
            Self::Closed(reason) => Some(reason),
        }
    }
}

/// Why [`Endpoint::send`](super::Endpoint::send) refused a payload. Nothing was queued; in every case
/// other than `Closed` the endpoint and the vconn are unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The payload is above `max_packet - 4`; the gateway would drop the whole link for it. The vconn
    /// stays open (ENDPOINT.md §6.7): split the message or raise MaxPacket on both sides.
    TooLarge {
        /// The payload length.
        len: usize,
        /// The largest payload allowed.
        max: usize,
    },
    /// No open vconn has this id: it was never opened, or it was closed (locally or by the gateway).
    UnknownConn(u32),
    /// The endpoint has closed, for the given reason.
    Closed(LinkError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "payload of {len} bytes is above the limit of {max} bytes (MaxPacket - 4)"
            ),
            Self::UnknownConn(conn) => write!(f, "virtual connection {conn} is not open"),
            Self::Closed(reason) => write!(f, "the endpoint is closed: {reason}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Closed(reason) => Some(reason),
            _ => None,
        }
    }
}
