//! Handshake messages (SNET.md §4, §5) and the client's two handshake machines: the new-connection
//! handshake ([`ClientHandshake`]) and the reconnect ([`ClientReconnect`]). The server's side is in
//! [`listener`](super::listener).

use super::cipher::{Crypto, Key, proof};
use super::dh64::KeyPair;
use super::session::{LinkId, LinkState, Role, Session, reconnect_gap};
use super::{CloseReason, HandshakeError, SnetConfig};
use crate::auth::constant_time_eq;
use bytes::{Buf, Bytes, BytesMut};
use rand_core::Rng;
use std::collections::VecDeque;

/// First byte of a new-connection request.
pub const TYPE_NEWCONN: u8 = 0x00;
/// First byte of a reconnect request.
pub const TYPE_RECONN: u8 = 0xFF;
/// Size of the new-connection request: type byte and the client's public key.
pub const NEWCONN_REQUEST_LEN: usize = 9;
/// Size of the server's new-connection response: public key, encrypted ConnID, challenge.
pub const NEWCONN_RESPONSE_LEN: usize = 24;
/// Size of a challenge proof, `MD5(Challenge ‖ Key)`.
pub const PROOF_LEN: usize = 16;
/// Size of a reconnect request: type byte, ConnID, Write, Read and the request digest.
pub const RECONN_REQUEST_LEN: usize = 41;
/// Size of the server's reconnect response: Write, Read, challenge (all zero = refusal).
pub const RECONN_RESPONSE_LEN: usize = 24;
/// The 24 zero bytes of a refused reconnect.
pub const REFUSAL: [u8; RECONN_RESPONSE_LEN] = [0; RECONN_RESPONSE_LEN];

pub(crate) fn take_u64(buf: &mut BytesMut) -> u64 {
    buf.get_u64_le()
}

pub(crate) fn take_array<const N: usize>(buf: &mut BytesMut) -> [u8; N] {
    let mut out = [0u8; N];
    buf.copy_to_slice(&mut out);
    out
}

/// The 40 bytes after the type byte of a reconnect request: `ConnID ‖ Write ‖ Read ‖ MD5(.. ‖ Key)`.
pub(crate) fn reconn_request_body(conn_id: u64, write: u64, read: u64, key: &Key) -> [u8; 40] {
    let mut body = [0u8; 40];
    body[..8].copy_from_slice(&conn_id.to_le_bytes());
    body[8..16].copy_from_slice(&write.to_le_bytes());
    body[16..24].copy_from_slice(&read.to_le_bytes());
    let digest = proof(&body[..24], key);
    body[24..].copy_from_slice(&digest);
    body
}

/// The client side of the new-connection handshake (SNET.md §4).
///
/// Write [`request`](Self::request), then feed the socket's bytes to
/// [`handle_input`](Self::handle_input) until it returns the connected session; write its `proof` and
/// the session is up (there is no confirmation from the server).
#[derive(Debug)]
pub struct ClientHandshake {
    keys: KeyPair,
    config: SnetConfig,
    finished: bool,
}

/// A finished client handshake.
#[derive(Debug)]
pub struct ClientConnected {
    /// The new stream.
    pub session: Session,
    /// The link of the socket the handshake ran on.
    pub link: LinkId,
    /// `MD5(Challenge ‖ Key)`: write these 16 bytes before any stream byte.
    pub proof: [u8; PROOF_LEN],
}

impl ClientHandshake {
    /// Starts a handshake with a fresh key pair (pass a cryptographically secure RNG).
    pub fn new(config: SnetConfig, rng: &mut impl Rng) -> Self {
        Self::with_key_pair(config, KeyPair::generate(rng))
    }

    /// Starts a handshake with a given key pair (tests, reproducing recorded handshakes).
    pub fn with_key_pair(config: SnetConfig, keys: KeyPair) -> Self {
        Self {
            keys,
            config,
            finished: false,
        }
    }

    /// The 9 bytes to send first: `0x00 ‖ ClientPublic`.
    pub fn request(&self) -> [u8; NEWCONN_REQUEST_LEN] {
        let mut out = [0u8; NEWCONN_REQUEST_LEN];
        out[0] = TYPE_NEWCONN;
        out[1..].copy_from_slice(&self.keys.public().to_le_bytes());
        out
    }

