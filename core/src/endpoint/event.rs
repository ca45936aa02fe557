//! What the endpoint reports to its adapter.

use super::LinkError;
use bytes::Bytes;

/// Names one call to [`Endpoint::dial`](super::Endpoint::dial), so that the answer can be matched to
/// the caller even when several dials to the same remote are in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialId(pub(super) u64);

impl DialId {
    /// The raw number, unique per endpoint and increasing in call order; handy for logs and maps.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Why a vconn ended without a local [`Endpoint::close`](super::Endpoint::close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The gateway sent Close: the other member closed it, or left.
    Remote,
    /// The whole link ended; every vconn on it ended with it.
    Link(LinkError),
}

/// Something the adapter must act on; pulled with [`Endpoint::poll_event`](super::Endpoint::poll_event)
/// in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Server role only: the challenge arrived and the answer is queued, so the endpoint is usable. The
    /// gateway sends no acknowledgement; a wrong key shows only as the gateway closing the socket.
    Ready,
    /// A [`dial`](super::Endpoint::dial) succeeded.
    Dialed {
        /// Which dial.
        dial: DialId,
        /// The new vconn.
        conn: u32,
        /// The id that was dialed.
        remote: u32,
    },
    /// The gateway refused a dial (no such remote, or the client's vconn limit).
    DialRefused {
        /// Which dial.
        dial: DialId,
        /// The id that was dialed.
        remote: u32,
    },
    /// A dial was still pending when the link ended; no answer will come.
    DialFailed {
        /// Which dial.
        dial: DialId,
        /// The id that was dialed.
        remote: u32,
        /// Why the link ended.
        reason: LinkError,
    },
    /// The remote opened a vconn to us (gateway Connect).
    Incoming {
        /// The new vconn.
        conn: u32,
        /// The dialer: a client's physical id (for a server endpoint) or a server's id.
        remote: u32,
    },
    /// One message for an open vconn, possibly empty. An empty payload is a message, never end of
    /// stream.
    Data {
        /// The vconn.
        conn: u32,
        /// The payload: a view of the buffer passed to `handle_input`, not a copy.
        payload: Bytes,
    },
    /// A vconn ended without a local close. Its earlier `Data` events came first.
    Closed {
        /// The vconn; it is already gone from the table.
        conn: u32,
        /// Who ended it.
        reason: CloseReason,
    },
    /// A Ping went unanswered under [`PingTimeoutPolicy::KeepOpen`](super::PingTimeoutPolicy::KeepOpen).
    /// The endpoint stays open and keeps pinging; the adapter may reconnect the link (snet).
    PingTimeout,
    /// The link ended. Always the last event; every open vconn got `Closed` and every pending dial got
    /// `DialFailed` just before it. The adapter closes the socket (after flushing
    /// [`poll_transmit`](super::Endpoint::poll_transmit) on shutdown).
    LinkClosed {
        /// Why.
        reason: LinkError,
    },
}
