//! Errors of the endpoint library: one enum per operation, each saying what a user can do about it.
//!
//! [`DialError`], [`SendError`] and [`RecvError`] are the same in every runtime and live in
//! [`fastway_core::endpoint::api`]; only [`ConnectError`], which carries this runtime's IO errors, is
//! defined here.

use fastway_core::endpoint::ConfigError;
use fastway_core::snet::SnetClientError;
use std::fmt;
use std::io;

pub use fastway_core::endpoint::api::{DialError, RecvError, SendError};

/// Why [`Endpoint::connect_client`](super::Endpoint::connect_client) or
/// [`Endpoint::connect_server`](super::Endpoint::connect_server) failed. No link exists afterwards.
#[derive(Debug)]
pub enum ConnectError {
    /// [`EndpointOptions::core`](super::EndpointOptions::core) is invalid; nothing was attempted.
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
            Self::Config(error) => write!(f, "invalid endpoint configuration: {error}"),
            Self::Resolve(error) => write!(f, "could not resolve the gateway address: {error}"),
            Self::NoAddress => f.write_str("the gateway address resolved to no socket address"),
            Self::Connect(error) => write!(f, "could not connect to the gateway: {error}"),
            Self::Timeout => f.write_str("connecting to the gateway timed out"),
            Self::HandshakeTimeout => f.write_str(
                "the gateway sent no auth challenge within 5 s (is this its server port?)",
            ),
            Self::Handshake(error) => write!(f, "the handshake with the gateway failed: {error}"),
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