    /// Consumes the server's 24-byte response from the front of `buf` once it is complete (`Ok(None)`
    /// until then). Bytes after it are stream bytes: pass them to [`Session::decrypt_inbound`].
    pub fn handle_input(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<ClientConnected>, HandshakeError> {
        if self.finished {
            return Err(HandshakeError::Finished);
        }
        if buf.len() < NEWCONN_RESPONSE_LEN {
            return Ok(None);
        }
        self.finished = true;
        let server_public = take_u64(buf);
        let enc_conn_id: [u8; 8] = take_array(buf);
        let challenge: [u8; 8] = take_array(buf);
        let secret = self
            .keys
            .secret(server_public)
            .map_err(|_| HandshakeError::ZeroPublicKey)?;
        let key = Key::from_secret(secret);
        let mut crypto = Crypto::new(&key, self.config.enable_crypt);
        let conn_id = crypto.decrypt_conn_id(enc_conn_id);
        let session = Session::new(Role::Client, conn_id, key, crypto, &self.config);
        Ok(Some(ClientConnected {
            session,
            link: LinkId(1),
            proof: proof(&challenge, &key),
        }))
    }
}

/// The client side of one reconnect attempt (SNET.md §5).
///
/// Start it when the session's link is down (after [`Session::link_down`]). For each attempt: dial,
/// write [`request`](Self::request), feed the new socket's bytes to
/// [`handle_input`](Self::handle_input), and write whatever [`poll_transmit`](Self::poll_transmit)
/// yields (the proof, then the retransmitted bytes). It returns the new link once the server's
/// retransmission has arrived in full; the bytes left in the buffer (retransmission first) then go to
/// [`Session::decrypt_inbound`]. If the attempt's socket fails first, nothing was committed: wait
/// [`RETRY_INTERVAL`](super::RETRY_INTERVAL) and start a new `ClientReconnect`.
#[derive(Debug)]
pub struct ClientReconnect {
    conn_id: u64,
    request: [u8; RECONN_REQUEST_LEN],
    state: ReconnState,
    out: VecDeque<Bytes>,
}

#[derive(Debug)]
enum ReconnState {
    AwaitReply,
    Reread { remaining: u64 },
    Finished,
}

impl ClientReconnect {
    /// Prepares an attempt from the session's current counters. Fails unless `session` is a client
    /// session whose link is down.
    pub fn new(session: &Session) -> Result<Self, HandshakeError> {
        match session.link_state() {
            LinkState::Down { .. } if session.role() == Role::Client => {}
            LinkState::Closed(_) => return Err(HandshakeError::SessionClosed),
            _ => return Err(HandshakeError::NotReconnectable),
        }
        let body = reconn_request_body(
            session.conn_id(),
            session.write_count(),
            session.read_count(),
            session.key(),
        );
        let mut request = [0u8; RECONN_REQUEST_LEN];
        request[0] = TYPE_RECONN;
        request[1..].copy_from_slice(&body);
        Ok(Self {
            conn_id: session.conn_id(),
            request,
            state: ReconnState::AwaitReply,
            out: VecDeque::new(),
        })
    }

    /// The 41 bytes to send first on the new socket: `0xFF ‖ ConnID ‖ Write ‖ Read ‖ MD5`.
    pub fn request(&self) -> [u8; RECONN_REQUEST_LEN] {
        self.request
    }

    /// Bytes to write on the new socket, in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    /// Feeds bytes from the new socket. Returns the new link when the reconnect is complete.
    ///
    /// A refusal (24 zero bytes) or server counts that cannot be satisfied close the session for good
    /// ([`HandshakeError::Refused`], [`HandshakeError::CountersOutOfRange`]).
    pub fn handle_input(
        &mut self,
        session: &mut Session,
        buf: &mut BytesMut,
    ) -> Result<Option<LinkId>, HandshakeError> {
        if session.conn_id() != self.conn_id {
            return Err(HandshakeError::NotReconnectable);
        }
        loop {
            match self.state {
                ReconnState::Finished => return Err(HandshakeError::Finished),
                ReconnState::AwaitReply => {
                    if buf.len() < RECONN_RESPONSE_LEN {
                        return Ok(None);
                    }
                    self.state = ReconnState::Finished;
                    if session.is_closed() {
                        return Err(HandshakeError::SessionClosed);
                    }
                    let reply: [u8; RECONN_RESPONSE_LEN] = take_array(buf);
                    if reply == REFUSAL {
                        session.close(CloseReason::Refused);
                        return Err(HandshakeError::Refused);
                    }
                    let mut reply = &reply[..];
                    let server_write = reply.get_u64_le();
                    let server_read = reply.get_u64_le();
                    let challenge = reply;
                    let Some((resend, reread)) = reconnect_gap(session, server_write, server_read)
                    else {
                        session.close(CloseReason::CountersOutOfRange);
                        return Err(HandshakeError::CountersOutOfRange);
                    };
                    let retransmit = session
                        .rewriter()
                        .rewrite_to_vec(resend)
                        .ok_or(HandshakeError::CountersOutOfRange)?;
                    self.out
                        .push_back(Bytes::copy_from_slice(&proof(challenge, session.key())));
                    if !retransmit.is_empty() {
                        self.out.push_back(Bytes::from(retransmit));
                    }
                    self.state = ReconnState::Reread { remaining: reread };
                }
                ReconnState::Reread { remaining } => {
                    if (buf.len() as u64) < remaining {
                        return Ok(None);
                    }
                    self.state = ReconnState::Finished;
                    if session.is_closed() {
                        return Err(HandshakeError::SessionClosed);
                    }
                    return Ok(Some(session.attach()));
                }
            }
        }
    }
}

/// Checks a 16-byte proof in constant time.
pub(crate) fn proof_matches(expected: &[u8; PROOF_LEN], got: &[u8; PROOF_LEN]) -> bool {
    constant_time_eq(expected, got)
}
