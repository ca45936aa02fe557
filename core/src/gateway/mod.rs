//! The gateway state machine: registries, vconn routing and every rule of PROTOCOL.md §6.
//!
//! A runtime owns one [`Gateway`] per process (behind a lock, or inside one task) and drives it:
//!
//! * a socket is accepted → [`Gateway::accept_client`] / [`Gateway::accept_server`];
//! * bytes arrived → append them to that connection's read buffer and call [`Gateway::handle_input`],
//!   which consumes every whole frame from the front;
//! * the socket closed or failed → [`Gateway::handle_closed`];
//! * the time in [`Gateway::poll_timeout`] came → [`Gateway::handle_timeout`];
//! * then it drains [`Gateway::poll_action`]: wake a writer, pause or resume a reader, close a socket;
//! * a woken writer takes its bytes with [`Gateway::poll_transmit`], writes them, and comes back until
//!   nothing is left.
//!
//! Decisions on the original's ambiguities (DESIGN.md §3) live here:
//! * a frame too short for its kind, an unknown or gateway-only command, an oversize `Length`, or data
//!   on a vconn the sender is not a member of drops the sender's connection only;
//! * Close from a peer that is not a member of the vconn is ignored;
//! * a Dial records both sides or nothing; the dialer's Accept is queued before the other side's
//!   Connect;
//! * client and vconn id counters skip 0 and ids still live when they wrap;
//! * duplicate server ids: the newest connection takes new dials, older ones keep their vconns, and
//!   when the newest leaves the id falls back to the most recent one still connected;
//! * a client whose outbound queue overflows is dropped (the frame bound, `*SendChanSize`, counts
//!   frames queued while the writer is still busy with an earlier batch; the byte bound always applies); a server whose queue passes its high-water mark
//!   makes the gateway stop reading the clients that send to it (backpressure) until it drains, and is
//!   dropped only if it overflows anyway or accepts no bytes for its idle timeout;
//! * the idle timeout is reset by each complete inbound frame, per side, and suspended while a peer's
//!   snet link is down or while it is paused by backpressure.

mod action;
mod config;
mod outbox;
mod peer;
mod presence;
mod stats;
#[cfg(test)]
mod tests;

pub use action::{AcceptError, Action, CloseReason};
pub use config::{GatewayConfig, QueueLimits};
pub use peer::{PeerId, PeerInfo, Side};
pub use stats::{BySide, DialRefusals, GatewayStats, MAX_OFFLINE_SERVERS, ServerStatus, Traffic};

use crate::auth::{self, AuthError, Challenge, RESPONSE_LEN};
use crate::frame::{Command, DataFrame, Frame, FrameDecoder};
use crate::idmap::IdMap;
use bytes::{Bytes, BytesMut};
use peer::{Handshake, Peer, PeerState};
use presence::OfflineServers;
use rand_core::Rng;
use stats::Refusal;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// A vconn: one client and one server.
#[derive(Debug, Clone, Copy)]
struct VConn {
    client: PeerId,
    server: PeerId,
}

/// The gateway: every connection, every vconn, and the rules between them. See the module docs.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    decoder: FrameDecoder,
    peers: IdMap<u64, Peer>,
    clients: IdMap<u32, PeerId>,
    /// Connections per server id, oldest first; the last one takes new dials.
    servers: IdMap<u32, Vec<PeerId>>,
    vconns: IdMap<u32, VConn>,
    /// Clients paused because of a server's queue, by the server's peer id. Kept here rather than in
    /// each `Peer`: only servers have waiters, and every byte of `Peer` is paid by every idle client
    /// (the peer map holds them by value).
    waiters: IdMap<u64, Vec<PeerId>>,
    next_peer: u64,
    last_client_id: u32,
    last_vconn_id: u32,
    actions: VecDeque<Action>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Peers whose queue overflowed during the current call; dropped before it returns.
    overflowed: Vec<(PeerId, CloseReason)>,
    /// The latest time any call passed in; used by work that follows from that call.
    now: Option<Instant>,
    /// The counters; the gauges and `server_status` are filled in by [`Gateway::stats`].
    stats: GatewayStats,
    /// Server ids whose connections all left, still reported as offline.
    offline_servers: OfflineServers,
}

