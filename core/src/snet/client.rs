//! The whole client side of snet as one machine: first handshake, stream, and the reconnect policy.
//!
//! [`ClientHandshake`] and [`ClientReconnect`] are single steps; [`SnetClient`] strings them together
//! the way a client that "reconnects by itself" needs (SNET.md §5, §7), so an endpoint runtime only
//! opens sockets when told and moves bytes:
//!
//! ```text
//! new()                → connect a socket, write poll_transmit()      (0x00 ‖ ClientPublic)
//! socket bytes         → handle_input(raw, plain, now); write poll_transmit(); `plain` is the stream
//! outbound stream      → encrypt(data) while is_up(), then write it
//! socket failed        → socket_closed(now)
//! at poll_timeout()    → handle_timeout(now): Open = connect a new socket and write poll_transmit();
//!                        Abandon = close the current attempt's socket
//! ```
//!
//! Policy: the first reconnect attempt starts at once after a failure, later ones every
//! [`RETRY_INTERVAL`]; an attempt that gets no complete answer within the handshake timeout is
//! abandoned; the session gives up for good when its link has been down for `ReconnWaitTimeout`, when
//! the server refuses the reconnect, or when the byte counts cannot be reconciled. The first
//! connection is not retried: if it fails, the connect failed.

use super::handshake::{ClientHandshake, ClientReconnect};
use super::session::{LinkId, LinkState, Session};
use super::{CloseReason, HandshakeError, RETRY_INTERVAL, SnetConfig, SnetError};
use bytes::{Bytes, BytesMut};
use rand_core::Rng;
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

/// What the runtime must do with sockets after [`SnetClient::handle_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRequest {
    /// Nothing.
    None,
    /// A reconnect attempt is due: open a new socket to the same address, then write
    /// [`SnetClient::poll_transmit`]. If the connect fails, call [`SnetClient::socket_closed`].
    Open,
    /// Close the socket of the current handshake or attempt; it took too long (or the session ended).
    Abandon,
}

/// Why a [`SnetClient`] ended for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnetClientError {
    /// The first handshake failed (wrong answer, timeout, or the socket closed before it finished).
    Handshake(HandshakeError),
    /// The session ended: wait timeout, refused reconnect, irreconcilable counts, or closed locally.
    Closed(CloseReason),
}

impl fmt::Display for SnetClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(err) => err.fmt(f),
            Self::Closed(reason) => write!(f, "snet session closed: {reason}"),
        }
    }
}

impl std::error::Error for SnetClientError {}

#[derive(Debug)]
enum State {
    /// First socket: handshake running.
    Connecting {
        handshake: ClientHandshake,
        deadline: Option<Instant>,
    },
    /// The stream flows on `link`.
    Up {
        session: Box<Session>,
        link: LinkId,
    },
    /// No socket; the next attempt starts at `next_attempt`.
    Down {
        session: Box<Session>,
        next_attempt: Instant,
    },
    /// A reconnect attempt runs on a new socket.
    Reconnecting {
        session: Box<Session>,
        attempt: ClientReconnect,
        deadline: Option<Instant>,
    },
    Closed(SnetClientError),
}

/// The client side of an snet stream, reconnecting by itself. See the module docs.
#[derive(Debug)]
pub struct SnetClient {
    config: SnetConfig,
    state: State,
    out: VecDeque<Bytes>,
    /// Reconnects that brought the stream back up.
    reconnects: u64,
}

impl SnetClient {
    /// Starts the first handshake at `now` (pass a cryptographically secure RNG for the key pair).
    /// Connect a socket and write [`poll_transmit`](Self::poll_transmit).
    pub fn new(config: SnetConfig, now: Instant, rng: &mut impl Rng) -> Self {
        Self::with_handshake(config, now, ClientHandshake::new(config, rng))
    }

    /// [`new`](Self::new) with a prepared handshake (fixed keys in tests).
    pub fn with_handshake(config: SnetConfig, now: Instant, handshake: ClientHandshake) -> Self {
        let mut out = VecDeque::new();
        out.push_back(Bytes::copy_from_slice(&handshake.request()));
        Self {
            state: State::Connecting {
                handshake,
                deadline: deadline_after(now, config),
            },
            config,
            out,
            reconnects: 0,
        }
    }

    /// Bytes to write on the current socket before any stream byte (handshake, proof,
    /// retransmission), in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    /// The settings this client runs with.
    pub fn config(&self) -> &SnetConfig {
        &self.config
    }

