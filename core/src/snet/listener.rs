//! The server side (SNET.md §4, §5, §8): the session table and the per-socket handshake machine.
//!
//! A [`SnetListener`] owns every session of one listening port, keyed by ConnID, and the ConnID counter.
//! Each accepted socket gets a [`ServerHandshake`], which reads the type byte and runs either the
//! new-connection handshake or the reconnect against the listener's table.

use super::cipher::{Crypto, Key, proof};
use super::dh64::KeyPair;
use super::handshake::{
    NEWCONN_RESPONSE_LEN, PROOF_LEN, RECONN_RESPONSE_LEN, REFUSAL, TYPE_NEWCONN, TYPE_RECONN,
    proof_matches, take_array, take_u64,
};
use super::session::{LinkId, Role, Session, reconnect_gap};
use super::{CloseReason, HandshakeError, SnetConfig, SnetError};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use rand_core::Rng;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

/// The sessions of one snet listening port.
///
/// All stream operations of server-side sessions go through the listener, so it can keep its table and
/// its wait-timeout index exact. Keep it wherever the adapter keeps per-port state (behind one lock, or
/// owned by one task); none of its methods does IO.
#[derive(Debug)]
pub struct SnetListener {
    config: SnetConfig,
    sessions: HashMap<u64, Session>,
    last_conn_id: u64,
    /// `(deadline, ConnID)` of every session whose link is down.
    deadlines: BTreeSet<(Instant, u64)>,
}

impl SnetListener {
    /// An empty listener. ConnIDs start at 1.
    pub fn new(config: SnetConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
            last_conn_id: 0,
            deadlines: BTreeSet::new(),
        }
    }

    /// The listener's configuration.
    pub fn config(&self) -> &SnetConfig {
        &self.config
    }

    /// Starts the handshake of a socket accepted at `now`.
    pub fn accept(&self, now: Instant) -> ServerHandshake {
        ServerHandshake {
            state: ServerState::AwaitType,
            deadline: deadline_after(now, self.config.handshake_timeout),
            out: VecDeque::new(),
        }
    }

    /// A session, for inspection.
    pub fn session(&self, conn_id: u64) -> Option<&Session> {
        self.sessions.get(&conn_id)
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// [`Session::encrypt_outbound`] of session `conn_id`.
    pub fn encrypt_outbound(
        &mut self,
        conn_id: u64,
        link: LinkId,
        data: &mut [u8],
    ) -> Result<(), SnetError> {
        self.session_mut(conn_id)?.encrypt_outbound(link, data)
    }

    /// [`Session::decrypt_inbound`] of session `conn_id`.
    pub fn decrypt_inbound(
        &mut self,
        conn_id: u64,
        link: LinkId,
        data: &mut [u8],
    ) -> Result<(), SnetError> {
        self.session_mut(conn_id)?.decrypt_inbound(link, data)
    }

    /// [`Session::link_down`] of session `conn_id`: the socket of `link` failed. With a zero
    /// `ReconnWaitTimeout` the session is closed and removed at once.
    pub fn link_down(&mut self, conn_id: u64, link: LinkId, now: Instant) -> Result<(), SnetError> {
        self.update(conn_id, |s| s.link_down(link, now))?
    }

    /// Closes session `conn_id` and removes it; a later reconnect for it is refused. Returns whether it
    /// existed.
    pub fn close(&mut self, conn_id: u64) -> bool {
        self.update(conn_id, |s| s.close(CloseReason::Local))
            .is_ok()
    }

    /// The earliest wait-timeout deadline of a session whose link is down.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Closes and removes every session whose link has been down for `ReconnWaitTimeout`; returns their
    /// ConnIDs (the adapter drops the matching peers).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<u64> {
        let mut closed = Vec::new();
        while let Some(&(deadline, conn_id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let _ = self.update(conn_id, |s| s.handle_timeout(now));
            self.deadlines.remove(&(deadline, conn_id));
            if !self.sessions.contains_key(&conn_id) {
                closed.push(conn_id);
            }
        }
        closed
    }

    fn session_mut(&mut self, conn_id: u64) -> Result<&mut Session, SnetError> {
        self.sessions
            .get_mut(&conn_id)
            .ok_or(SnetError::UnknownSession(conn_id))
    }

    /// Runs `f` on a session, then keeps the deadline index in step and drops the session if it closed.
    fn update<T>(
        &mut self,
        conn_id: u64,
        f: impl FnOnce(&mut Session) -> T,
    ) -> Result<T, SnetError> {
        let session = self.session_mut(conn_id)?;
        let before = session.poll_timeout();
        let result = f(session);
        let after = session.poll_timeout();
        let closed = session.is_closed();
        if before != after || closed {
            if let Some(deadline) = before {
                self.deadlines.remove(&(deadline, conn_id));
            }
            if let (Some(deadline), false) = (after, closed) {
                self.deadlines.insert((deadline, conn_id));
            }
        }
        if closed {
            self.sessions.remove(&conn_id);
        }
        Ok(result)
    }

    fn next_conn_id(&mut self) -> u64 {
        // Never reused within the process; a u64 does not wrap in practice, but skip 0 and live ids anyway.
        loop {
            self.last_conn_id = self.last_conn_id.wrapping_add(1);
            if self.last_conn_id != 0 && !self.sessions.contains_key(&self.last_conn_id) {
                return self.last_conn_id;
            }
        }
    }
}

