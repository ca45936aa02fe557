//! snet: a reconnectable, optionally RC4-encrypted byte stream (SNET.md), as sans-IO state machines.
//!
//! snet replaces a TCP stream transparently: the application sees one continuous, ordered, loss-free
//! byte stream across TCP reconnects. The client (dialer) always initiates reconnects; the server
//! (listener) waits for them.
//!
//! # Pieces
//! * [`Session`]: the per-connection stream state, both sides: counters, ciphers, rewrite buffer, link
//!   state and the reconnect wait timeout. Sockets are represented by [`LinkId`]s.
//! * Server: a [`SnetListener`] per listening port owns the sessions and the ConnID counter; each
//!   accepted socket runs a [`ServerHandshake`] against it, which ends in a [`ServerEvent`].
//! * Client: [`SnetClient`] (the whole client side: first handshake, stream, reconnect policy), built
//!   on [`ClientHandshake`] (new connection) and [`ClientReconnect`] (one reconnect attempt).
//!
//! Nothing here does IO or reads the clock: time is passed in, randomness too (pass a cryptographically
//! secure RNG), and bytes to write are pulled.
//!
//! # Rules for adapters
//! * Every byte read from the socket of link `L` goes through `decrypt_inbound(L, ..)` exactly once, in
//!   order; every byte written to it goes through `encrypt_outbound(L, ..)` right before the write.
//!   Both work in place on the adapter's own buffers.
//! * While a session's link is down, `encrypt_outbound` fails with [`SnetError::LinkDown`]: hold
//!   outbound bytes until a reconnect attaches a new link. A call with a replaced link fails with
//!   [`SnetError::LinkRetired`]: close that socket.
//! * A socket error, EOF or expired deadline is reported with `link_down`; the session then waits
//!   `ReconnWaitTimeout` for a reconnect (`poll_timeout` / `handle_timeout`) and closes when it expires.
//! * During a handshake, write everything `poll_transmit` yields, in order, before any stream byte.
//!   Bytes left in the read buffer after a handshake ends are stream bytes of the new link.
//!
//! # Server example
//! ```
//! use bytes::BytesMut;
//! use fastway_core::snet::{ServerEvent, SnetConfig, SnetListener};
//! # use std::time::Instant;
//! # fn example(rng: &mut impl rand_core::Rng, socket_bytes: &[u8]) {
//! let mut listener = SnetListener::new(SnetConfig::default());
//! let now = Instant::now();
//! let mut handshake = listener.accept(now);          // a socket was accepted
//! let mut read_buf = BytesMut::new();
//! read_buf.extend_from_slice(socket_bytes);          // whatever the socket delivered
//! let event = handshake.handle_input(&mut listener, &mut read_buf, now, rng);
//! while let Some(bytes) = handshake.poll_transmit() {
//!     let _ = bytes;                                 // write them to the socket
//! }
//! match event {
//!     None => { /* read more; call handle_timeout at handshake.poll_timeout() */ }
//!     Some(ServerEvent::NewSession { conn_id, link }) => {
//!         // register a peer for `conn_id`; the rest of `read_buf` is stream data:
//!         listener.decrypt_inbound(conn_id, link, &mut read_buf[..]).ok();
//!     }
//!     Some(ServerEvent::Resumed { conn_id, link }) => {
//!         // close the session's old socket, attach this one, then as above
//!         listener.decrypt_inbound(conn_id, link, &mut read_buf[..]).ok();
//!     }
//!     Some(ServerEvent::Refused(_)) => { /* after writing the 24 zero bytes: close */ }
//!     Some(ServerEvent::Failed(_)) => { /* close */ }
//! }
//! # }
//! ```
//!
//! # Client example
//! ```
//! use bytes::BytesMut;
//! use fastway_core::snet::{ClientHandshake, ClientReconnect, SnetConfig};
//! # use std::time::Instant;
//! # fn example(rng: &mut impl rand_core::Rng, reply: &[u8], reconnect_reply: &[u8])
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let mut hs = ClientHandshake::new(SnetConfig::default(), rng);
//! let _request = hs.request();                       // write these 9 bytes
//! let mut buf = BytesMut::from(reply);               // read until handle_input returns Some
//! let Some(connected) = hs.handle_input(&mut buf)? else { return Ok(()) };
//! let _proof = connected.proof;                      // write these 16 bytes
//! let (mut session, link) = (connected.session, connected.link);
//! let mut out = *b"hello";
//! session.encrypt_outbound(link, &mut out)?;         // then write `out`
//!
//! // The socket failed: report it, then reconnect (retry every RETRY_INTERVAL until success,
//! // a refusal, or session.handle_timeout closes the session).
//! session.link_down(link, Instant::now())?;
//! let mut attempt = ClientReconnect::new(&session)?;
//! let _request = attempt.request();                  // dial, write these 41 bytes
//! let mut buf = BytesMut::from(reconnect_reply);
//! let result = attempt.handle_input(&mut session, &mut buf);
//! while let Some(bytes) = attempt.poll_transmit() {
//!     let _ = bytes;                                 // proof, then retransmission
//! }
//! if let Some(new_link) = result? {
//!     session.decrypt_inbound(new_link, &mut buf[..])?; // retransmitted bytes first
//! }
//! # Ok(()) }
//! ```

mod cipher;
mod client;
pub mod dh64;
mod handshake;
mod listener;
mod rewriter;
mod session;

#[cfg(test)]
mod tests;

