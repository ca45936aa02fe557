//! The errors of the async endpoint API. Each one says what went wrong in words a game developer
//! understands, and keeps the core's [`LinkError`] when the cause is the link ending, so the first cause
//! is never lost behind a bare "closed".

use fastway_core::endpoint::{ConfigError, LinkError};
use fastway_core::snet::SnetClientError;
use std::fmt;
use std::io;

/// Why [`Endpoint::connect_client`](super::Endpoint::connect_client) or
/// [`Endpoint::connect_server`](super::Endpoint::connect_server) failed. No link exists afterwards.
#[derive(Debug)]
pub enum ConnectError {
    /// The [`EndpointOptions`](super::EndpointOptions) are unusable (checked before any connecting).
    Config(ConfigError),
    /// The address could not be resolved.
    Resolve(io::Error),
    /// The address resolved to nothing.
    NoAddress,
    /// No resolved address accepted the TCP connection; this is the last address's error.
    Connect(io::Error),
    /// `connect_timeout` passed before a TCP connection was made.
    Timeout,
    /// Server role: the gateway's 8-byte challenge did not arrive within the core's 5 s deadline
    /// (is this the gateway's *server* port?).
    HandshakeTimeout,
    /// The socket failed or closed during the snet handshake or (server role) the auth
    /// challenge/response exchange.
    Handshake(io::Error),
    /// [`EndpointOptions::snet`](super::EndpointOptions::snet) is set and the snet handshake failed:
    /// no answer within `handshake_timeout` (is snet enabled on that gateway port?), or an invalid
    /// answer.
    Snet(SnetClientError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => write!(f, "invalid endpoint options: {error}"),
            Self::Resolve(error) => write!(f, "could not resolve the gateway address: {error}"),
            Self::NoAddress => f.write_str("the gateway address resolved to no socket address"),
            Self::Connect(error) => write!(f, "could not connect to the gateway: {error}"),
            Self::Timeout => f.write_str("connecting to the gateway timed out"),
            Self::HandshakeTimeout => f.write_str(
                "the gateway sent no auth challenge within 5 s (is this its server port?)",
            ),
            Self::Handshake(error) => {
                write!(f, "the handshake with the gateway failed: {error}")
            }
            Self::Snet(error) => write!(
                f,
                "the snet handshake with the gateway failed: {error} (is snet enabled on that port?)"
            ),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) => Some(error),
            Self::Resolve(error) | Self::Connect(error) | Self::Handshake(error) => Some(error),
            Self::Snet(error) => Some(error),
            Self::NoAddress | Self::Timeout | Self::HandshakeTimeout => None,
        }
    }
}

impl From<ConfigError> for ConnectError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

/// Why [`Endpoint::dial`](super::Endpoint::dial) produced no vconn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialError {
    /// The gateway refused: no server (or client) with this id is connected, or this client reached
    /// the gateway's vconn limit.
    Refused {
        /// The id that was dialed.
        remote: u32,
    },
    /// No answer within `dial_timeout`. The dial was cancelled; a late acceptance is closed at once.
    Timeout,
    /// The link ended before an answer came (or had already ended), for this reason.
    Closed(LinkError),
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { remote } => write!(f, "the gateway refused the dial to {remote}"),
            Self::Timeout => f.write_str("the gateway did not answer the dial in time"),
            Self::Closed(reason) => write!(f, "the link to the gateway is closed: {reason}"),
        }
    }
}

impl std::error::Error for DialError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Closed(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Why [`VConn::send`](super::VConn::send) did not queue a message. Nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The message is above `max_packet - 4` bytes, the most the gateway accepts. The vconn stays
    /// open and usable: split the message, or raise `max_packet` on both the gateway and here.
    TooLarge {
        /// The message length.
        len: usize,
        /// The largest message allowed.
        max: usize,
    },
    /// The vconn is closed: by [`VConn::close`](super::VConn::close), by the remote side, or because
    /// its receive queue overflowed.
    Closed,
    /// The link to the gateway ended, for this reason; every vconn on it is gone.
    Link(LinkError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "message of {len} bytes is above the limit of {max} bytes (max_packet - 4); the connection stays open"
            ),
            Self::Closed => f.write_str("the virtual connection is closed"),
            Self::Link(reason) => write!(f, "the link to the gateway is closed: {reason}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Link(reason) => Some(reason),
            _ => None,
        }
    }
}

impl From<fastway_core::endpoint::SendError> for SendError {
    fn from(error: fastway_core::endpoint::SendError) -> Self {
        use fastway_core::endpoint::SendError as Core;
        match error {
            Core::TooLarge { len, max } => Self::TooLarge { len, max },
            Core::UnknownConn(_) => Self::Closed,
            Core::Closed(reason) => Self::Link(reason),
        }
    }
}

/// Why [`VConn::recv`](super::VConn::recv) returned no message. Every message that arrived before the
/// vconn ended has been delivered first, except after a local [`VConn::close`](super::VConn::close),
/// which discards them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The vconn was closed: by the other member (or the gateway), or locally with
    /// [`VConn::close`](super::VConn::close).
    Closed,
    /// More than `recv_queue` messages were waiting unread, so the vconn was closed (as the original
    /// gateway library does) rather than letting one slow reader grow memory without bound.
    Overflow,
    /// The whole link to the gateway ended, for this reason.
    Link(LinkError),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the virtual connection is closed"),
            Self::Overflow => f.write_str(
                "the virtual connection was closed because its receive queue overflowed \
                 (messages were not read fast enough; raise recv_queue or read sooner)",
            ),
            Self::Link(reason) => write!(f, "the link to the gateway is closed: {reason}"),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Link(reason) => Some(reason),
            _ => None,
        }
    }
}
