//! The user-facing option and error types of the endpoint libraries, shared by every runtime.
//!
//! `fastway-tokio`, `fastway-smol` and `fastway-std` each wrap an [`Endpoint`](super::Endpoint) in
//! sockets and tasks or threads, and all three present the same settings and the same errors. Those
//! types hold no IO, so they live here once; each runtime re-exports them under the same names
//! (`fastway_tokio::EndpointOptions`, `fastway_smol::endpoint::DialError`, ...). Only the connect
//! error stays per runtime, since it carries that runtime's IO errors.
//!
//! Naming: [`SendError`] here is the error of a runtime's `VConn::send`, in terms a user acts on
//! (`TooLarge`, `Closed`, `Link`). It is distinct from the core machine's own
//! [`endpoint::SendError`](super::SendError), which speaks of vconn ids (`UnknownConn`); the
//! conversion between them is [`From`].
//!
//! In the docs below, `Endpoint`, `VConn`, `dial` and `recv` mean the runtime's types and methods.

use super::{EndpointConfig, LinkError};
use crate::snet::SnetConfig;
use std::fmt;
use std::time::Duration;

/// Settings of a runtime's `Endpoint`: the protocol core's [`EndpointConfig`] plus what the adapter
/// adds around it. `Default` gives sensible values for a game over the internet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointOptions {
    /// Protocol settings: `max_packet` (must match the gateway's MaxPacket), ping interval, ping
    /// timeout and what a ping timeout does. Default: the gateway's defaults (512 KiB, ping every
    /// 10 s, 5 s timeout, close the link on timeout).
    pub core: EndpointConfig,
    /// How long `Endpoint::dial` waits for the gateway's answer before giving up with
    /// [`DialError::Timeout`]. `None` waits as long as the link lives. Default 10 s.
    pub dial_timeout: Option<Duration>,
    /// Messages each vconn buffers until `VConn::recv` takes them. When a vconn's queue is full the
    /// next message closes that vconn (the gateway and the other side are told) rather than blocking
    /// every other vconn on the link or growing memory without bound; `recv` then reports
    /// [`RecvError::Overflow`] after the queued messages. Values below 1 count as 1. Default 4096.
    pub recv_queue: usize,
    /// How long the TCP connect may take. `None` leaves it to the operating system. Default 10 s.
    /// With [`snet`](Self::snet) it bounds each reconnect's TCP connect too.
    pub connect_timeout: Option<Duration>,
    /// Run the link over snet (SNET.md): a link that survives TCP failures. `None` (the default) is
    /// plain TCP. See the runtime's endpoint module docs.
    ///
    /// Use it when the gateway port you connect to is configured for snet (`ClientSnet*` /
    /// `ServerSnet*`) and your network drops connections (mobile players, flaky links): the
    /// endpoint then reconnects by itself and nothing is lost. **Both ends must agree**: snet on a
    /// plain port (or plain on an snet port) fails to connect, and `enable_crypt` is not negotiated,
    /// so it must equal the gateway's setting for that port (a mismatch garbles the stream, which
    /// shows up as a protocol error or a failed server authentication).
    ///
    /// `reconn_wait_timeout` is how long the endpoint keeps trying after the link breaks before it
    /// gives up; `handshake_timeout` bounds each attempt (and the first handshake);
    /// `rewriter_buffer_size` is how many sent bytes are kept for retransmission (it must cover what
    /// can be in flight when the link breaks, or the reconnect fails). Pair it with
    /// [`PingTimeoutPolicy::KeepOpen`](super::PingTimeoutPolicy::KeepOpen) so that a silent link
    /// reconnects instead of ending the endpoint.
    pub snet: Option<SnetConfig>,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        Self {
            core: EndpointConfig::default(),
            dial_timeout: Some(Duration::from_secs(10)),
            recv_queue: 4096,
            connect_timeout: Some(Duration::from_secs(10)),
            snet: None,
        }
    }
}

/// Why `Endpoint::dial` returned no vconn. The endpoint itself is unaffected unless the variant is
/// `Closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialError {
    /// The gateway refused: nobody is registered under `remote`, or this client reached the gateway's
    /// per-client vconn limit.
    Refused {
        /// The id that was dialed.
        remote: u32,
    },
    /// No answer within [`EndpointOptions::dial_timeout`]. The dial is abandoned: if the gateway
    /// accepts it later, that vconn is closed at once.
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

/// Why `VConn::send` (or `VConnSender::send`) did not queue a message. Nothing was sent; only
/// `TooLarge` leaves the vconn usable.
///
/// Not to be confused with the core machine's [`endpoint::SendError`](super::SendError), which it is
/// converted from.
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
    /// The vconn is closed: by `VConn::close`, by the remote side, or because its receive queue
    /// overflowed.
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

impl From<super::SendError> for SendError {
    fn from(error: super::SendError) -> Self {
        match error {
            super::SendError::TooLarge { len, max } => Self::TooLarge { len, max },
            super::SendError::UnknownConn(_) => Self::Closed,
            super::SendError::Closed(reason) => Self::Link(reason),
        }
    }
}

/// Why `VConn::recv` returned no message. Every message that arrived before the vconn ended is
/// delivered first, except after a local `VConn::close`, which discards them and makes `recv`
/// return [`Closed`](Self::Closed) at once. Once returned, the same error is returned by every later
/// call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The vconn was closed, by the remote side (or the gateway) or by `VConn::close`: the normal end
    /// of stream.
    Closed,
    /// More messages arrived than [`EndpointOptions::recv_queue`] holds while nobody received them,
    /// so the vconn was closed (a Close went to the gateway). Receive faster, or raise `recv_queue`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::SendError as CoreSendError;

    #[test]
    fn core_send_errors_map_to_user_send_errors() {
        assert_eq!(
            SendError::from(CoreSendError::TooLarge { len: 9, max: 4 }),
            SendError::TooLarge { len: 9, max: 4 }
        );
        assert_eq!(
            SendError::from(CoreSendError::UnknownConn(3)),
            SendError::Closed
        );
        assert_eq!(
            SendError::from(CoreSendError::Closed(LinkError::Shutdown)),
            SendError::Link(LinkError::Shutdown)
        );
    }

    #[test]
    fn default_options() {
        let options = EndpointOptions::default();
        assert_eq!(options.dial_timeout, Some(Duration::from_secs(10)));
        assert_eq!(options.recv_queue, 4096);
        assert_eq!(options.connect_timeout, Some(Duration::from_secs(10)));
        assert_eq!(options.snet, None);
    }
}