fn deadline_after(now: Instant, timeout: std::time::Duration) -> Option<Instant> {
    if timeout.is_zero() {
        None
    } else {
        now.checked_add(timeout)
    }
}

/// How a server-side handshake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A new stream was registered in the listener as `conn_id`, carried by this socket as `link`.
    /// Bytes left in the input buffer are stream bytes.
    NewSession {
        /// The new session's ConnID.
        conn_id: u64,
        /// This socket's link.
        link: LinkId,
    },
    /// This socket now carries the existing session `conn_id` as `link`. The old socket was retired
    /// (its calls fail with [`SnetError::LinkRetired`]): close it. The retransmission was yielded by
    /// `poll_transmit` already; the client's retransmission is at the front of the input buffer.
    Resumed {
        /// The resumed session's ConnID.
        conn_id: u64,
        /// This socket's link.
        link: LinkId,
    },
    /// The reconnect was refused: write the 24 zero bytes from `poll_transmit`, then close the socket.
    /// The session (if any) is untouched.
    Refused(HandshakeError),
    /// The handshake failed: close the socket, nothing more to send.
    Failed(HandshakeError),
}

/// The handshake of one accepted socket (both the new-connection handshake and the reconnect).
///
/// Drive it with [`handle_input`](Self::handle_input) whenever bytes arrive and
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout); after each call,
/// write everything [`poll_transmit`](Self::poll_transmit) yields, in order. It ends with one
/// [`ServerEvent`]; afterwards it ignores input.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    deadline: Option<Instant>,
    out: VecDeque<Bytes>,
}

#[derive(Debug)]
enum ServerState {
    AwaitType,
    AwaitClientPublic,
    AwaitProof {
        session: Box<Session>,
        challenge: [u8; 8],
    },
    AwaitReconnRequest,
    AwaitReconnProof {
        conn_id: u64,
        token: u64,
        key: Key,
        challenge: [u8; 8],
        resend: usize,
        reread: u64,
    },
    Reread {
        conn_id: u64,
        token: u64,
        remaining: u64,
    },
    Finished,
}