impl Gateway {
    /// A gateway with no connections.
    pub fn new(config: GatewayConfig) -> Self {
        Self {
            decoder: FrameDecoder::new(config.max_packet),
            config,
            peers: IdMap::default(),
            clients: IdMap::default(),
            servers: IdMap::default(),
            vconns: IdMap::default(),
            waiters: IdMap::default(),
            next_peer: 0,
            last_client_id: 0,
            last_vconn_id: 0,
            actions: VecDeque::new(),
            timers: BinaryHeap::new(),
            overflowed: Vec::new(),
            now: None,
            stats: GatewayStats::default(),
            offline_servers: OfflineServers::default(),
        }
    }

    /// The settings this gateway enforces.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Registers a freshly accepted client connection and gives it the next client id.
    ///
    /// Fails when `max_clients` connections are open; the runtime then closes the socket.
    pub fn accept_client(&mut self, now: Instant) -> Result<PeerId, AcceptError> {
        let max = self.config.max_clients;
        if max != 0 && self.clients.len() >= max {
            self.stats.clients_refused += 1;
            return Err(AcceptError::TooManyClients { max });
        }
        let client_id = self.allocate_client_id();
        let id = self.insert_peer(Peer::new(Side::Client, PeerState::Active, client_id, now));
        self.clients.insert(client_id, id);
        self.schedule_peer(id);
        Ok(id)
    }

    /// Registers a freshly accepted server connection and queues its challenge, drawn from `rng` (pass
    /// a cryptographically secure one). The server is not routable until it answers correctly.
    pub fn accept_server(&mut self, now: Instant, rng: &mut impl Rng) -> PeerId {
        self.accept_server_with_challenge(now, Challenge::random(rng))
    }

    /// [`accept_server`](Self::accept_server) with a challenge the runtime drew itself, so that the
    /// OS RNG is read outside whatever lock guards the gateway.
    pub fn accept_server_with_challenge(&mut self, now: Instant, challenge: Challenge) -> PeerId {
        let state = PeerState::Handshake(Box::new(Handshake {
            challenge,
            deadline: now + self.config.handshake_timeout,
        }));
        let id = self.insert_peer(Peer::new(Side::Server, state, 0, now));
        self.enqueue_raw(id, &challenge.0, now);
        self.schedule_peer(id);
        id
    }

    /// The client id the wire knows a client connection by, or the id an authenticated server claimed.
    pub fn wire_id(&self, peer: PeerId) -> Option<u32> {
        let peer = self.peers.get(&peer.0)?;
        peer.is_active().then_some(peer.wire_id)
    }

    /// Feeds bytes read from `peer`: consumes every whole frame (or the auth answer) from the front of
    /// `buf` and leaves a partial frame for the next call.
    ///
    /// While the peer is paused by backpressure nothing is consumed; call again after
    /// [`Action::ResumeReading`]. If the input breaks the protocol the peer is dropped (see
    /// [`Action::Close`]) and `buf` is cleared.
    pub fn handle_input(&mut self, peer: PeerId, buf: &mut BytesMut, now: Instant) {
        self.now = Some(now);
        self.process_input(peer, buf, now);
        self.drop_overflowed();
    }

    fn process_input(&mut self, id: PeerId, buf: &mut BytesMut, now: Instant) {
        let Some(peer) = self.peers.get(&id.0) else {
            buf.clear();
            return;
        };
        let side = peer.side;
        if !peer.is_active() && !self.authenticate(id, buf, now) {
            return;
        }
        loop {
            match self.peers.get(&id.0) {
                Some(peer) if !peer.paused => {}
                Some(_) => return,
                None => {
                    buf.clear();
                    return;
                }
            }
            let before = buf.len();
            match self.decoder.decode(buf) {
                Ok(None) => return,
                Ok(Some(frame)) => {
                    let len = before.saturating_sub(buf.len());
                    self.stats.received.get_mut(side).add(len);
                    if let Some(peer) = self.peers.get_mut(&id.0) {
                        peer.last_input = now;
                    }
                    self.handle_frame(id, side, frame, now);
                }
                Err(err) => {
                    self.drop_peer(id, CloseReason::Malformed(err));
                    buf.clear();
                    return;
                }
            }
        }
    }

