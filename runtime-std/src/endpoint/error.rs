//! The errors of the blocking endpoint API, one enum per operation so that a caller only matches the
//! cases that can actually happen.

use fastway_core::endpoint::{ConfigError, LinkError};
use std::fmt;
use std::io;

/// Why [`Endpoint::connect_client`](super::Endpoint::connect_client) or
/// [`Endpoint::connect_server`](super::Endpoint::connect_server) failed. Nothing is left running.
#[derive(Debug)]
pub enum ConnectError {
    /// The [`EndpointConfig`](super::EndpointConfig) is unusable; checked before any network work.
    Config(ConfigError),
    /// The address could not be resolved, or resolved to nothing.
    Resolve(io::Error),
    /// The TCP connection could not be made (refused, unreachable, or `connect_timeout` passed).
    Connect(io::Error),
    /// Server endpoints: the gateway's 8-byte auth challenge did not arrive within 5 s, the
    /// gateway closed the connection first, or the answer could not be written. Over snet (either
    /// role): the snet handshake failed too (no answer within `handshake_timeout`, the connection
    /// closed, or a bad answer; the inner error then wraps the
    /// [`SnetClientError`](super::SnetClientError)).
    Handshake(io::Error),
    /// The socket could not be set up (TCP_NODELAY, cloning the handle) or a driver thread could not
    /// be started.
    Io(io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => write!(f, "invalid endpoint configuration: {error}"),
            Self::Resolve(error) => write!(f, "could not resolve the gateway address: {error}"),
            Self::Connect(error) => write!(f, "could not connect to the gateway: {error}"),
            Self::Handshake(error) => {
                write!(f, "handshake with the gateway failed: {error}")
            }
            Self::Io(error) => write!(f, "could not set up the connection to the gateway: {error}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) => Some(error),
            Self::Resolve(error)
            | Self::Connect(error)
            | Self::Handshake(error)
            | Self::Io(error) => Some(error),
        }
    }
}

impl From<ConfigError> for ConnectError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

/// Why [`Endpoint::dial`](super::Endpoint::dial) did not open a vconn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialError {
    /// The gateway refused: no peer with that id is connected, or the client reached its vconn limit.
    Refused {
        /// The id that was dialed.
        remote: u32,
    },
    /// No answer came within [`EndpointOptions::dial_timeout`](super::EndpointOptions::dial_timeout).
    /// The dial is abandoned; if the gateway accepts it later, that vconn is closed at once.
    Timeout,
    /// The link to the gateway ended before the answer came (or had already ended).
    Closed(LinkError),
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { remote } => write!(
                f,
                "the gateway refused the dial to {remote} (no such peer, or the vconn limit is reached)"
            ),
            Self::Timeout => f.write_str("the gateway did not answer the dial in time"),
            Self::Closed(reason) => write!(f, "the endpoint is closed: {reason}"),
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

/// Why [`VConn::send`](super::VConn::send) did not queue a message. Only `TooLarge` leaves the vconn
/// usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The message is above `max_packet - 4` bytes, the most the gateway accepts. Nothing was sent
    /// and the vconn stays open: split the message or raise `max_packet` on both sides.
    TooLarge {
        /// The message length.
        len: usize,
        /// The largest message allowed.
        max: usize,
    },
    /// The vconn is closed (locally, by the remote, or because its receive queue overflowed).
    Closed,
    /// The link to the gateway has ended, for the given reason.
    Link(LinkError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "message of {len} bytes is above the limit of {max} bytes (max_packet - 4)"
            ),
            Self::Closed => f.write_str("the virtual connection is closed"),
            Self::Link(reason) => write!(f, "the endpoint is closed: {reason}"),
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

/// Why [`VConn::recv`](super::VConn::recv) has no more messages. Every message that arrived before
/// the end is delivered first, except after a local [`VConn::close`](super::VConn::close), which
/// discards them and makes `recv` return [`Closed`](Self::Closed) at once. Once returned, the same
/// error is returned by every later call (a later local close turns it into `Closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The vconn was closed: by the remote (every message it sent first was delivered) or locally.
    Closed,
    /// More than [`EndpointOptions::recv_queue`](super::EndpointOptions::recv_queue) messages were
    /// waiting, so the vconn was closed (the remote sees it close). Messages after the overflow were
    /// lost; read faster or raise `recv_queue`.
    Overflow,
    /// The link to the gateway ended, for the given reason.
    Link(LinkError),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the virtual connection is closed"),
            Self::Overflow => f.write_str(
                "the virtual connection was closed because its receive queue overflowed \
                 (messages arrived faster than they were received)",
            ),
            Self::Link(reason) => write!(f, "the endpoint is closed: {reason}"),
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