impl ServerHandshake {
    /// Bytes to write on the socket, in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    /// When the handshake times out (`HandshakeTimeout` for the type byte and a new connection,
    /// `ReconnWaitTimeout` for a reconnect; none when the timeout is 0).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ServerState::Finished => None,
            _ => self.deadline,
        }
    }

    /// Fails the handshake if its deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ServerEvent> {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                self.state = ServerState::Finished;
                Some(ServerEvent::Failed(HandshakeError::Timeout))
            }
            _ => None,
        }
    }

    /// True once the handshake has produced its event.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, ServerState::Finished)
    }

    /// Consumes handshake bytes from the front of `buf` (the socket's read buffer; keep appending to the
    /// same buffer). Returns the event that ends the handshake, or `None` while it needs more bytes.
    pub fn handle_input(
        &mut self,
        listener: &mut SnetListener,
        buf: &mut BytesMut,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Option<ServerEvent> {
        if let Some(event) = self.handle_timeout(now) {
            return Some(event);
        }
        loop {
            match self.step(listener, buf, now, rng) {
                Step::NeedMore => return None,
                Step::Continue => {}
                Step::Done(event) => {
                    self.state = ServerState::Finished;
                    return Some(event);
                }
            }
        }
    }

    fn step(
        &mut self,
        listener: &mut SnetListener,
        buf: &mut BytesMut,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Step {
        let config = listener.config;
        match &mut self.state {
            ServerState::Finished => Step::NeedMore,
            ServerState::AwaitType => {
                if buf.is_empty() {
                    return Step::NeedMore;
                }
                match buf.get_u8() {
                    TYPE_NEWCONN => {
                        self.deadline = deadline_after(now, config.handshake_timeout);
                        self.state = ServerState::AwaitClientPublic;
                    }
                    TYPE_RECONN => {
                        self.deadline = deadline_after(now, config.reconn_wait_timeout);
                        self.state = ServerState::AwaitReconnRequest;
                    }
                    other => {
                        return Step::Done(ServerEvent::Failed(HandshakeError::UnknownType(other)));
                    }
                }
                Step::Continue
            }
            ServerState::AwaitClientPublic => {
                if buf.len() < 8 {
                    return Step::NeedMore;
                }
                let client_public = take_u64(buf);
                if client_public == 0 {
                    return fail(HandshakeError::ZeroPublicKey);
                }
                let keys = KeyPair::generate(rng);
                let Ok(secret) = keys.secret(client_public) else {
                    return fail(HandshakeError::ZeroPublicKey);
                };
                let key = Key::from_secret(secret);
                let conn_id = listener.next_conn_id();
                let mut crypto = Crypto::new(&key, config.enable_crypt);
                let enc_conn_id = crypto.encrypt_conn_id(conn_id);
                let mut challenge = [0u8; 8];
                rng.fill_bytes(&mut challenge);
                let mut response = BytesMut::with_capacity(NEWCONN_RESPONSE_LEN);
                response.put_u64_le(keys.public());
                response.put_slice(&enc_conn_id);
                response.put_slice(&challenge);
                self.out.push_back(response.freeze());
                let session = Session::new(Role::Server, conn_id, key, crypto, &config);
                self.state = ServerState::AwaitProof {
                    session: Box::new(session),
                    challenge,
                };
                Step::Continue
            }
            ServerState::AwaitProof { session, challenge } => {
                if buf.len() < PROOF_LEN {
                    return Step::NeedMore;
                }
                let got: [u8; PROOF_LEN] = take_array(buf);
                if !proof_matches(&proof(challenge, session.key()), &got) {
                    return fail(HandshakeError::BadProof);
                }
                let conn_id = session.conn_id();
                let ServerState::AwaitProof { session, .. } =
                    std::mem::replace(&mut self.state, ServerState::Finished)
                else {
                    return fail(HandshakeError::Finished);
                };
                listener.sessions.insert(conn_id, *session);
                Step::Done(ServerEvent::NewSession {
                    conn_id,
                    link: LinkId(1),
                })
            }
            ServerState::AwaitReconnRequest => {
                if buf.len() < 40 {
                    return Step::NeedMore;
                }
                let request: [u8; 40] = take_array(buf);
                let mut fields = &request[..24];
                let conn_id = fields.get_u64_le();
                let client_write = fields.get_u64_le();
                let client_read = fields.get_u64_le();
                let Some(session) = listener.sessions.get(&conn_id) else {
                    return self.refuse(HandshakeError::UnknownConn(conn_id));
                };
                let mut digest = [0u8; PROOF_LEN];
                digest.copy_from_slice(&request[24..]);
                let key = *session.key();
                if !proof_matches(&proof(&request[..24], &key), &digest) {
                    return self.refuse(HandshakeError::BadRequestDigest);
                }
                let Some((resend, reread)) = reconnect_gap(session, client_write, client_read)
                else {
                    return self.refuse(HandshakeError::CountersOutOfRange);
                };
                let (server_write, server_read) = (session.write_count(), session.read_count());
                // Take the session: retire its current socket (DESIGN.md §3) and freeze its counters
                // until this reconnect completes or a newer one takes over.
                let Ok(token) = listener.update(conn_id, |s| s.begin_resume(now)) else {
                    return self.refuse(HandshakeError::UnknownConn(conn_id));
                };
                let mut challenge = [0u8; 8];
                rng.fill_bytes(&mut challenge);
                let mut response = BytesMut::with_capacity(RECONN_RESPONSE_LEN);
                response.put_u64_le(server_write);
                response.put_u64_le(server_read);
                response.put_slice(&challenge);
                self.out.push_back(response.freeze());
                self.state = ServerState::AwaitReconnProof {
                    conn_id,
                    token,
                    key,
                    challenge,
                    resend,
                    reread,
                };
                Step::Continue
            }
            ServerState::AwaitReconnProof {
                conn_id,
                token,
                key,
                challenge,
                resend,
                reread,
            } => {
                if buf.len() < PROOF_LEN {
                    return Step::NeedMore;
                }
                let got: [u8; PROOF_LEN] = take_array(buf);
                if !proof_matches(&proof(challenge, key), &got) {
                    return fail(HandshakeError::BadProof);
                }
                let (conn_id, token, resend, reread) = (*conn_id, *token, *resend, *reread);
                let Some(session) = listener.sessions.get(&conn_id) else {
                    return fail(HandshakeError::SessionClosed);
                };
                if !session.resume_token_is_current(token) {
                    return fail(HandshakeError::Superseded);
                }
                let Some(retransmit) = session.rewriter().rewrite_to_vec(resend) else {
                    return fail(HandshakeError::CountersOutOfRange);
                };
                if !retransmit.is_empty() {
                    self.out.push_back(Bytes::from(retransmit));
                }
                self.state = ServerState::Reread {
                    conn_id,
                    token,
                    remaining: reread,
                };
                Step::Continue
            }
            ServerState::Reread {
                conn_id,
                token,
                remaining,
            } => {
                // The client's retransmission is committed only once it has arrived in full (SNET.md
                // §9.7); until then it waits, unread, in `buf`.
                if (buf.len() as u64) < *remaining {
                    return Step::NeedMore;
                }
                let (conn_id, token) = (*conn_id, *token);
                match listener.sessions.get(&conn_id) {
                    Some(session) if session.resume_token_is_current(token) => {}
                    Some(_) => return fail(HandshakeError::Superseded),
                    None => return fail(HandshakeError::SessionClosed),
                }
                match listener.update(conn_id, Session::attach) {
                    Ok(link) => Step::Done(ServerEvent::Resumed { conn_id, link }),
                    Err(_) => fail(HandshakeError::SessionClosed),
                }
            }
        }
    }

    fn refuse(&mut self, reason: HandshakeError) -> Step {
        self.out.push_back(Bytes::from_static(&REFUSAL));
        Step::Done(ServerEvent::Refused(reason))
    }
}

enum Step {
    NeedMore,
    Continue,
    Done(ServerEvent),
}

fn fail(error: HandshakeError) -> Step {
    Step::Done(ServerEvent::Failed(error))
}
