//! Errors of the endpoint library: one enum per operation, each saying what a user can do about it.
//!
//! [`DialError`], [`SendError`] and [`RecvError`] are the same in every runtime and live in
//! [`fastway_core::endpoint::api`]; only [`ConnectError`], which carries this runtime's IO errors, is
//! defined here.

use fastway_core::endpoint::{ConfigError, LinkError};
use fastway_core::snet::SnetClientError;
use std::fmt;
use std::io;

pub use fastway_core::endpoint::api::{DialError, RecvError, SendError};

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
