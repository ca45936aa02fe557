//! The switchboard: the gateway as its runtime sees it, socket by socket, with snet handled inside.
//!
//! [`Gateway`] works on *peers*; a runtime works on *sockets*. On a plain TCP port they are the same
//! thing. On an snet port they are not: a peer is an snet session, which outlives the sockets that
//! carry it (the client reconnects, the session resumes on a new socket, nothing is lost). The
//! switchboard joins the two so that every runtime gets snet without a line of snet code:
//!
//! * a socket is accepted → [`Switchboard::accept`]; on an snet port the snet handshake runs first and
//!   the peer is created (or resumed) when it ends;
//! * bytes arrived → append them to that socket's read buffer, call [`Switchboard::handle_input`]
//!   (snet bytes are decrypted in place, then framed and routed);
//! * the socket failed or closed → [`Switchboard::handle_closed`]; on an snet port this only takes the
//!   link down: the peer keeps its vconns and waits `*SnetWaitTimeout` for the client to reconnect;
//! * [`Switchboard::poll_action`] says which socket to wake, pause, resume or close;
//!   [`Switchboard::poll_transmit`] hands a socket's writer its next batch (encrypted on snet ports);
//! * [`Switchboard::handle_timeout`] at [`Switchboard::poll_timeout`] runs every deadline: the gateway's,
//!   the snet handshakes' and the snet wait timeouts.
//!
//! Rules for the read buffer: keep one `BytesMut` per socket and only *append* to it between calls;
//! the switchboard consumes from the front. On an snet port it takes every byte at once (decrypted
//! bytes belong to the session, not to the socket: a frame split across a reconnect must survive it),
//! so the buffer is empty after each call.
//!
//! Decisions (DESIGN.md §3): an snet reconnect is accepted even while the old socket still looks open
//! (the old socket is closed); the idle timeout of a peer is suspended while its snet link is down;
//! server auth on an snet server port runs over the decrypted stream.

mod action;
#[cfg(test)]
mod tests;

pub use action::{Action, SocketCloseReason};

use crate::auth::Challenge;
use crate::gateway::{
    self, AcceptError, BySide, Gateway, GatewayConfig, GatewayStats, PeerId, PeerInfo, Side,
};
use crate::idmap::IdMap;
use crate::snet::{LinkId, LinkState, ServerEvent, ServerHandshake, SnetConfig, SnetListener};
use bytes::{Bytes, BytesMut};
use rand_core::Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::Instant;

/// Everything the switchboard enforces: the gateway's rules and, per side, snet (None = plain TCP).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SwitchboardConfig {
    /// The gateway's rules.
    pub gateway: GatewayConfig,
    /// snet on the client port (`ClientSnet*` flags), or `None` for plain TCP.
    pub client_snet: Option<SnetConfig>,
    /// snet on the server port (`ServerSnet*` flags), or `None` for plain TCP.
    pub server_snet: Option<SnetConfig>,
}

/// A handle for one accepted socket, unique for the switchboard's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(u64);

impl SocketId {
    /// The number behind the handle, for logs and maps.
    pub fn as_u64(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}", self.0)
    }
}

/// What one socket is doing.
#[derive(Debug)]
enum SocketState {
    /// Plain TCP: this socket is this peer, for life.
    Plain(PeerId),
    /// snet handshake running.
    Handshaking(Box<ServerHandshake>),
    /// Carries snet session `conn_id` (peer `peer`) as `link`.
    Snet {
        peer: PeerId,
        conn_id: u64,
        link: LinkId,
    },
}

#[derive(Debug)]
struct Socket {
    side: Side,
    state: SocketState,
    /// Bytes owed before anything from the gateway (snet handshake replies, retransmissions).
    out: VecDeque<Bytes>,
}

/// Which snet session a peer is, and which socket carries it now.
#[derive(Debug)]
struct SnetPeer {
    side: Side,
    conn_id: u64,
    socket: Option<SocketId>,
    /// Decrypted stream bytes the gateway has not consumed yet (a partial frame, or everything while
    /// the peer is paused). They outlive the socket they arrived on.
    inbox: BytesMut,
}