pub use cipher::{Key, proof};
pub use client::{SnetClient, SnetClientError, SocketRequest};
pub use handshake::{
    ClientConnected, ClientHandshake, ClientReconnect, NEWCONN_REQUEST_LEN, NEWCONN_RESPONSE_LEN,
    PROOF_LEN, RECONN_REQUEST_LEN, RECONN_RESPONSE_LEN, REFUSAL, TYPE_NEWCONN, TYPE_RECONN,
};
pub use listener::{ServerEvent, ServerHandshake, SnetListener};
pub use rewriter::Rewriter;
pub use session::{LinkId, LinkState, Role, Session};

use std::fmt;
use std::time::Duration;

/// Pause between a client's reconnect attempts (not before the first).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(3);

/// snet settings of one side. `enable_crypt` is not negotiated: both ends must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnetConfig {
    /// `EnableCrypt`: XOR application bytes with the RC4 keystream.
    pub enable_crypt: bool,
    /// `RewriterBufferSize`: how many recently written bytes are kept for retransmission.
    pub rewriter_buffer_size: usize,
    /// `HandshakeTimeout` (server): deadline for the type byte and the new-connection handshake; zero =
    /// none.
    pub handshake_timeout: Duration,
    /// `ReconnWaitTimeout`: how long a session waits for a reconnect before it closes (zero = closes at
    /// the first socket failure), and the server's deadline on a reconnect handshake (zero = none).
    pub reconn_wait_timeout: Duration,
}

impl Default for SnetConfig {
    /// fastway's defaults: no encryption, 64 KiB buffer, 10 s handshake, 60 s wait.
    fn default() -> Self {
        Self {
            enable_crypt: false,
            rewriter_buffer_size: 65536,
            handshake_timeout: Duration::from_secs(10),
            reconn_wait_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The link stayed down for `ReconnWaitTimeout` (or the timeout is zero).
    WaitTimeout,
    /// The server refused the client's reconnect: it no longer knows the session (it closed it, or
    /// restarted), or on its side the byte counts cannot be reconciled (more was in flight than its
    /// rewrite buffer holds).
    Refused,
    /// The server's counts during a reconnect cannot be satisfied (data would be lost).
    CountersOutOfRange,
    /// The application closed it.
    Local,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WaitTimeout => "no reconnect within the wait timeout",
            Self::Refused => {
                "the server refused the reconnect (session unknown to it, or more bytes in flight than its rewrite buffer holds)"
            }
            Self::CountersOutOfRange => {
                "the peer's byte counts cannot be reconciled (retransmission buffer too small)"
            }
            Self::Local => "closed locally",
        })
    }
}

/// Errors of stream operations on a [`Session`] or [`SnetListener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnetError {
    /// The link is down; the session waits for a reconnect. Retry after it resumes.
    LinkDown,
    /// This socket no longer carries the session (a reconnect replaced it): close it.
    LinkRetired,
    /// The session is closed.
    Closed(CloseReason),
    /// The listener has no session with this ConnID (never existed, or closed).
    UnknownSession(u64),
}

impl fmt::Display for SnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinkDown => f.write_str("snet link is down, waiting for a reconnect"),
            Self::LinkRetired => f.write_str("snet socket was replaced by a reconnect"),
            Self::Closed(reason) => write!(f, "snet session closed: {reason}"),
            Self::UnknownSession(id) => write!(f, "no snet session with id {id}"),
        }
    }
}

impl std::error::Error for SnetError {}

/// Why a handshake (new connection or reconnect, either side) did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The first byte was neither 0x00 (new connection) nor 0xFF (reconnect).
    UnknownType(u8),
    /// The peer's DH64 public key is zero.
    ZeroPublicKey,
    /// The answer to the challenge is wrong: the peer does not have the session key.
    BadProof,
    /// The handshake did not finish in time.
    Timeout,
    /// Refused: the reconnect names a session that does not exist.
    UnknownConn(u64),
    /// Refused: the reconnect request's digest is wrong (wrong key).
    BadRequestDigest,
    /// The byte counts of the two sides cannot be reconciled (server: refused; client: the session is
    /// closed).
    CountersOutOfRange,
    /// Client: the server refused the reconnect (24 zero bytes); the session is closed.
    Refused,
    /// Server: a newer reconnect of the same session took over.
    Superseded,
    /// The session closed while the reconnect was running.
    SessionClosed,
    /// Client: a reconnect needs a client session whose link is down.
    NotReconnectable,
    /// The handshake had already ended.
    Finished,
    /// The socket closed before the handshake finished.
    SocketClosed,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType(b) => write!(f, "snet handshake: unknown request type {b:#04x}"),
            Self::ZeroPublicKey => f.write_str("snet handshake: peer sent a zero public key"),
            Self::BadProof => f.write_str("snet handshake: wrong challenge answer (key mismatch)"),
            Self::Timeout => f.write_str("snet handshake timed out"),
            Self::UnknownConn(id) => write!(f, "snet reconnect refused: no session with id {id}"),
            Self::BadRequestDigest => f.write_str("snet reconnect refused: wrong request digest"),
            Self::CountersOutOfRange => {
                f.write_str("snet reconnect refused: byte counts cannot be reconciled")
            }
            Self::Refused => f.write_str("snet reconnect refused by the server"),
            Self::Superseded => f.write_str("snet reconnect superseded by a newer one"),
            Self::SessionClosed => f.write_str("snet session closed during the reconnect"),
            Self::SocketClosed => {
                f.write_str("snet handshake: the connection closed before it finished")
            }
            Self::NotReconnectable => {
                f.write_str("snet reconnect needs a client session whose link is down")
            }
            Self::Finished => f.write_str("snet handshake already finished"),
        }
    }
}

impl std::error::Error for HandshakeError {}
