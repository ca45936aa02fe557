//! The endpoint: what a game client or game server embeds to talk to the gateway (ENDPOINT.md).
//!
//! An [`Endpoint`] owns one link (one TCP or snet stream) to the gateway and multiplexes virtual
//! connections (vconns) over it. Like the rest of the core it does no IO and reads no clock: the
//! adapter feeds it received bytes ([`handle_input`](Endpoint::handle_input)), the current time
//! ([`handle_timeout`](Endpoint::handle_timeout) at [`poll_timeout`](Endpoint::poll_timeout)) and user
//! calls ([`dial`](Endpoint::dial), [`send`](Endpoint::send), [`close`](Endpoint::close)), then pulls
//! bytes to write ([`poll_transmit`](Endpoint::poll_transmit)) and events
//! ([`poll_event`](Endpoint::poll_event)).
//!
//! ```text
//! adapter loop:  read socket -> handle_input(buf, now)    write socket <- poll_transmit()
//!                timer fires -> handle_timeout(now)         vconn chans <- poll_event()
//!                next timer  <- poll_timeout()
//! ```
//!
//! # Wire behaviour (ENDPOINT.md §5)
//! * A client endpoint sends nothing before its first frame. A server endpoint first waits for the
//!   8-byte challenge (5 s deadline) and answers `MD5(challenge ‖ key) ‖ id` (PROTOCOL.md §5); frames
//!   queued before that (a dial) are held and follow the answer.
//! * Data frames are `Length = 4 + payload`, ConnID, payload.
//! * A local close ([`close`](Endpoint::close), [`shutdown`](Endpoint::shutdown)) sends `Close(ConnID)`.
//!   A Close from the gateway is not answered: the gateway already echoes a Close to both members.
//! * Data for an unknown ConnID is answered with `Close(ConnID)`.
//! * A Ping from the gateway is only ever a reply; it is never answered and never an error.
//!
//! # Decisions on ENDPOINT.md §6
//! 1. **Payload limit**: a payload may be at most `max_packet - 4` bytes, the most the gateway accepts;
//!    above it [`send`](Endpoint::send) returns [`SendError::TooLarge`].
//! 2. **Ping replies** update the keepalive state and nothing else; nothing blocks, and a reply with no
//!    Ping outstanding (keepalive off, or late) is ignored.
//! 3. **Ping timeout** closes the link with [`LinkError::PingTimeout`] by default;
//!    [`PingTimeoutPolicy::KeepOpen`] instead reports [`Event::PingTimeout`] and keeps pinging, for
//!    links that can heal underneath (snet reconnect).
//! 4. **Concurrent dials** are allowed, correlated FIFO per RemoteID: the gateway answers every Dial
//!    with exactly one Accept(conn, remote) or Refuse(remote), in order. The dial timeout belongs to
//!    the adapter, which calls [`cancel_dial`](Endpoint::cancel_dial); a cancelled dial keeps its place
//!    in the queue, and its late Accept is answered with `Close(conn)`. An Accept with no pending dial
//!    for its RemoteID is answered the same way.
//! 5. **Remote Close after data**: events come out in arrival order, so every `Data` of a vconn is
//!    reported before its `Closed`; the adapter delivers queued messages before end of stream.
//! 6. **Back-pressure** is the adapter's: the core never drops or fails for a full output queue;
//!    [`transmit_len`](Endpoint::transmit_len) tells the adapter how much is waiting.
//! 7. **Too-large send** returns the error and leaves the vconn open and usable.
//! 8. **No leaks**: a vconn leaves the table when it closes either way; when the link ends, every open
//!    vconn gets [`Event::Closed`] and every pending dial [`Event::DialFailed`], then
//!    [`Event::LinkClosed`], and all tables are empty.
//!
//! # Inbound errors
//! A frame longer than `max_packet`, a frame too short for its kind, an unknown command type, a Dial
//! from the gateway, or an Accept/Connect for vconn 0 or for a vconn already open is a
//! [`ProtocolError`]: [`handle_input`](Endpoint::handle_input) returns it, the link is closed
//! ([`Event::LinkClosed`]) and the adapter closes the socket. Empty data frames are messages.
//!
//! A vconn closed locally stays in a small "closing" set until the gateway's echoed Close arrives;
//! data still in flight for it is dropped silently instead of being answered with more Closes.
//!
//! # The runtimes' user-facing types
//! [`api`] holds the settings and errors the runtime crates' endpoint libraries show their users
//! ([`api::EndpointOptions`], [`api::DialError`], [`api::SendError`], [`api::RecvError`]). They are
//! not re-exported here: [`api::SendError`] is the user's error of `VConn::send`, while
//! [`SendError`] (this module's) is the machine's own, with vconn ids.