/// The gateway plus its sockets and snet sessions. See the module docs.
#[derive(Debug)]
pub struct Switchboard {
    gateway: Gateway,
    client_snet: Option<SnetListener>,
    server_snet: Option<SnetListener>,
    sockets: IdMap<u64, Socket>,
    /// Plain peers → their socket.
    plain_peers: IdMap<u64, SocketId>,
    /// snet peers → session and current socket.
    snet_peers: IdMap<u64, SnetPeer>,
    /// (side, snet ConnID) → peer.
    sessions: IdMap<(bool, u64), PeerId>,
    handshake_timers: BinaryHeap<Reverse<(Instant, u64)>>,
    next_socket: u64,
    actions: VecDeque<Action>,
    /// snet sessions resumed on a new socket, per port.
    snet_reconnects: BySide<u64>,
    /// snet reconnect attempts refused, per port.
    snet_reconnects_refused: BySide<u64>,
}

impl Switchboard {
    /// A switchboard with no sockets.
    pub fn new(config: SwitchboardConfig) -> Self {
        Self {
            gateway: Gateway::new(config.gateway),
            client_snet: config.client_snet.map(SnetListener::new),
            server_snet: config.server_snet.map(SnetListener::new),
            sockets: IdMap::default(),
            plain_peers: IdMap::default(),
            snet_peers: IdMap::default(),
            sessions: IdMap::default(),
            handshake_timers: BinaryHeap::new(),
            next_socket: 0,
            actions: VecDeque::new(),
            snet_reconnects: BySide::default(),
            snet_reconnects_refused: BySide::default(),
        }
    }

    /// The gateway inside, for inspection.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Whether `side`'s port speaks snet.
    pub fn is_snet(&self, side: Side) -> bool {
        self.listener(side).is_some()
    }