    /// Checks a handshaking server's answer once all 20 bytes are in. Returns true when framing may
    /// start on the rest of `buf`.
    fn authenticate(&mut self, id: PeerId, buf: &mut BytesMut, now: Instant) -> bool {
        let Some(peer) = self.peers.get_mut(&id.0) else {
            return false;
        };
        let challenge = match &peer.state {
            PeerState::Handshake(handshake) => handshake.challenge,
            PeerState::Active => return true,
        };
        let Some(answer) = buf.get(..RESPONSE_LEN) else {
            return false;
        };
        let mut response = [0u8; RESPONSE_LEN];
        response.copy_from_slice(answer);
        let _ = buf.split_to(RESPONSE_LEN);
        match auth::verify_response(&challenge, &self.config.auth_key, &response) {
            Ok(server_id) => {
                peer.state = PeerState::Active;
                peer.wire_id = server_id;
                peer.last_input = now;
                self.servers.entry(server_id).or_default().push(id);
                self.offline_servers.came_online(server_id);
                self.actions.push_back(Action::ServerAuthenticated {
                    peer: id,
                    server_id,
                });
                self.schedule_peer(id);
                true
            }
            Err(err) => {
                self.drop_peer(id, CloseReason::Auth(err));
                buf.clear();
                false
            }
        }
    }

    fn handle_frame(&mut self, from: PeerId, side: Side, frame: Frame, now: Instant) {
        match frame {
            Frame::Data(data) => self.route_data(from, side, data, now),
            Frame::Command(Command::Dial { remote }) => self.dial(from, side, remote, now),
            Frame::Command(Command::Close { conn }) => self.close_vconn(from, conn, now),
            Frame::Command(Command::Ping) => self.enqueue_command(from, &Command::Ping, now),
            Frame::Command(other) => {
                self.drop_peer(from, CloseReason::ForbiddenCommand(other.kind()));
            }
        }
    }

    /// PROTOCOL.md §6.4: forward verbatim to the other member, Close for unknown ids, drop a sender
    /// that is not the member of its side.
    fn route_data(&mut self, from: PeerId, side: Side, data: DataFrame, now: Instant) {
        let conn = data.conn();
        let Some(vconn) = self.vconns.get(&conn).copied() else {
            self.enqueue_command(from, &Command::Close { conn }, now);
            return;
        };
        let (member, target) = match side {
            Side::Client => (vconn.client, vconn.server),
            Side::Server => (vconn.server, vconn.client),
        };
        if member != from {
            self.drop_peer(from, CloseReason::ForeignVconn(conn));
            return;
        }
        let wire = data.into_wire();
        self.stats.frames_routed += 1;
        self.stats.bytes_routed += wire.len() as u64;
        self.enqueue(target, wire, now);
        if side == Side::Client {
            self.apply_backpressure(from, target);
        }
    }

    /// Pauses `client` if the server it just sent to is above its high-water mark.
    fn apply_backpressure(&mut self, client: PeerId, server: PeerId) {
        let (high_frames, high_bytes) = self.config.server_queue.high_water();
        let Some(target) = self.peers.get_mut(&server.0) else {
            return;
        };
        if target.outbox.frames() < high_frames && target.outbox.pending_bytes() < high_bytes {
            return;
        }
        self.waiters.entry(server.0).or_default().push(client);
        if let Some(sender) = self.peers.get_mut(&client.0) {
            sender.paused = true;
            self.actions.push_back(Action::PauseReading(client));
        }
    }