pub mod api;
mod config;
mod error;
mod event;
mod keepalive;
mod transmit;

#[cfg(test)]
mod tests;

pub use config::{ConfigError, EndpointConfig, PingTimeoutPolicy, Role};
pub use error::{EndpointError, LinkError, ProtocolError, SendError};
pub use event::{CloseReason, DialId, Event};

use crate::auth::{CHALLENGE_LEN, Challenge, HANDSHAKE_TIMEOUT, server_response};
use crate::frame::{Command, CommandType, Frame, FrameDecoder};
use bytes::{Bytes, BytesMut};
use keepalive::{Keepalive, KeepaliveAction};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::Instant;
use transmit::TransmitQueue;

/// Where the link is in its life.
enum LinkState {
    /// Server role: waiting for the gateway's challenge.
    Handshake {
        id: u32,
        auth_key: Vec<u8>,
        deadline: Option<Instant>,
    },
    /// Framing in both directions.
    Open,
    /// Ended; the first reason is kept.
    Closed(LinkError),
}

impl fmt::Debug for LinkState {
    // Hand-written so the auth key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake { id, deadline, .. } => f
                .debug_struct("Handshake")
                .field("id", id)
                .field("deadline", deadline)
                .finish_non_exhaustive(),
            Self::Open => f.write_str("Open"),
            Self::Closed(reason) => f.debug_tuple("Closed").field(reason).finish(),
        }
    }
}

/// The sans-IO endpoint state machine: one link to the gateway and its vconns. See the
/// [module documentation](self) for the rules it follows.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    state: LinkState,
    decoder: FrameDecoder,
    keepalive: Keepalive,
    transmit: TransmitQueue,
    events: VecDeque<Event>,
    /// Open vconns: conn → remote.
    conns: HashMap<u32, u32>,
    /// Vconns we closed (or refused) whose Close the gateway has not echoed yet.
    closing: HashSet<u32>,
    /// Dials awaiting an answer, per remote, oldest first. Cancelled dials stay here (they still get an
    /// answer) but are missing from `live_dials`.
    pending: HashMap<u32, VecDeque<DialId>>,
    /// Dials not cancelled and not answered: dial → remote.
    live_dials: HashMap<DialId, u32>,
    next_dial: u64,
}

impl Endpoint {
    /// Creates an endpoint for a link that has just connected at `now`.
    ///
    /// A client is ready at once and starts its keepalive; a server waits for the gateway's challenge
    /// (5 s deadline), and its keepalive starts once the answer is queued. The config is validated here
    /// so that mistakes surface at start-up, not as a dead link later.
    pub fn new(role: Role, config: EndpointConfig, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut keepalive = Keepalive::new(config.ping_interval, config.ping_timeout);
        let (state, transmit) = match role {
            Role::Client => {
                keepalive.start(now);
                (LinkState::Open, TransmitQueue::default())
            }
            Role::Server { id, auth_key } => (
                LinkState::Handshake {
                    id,
                    auth_key,
                    deadline: now.checked_add(HANDSHAKE_TIMEOUT),
                },
                TransmitQueue::held(),
            ),
        };
        Ok(Self {
            decoder: FrameDecoder::new(config.max_packet),
            config,
            state,
            keepalive,
            transmit,
            events: VecDeque::new(),
            conns: HashMap::new(),
            closing: HashSet::new(),
            pending: HashMap::new(),
            live_dials: HashMap::new(),
            next_dial: 0,
        })
    }

