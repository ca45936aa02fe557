//! Endpoint configuration: the role (client or authenticating server), limits and keepalive policy.

use crate::frame::DEFAULT_MAX_PACKET;
use std::fmt;
use std::time::Duration;

/// Which side of the gateway the endpoint talks to.
///
/// The role decides the first bytes on the wire: a client starts framing at byte 0, a server first
/// answers the gateway's auth challenge (PROTOCOL.md §5).
#[derive(Clone, PartialEq, Eq)]
pub enum Role {
    /// A game client on the gateway's client port. It has no handshake and never learns its own id.
    Client,
    /// A game server on the gateway's server port. It proves it knows `auth_key` and claims `id`.
    Server {
        /// The server id to register under; clients dial this id. Any `u32` is legal, 0 included.
        id: u32,
        /// The shared key (the gateway's `ServerAuthKey`), as raw bytes; may be empty.
        auth_key: Vec<u8>,
    },
}

impl fmt::Debug for Role {
    // The key is a secret: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client => f.write_str("Client"),
            Self::Server { id, .. } => f
                .debug_struct("Server")
                .field("id", id)
                .field("auth_key", &"<redacted>")
                .finish(),
        }
    }
}

/// What the endpoint does when the gateway does not answer a Ping within
/// [`EndpointConfig::ping_timeout`] (ENDPOINT.md §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PingTimeoutPolicy {
    /// Treat the link as dead: the endpoint closes with [`LinkError::PingTimeout`]. The safe default for
    /// a plain TCP link, where a silent gateway will not come back.
    ///
    /// [`LinkError::PingTimeout`]: super::LinkError::PingTimeout
    #[default]
    Close,
    /// Report [`Event::PingTimeout`] and keep pinging. Meant for links that can heal underneath the
    /// endpoint (snet): the adapter asks snet to reconnect and the vconns survive.
    ///
    /// [`Event::PingTimeout`]: super::Event::PingTimeout
    KeepOpen,
}

/// Tunables of an [`Endpoint`](super::Endpoint). `Default` gives the gateway's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The gateway's `MaxPacket`: the largest `Length` accepted in either direction. Inbound frames
    /// above it kill the link; outbound payloads are limited to `max_packet - 4` so that the gateway
    /// never drops us for a frame we let through (ENDPOINT.md §6.1). Default 524288.
    pub max_packet: u32,
    /// How long to wait after the last Ping reply (or after start) before sending the next Ping.
    /// Pings keep the gateway's idle timeout from cutting a quiet link and detect a dead one.
    /// `None` disables keepalive. Default 10 s.
    pub ping_interval: Option<Duration>,
    /// How long a Ping may stay unanswered before [`ping_timeout_policy`](Self::ping_timeout_policy)
    /// applies. Ignored when keepalive is disabled. Default 5 s.
    pub ping_timeout: Duration,
    /// What a ping timeout does. Default [`PingTimeoutPolicy::Close`].
    pub ping_timeout_policy: PingTimeoutPolicy,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            max_packet: DEFAULT_MAX_PACKET,
            ping_interval: Some(Duration::from_secs(10)),
            ping_timeout: Duration::from_secs(5),
            ping_timeout_policy: PingTimeoutPolicy::Close,
        }
    }
}

impl EndpointConfig {
    /// The smallest usable `max_packet`: the `Length` of Accept and Connect, the largest commands the
    /// gateway sends. Below it the endpoint could not even receive the answer to its own Dial.
    pub const MIN_MAX_PACKET: u32 = 13;

    /// The largest payload [`Endpoint::send`](super::Endpoint::send) accepts: `max_packet - 4`, because
    /// the gateway counts the 4-byte ConnID in `Length`.
    pub fn max_payload(&self) -> usize {
        self.max_packet.saturating_sub(4) as usize
    }

    /// Checks the settings, so that a mistake is reported when the endpoint is built rather than as a
    /// confusing failure later (the Go original crashed the process for some of these).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let min = Self::MIN_MAX_PACKET;
        if self.max_packet < min {
            return Err(ConfigError::MaxPacketTooSmall {
                max_packet: self.max_packet,
                min,
            });
        }
        if let Some(interval) = self.ping_interval {
            if interval.is_zero() {
                return Err(ConfigError::ZeroPingInterval);
            }
            if self.ping_timeout.is_zero() {
                return Err(ConfigError::ZeroPingTimeout);
            }
        }
        Ok(())
    }
}

/// Why an [`EndpointConfig`] was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// `max_packet` is too small to receive the gateway's commands.
    MaxPacketTooSmall {
        /// The configured value.
        max_packet: u32,
        /// The smallest usable value.
        min: u32,
    },
    /// `ping_interval` is `Some(0)`, which would ping in a tight loop.
    ZeroPingInterval,
    /// Keepalive is enabled with a zero `ping_timeout`, so every Ping would time out at once.
    ZeroPingTimeout,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxPacketTooSmall { max_packet, min } => write!(
                f,
                "max_packet {max_packet} is too small: the gateway's Accept and Connect commands need {min}"
            ),
            Self::ZeroPingInterval => {
                f.write_str("ping_interval must be above zero (use None to disable keepalive)")
            }
            Self::ZeroPingTimeout => {
                f.write_str("ping_timeout must be above zero when keepalive is enabled")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