    /// PROTOCOL.md §6.3.
    fn dial(&mut self, from: PeerId, side: Side, remote: u32, now: Instant) {
        let target = match side {
            Side::Client => self
                .servers
                .get(&remote)
                .and_then(|ids| ids.last().copied()),
            Side::Server => self.clients.get(&remote).copied(),
        };
        let Some(target) = target else {
            let reason = match side {
                Side::Client => Refusal::NoSuchServer,
                Side::Server => Refusal::NoSuchClient,
            };
            self.refuse(from, remote, reason, now);
            return;
        };
        let conn = self.allocate_vconn_id();
        let Some(dialer) = self.peers.get(&from.0) else {
            return;
        };
        let limit = self.config.client_max_conn as usize;
        if side == Side::Client && limit != 0 && dialer.vconns.len() >= limit {
            self.refuse(from, remote, Refusal::VconnLimit, now);
            return;
        }
        let dialer_id = dialer.wire_id;
        let (client, server) = match side {
            Side::Client => (from, target),
            Side::Server => (target, from),
        };
        for member in [from, target] {
            if let Some(peer) = self.peers.get_mut(&member.0) {
                peer.vconns.insert(conn);
            }
        }
        self.vconns.insert(conn, VConn { client, server });
        self.stats.dials_accepted += 1;
        self.enqueue_command(from, &Command::Accept { conn, remote }, now);
        let connect = Command::Connect {
            conn,
            remote: dialer_id,
        };
        self.enqueue_command(target, &connect, now);
    }

    fn refuse(&mut self, dialer: PeerId, remote: u32, reason: Refusal, now: Instant) {
        self.stats.dials_refused += 1;
        self.stats.dial_refusals.count(reason);
        if let Some(peer) = self.peers.get(&dialer.0) {
            log_refusal(peer.wire_id, remote, reason, self.config.client_max_conn);
        }
        self.enqueue_command(dialer, &Command::Refuse { remote }, now);
    }

    /// PROTOCOL.md §6.5 with our ownership rule: only a member may close a vconn; the Close is echoed
    /// to both members.
    fn close_vconn(&mut self, from: PeerId, conn: u32, now: Instant) {
        let Some(vconn) = self.vconns.get(&conn).copied() else {
            return;
        };
        if vconn.client != from && vconn.server != from {
            return;
        }
        self.vconns.remove(&conn);
        for member in [vconn.client, vconn.server] {
            if let Some(peer) = self.peers.get_mut(&member.0) {
                peer.vconns.remove(&conn);
            }
            self.enqueue_command(member, &Command::Close { conn }, now);
        }
    }

    /// The runtime saw `peer`'s socket close or fail. Tears down its vconns (PROTOCOL.md §6.7).
    pub fn handle_closed(&mut self, peer: PeerId, now: Instant) {
        self.now = Some(now);
        self.drop_peer(peer, CloseReason::Disconnected);
        self.drop_overflowed();
    }

    /// The runtime could not queue to `peer` (its own queue is full): drop it as the core would.
    pub fn handle_queue_full(&mut self, peer: PeerId, now: Instant) {
        self.now = Some(now);
        self.drop_peer(peer, CloseReason::QueueFull);
        self.drop_overflowed();
    }

    /// Tells the gateway that `peer`'s snet link went down (`up == false`) or came back. While it is
    /// down the peer waits for snet's reconnect rather than idling, so its idle timeout is suspended;
    /// snet's own wait timeout decides if it is gone.
    pub fn set_link_up(&mut self, peer: PeerId, up: bool, now: Instant) {
        if let Some(state) = self.peers.get_mut(&peer.0) {
            state.link_down = !up;
            if !up {
                // The batch the writer had taken went down with the socket (snet resends it from
                // its own buffer); nothing is being written until the link is back.
                state.outbox.writer_lost();
                state.write_since = None;
            }
            if up {
                state.last_input = now;
                if let Some(since) = state.write_since.as_mut() {
                    *since = now;
                }
                self.schedule_peer(peer);
            }
        }
    }

