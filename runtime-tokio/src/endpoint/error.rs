//! Errors of the endpoint library: one enum per operation, each saying what a user can do about it.

use fastway_core::endpoint::{self as core, ConfigError, LinkError};
use fastway_core::snet::SnetClientError;
use std::fmt;
use std::io;

/// Why [`Endpoint::connect_client`](super::Endpoint::connect_client) or
/// [`Endpoint::connect_server`](super::Endpoint::connect_server) failed. No endpoint exists and the
/// socket (if any) is closed.
#[derive(Debug)]
pub enum ConnectError {
    /// [`EndpointOptions::core`](super::EndpointOptions::core) is invalid; nothing was attempted.
    Config(ConfigError),
    /// The address did not resolve, or the TCP connect failed (refused, unreachable, ...).
    Io(io::Error),
    /// The TCP connect did not finish within
    /// [`EndpointOptions::connect_timeout`](super::EndpointOptions::connect_timeout).
    Timeout,
    /// Server role: the connection was made but the auth exchange did not complete (the gateway
    /// closed the socket, or sent no challenge within 5 s). A wrong key is *not* reported here: the
    /// gateway sends no verdict, it closes the link afterwards (see
    /// [`Endpoint::closed`](super::Endpoint::closed)).
    Handshake(LinkError),
    /// [`EndpointOptions::snet`](super::EndpointOptions::snet) is set and the first snet handshake
    /// failed: the gateway's answer was wrong or did not come within `handshake_timeout`. (If the
    /// gateway closes the socket instead, which is what a plain-TCP port does, this is `Io`.) The
    /// first connection is never retried.
    Snet(SnetClientError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => write!(f, "invalid endpoint configuration: {error}"),
            Self::Io(error) => write!(f, "could not connect to the gateway: {error}"),
            Self::Timeout => f.write_str("connecting to the gateway timed out"),
            Self::Handshake(reason) => write!(
                f,
                "the gateway's server authentication did not complete: {reason}"
            ),
            Self::Snet(error) => write!(f, "the snet handshake with the gateway failed: {error}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) => Some(error),
            Self::Io(error) => Some(error),
            Self::Timeout => None,
            Self::Handshake(reason) => Some(reason),
            Self::Snet(error) => Some(error),
        }
    }
}

impl From<ConfigError> for ConnectError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

impl From<io::Error> for ConnectError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// Why [`Endpoint::dial`](super::Endpoint::dial) returned no vconn. The endpoint itself is unaffected
/// unless the variant is `Closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialError {
    /// The gateway refused: nobody is registered under `remote`, or this client reached the gateway's
    /// per-client vconn limit.
    Refused {
        /// The id that was dialed.
        remote: u32,
    },
    /// No answer within [`EndpointOptions::dial_timeout`](super::EndpointOptions::dial_timeout). The
    /// dial is abandoned: if the gateway accepts it later, that vconn is closed at once.
    Timeout,
    /// The link to the gateway ended (before or during the dial), for this reason.
    Closed(LinkError),
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { remote } => write!(
                f,
                "the gateway refused the virtual connection to {remote} (no such peer, or too many connections)"
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

impl From<core::SendError> for SendError {
    fn from(error: core::SendError) -> Self {
        match error {
            core::SendError::TooLarge { len, max } => Self::TooLarge { len, max },
            core::SendError::UnknownConn(_) => Self::Closed,
            core::SendError::Closed(reason) => Self::Link(reason),
        }
    }
}

/// Why [`VConn::recv`](super::VConn::recv) returned no message. Every message that arrived before the
/// end was delivered first; once returned, the same error is returned by every later call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The vconn was closed, by the remote side or by [`VConn::close`](super::VConn::close): the
    /// normal end of stream.
    Closed,
    /// More messages arrived than [`EndpointOptions::recv_queue`](super::EndpointOptions::recv_queue)
    /// holds while nobody received them, so the vconn was closed (a Close went to the gateway). Receive
    /// faster, or raise `recv_queue`.
    Overflow,
    /// The link to the gateway ended, for this reason; every vconn on it ended with it.
    Link(LinkError),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the virtual connection is closed"),
            Self::Overflow => f.write_str(
                "the virtual connection was closed because its receive queue overflowed (messages were not received fast enough; see EndpointOptions::recv_queue)",
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