    /// True when [`poll_transmit`](Self::poll_transmit) has bytes waiting (without taking them).
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// True while stream bytes may be written (the link is up).
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    /// True once the stream ended for good; see [`close_reason`](Self::close_reason).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Why the stream ended, once it has.
    pub fn close_reason(&self) -> Option<SnetClientError> {
        match self.state {
            State::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// How many reconnects have brought the stream back up after a socket failure (the first
    /// handshake not counted).
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The session's ConnID, once the first handshake finished.
    pub fn conn_id(&self) -> Option<u64> {
        self.session().map(Session::conn_id)
    }

    fn session(&self) -> Option<&Session> {
        match &self.state {
            State::Up { session, .. }
            | State::Down { session, .. }
            | State::Reconnecting { session, .. } => Some(session),
            State::Connecting { .. } | State::Closed(_) => None,
        }
    }

    /// Feeds bytes read from the current socket (`raw`, consumed from the front); decrypted stream
    /// bytes are appended to `plain`. Afterwards write [`poll_transmit`](Self::poll_transmit).
    ///
    /// An error means the stream ended for good (also available from
    /// [`close_reason`](Self::close_reason)): close the socket.
    pub fn handle_input(
        &mut self,
        raw: &mut BytesMut,
        plain: &mut BytesMut,
        now: Instant,
    ) -> Result<(), SnetClientError> {
        let _ = now;
        let state = std::mem::replace(
            &mut self.state,
            State::Closed(SnetClientError::Closed(CloseReason::Local)),
        );
        self.state = match state {
            State::Connecting {
                mut handshake,
                deadline,
            } => match handshake.handle_input(raw) {
                Ok(None) => State::Connecting {
                    handshake,
                    deadline,
                },
                Ok(Some(connected)) => {
                    self.out.push_back(Bytes::copy_from_slice(&connected.proof));
                    State::Up {
                        session: Box::new(connected.session),
                        link: connected.link,
                    }
                }
                Err(err) => State::Closed(SnetClientError::Handshake(err)),
            },
            State::Reconnecting {
                mut session,
                mut attempt,
                deadline,
            } => {
                let result = attempt.handle_input(&mut session, raw);
                while let Some(bytes) = attempt.poll_transmit() {
                    self.out.push_back(bytes);
                }
                match result {
                    Ok(None) => State::Reconnecting {
                        session,
                        attempt,
                        deadline,
                    },
                    Ok(Some(link)) => {
                        self.reconnects += 1;
                        State::Up { session, link }
                    }
                    Err(err) => State::Closed(closed_by(&session, err)),
                }
            }
            other => other,
        };
        match &mut self.state {
            State::Up { session, link } => {
                let mut chunk = raw.split();
                match session.decrypt_inbound(*link, &mut chunk[..]) {
                    Ok(()) => {
                        plain.unsplit(chunk);
                        Ok(())
                    }
                    Err(err) => {
                        let reason = closed_error(err);
                        self.state = State::Closed(reason);
                        Err(reason)
                    }
                }
            }
            State::Closed(reason) => {
                raw.clear();
                self.out.clear();
                Err(*reason)
            }
            State::Down { .. } => {
                // Bytes from a socket that already failed carry nothing of the stream.
                raw.clear();
                Ok(())
            }
            State::Connecting { .. } | State::Reconnecting { .. } => Ok(()),
        }
    }

    /// Encrypts (with `EnableCrypt`) outbound stream bytes in place and keeps them for retransmission;
    /// write them right after. Fails with [`SnetError::LinkDown`] while no link is up: hold the bytes.
    pub fn encrypt(&mut self, data: &mut [u8]) -> Result<(), SnetError> {
        match &mut self.state {
            State::Up { session, link } => session.encrypt_outbound(*link, data),
            State::Closed(SnetClientError::Closed(reason)) => Err(SnetError::Closed(*reason)),
            State::Closed(SnetClientError::Handshake(_)) => {
                Err(SnetError::Closed(CloseReason::Local))
            }
            _ => Err(SnetError::LinkDown),
        }
    }

    /// The current socket failed, closed, or could not be opened. The first connection fails for
    /// good; an established stream waits and reconnects.
    pub fn socket_closed(&mut self, now: Instant) {
        self.out.clear();
        let state = std::mem::replace(
            &mut self.state,
            State::Closed(SnetClientError::Closed(CloseReason::Local)),
        );
        self.state = match state {
            State::Connecting { .. } => {
                State::Closed(SnetClientError::Handshake(HandshakeError::SocketClosed))
            }
            State::Up { mut session, link } => match session.link_down(link, now) {
                Ok(()) => State::Down {
                    session,
                    next_attempt: now,
                },
                Err(err) => State::Closed(closed_error(err)),
            },
            State::Reconnecting { session, .. } => State::Down {
                session,
                next_attempt: now + RETRY_INTERVAL,
            },
            other => other,
        };
    }

    /// Drops the current link on purpose (e.g. the endpoint's pings go unanswered, SNET.md's
    /// `TryReconn`): the runtime closes the socket and the client reconnects. Returns whether a link
    /// was up.
    pub fn force_reconnect(&mut self, now: Instant) -> bool {
        let up = self.is_up();
        if up {
            self.socket_closed(now);
        }
        up
    }

    /// Ends the stream locally (the peer sees a socket close, as with any snet close).
    pub fn close(&mut self) {
        if !self.is_closed() {
            self.out.clear();
            self.state = State::Closed(SnetClientError::Closed(CloseReason::Local));
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Connecting { deadline, .. } => *deadline,
            State::Up { .. } | State::Closed(_) => None,
            State::Down {
                session,
                next_attempt,
            } => earliest(Some(*next_attempt), session.poll_timeout()),
            State::Reconnecting {
                session, deadline, ..
            } => earliest(*deadline, session.poll_timeout()),
        }
    }

    /// Runs the reconnect policy: gives up after the wait timeout, abandons a slow attempt, starts the
    /// next attempt when it is due.
    pub fn handle_timeout(&mut self, now: Instant) -> SocketRequest {
        let state = std::mem::replace(
            &mut self.state,
            State::Closed(SnetClientError::Closed(CloseReason::Local)),
        );
        let (state, request) = self.step_timeout(state, now);
        self.state = state;
        if request == SocketRequest::Abandon || self.is_closed() {
            self.out.clear();
        }
        request
    }

    fn step_timeout(&mut self, state: State, now: Instant) -> (State, SocketRequest) {
        match state {
            State::Connecting { deadline, .. } if deadline.is_some_and(|d| now >= d) => (
                State::Closed(SnetClientError::Handshake(HandshakeError::Timeout)),
                SocketRequest::Abandon,
            ),
            State::Down {
                mut session,
                next_attempt,
            } => {
                if let Err(err) = session.handle_timeout(now) {
                    return (State::Closed(closed_error(err)), SocketRequest::None);
                }
                if now < next_attempt {
                    return (
                        State::Down {
                            session,
                            next_attempt,
                        },
                        SocketRequest::None,
                    );
                }
                match ClientReconnect::new(&session) {
                    Ok(attempt) => {
                        self.out
                            .push_back(Bytes::copy_from_slice(&attempt.request()));
                        let deadline = deadline_after(now, self.config);
                        (
                            State::Reconnecting {
                                session,
                                attempt,
                                deadline,
                            },
                            SocketRequest::Open,
                        )
                    }
                    Err(err) => (State::Closed(closed_by(&session, err)), SocketRequest::None),
                }
            }
            State::Reconnecting {
                mut session,
                attempt,
                deadline,
            } => {
                if let Err(err) = session.handle_timeout(now) {
                    return (State::Closed(closed_error(err)), SocketRequest::Abandon);
                }
                if deadline.is_some_and(|d| now >= d) {
                    let next_attempt = now + RETRY_INTERVAL;
                    return (
                        State::Down {
                            session,
                            next_attempt,
                        },
                        SocketRequest::Abandon,
                    );
                }
                (
                    State::Reconnecting {
                        session,
                        attempt,
                        deadline,
                    },
                    SocketRequest::None,
                )
            }
            other => (other, SocketRequest::None),
        }
    }
}

fn deadline_after(now: Instant, config: SnetConfig) -> Option<Instant> {
    (!config.handshake_timeout.is_zero()).then(|| now + config.handshake_timeout)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn closed_error(err: SnetError) -> SnetClientError {
    match err {
        SnetError::Closed(reason) => SnetClientError::Closed(reason),
        _ => SnetClientError::Closed(CloseReason::Local),
    }
}

/// The end state after a failed reconnect: the session's own reason when it closed itself.
fn closed_by(session: &Session, err: HandshakeError) -> SnetClientError {
    match session.link_state() {
        LinkState::Closed(reason) => SnetClientError::Closed(reason),
        _ => SnetClientError::Handshake(err),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::snet::{LinkId, ServerEvent, ServerHandshake, SnetListener};
    use crate::test_support::TestRng;
    use std::time::Duration;

    /// A server-side socket in memory: its handshake, then its link.
    struct ServerSocket {
        handshake: ServerHandshake,
        link: Option<(u64, LinkId)>,
        inbox: BytesMut,
    }

    struct World {
        listener: SnetListener,
        client: SnetClient,
        socket: ServerSocket,
        rng: TestRng,
        now: Instant,
        /// Stream bytes each side received, decrypted.
        client_got: BytesMut,
        server_got: Vec<u8>,
    }

    fn config(encrypt: bool) -> SnetConfig {
        SnetConfig {
            enable_crypt: encrypt,
            rewriter_buffer_size: 1024,
            handshake_timeout: Duration::from_secs(5),
            reconn_wait_timeout: Duration::from_secs(30),
        }
    }

    impl World {
        fn new(encrypt: bool) -> Self {
            let now = Instant::now();
            let mut rng = TestRng::new(5);
            let listener = SnetListener::new(config(encrypt));
            let socket = ServerSocket {
                handshake: listener.accept(now),
                link: None,
                inbox: BytesMut::new(),
            };
            let client = SnetClient::new(config(encrypt), now, &mut rng);
            let mut world = Self {
                listener,
                client,
                socket,
                rng,
                now,
                client_got: BytesMut::new(),
                server_got: Vec::new(),
            };
            world.pump();
            world
        }

        fn new_socket(&mut self) {
            self.socket = ServerSocket {
                handshake: self.listener.accept(self.now),
                link: None,
                inbox: BytesMut::new(),
            };
        }

        /// Moves bytes both ways until quiet.
        fn pump(&mut self) {
            for _ in 0..10 {
                let mut to_server = Vec::new();
                while let Some(bytes) = self.client.poll_transmit() {
                    to_server.extend_from_slice(&bytes);
                }
                self.socket.inbox.extend_from_slice(&to_server);
                let mut to_client = Vec::new();
                if self.socket.link.is_none() {
                    let event = self.socket.handshake.handle_input(
                        &mut self.listener,
                        &mut self.socket.inbox,
                        self.now,
                        &mut self.rng,
                    );
                    while let Some(bytes) = self.socket.handshake.poll_transmit() {
                        to_client.extend_from_slice(&bytes);
                    }
                    match event {
                        Some(ServerEvent::NewSession { conn_id, link })
                        | Some(ServerEvent::Resumed { conn_id, link }) => {
                            self.socket.link = Some((conn_id, link));
                        }
                        _ => {}
                    }
                }
                if let Some((conn_id, link)) = self.socket.link {
                    let mut chunk = self.socket.inbox.split();
                    if self
                        .listener
                        .decrypt_inbound(conn_id, link, &mut chunk[..])
                        .is_ok()
                    {
                        self.server_got.extend_from_slice(&chunk);
                    }
                }
                if to_client.is_empty() && to_server.is_empty() {
                    return;
                }
                let mut raw = BytesMut::from(&to_client[..]);
                let _ = self
                    .client
                    .handle_input(&mut raw, &mut self.client_got, self.now);
            }
        }

        fn client_writes(&mut self, data: &[u8]) -> bool {
            let mut bytes = data.to_vec();
            if self.client.encrypt(&mut bytes).is_err() {
                return false;
            }
            self.socket.inbox.extend_from_slice(&bytes);
            self.pump();
            true
        }

        /// The server writes stream bytes; `deliver` says whether they reach the client socket.
        fn server_writes(&mut self, data: &[u8], deliver: bool) {
            let (conn_id, link) = self.socket.link.expect("server link");
            let mut bytes = data.to_vec();
            self.listener
                .encrypt_outbound(conn_id, link, &mut bytes)
                .unwrap();
            if deliver {
                let mut raw = BytesMut::from(&bytes[..]);
                self.client
                    .handle_input(&mut raw, &mut self.client_got, self.now)
                    .unwrap();
            }
        }

        /// Both sides notice the socket died.
        fn cut(&mut self) {
            if let Some((conn_id, link)) = self.socket.link {
                let _ = self.listener.link_down(conn_id, link, self.now);
            }
            self.client.socket_closed(self.now);
        }
    }

    #[test]
    fn first_handshake_brings_the_stream_up_both_ways() {
        for encrypt in [false, true] {
            let mut w = World::new(encrypt);
            assert!(w.client.is_up());
            assert_eq!(w.client.conn_id(), Some(1));
            assert_eq!(w.client.reconnects(), 0);
            assert!(w.client_writes(b"hello server"));
            assert_eq!(w.server_got, b"hello server");
            w.server_writes(b"hello client", true);
            assert_eq!(&w.client_got[..], b"hello client");
        }
    }

    #[test]
    fn a_cut_link_reconnects_at_once_and_resends_what_the_other_side_missed() {
        for encrypt in [false, true] {
            let mut w = World::new(encrypt);
            assert!(w.client_writes(b"one "));
            w.server_writes(b"lost ", false);
            // The client's bytes are encrypted and kept, but never reach the server.
            let mut lost = b"two ".to_vec();
            w.client.encrypt(&mut lost).unwrap();
            w.cut();
            assert!(!w.client.is_up());
            let mut held = b"three".to_vec();
            assert_eq!(w.client.encrypt(&mut held), Err(SnetError::LinkDown));
            assert_eq!(w.client.handle_timeout(w.now), SocketRequest::Open);
            w.new_socket();
            w.pump();
            assert!(w.client.is_up(), "{:?}", w.client.state);
            assert_eq!(w.client.reconnects(), 1);
            assert!(w.client_writes(b"three"));
            assert_eq!(w.server_got, b"one two three");
            assert_eq!(&w.client_got[..], b"lost ");
        }
    }

    #[test]
    fn failed_attempts_retry_every_interval_until_the_wait_timeout() {
        let mut w = World::new(false);
        w.cut();
        assert_eq!(w.client.handle_timeout(w.now), SocketRequest::Open);
        w.client.socket_closed(w.now); // connect refused
        assert_eq!(w.client.poll_timeout(), Some(w.now + RETRY_INTERVAL));
        assert_eq!(
            w.client.handle_timeout(w.now + Duration::from_secs(1)),
            SocketRequest::None
        );
        w.now += RETRY_INTERVAL;
        assert_eq!(w.client.handle_timeout(w.now), SocketRequest::Open);
        // This attempt's server never answers: abandoned at the handshake timeout.
        w.now += Duration::from_secs(5);
        assert_eq!(w.client.handle_timeout(w.now), SocketRequest::Abandon);
        assert!(!w.client.is_closed());
        w.now += Duration::from_secs(30);
        assert_eq!(w.client.handle_timeout(w.now), SocketRequest::None);
        assert_eq!(
            w.client.close_reason(),
            Some(SnetClientError::Closed(CloseReason::WaitTimeout))
        );
    }

    #[test]
    fn a_refused_reconnect_ends_the_stream() {
        let mut w = World::new(false);
        w.cut();
        w.listener.close(1); // the server forgot the session
        assert_eq!(w.client.handle_timeout(w.now), SocketRequest::Open);
        w.new_socket();
        w.pump();
        assert_eq!(
            w.client.close_reason(),
            Some(SnetClientError::Closed(CloseReason::Refused))
        );
    }

    #[test]
    fn a_first_connection_failure_is_final() {
        let mut rng = TestRng::new(1);
        let now = Instant::now();
        let mut client = SnetClient::new(config(false), now, &mut rng);
        client.socket_closed(now);
        assert!(client.is_closed());
        let mut slow = SnetClient::new(config(false), now, &mut rng);
        assert_eq!(
            slow.handle_timeout(now + Duration::from_secs(5)),
            SocketRequest::Abandon
        );
        assert_eq!(
            slow.close_reason(),
            Some(SnetClientError::Handshake(HandshakeError::Timeout))
        );
    }

    #[test]
    fn force_reconnect_drops_a_live_link() {
        let mut w = World::new(true);
        assert!(w.client.force_reconnect(w.now));
        if let Some((conn_id, link)) = w.socket.link {
            let _ = w.listener.link_down(conn_id, link, w.now);
        }
        assert_eq!(w.client.handle_timeout(w.now), SocketRequest::Open);
        w.new_socket();
        w.pump();
        assert!(w.client.is_up());
        assert!(w.client_writes(b"again"));
        assert_eq!(w.server_got, b"again");
    }
}