    /// Takes a freshly accepted socket. On a plain port the peer exists at once (a server gets its
    /// challenge queued, drawn from `rng`: pass the OS's CSPRNG); on an snet port the snet handshake
    /// runs first. Fails only when a plain client port is at `max_clients`; close the socket then.
    pub fn accept(
        &mut self,
        side: Side,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<SocketId, AcceptError> {
        let challenge = Challenge::random(rng);
        self.accept_with_challenge(side, now, challenge)
    }

    /// [`accept`](Self::accept) with the server challenge drawn by the caller (outside its lock).
    /// `challenge` is ignored for clients and for snet ports, where the peer is created later.
    pub fn accept_with_challenge(
        &mut self,
        side: Side,
        now: Instant,
        challenge: Challenge,
    ) -> Result<SocketId, AcceptError> {
        if let Some(listener) = self.listener(side) {
            let handshake = listener.accept(now);
            let deadline = handshake.poll_timeout();
            let id = self.insert_socket(side, SocketState::Handshaking(Box::new(handshake)));
            if let Some(deadline) = deadline {
                self.handshake_timers.push(Reverse((deadline, id.0)));
            }
            return Ok(id);
        }
        let peer = match side {
            Side::Client => self.gateway.accept_client(now)?,
            Side::Server => self.gateway.accept_server_with_challenge(now, challenge),
        };
        let id = self.insert_socket(side, SocketState::Plain(peer));
        self.plain_peers.insert(peer.as_u64(), id);
        self.pump_gateway(now);
        Ok(id)
    }

    /// Feeds bytes read from `socket` (appended to its read buffer `buf`): runs the snet handshake,
    /// decrypts, frames and routes. A handshake draws randomness from `rng`.
    pub fn handle_input(
        &mut self,
        socket: SocketId,
        buf: &mut BytesMut,
        now: Instant,
        rng: &mut impl Rng,
    ) {
        let Some(state) = self.sockets.get(&socket.0).map(|s| &s.state) else {
            buf.clear();
            return;
        };
        match *state {
            SocketState::Plain(peer) => self.gateway.handle_input(peer, buf, now),
            SocketState::Handshaking(_) => self.drive_handshake(socket, buf, now, rng),
            SocketState::Snet { .. } => self.snet_input(socket, buf, now),
        }
        self.pump_gateway(now);
    }

    /// The socket closed or failed. On a plain port the peer goes (PROTOCOL.md §6.7); on an snet port
    /// only its link does, and the session waits for a reconnect.
    pub fn handle_closed(&mut self, socket: SocketId, now: Instant) {
        self.drop_socket(socket, now, SocketCloseReason::Disconnected);
        self.pump_gateway(now);
    }

    /// Bytes for `socket`'s writer, appended to `out`; returns how many. Calling it also says the batch
    /// taken last time was written. A writer loops until it returns 0, then waits for
    /// [`Action::Transmit`].
    pub fn poll_transmit(&mut self, socket: SocketId, now: Instant, out: &mut Vec<Bytes>) -> usize {
        let Some(entry) = self.sockets.get_mut(&socket.0) else {
            return 0;
        };
        let mut taken: usize = entry.out.iter().map(Bytes::len).sum();
        out.extend(entry.out.drain(..));
        let side = entry.side;
        match entry.state {
            SocketState::Plain(peer) => taken += self.gateway.poll_transmit(peer, now, out),
            SocketState::Snet {
                peer,
                conn_id,
                link,
                ..
            } => taken += self.snet_transmit(side, peer, conn_id, link, now, out),
            SocketState::Handshaking(_) => {}
        }
        self.pump_gateway(now);
        taken
    }

    /// Runs every deadline that has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.gateway.handle_timeout(now);
        self.pump_gateway(now);
        while let Some(Reverse((at, raw))) = self.handshake_timers.peek().copied() {
            if at > now {
                break;
            }
            self.handshake_timers.pop();
            let event = match self.sockets.get_mut(&raw).map(|s| &mut s.state) {
                Some(SocketState::Handshaking(handshake)) => handshake.handle_timeout(now),
                _ => None,
            };
            if let Some(event) = event {
                self.finish_handshake(SocketId(raw), event, &mut BytesMut::new(), now, None);
            }
        }
        for side in [Side::Client, Side::Server] {
            let closed = match self.listener_mut(side) {
                Some(listener) => listener.handle_timeout(now),
                None => continue,
            };
            for conn_id in closed {
                if let Some(peer) = self.sessions.remove(&(side == Side::Client, conn_id)) {
                    self.snet_peers.remove(&peer.as_u64());
                    self.actions.push_back(Action::SessionEnded {
                        side,
                        reason: SocketCloseReason::SnetWaitTimeout,
                    });
                    self.gateway.handle_closed(peer, now);
                }
            }
        }
        self.pump_gateway(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next run. May be early, never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let handshakes = self.handshake_timers.peek().map(|Reverse((at, _))| *at);
        [
            self.gateway.poll_timeout(),
            handshakes,
            self.client_snet
                .as_ref()
                .and_then(SnetListener::poll_timeout),
            self.server_snet
                .as_ref()
                .and_then(SnetListener::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next thing the runtime must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Closes everything (PROTOCOL.md §6.11); each socket gets an [`Action::Close`] whose flush holds
    /// what is still owed to it.
    pub fn shutdown(&mut self, now: Instant) {
        self.gateway.shutdown(now);
        self.pump_gateway(now);
        let mut rest: Vec<u64> = self.sockets.keys().copied().collect();
        rest.sort_unstable();
        for raw in rest {
            self.drop_socket(SocketId(raw), now, SocketCloseReason::Shutdown);
        }
    }

    /// The gateway's counters now, with the snet reconnect counts of this switchboard.
    pub fn stats(&self) -> GatewayStats {
        GatewayStats {
            snet_reconnects: self.snet_reconnects,
            snet_reconnects_refused: self.snet_reconnects_refused,
            ..self.gateway.stats()
        }
    }

    /// Every peer with its vconns.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.gateway.peers()
    }

    /// How many sockets are open (handshaking ones included).
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    // ---- snet ------------------------------------------------------------------------------------

    fn listener(&self, side: Side) -> Option<&SnetListener> {
        match side {
            Side::Client => self.client_snet.as_ref(),
            Side::Server => self.server_snet.as_ref(),
        }
    }

    fn listener_mut(&mut self, side: Side) -> Option<&mut SnetListener> {
        match side {
            Side::Client => self.client_snet.as_mut(),
            Side::Server => self.server_snet.as_mut(),
        }
    }

    fn drive_handshake(
        &mut self,
        socket: SocketId,
        buf: &mut BytesMut,
        now: Instant,
        rng: &mut impl Rng,
    ) {
        let Some(entry) = self.sockets.get_mut(&socket.0) else {
            return;
        };
        let side = entry.side;
        let listener = match side {
            Side::Client => self.client_snet.as_mut(),
            Side::Server => self.server_snet.as_mut(),
        };
        let (Some(listener), SocketState::Handshaking(handshake)) = (listener, &mut entry.state)
        else {
            return;
        };
        let before = handshake.poll_timeout();
        let event = handshake.handle_input(listener, buf, now, rng);
        let deadline = handshake
            .poll_timeout()
            .filter(|&after| Some(after) != before);
        let mut wrote = false;
        while let Some(bytes) = handshake.poll_transmit() {
            entry.out.push_back(bytes);
            wrote = true;
        }
        if wrote {
            self.actions.push_back(Action::Transmit(socket));
        }
        match event {
            Some(event) => {
                let challenge = (side == Side::Server).then(|| Challenge::random(rng));
                self.finish_handshake(socket, event, buf, now, challenge)
            }
            None => {
                if let Some(deadline) = deadline {
                    self.handshake_timers.push(Reverse((deadline, socket.0)));
                }
            }
        }
    }

    /// Acts on the end of an snet handshake. `challenge` is the gateway challenge for a new server
    /// peer (drawn by the caller, which has the RNG).
    fn finish_handshake(
        &mut self,
        socket: SocketId,
        event: ServerEvent,
        buf: &mut BytesMut,
        now: Instant,
        challenge: Option<Challenge>,
    ) {
        let Some(side) = self.sockets.get(&socket.0).map(|s| s.side) else {
            return;
        };
        match event {
            ServerEvent::NewSession { conn_id, link } => {
                let peer = match side {
                    Side::Client => match self.gateway.accept_client(now) {
                        Ok(peer) => peer,
                        Err(err) => {
                            if let Some(listener) = self.listener_mut(side) {
                                listener.close(conn_id);
                            }
                            self.close_socket(socket, SocketCloseReason::Refused(err));
                            return;
                        }
                    },
                    Side::Server => {
                        let Some(challenge) = challenge else {
                            self.close_socket(socket, SocketCloseReason::SessionGone);
                            return;
                        };
                        self.gateway.accept_server_with_challenge(now, challenge)
                    }
                };
                self.sessions.insert((side == Side::Client, conn_id), peer);
                self.snet_peers.insert(
                    peer.as_u64(),
                    SnetPeer {
                        side,
                        conn_id,
                        socket: Some(socket),
                        inbox: BytesMut::new(),
                    },
                );
                self.attach(socket, peer, conn_id, link);
                self.snet_input(socket, buf, now);
            }
            ServerEvent::Resumed { conn_id, link } => {
                let Some(&peer) = self.sessions.get(&(side == Side::Client, conn_id)) else {
                    *self.snet_reconnects_refused.get_mut(side) += 1;
                    self.close_socket(socket, SocketCloseReason::SessionGone);
                    return;
                };
                *self.snet_reconnects.get_mut(side) += 1;
                let old = self
                    .snet_peers
                    .get_mut(&peer.as_u64())
                    .and_then(|p| p.socket.replace(socket));
                if let Some(old) = old.filter(|&old| old != socket) {
                    self.close_socket(old, SocketCloseReason::Replaced);
                }
                self.attach(socket, peer, conn_id, link);
                self.gateway.set_link_up(peer, true, now);
                self.actions.push_back(Action::Transmit(socket));
                if self.gateway.is_paused(peer) {
                    // Backpressure follows the session to its new socket.
                    self.actions.push_back(Action::PauseReading(socket));
                }
                self.snet_input(socket, buf, now);
            }
            ServerEvent::Refused(err) => {
                *self.snet_reconnects_refused.get_mut(side) += 1;
                self.close_socket(socket, SocketCloseReason::Snet(err));
            }
            ServerEvent::Failed(err) => self.close_socket(socket, SocketCloseReason::Snet(err)),
        }
    }

    fn attach(&mut self, socket: SocketId, peer: PeerId, conn_id: u64, link: LinkId) {
        if let Some(entry) = self.sockets.get_mut(&socket.0) {
            entry.state = SocketState::Snet {
                peer,
                conn_id,
                link,
            };
        }
    }

    /// Decrypts everything in `buf` into the peer's inbox and routes what is complete.
    fn snet_input(&mut self, socket: SocketId, buf: &mut BytesMut, now: Instant) {
        let Some(entry) = self.sockets.get(&socket.0) else {
            return;
        };
        let side = entry.side;
        let SocketState::Snet {
            peer,
            conn_id,
            link,
        } = entry.state
        else {
            return;
        };
        let listener = match side {
            Side::Client => self.client_snet.as_mut(),
            Side::Server => self.server_snet.as_mut(),
        };
        let Some(listener) = listener else {
            return;
        };
        let mut chunk = buf.split();
        if listener
            .decrypt_inbound(conn_id, link, &mut chunk[..])
            .is_err()
        {
            // The session was replaced or closed under this socket: it carries nothing any more.
            self.drop_socket(socket, now, SocketCloseReason::Replaced);
            return;
        }
        let Some(state) = self.snet_peers.get_mut(&peer.as_u64()) else {
            return;
        };
        if state.inbox.is_empty() {
            state.inbox = chunk;
        } else {
            state.inbox.extend_from_slice(&chunk);
        }
        let mut inbox = std::mem::take(&mut state.inbox);
        self.gateway.handle_input(peer, &mut inbox, now);
        if let Some(state) = self.snet_peers.get_mut(&peer.as_u64()) {
            state.inbox = inbox;
        }
    }

    /// Routes what a peer's inbox still holds (after a resume from backpressure).
    fn snet_drain_inbox(&mut self, peer: PeerId, now: Instant) {
        let Some(state) = self.snet_peers.get_mut(&peer.as_u64()) else {
            return;
        };
        if state.inbox.is_empty() {
            return;
        }
        let mut inbox = std::mem::take(&mut state.inbox);
        self.gateway.handle_input(peer, &mut inbox, now);
        if let Some(state) = self.snet_peers.get_mut(&peer.as_u64()) {
            state.inbox = inbox;
        }
    }

    /// Takes the peer's gateway output and encrypts it for `link`, if that link still carries the
    /// session (otherwise the bytes stay queued in the gateway for the next socket).
    fn snet_transmit(
        &mut self,
        side: Side,
        peer: PeerId,
        conn_id: u64,
        link: LinkId,
        now: Instant,
        out: &mut Vec<Bytes>,
    ) -> usize {
        let Some(listener) = self.listener(side) else {
            return 0;
        };
        let up = listener
            .session(conn_id)
            .is_some_and(|s| s.link_state() == LinkState::Up(link));
        if !up {
            return 0;
        }
        let mut plain = Vec::new();
        let taken = self.gateway.poll_transmit(peer, now, &mut plain);
        if taken == 0 {
            return 0;
        }
        let mut cipher = BytesMut::with_capacity(taken);
        for chunk in &plain {
            cipher.extend_from_slice(chunk);
        }
        let Some(listener) = self.listener_mut(side) else {
            return 0;
        };
        if listener
            .encrypt_outbound(conn_id, link, &mut cipher[..])
            .is_err()
        {
            return 0;
        }
        out.push(cipher.freeze());
        taken
    }

    // ---- sockets and actions ---------------------------------------------------------------------

    fn insert_socket(&mut self, side: Side, state: SocketState) -> SocketId {
        self.next_socket += 1;
        let id = SocketId(self.next_socket);
        self.sockets.insert(
            id.0,
            Socket {
                side,
                state,
                out: VecDeque::new(),
            },
        );
        id
    }

    /// Forgets a socket the runtime reported closed (or that must go), with the consequences for its
    /// peer: plain → the peer goes; snet → the link goes down and the session waits.
    fn drop_socket(&mut self, socket: SocketId, now: Instant, reason: SocketCloseReason) {
        let Some(entry) = self.sockets.get(&socket.0) else {
            return;
        };
        let side = entry.side;
        match entry.state {
            SocketState::Plain(peer) => {
                // The gateway's Close action for the peer closes this socket.
                self.gateway.handle_closed(peer, now);
                self.pump_gateway(now);
                if self.sockets.contains_key(&socket.0) {
                    self.close_socket(socket, reason);
                }
            }
            SocketState::Handshaking(_) => self.close_socket(socket, reason),
            SocketState::Snet {
                peer,
                conn_id,
                link,
                ..
            } => {
                let current = self
                    .snet_peers
                    .get(&peer.as_u64())
                    .is_some_and(|p| p.socket == Some(socket));
                if current {
                    if let Some(p) = self.snet_peers.get_mut(&peer.as_u64()) {
                        p.socket = None;
                    }
                    // A link already retired by a reconnect in progress is down anyway; what
                    // matters is whether the session survives (a zero wait timeout ends it).
                    let still_open = self.listener_mut(side).is_some_and(|l| {
                        let _ = l.link_down(conn_id, link, now);
                        l.session(conn_id).is_some()
                    });
                    if still_open {
                        self.gateway.set_link_up(peer, false, now);
                    } else {
                        self.sessions.remove(&(side == Side::Client, conn_id));
                        self.snet_peers.remove(&peer.as_u64());
                        self.gateway.handle_closed(peer, now);
                        self.pump_gateway(now);
                    }
                }
                self.close_socket(socket, reason);
            }
        }
    }

    /// Removes the socket and tells the runtime to close it after writing what it still owes.
    fn close_socket(&mut self, socket: SocketId, reason: SocketCloseReason) {
        if let Some(entry) = self.sockets.remove(&socket.0) {
            let flush: Vec<Bytes> = entry.out.into_iter().collect();
            self.actions.push_back(Action::Close {
                socket,
                reason,
                flush,
            });
        }
    }

    /// Translates the gateway's peer actions into socket actions.
    fn pump_gateway(&mut self, now: Instant) {
        while let Some(action) = self.gateway.poll_action() {
            match action {
                gateway::Action::Transmit(peer) => {
                    if let Some(socket) = self.socket_of(peer) {
                        self.actions.push_back(Action::Transmit(socket));
                    }
                }
                gateway::Action::PauseReading(peer) => {
                    if let Some(socket) = self.socket_of(peer) {
                        self.actions.push_back(Action::PauseReading(socket));
                    }
                }
                gateway::Action::ResumeReading(peer) => {
                    if let Some(socket) = self.socket_of(peer) {
                        self.actions.push_back(Action::ResumeReading(socket));
                    }
                    // An snet peer's unconsumed bytes wait here, not in the runtime's buffer.
                    self.snet_drain_inbox(peer, now);
                }
                gateway::Action::ServerAuthenticated { peer, server_id } => {
                    if let Some(socket) = self.socket_of(peer) {
                        self.actions
                            .push_back(Action::ServerAuthenticated { socket, server_id });
                    }
                }
                gateway::Action::Close {
                    peer,
                    reason,
                    flush,
                } => self.peer_closed(peer, reason, flush),
            }
        }
    }

    /// The gateway dropped `peer`: close its socket (and end its snet session).
    fn peer_closed(&mut self, peer: PeerId, reason: gateway::CloseReason, flush: Vec<Bytes>) {
        let socket = if let Some(socket) = self.plain_peers.remove(&peer.as_u64()) {
            Some((socket, flush))
        } else if let Some(snet) = self.snet_peers.remove(&peer.as_u64()) {
            // Encrypt the last bytes before the session is closed below.
            let mut flush = flush;
            match snet.socket {
                Some(socket) => flush = self.encrypt_flush(snet.side, socket, flush),
                // Dropped while waiting for a reconnect: there is no socket to close, but the runtime
                // still hears why the session ended.
                None => self.actions.push_back(Action::SessionEnded {
                    side: snet.side,
                    reason: SocketCloseReason::Peer(reason),
                }),
            }
            let key = (snet.side == Side::Client, snet.conn_id);
            if self.sessions.get(&key) == Some(&peer) {
                self.sessions.remove(&key);
                if let Some(listener) = self.listener_mut(snet.side) {
                    listener.close(snet.conn_id);
                }
            }
            snet.socket.map(|s| (s, flush))
        } else {
            None
        };
        if let Some((socket, flush)) = socket {
            if let Some(mut entry) = self.sockets.remove(&socket.0) {
                let mut all: Vec<Bytes> = entry.out.drain(..).collect();
                all.extend(flush);
                self.actions.push_back(Action::Close {
                    socket,
                    reason: SocketCloseReason::Peer(reason),
                    flush: all,
                });
            }
        }
    }

    /// Encrypts a shutdown flush for an snet socket (it is stream data like any other).
    fn encrypt_flush(&mut self, side: Side, socket: SocketId, flush: Vec<Bytes>) -> Vec<Bytes> {
        if flush.is_empty() {
            return flush;
        }
        let Some(SocketState::Snet { conn_id, link, .. }) =
            self.sockets.get(&socket.0).map(|s| &s.state)
        else {
            return Vec::new();
        };
        let (conn_id, link) = (*conn_id, *link);
        let mut cipher = BytesMut::new();
        for chunk in &flush {
            cipher.extend_from_slice(chunk);
        }
        let encrypted = self.listener_mut(side).is_some_and(|listener| {
            listener
                .encrypt_outbound(conn_id, link, &mut cipher[..])
                .is_ok()
        });
        if encrypted {
            vec![cipher.freeze()]
        } else {
            Vec::new()
        }
    }

    fn socket_of(&self, peer: PeerId) -> Option<SocketId> {
        self.plain_peers
            .get(&peer.as_u64())
            .copied()
            .or_else(|| self.snet_peers.get(&peer.as_u64()).and_then(|p| p.socket))
    }
}
