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
/// [`Endpoint::connect_server`](super::Endpoint::connect_server) failed. No endpoint exists and
/// nothing is left running.
#[derive(Debug)]
pub enum ConnectError {
    /// [`EndpointOptions::core`](super::EndpointOptions::core) is invalid; nothing was attempted.
    Config(ConfigError),
    /// The address could not be resolved, or resolved to nothing.
    Resolve(io::Error),
    /// The TCP connection could not be made (refused, unreachable, or `connect_timeout` passed).
    Connect(io::Error),
    /// Server endpoints: the gateway's 8-byte auth challenge did not arrive within 5 s, the gateway
    /// closed the connection first, or the answer could not be written. Over snet: the socket failed
    /// or closed during the snet handshake (what a plain-TCP port does).
    Handshake(io::Error),
    /// [`EndpointOptions::snet`](super::EndpointOptions::snet) is set and the first snet handshake
    /// failed: the gateway's answer was wrong or did not come within `handshake_timeout`. (If the
    /// gateway closes the socket instead, this is `Handshake`.) The first connection is never
    /// retried.
    Snet(SnetClientError),
    /// The socket could not be set up (TCP_NODELAY, cloning the handle), the OS random number
    /// generator failed, or a driver thread could not be started.
    Io(io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => write!(f, "invalid endpoint configuration: {error}"),
            Self::Resolve(error) => write!(f, "could not resolve the gateway address: {error}"),
            Self::Connect(error) => write!(f, "could not connect to the gateway: {error}"),
            Self::Handshake(error) => write!(f, "the handshake with the gateway failed: {error}"),
            Self::Snet(error) => write!(
                f,
                "the snet handshake with the gateway failed: {error} (is snet enabled on that port?)"
            ),
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
            Self::Snet(error) => Some(error),
        }
    }
}

impl From<ConfigError> for ConnectError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}