    /// Fires every deadline that has passed: handshake, idle and stalled-write timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(Reverse((at, raw))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let id = PeerId(raw);
            let Some(peer) = self.peers.get_mut(&raw) else {
                continue;
            };
            if peer.scheduled != Some(at) {
                continue;
            }
            peer.scheduled = None;
            match self.peer_deadline(id) {
                Some((deadline, reason)) if deadline <= now => {
                    if let CloseReason::Auth(_) = reason {
                        self.stats.auth_failures += 1;
                    }
                    self.drop_peer(id, reason);
                }
                Some(_) => self.schedule_peer(id),
                None => {}
            }
        }
        self.drop_overflowed();
    }

    /// When [`Gateway::handle_timeout`] should next be called, if ever. It may be early, never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The next thing the runtime must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Moves everything queued for `peer` into `out` (appending) and returns the byte count. Calling it
    /// also says the batch taken last time was fully written. A writer loops until it returns 0, then
    /// waits for the next [`Action::Transmit`].
    pub fn poll_transmit(&mut self, peer: PeerId, now: Instant, out: &mut Vec<Bytes>) -> usize {
        let Some(state) = self.peers.get_mut(&peer.0) else {
            return 0;
        };
        let taken = state.outbox.take(out);
        if taken == 0 {
            state.transmit_pending = false;
            state.write_since = None;
        } else {
            state.write_since = Some(now);
        }
        self.release_waiters(peer, now);
        taken
    }

    /// Resumes the clients paused on `server` once its queue is below the low-water mark.
    fn release_waiters(&mut self, server: PeerId, now: Instant) {
        if self.waiters.is_empty() {
            return;
        }
        let (low_frames, low_bytes) = self.config.server_queue.low_water();
        let Some(state) = self.peers.get(&server.0) else {
            return;
        };
        if state.outbox.frames() > low_frames || state.outbox.pending_bytes() > low_bytes {
            return;
        }
        if let Some(waiters) = self.waiters.remove(&server.0) {
            self.resume(waiters, now);
        }
    }

    fn resume(&mut self, clients: Vec<PeerId>, now: Instant) {
        for client in clients {
            if let Some(peer) = self.peers.get_mut(&client.0) {
                if peer.paused {
                    peer.paused = false;
                    peer.last_input = now;
                    self.actions.push_back(Action::ResumeReading(client));
                    self.schedule_peer(client);
                }
            }
        }
    }

    /// Closes every connection (PROTOCOL.md §6.11). Each gets an [`Action::Close`] whose `flush` holds
    /// what was still queued for it, Close frames of the cascade included, best effort.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = Some(now);
        let mut ids: Vec<u64> = self.peers.keys().copied().collect();
        ids.sort_unstable();
        // Tear every vconn down first so each peer's last flush carries its Close frames.
        for &raw in &ids {
            self.teardown_vconns(PeerId(raw), true);
        }
        for raw in ids {
            self.drop_peer(PeerId(raw), CloseReason::Shutdown);
        }
        self.overflowed.clear();
    }

    /// The gateway's counters now.
    pub fn stats(&self) -> GatewayStats {
        let handshaking = self.peers.values().filter(|p| !p.is_active()).count();
        GatewayStats {
            clients: self.clients.len(),
            servers: self.peers.len() - self.clients.len() - handshaking,
            handshaking,
            vconns: self.vconns.len(),
            server_status: self.offline_servers.snapshot(self.servers.keys().copied()),
            ..self.stats.clone()
        }
    }

    /// A description of every connection, ordered by handle, for the `conns` command.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut infos: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(&raw, peer)| {
                let mut vconns: Vec<u32> = peer.vconns.iter().copied().collect();
                vconns.sort_unstable();
                PeerInfo {
                    peer: PeerId(raw),
                    side: peer.side,
                    id: peer.is_active().then_some(peer.wire_id),
                    vconns,
                    pending_bytes: peer.outbox.pending_bytes(),
                    paused: peer.paused,
                }
            })
            .collect();
        infos.sort_by_key(|info| info.peer);
        infos
    }

    /// Whether the core still knows `peer`.
    pub fn contains(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer.0)
    }

    /// Whether reading from `peer` is paused by backpressure.
    pub fn is_paused(&self, peer: PeerId) -> bool {
        self.peers.get(&peer.0).is_some_and(|p| p.paused)
    }

    // ---- internals -------------------------------------------------------------------------------

    fn insert_peer(&mut self, peer: Peer) -> PeerId {
        self.next_peer += 1;
        let id = PeerId(self.next_peer);
        self.peers.insert(id.0, peer);
        id
    }

    /// Next client id: pre-increment, skipping 0 and ids still live.
    fn allocate_client_id(&mut self) -> u32 {
        loop {
            self.last_client_id = self.last_client_id.wrapping_add(1);
            let id = self.last_client_id;
            if id != 0 && !self.clients.contains_key(&id) {
                return id;
            }
        }
    }

    /// Next vconn id: pre-increment, skipping 0 and ids still live.
    fn allocate_vconn_id(&mut self) -> u32 {
        loop {
            self.last_vconn_id = self.last_vconn_id.wrapping_add(1);
            let id = self.last_vconn_id;
            if id != 0 && !self.vconns.contains_key(&id) {
                return id;
            }
        }
    }

    fn enqueue_command(&mut self, to: PeerId, command: &Command, now: Instant) {
        if let Some(peer) = self.peers.get_mut(&to.0) {
            self.stats
                .sent
                .get_mut(peer.side)
                .add(command.encoded_len());
            peer.outbox.push_command(command);
            self.after_enqueue(to, now);
        }
    }

    fn enqueue_raw(&mut self, to: PeerId, bytes: &[u8], now: Instant) {
        if let Some(peer) = self.peers.get_mut(&to.0) {
            peer.outbox.push_raw(bytes);
            self.after_enqueue(to, now);
        }
    }

    fn enqueue(&mut self, to: PeerId, frame: Bytes, now: Instant) {
        if let Some(peer) = self.peers.get_mut(&to.0) {
            self.stats.sent.get_mut(peer.side).add(frame.len());
            peer.outbox.push(frame);
            self.after_enqueue(to, now);
        }
    }

    /// Wakes the writer if needed and checks the queue bounds.
    fn after_enqueue(&mut self, to: PeerId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&to.0) else {
            return;
        };
        if !peer.transmit_pending {
            peer.transmit_pending = true;
            self.actions.push_back(Action::Transmit(to));
        }
        let stall_starts = peer.write_since.is_none();
        if stall_starts {
            peer.write_since = Some(now);
        }
        let limits = match peer.side {
            Side::Client => self.config.client_queue,
            Side::Server => self.config.server_queue,
        };
        // The frame bound counts frames piling up behind a batch the writer is still writing: a
        // burst routed while the writer is idle goes out in its next batch whatever its size, so only
        // the byte bound applies to it.
        let frames_over = peer.outbox.writer_busy() && peer.outbox.frames() > limits.max_frames;
        if frames_over || peer.outbox.pending_bytes() > limits.max_bytes {
            self.overflowed.push((to, CloseReason::QueueFull));
        }
        if stall_starts {
            self.schedule_peer(to);
        }
    }

    fn drop_overflowed(&mut self) {
        while let Some((peer, reason)) = self.overflowed.pop() {
            self.drop_peer(peer, reason);
        }
    }

    /// Removes `peer` everywhere, tells the other member of each of its vconns, and emits its Close.
    fn drop_peer(&mut self, id: PeerId, reason: CloseReason) {
        if !self.peers.contains_key(&id.0) {
            return;
        }
        self.teardown_vconns(id, false);
        let Some(mut peer) = self.peers.remove(&id.0) else {
            return;
        };
        if peer.is_active() {
            self.unregister(id, &peer);
        }
        let waiters = self.waiters.remove(&id.0).unwrap_or_default();
        let now = self.now.unwrap_or(peer.last_input);
        self.resume(waiters, now);
        self.count_drop(reason);
        let flush = if reason == CloseReason::Shutdown {
            peer.outbox.drain_all()
        } else {
            Vec::new()
        };
        self.actions.push_back(Action::Close {
            peer: id,
            reason,
            flush,
        });
    }

    /// Removes every vconn of `id` and queues Close to the other members (and to `id` itself when
    /// `notify_self`, for a graceful shutdown).
    fn teardown_vconns(&mut self, id: PeerId, notify_self: bool) {
        let Some(peer) = self.peers.get_mut(&id.0) else {
            return;
        };
        let now = self.now.unwrap_or(peer.last_input);
        let conns: Vec<u32> = peer.vconns.drain().collect();
        for conn in conns {
            let Some(vconn) = self.vconns.remove(&conn) else {
                continue;
            };
            let other = if vconn.client == id {
                vconn.server
            } else {
                vconn.client
            };
            if let Some(peer) = self.peers.get_mut(&other.0) {
                peer.vconns.remove(&conn);
            }
            self.enqueue_command(other, &Command::Close { conn }, now);
            if notify_self {
                self.enqueue_command(id, &Command::Close { conn }, now);
            }
        }
    }

    /// Compare-and-remove from the registry: only if the entry still points to this connection.
    fn unregister(&mut self, id: PeerId, peer: &Peer) {
        match peer.side {
            Side::Client => {
                if self.clients.get(&peer.wire_id) == Some(&id) {
                    self.clients.remove(&peer.wire_id);
                }
            }
            Side::Server => {
                if let Some(ids) = self.servers.get_mut(&peer.wire_id) {
                    ids.retain(|&other| other != id);
                    if ids.is_empty() {
                        self.servers.remove(&peer.wire_id);
                        self.offline_servers.went_offline(peer.wire_id);
                    }
                }
            }
        }
    }

    fn count_drop(&mut self, reason: CloseReason) {
        match reason {
            _ if reason.is_violation() => self.stats.protocol_drops += 1,
            CloseReason::QueueFull => self.stats.queue_full_drops += 1,
            CloseReason::IdleTimeout => {
                self.stats.timeout_drops += 1;
                self.stats.idle_drops += 1;
            }
            CloseReason::WriteStalled => {
                self.stats.timeout_drops += 1;
                self.stats.write_stall_drops += 1;
            }
            CloseReason::Auth(AuthError::BadDigest) => self.stats.auth_failures += 1,
            _ => {}
        }
    }

    /// The earliest deadline of `id` and what happens when it passes.
    fn peer_deadline(&self, id: PeerId) -> Option<(Instant, CloseReason)> {
        let peer = self.peers.get(&id.0)?;
        if let PeerState::Handshake(handshake) = &peer.state {
            return Some((handshake.deadline, CloseReason::Auth(AuthError::Timeout)));
        }
        let idle = match peer.side {
            Side::Client => self.config.client_idle_timeout,
            Side::Server => self.config.server_idle_timeout,
        }?;
        if peer.link_down {
            return None;
        }
        let read = (!peer.paused).then(|| (peer.last_input + idle, CloseReason::IdleTimeout));
        let write = peer
            .write_since
            .map(|since| (since + idle, CloseReason::WriteStalled));
        match (read, write) {
            (Some(r), Some(w)) => Some(if w.0 < r.0 { w } else { r }),
            (r, w) => r.or(w),
        }
    }

    /// Makes sure the timer heap holds an entry no later than `id`'s next deadline.
    fn schedule_peer(&mut self, id: PeerId) {
        let Some((deadline, _)) = self.peer_deadline(id) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&id.0) else {
            return;
        };
        if peer.scheduled.is_none_or(|at| deadline < at) {
            peer.scheduled = Some(deadline);
            self.timers.push(Reverse((deadline, id.0)));
        }
    }
}

/// One `info` line per refused dial, with both ids and the reason: a refusal is what a game client
/// sees when a server is down or misconfigured, so the operator needs it without debug logging. Only
/// refusals log; accepted dials (the common path) do not.
///
/// Logging is the core's optional `log` feature (the runtime crates turn it on); without it this is a
/// no-op, so an embedder's build pulls in nothing beyond the protocol's own dependencies.
#[cfg(feature = "log")]
fn log_refusal(dialer: u32, remote: u32, why: Refusal, limit: u32) {
    match why {
        Refusal::NoSuchServer => log::info!(
            "refuse dial from client {dialer} to server {remote}: no server {remote} is registered"
        ),
        Refusal::VconnLimit => log::info!(
            "refuse dial from client {dialer} to server {remote}: the client already has \
             {limit} vconns (ClientMaxConn)"
        ),
        Refusal::NoSuchClient => log::info!(
            "refuse dial from server {dialer} to client {remote}: no client {remote} is connected"
        ),
    }
}

#[cfg(not(feature = "log"))]
fn log_refusal(_dialer: u32, _remote: u32, _why: Refusal, _limit: u32) {}