    /// The configuration the endpoint runs with.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Consumes received bytes from the front of `buf`: the challenge (server role, once) and then
    /// every whole frame. A partial frame is left in `buf` for the next read to complete, so the
    /// adapter can keep reading into the same buffer. Data payloads become [`Event::Data`] views of
    /// `buf`'s memory, not copies.
    ///
    /// On a [`ProtocolError`] the link is closed (events up to the bad frame are kept, then every vconn
    /// and dial is failed and [`Event::LinkClosed`] follows) and the adapter should close the socket.
    /// After the link has closed, input is not consumed and [`EndpointError::Closed`] is returned.
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) -> Result<(), EndpointError> {
        match &self.state {
            LinkState::Closed(reason) => return Err(EndpointError::Closed(*reason)),
            LinkState::Handshake { .. } => {
                if buf.len() < CHALLENGE_LEN {
                    return Ok(());
                }
                let mut challenge = [0u8; CHALLENGE_LEN];
                challenge.copy_from_slice(&buf.split_to(CHALLENGE_LEN));
                self.answer_challenge(&Challenge(challenge), now);
            }
            LinkState::Open => {}
        }
        loop {
            let result = match self.decoder.decode(buf) {
                Ok(None) => return Ok(()),
                Ok(Some(frame)) => self.handle_frame(frame, now),
                Err(error) => Err(ProtocolError::Frame(error)),
            };
            if let Err(error) = result {
                self.fail(LinkError::Protocol(error));
                return Err(EndpointError::Protocol(error));
            }
        }
    }

    /// Queues the server's answer in front of anything held and opens the link.
    fn answer_challenge(&mut self, challenge: &Challenge, now: Instant) {
        let state = std::mem::replace(&mut self.state, LinkState::Open);
        if let LinkState::Handshake { id, auth_key, .. } = state {
            self.transmit
                .release_after(&server_response(challenge, &auth_key, id));
        }
        self.keepalive.start(now);
        self.events.push_back(Event::Ready);
    }

    fn handle_frame(&mut self, frame: Frame, now: Instant) -> Result<(), ProtocolError> {
        let command = match frame {
            Frame::Data(data) => {
                let conn = data.conn();
                if self.conns.contains_key(&conn) {
                    self.events.push_back(Event::Data {
                        conn,
                        payload: data.payload(),
                    });
                } else if !self.closing.contains(&conn) {
                    self.transmit.push_command(Command::Close { conn });
                }
                return Ok(());
            }
            Frame::Command(command) => command,
        };
        match command {
            Command::Dial { .. } => {
                return Err(ProtocolError::UnexpectedCommand(CommandType::Dial));
            }
            Command::Accept { conn, remote } => {
                self.check_new_conn(conn, CommandType::Accept)?;
                match self.take_dial(remote) {
                    Some(dial) => {
                        self.conns.insert(conn, remote);
                        self.events.push_back(Event::Dialed { dial, conn, remote });
                    }
                    None => self.close_unwanted(conn),
                }
            }
            Command::Connect { conn, remote } => {
                self.check_new_conn(conn, CommandType::Connect)?;
                self.conns.insert(conn, remote);
                self.events.push_back(Event::Incoming { conn, remote });
            }
            Command::Refuse { remote } => {
                if let Some(dial) = self.take_dial(remote) {
                    self.events.push_back(Event::DialRefused { dial, remote });
                }
            }
            Command::Close { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.events.push_back(Event::Closed {
                        conn,
                        reason: CloseReason::Remote,
                    });
                } else {
                    self.closing.remove(&conn);
                }
            }
            Command::Ping => {
                self.keepalive.on_pong(now);
            }
        }
        Ok(())
    }

    /// Rejects ids an Accept or Connect must not announce. A stale "closing" entry for the id (its
    /// echo never came) is dropped: the gateway only reuses ids it has released.
    fn check_new_conn(&mut self, conn: u32, kind: CommandType) -> Result<(), ProtocolError> {
        if conn == 0 {
            return Err(ProtocolError::ZeroConnId(kind));
        }
        if self.conns.contains_key(&conn) {
            return Err(ProtocolError::ConnInUse { conn });
        }
        self.closing.remove(&conn);
        Ok(())
    }

    /// Pops the oldest dial to `remote`; `Some` only if it was neither cancelled nor missing.
    fn take_dial(&mut self, remote: u32) -> Option<DialId> {
        let queue = self.pending.get_mut(&remote)?;
        let dial = queue.pop_front();
        if queue.is_empty() {
            self.pending.remove(&remote);
        }
        dial.filter(|dial| self.live_dials.remove(dial).is_some())
    }

    /// Answers an Accept nobody waits for with Close.
    fn close_unwanted(&mut self, conn: u32) {
        self.transmit.push_command(Command::Close { conn });
        self.closing.insert(conn);
    }

    /// Advances timers to `now`: the server's handshake deadline, sending Pings, and ping timeouts.
    /// Call it when [`poll_timeout`](Self::poll_timeout) is reached; calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            LinkState::Closed(_) => {}
            LinkState::Handshake { deadline, .. } => {
                if deadline.is_some_and(|deadline| now >= deadline) {
                    self.fail(LinkError::HandshakeTimeout);
                }
            }
            LinkState::Open => match self.keepalive.on_timeout(now) {
                Some(KeepaliveAction::SendPing) => self.transmit.push_command(Command::Ping),
                Some(KeepaliveAction::TimedOut) => match self.config.ping_timeout_policy {
                    PingTimeoutPolicy::Close => self.fail(LinkError::PingTimeout),
                    PingTimeoutPolicy::KeepOpen => self.events.push_back(Event::PingTimeout),
                },
                None => {}
            },
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called; `None` when no timer runs
    /// (keepalive off, or the link closed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            LinkState::Handshake { deadline, .. } => *deadline,
            LinkState::Open => self.keepalive.poll_timeout(),
            LinkState::Closed(_) => None,
        }
    }

    /// The next bytes to write to the socket, in order. Everything queued since the last call comes as
    /// one contiguous buffer, except that large payloads given to [`send_bytes`](Self::send_bytes) come
    /// as their own `Bytes` (no copy); loop until `None` and write the pieces with one vectored write.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop()
    }

    /// Bytes queued for the socket and not yet pulled. The core never limits this; an adapter applies
    /// back-pressure (stops calling `send`) when it grows too large.
    pub fn transmit_len(&self) -> usize {
        self.transmit.len()
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Asks the gateway for a vconn to `remote` (a server id from a client, a client id from a server).
    /// Returns at once; the answer comes as [`Event::Dialed`], [`Event::DialRefused`] or, if the link
    /// ends first, [`Event::DialFailed`]. Any number of dials may be in flight. There is no timeout
    /// here: the adapter times out and calls [`cancel_dial`](Self::cancel_dial).
    pub fn dial(&mut self, remote: u32) -> Result<DialId, EndpointError> {
        if let LinkState::Closed(reason) = self.state {
            return Err(EndpointError::Closed(reason));
        }
        let dial = DialId(self.next_dial);
        self.next_dial += 1;
        self.pending.entry(remote).or_default().push_back(dial);
        self.live_dials.insert(dial, remote);
        self.transmit.push_command(Command::Dial { remote });
        Ok(dial)
    }

    /// Abandons a pending dial (e.g. the adapter's timeout fired): no event will be reported for it, and
    /// if the gateway accepts it later the vconn is closed at once. Returns whether the dial was still
    /// pending; `false` means its answer was already processed (its event may still be queued, in which
    /// case the adapter should close the vconn an `Event::Dialed` reports).
    pub fn cancel_dial(&mut self, dial: DialId) -> bool {
        self.live_dials.remove(&dial).is_some()
    }

    /// Number of dials still waiting for an answer (cancelled ones excluded).
    pub fn pending_dials(&self) -> usize {
        self.live_dials.len()
    }

    /// Queues `payload` on vconn `conn`, copying it into the outbound buffer.
    ///
    /// Fails without side effects if the payload is above `max_packet - 4` (the vconn stays usable), if
    /// `conn` is not open, or if the endpoint has closed.
    pub fn send(&mut self, conn: u32, payload: &[u8]) -> Result<(), SendError> {
        self.check_send(conn, payload.len())?;
        self.transmit.push_data(conn, payload);
        Ok(())
    }

    /// Like [`send`](Self::send), but takes ownership so that a large payload is queued without a copy.
    pub fn send_bytes(&mut self, conn: u32, payload: Bytes) -> Result<(), SendError> {
        self.check_send(conn, payload.len())?;
        self.transmit.push_data_bytes(conn, payload);
        Ok(())
    }

    fn check_send(&self, conn: u32, len: usize) -> Result<(), SendError> {
        if let LinkState::Closed(reason) = self.state {
            return Err(SendError::Closed(reason));
        }
        if !self.conns.contains_key(&conn) {
            return Err(SendError::UnknownConn(conn));
        }
        let max = self.config.max_payload();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Closes vconn `conn` locally: queues `Close(conn)` and forgets the vconn. No event is reported
    /// (the caller knows). Returns whether it was open; closing twice is harmless.
    pub fn close(&mut self, conn: u32) -> bool {
        if self.conns.remove(&conn).is_none() {
            return false;
        }
        self.transmit.push_command(Command::Close { conn });
        self.closing.insert(conn);
        true
    }

    /// Ends the endpoint on purpose: queues `Close` for every open vconn (flush
    /// [`poll_transmit`](Self::poll_transmit) before closing the socket), then reports `Closed` per vconn,
    /// `DialFailed` per pending dial and [`Event::LinkClosed`] with [`LinkError::Shutdown`]. Idempotent.
    pub fn shutdown(&mut self) {
        if !matches!(self.state, LinkState::Open) {
            if matches!(self.state, LinkState::Handshake { .. }) {
                self.fail(LinkError::Shutdown);
            }
            return;
        }
        let mut conns: Vec<u32> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.transmit.push_command(Command::Close { conn });
        }
        self.fail(LinkError::Shutdown);
    }

    /// Tells the endpoint the socket closed or failed (read EOF, write error). Everything is failed with
    /// [`LinkError::SocketClosed`]; does nothing if the endpoint had already closed.
    pub fn handle_link_closed(&mut self) {
        self.fail(LinkError::SocketClosed);
    }

    /// Ends the link once: fails every vconn and dial, empties every table, reports `LinkClosed` last.
    /// The outbound queue survives only a shutdown of an open link (its Close frames are useful).
    fn fail(&mut self, reason: LinkError) {
        if matches!(self.state, LinkState::Closed(_)) {
            return;
        }
        let was_open = matches!(self.state, LinkState::Open);
        self.state = LinkState::Closed(reason);
        self.keepalive.stop();
        if !(was_open && reason == LinkError::Shutdown) {
            self.transmit.clear();
        }
        let mut conns: Vec<u32> = self.conns.drain().map(|(conn, _)| conn).collect();
        conns.sort_unstable();
        for conn in conns {
            self.events.push_back(Event::Closed {
                conn,
                reason: CloseReason::Link(reason),
            });
        }
        self.closing.clear();
        self.pending.clear();
        let mut dials: Vec<(DialId, u32)> = self.live_dials.drain().collect();
        dials.sort_unstable();
        for (dial, remote) in dials {
            self.events.push_back(Event::DialFailed {
                dial,
                remote,
                reason,
            });
        }
        self.events.push_back(Event::LinkClosed { reason });
    }

    /// Whether the link has ended (see [`close_reason`](Self::close_reason)).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, LinkState::Closed(_))
    }

    /// Why the link ended, if it has.
    pub fn close_reason(&self) -> Option<LinkError> {
        match self.state {
            LinkState::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Whether frames flow: a client from the start, a server once its auth answer is queued, neither
    /// after the link closed. Dials made before that are held, not lost.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, LinkState::Open)
    }

    /// The open vconns as `(conn, remote)`, in no particular order.
    pub fn conns(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.conns.iter().map(|(&conn, &remote)| (conn, remote))
    }

    /// The remote of open vconn `conn`: the server id for a client, the client id for a server.
    pub fn remote(&self, conn: u32) -> Option<u32> {
        self.conns.get(&conn).copied()
    }

    /// Number of open vconns.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }
}
