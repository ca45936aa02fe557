//! Fuzz harnesses: each function interprets arbitrary bytes as input to one machine and checks its
//! invariants, panicking on a violation. The `cargo fuzz` targets in `fuzz/` call these (feature
//! `fuzz`), and the core's own test suite runs them on bounded random inputs, so every finding stays
//! a regression test.
//!
//! * [`frame_decoder`]: bytes, split at arbitrary points, into a [`FrameDecoder`]: the frames must
//!   not depend on the split, no frame may exceed `MaxPacket`.
//! * [`gateway()`]: a sequence of operations on several peers of a [`Gateway`] (accept client/server,
//!   answer the challenge, raw or well-formed bytes split at random points, close, timeouts, writer
//!   progress, queue-full, snet link up/down). After every step the routing table must be consistent
//!   and every queue within its bound; at the end, with every peer gone, every count is back to zero.
//! * [`switchboard_snet`]: sockets on snet ports of a [`Switchboard`]: hostile raw bytes and
//!   cooperative snet clients ([`SnetClient`]) that handshake, send frames, lose sockets and
//!   reconnect; the same consistency checks, and no socket ever closed twice.
//! * [`endpoint`]: a client or server [`Endpoint`] fed arbitrary bytes and well-formed gateway frames
//!   between local calls; everything it transmits must be valid framing.
#![allow(clippy::missing_panics_doc)]

use crate::auth::{Challenge, server_response};
use crate::endpoint::{Endpoint, EndpointConfig, Role};
use crate::frame::{Command, Frame, FrameDecoder, encode_data};
use crate::gateway::{self, Gateway, GatewayConfig, PeerId, QueueLimits, Side};
use crate::snet::{SnetClient, SnetConfig, SocketRequest};
use crate::switchboard::{self, SocketId, Switchboard, SwitchboardConfig};
use bytes::BytesMut;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// Reads the fuzz input as a stream of small decisions; reads past the end yield `None`.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(byte)
    }

    fn byte_or0(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([
            self.byte_or0(),
            self.byte_or0(),
            self.byte_or0(),
            self.byte_or0(),
        ])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let end = self.pos.saturating_add(n).min(self.data.len());
        let slice = &self.data[self.pos..end];
        self.pos = end;
        slice
    }
}

/// A deterministic xorshift generator (the harnesses must be reproducible).
struct FuzzRng(u64);

impl rand_core::TryRng for FuzzRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        Ok(x)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// Decodes every whole frame of `buf` (consuming them); `Err` on the first framing error.
fn decode_all(
    decoder: &FrameDecoder,
    buf: &mut BytesMut,
) -> Result<Vec<Frame>, crate::frame::FrameError> {
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(buf)? {
        frames.push(frame);
    }
    Ok(frames)
}

// ---- frame decoder -------------------------------------------------------------------------------

/// The decoder on arbitrary bytes, fed whole and split at fuzzer-chosen points.
pub fn frame_decoder(data: &[u8]) {
    let mut input = Input::new(data);
    let max_packet = match input.byte_or0() % 4 {
        0 => 13,
        1 => 64,
        2 => 4096,
        _ => crate::frame::DEFAULT_MAX_PACKET,
    };
    let cuts: Vec<usize> = input.take(4).iter().map(|&b| usize::from(b)).collect();
    let stream = input.take(usize::MAX);
    let decoder = FrameDecoder::new(max_packet);

    let mut whole = BytesMut::from(stream);
    let once = decode_all(&decoder, &mut whole);

    let mut split = BytesMut::new();
    let mut frames = Vec::new();
    let mut error = None;
    let mut pos: usize = 0;
    for cut in cuts.iter().copied().chain([usize::MAX]) {
        let end = pos.saturating_add(cut).min(stream.len());
        split.extend_from_slice(&stream[pos..end]);
        pos = end;
        match decode_all(&decoder, &mut split) {
            Ok(mut more) => frames.append(&mut more),
            Err(err) => {
                error = Some(err);
                break;
            }
        }
    }
    match (&once, error) {
        (Ok(all), None) => {
            assert_eq!(all, &frames, "frames depend on how the stream is split");
            assert_eq!(whole.len(), split.len(), "left-over bytes differ");
        }
        (Err(err), Some(split_err)) => assert_eq!(*err, split_err),
        (once, split) => panic!("whole: {once:?}, split: {split:?} then {frames:?}"),
    }
    for frame in once.iter().flatten() {
        if let Frame::Data(data) = frame {
            assert!(data.wire().len() <= 4 + max_packet as usize);
            assert_ne!(data.conn(), 0);
        }
    }
}

// ---- gateway -------------------------------------------------------------------------------------

const KEY: &[u8] = b"key";

/// Small limits, so that fuzz inputs reach every bound.
fn fuzz_gateway_config() -> GatewayConfig {
    GatewayConfig {
        max_packet: 256,
        client_max_conn: 3,
        max_clients: 6,
        client_idle_timeout: Some(Duration::from_secs(5)),
        server_idle_timeout: Some(Duration::from_secs(7)),
        auth_key: KEY.to_vec(),
        handshake_timeout: Duration::from_secs(2),
        client_queue: QueueLimits {
            max_frames: 8,
            max_bytes: 2048,
        },
        server_queue: QueueLimits {
            max_frames: 16,
            max_bytes: 4096,
        },
    }
}

/// A well-formed frame chosen by the input: Dial, Data, Close or Ping with small ids.
fn valid_frame(input: &mut Input<'_>) -> BytesMut {
    let mut buf = BytesMut::new();
    let selector = input.byte_or0();
    let small = u32::from(input.byte_or0() % 8);
    match selector % 5 {
        0 => Command::Dial { remote: small % 4 }.encode(&mut buf),
        1 | 2 => {
            let len = usize::from(input.byte_or0()) * 2;
            let payload = vec![selector; len];
            encode_data(small.max(1), &payload, &mut buf);
        }
        3 => Command::Close { conn: small }.encode(&mut buf),
        _ => Command::Ping.encode(&mut buf),
    }
    buf
}

/// The harness's view of one peer.
struct GwPeer {
    id: PeerId,
    side: Side,
    buf: BytesMut,
    /// Bytes the gateway sent it, not yet decoded.
    inbox: BytesMut,
    challenge: Option<Challenge>,
    closed: bool,
}

struct GwHarness {
    gw: Gateway,
    peers: Vec<GwPeer>,
    now: Instant,
    decoder: FrameDecoder,
}

impl GwHarness {
    fn index(&self, id: PeerId) -> Option<usize> {
        self.peers.iter().position(|p| p.id == id)
    }

    fn live(&self, pick: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.peers.len())
            .filter(|&i| !self.peers[i].closed)
            .collect();
        (!live.is_empty()).then(|| live[usize::from(pick) % live.len()])
    }

    /// Carries out the gateway's actions as a runtime would (ResumeReading feeds held bytes).
    fn drain(&mut self) {
        while let Some(action) = self.gw.poll_action() {
            match action {
                gateway::Action::Close { peer, .. } => {
                    let i = self
                        .index(peer)
                        .expect("Close for a peer the gateway never had");
                    assert!(!self.peers[i].closed, "peer {peer} closed twice");
                    self.peers[i].closed = true;
                }
                gateway::Action::ResumeReading(peer) => {
                    if let Some(i) = self.index(peer) {
                        let mut buf = std::mem::take(&mut self.peers[i].buf);
                        self.gw.handle_input(peer, &mut buf, self.now);
                        self.peers[i].buf = buf;
                    }
                }
                gateway::Action::ServerAuthenticated { peer, .. } => {
                    assert!(self.gw.wire_id(peer).is_some());
                }
                gateway::Action::Transmit(_) | gateway::Action::PauseReading(_) => {}
            }
        }
    }

    fn feed(&mut self, i: usize, bytes: &[u8], cut: usize) {
        let id = self.peers[i].id;
        let cut = cut.min(bytes.len());
        for part in [&bytes[..cut], &bytes[cut..]] {
            self.peers[i].buf.extend_from_slice(part);
            let mut buf = std::mem::take(&mut self.peers[i].buf);
            self.gw.handle_input(id, &mut buf, self.now);
            self.peers[i].buf = buf;
            self.drain();
        }
    }

    /// Takes what the gateway queued for peer `i`, checking it is valid framing.
    fn transmit(&mut self, i: usize) {
        let id = self.peers[i].id;
        let mut out = Vec::new();
        while self.gw.poll_transmit(id, self.now, &mut out) > 0 {}
        for chunk in out {
            self.peers[i].inbox.extend_from_slice(&chunk);
        }
        let peer = &mut self.peers[i];
        if peer.side == Side::Server && peer.challenge.is_none() {
            if peer.inbox.len() < 8 {
                return;
            }
            let bytes = peer.inbox.split_to(8);
            let mut challenge = [0u8; 8];
            challenge.copy_from_slice(&bytes);
            peer.challenge = Some(Challenge(challenge));
        }
        if let Err(err) = decode_all(&self.decoder, &mut peer.inbox) {
            panic!("the gateway sent invalid framing to {id}: {err}");
        }
        self.drain();
    }

    fn check(&self) {
        let stats = self.gw.stats();
        let live = |side| {
            self.peers
                .iter()
                .filter(|p| !p.closed && p.side == side)
                .count()
        };
        assert_eq!(stats.clients, live(Side::Client), "client count");
        assert_eq!(
            stats.servers + stats.handshaking,
            live(Side::Server),
            "server count"
        );
        check_routing(&self.gw.peers(), stats.vconns);
        let config = self.gw.config();
        for info in self.gw.peers() {
            let limit = match info.side {
                Side::Client => config.client_queue.max_bytes,
                Side::Server => config.server_queue.max_bytes,
            };
            assert!(
                info.pending_bytes <= limit,
                "queue over its bound: {info:?}"
            );
        }
    }
}

/// Every vconn has exactly one live client member and one live server member.
fn check_routing(peers: &[gateway::PeerInfo], vconns: usize) {
    let mut members: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    for info in peers {
        for &conn in &info.vconns {
            let entry = members.entry(conn).or_default();
            match info.side {
                Side::Client => entry.0 += 1,
                Side::Server => entry.1 += 1,
            }
        }
    }
    assert_eq!(members.len(), vconns, "vconn count");
    for (conn, count) in members {
        assert_eq!(count, (1, 1), "vconn {conn} members");
    }
}

/// A sequence of peer operations on a [`Gateway`]; see the module docs.
pub fn gateway(data: &[u8]) {
    let mut input = Input::new(data);
    let now = Instant::now();
    let mut h = GwHarness {
        gw: Gateway::new(fuzz_gateway_config()),
        peers: Vec::new(),
        now,
        decoder: FrameDecoder::new(fuzz_gateway_config().max_packet),
    };
    let mut rng = FuzzRng(u64::from(input.u32()) + 1);
    while let Some(op) = input.byte() {
        match op % 11 {
            0 => {
                if let Ok(id) = h.gw.accept_client(h.now) {
                    h.peers.push(new_gw_peer(id, Side::Client));
                }
            }
            1 => {
                let id = h.gw.accept_server(h.now, &mut rng);
                h.peers.push(new_gw_peer(id, Side::Server));
                let i = h.peers.len() - 1;
                h.transmit(i);
            }
            2 => {
                // A server answers its challenge (right key, or wrong with a low bit).
                let pick = input.byte_or0();
                let server_id = u32::from(input.byte_or0() % 4);
                if let Some(i) = h.live(pick) {
                    if let Some(challenge) = h.peers[i].challenge {
                        let key: &[u8] = if pick & 0x80 == 0 { KEY } else { b"bad" };
                        let answer = server_response(&challenge, key, server_id);
                        let cut = usize::from(input.byte_or0() % 21);
                        h.feed(i, &answer, cut);
                    }
                }
            }
            3 => {
                let pick = input.byte_or0();
                let len = usize::from(input.byte_or0() % 64);
                let cut = usize::from(input.byte_or0());
                let bytes = input.take(len);
                if let Some(i) = h.live(pick) {
                    h.feed(i, bytes, cut);
                }
            }
            4..=6 => {
                let pick = input.byte_or0();
                let cut = usize::from(input.byte_or0());
                let frame = valid_frame(&mut input);
                if let Some(i) = h.live(pick) {
                    h.feed(i, &frame, cut);
                }
            }
            7 => {
                if let Some(i) = h.live(input.byte_or0()) {
                    let id = h.peers[i].id;
                    h.gw.handle_closed(id, h.now);
                    h.drain();
                }
            }
            8 => {
                h.now += Duration::from_millis(u64::from(input.byte_or0()) * 50);
                h.gw.handle_timeout(h.now);
                h.drain();
                if let Some(deadline) = h.gw.poll_timeout() {
                    // Deadlines may be early, never in the past after handle_timeout.
                    assert!(deadline > h.now, "a due deadline survived handle_timeout");
                }
            }
            9 => {
                if let Some(i) = h.live(input.byte_or0()) {
                    h.transmit(i);
                }
            }
            _ => {
                let pick = input.byte_or0();
                if let Some(i) = h.live(pick) {
                    let id = h.peers[i].id;
                    match pick % 3 {
                        0 => h.gw.handle_queue_full(id, h.now),
                        1 => h.gw.set_link_up(id, false, h.now),
                        _ => h.gw.set_link_up(id, true, h.now),
                    }
                    h.drain();
                }
            }
        }
        h.check();
    }
    // Everyone leaves: nothing may be left behind.
    for i in 0..h.peers.len() {
        if !h.peers[i].closed {
            let id = h.peers[i].id;
            h.gw.handle_closed(id, h.now);
            h.drain();
        }
    }
    assert!(
        h.peers.iter().all(|p| p.closed),
        "a peer never got its Close"
    );
    let stats = h.gw.stats();
    assert_eq!(
        (
            stats.clients,
            stats.servers,
            stats.handshaking,
            stats.vconns
        ),
        (0, 0, 0, 0)
    );
    assert!(h.gw.peers().is_empty());
}

fn new_gw_peer(id: PeerId, side: Side) -> GwPeer {
    GwPeer {
        id,
        side,
        buf: BytesMut::new(),
        inbox: BytesMut::new(),
        challenge: None,
        closed: false,
    }
}

// ---- switchboard on snet ports -------------------------------------------------------------------

/// The harness's view of one socket.
struct SbSocket {
    id: SocketId,
    buf: BytesMut,
    /// The cooperative snet client behind this socket, by index, if any.
    client: Option<usize>,
    closed: bool,
}

/// A cooperative snet client: a real [`SnetClient`] and the plaintext stream it received.
struct CoopClient {
    snet: SnetClient,
    side: Side,
    socket: Option<usize>,
    plain: BytesMut,
    challenge_answered: bool,
}

struct SbHarness {
    sb: Switchboard,
    sockets: Vec<SbSocket>,
    clients: Vec<CoopClient>,
    now: Instant,
    rng: FuzzRng,
    snet: SnetConfig,
}

impl SbHarness {
    fn index(&self, id: SocketId) -> Option<usize> {
        self.sockets.iter().position(|s| s.id == id)
    }

    fn live_socket(&self, pick: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.sockets.len())
            .filter(|&i| !self.sockets[i].closed)
            .collect();
        (!live.is_empty()).then(|| live[usize::from(pick) % live.len()])
    }

    fn drain(&mut self) {
        while let Some(action) = self.sb.poll_action() {
            match action {
                switchboard::Action::Close { socket, .. } => {
                    let i = self.index(socket).expect("Close for an unknown socket");
                    assert!(!self.sockets[i].closed, "{socket} closed twice");
                    self.sockets[i].closed = true;
                    if let Some(c) = self.sockets[i].client {
                        if self.clients[c].socket == Some(i) {
                            self.clients[c].socket = None;
                            self.clients[c].snet.socket_closed(self.now);
                        }
                    }
                }
                switchboard::Action::ResumeReading(socket) => {
                    if let Some(i) = self.index(socket) {
                        let mut buf = std::mem::take(&mut self.sockets[i].buf);
                        self.sb
                            .handle_input(socket, &mut buf, self.now, &mut self.rng);
                        self.sockets[i].buf = buf;
                    }
                }
                _ => {}
            }
        }
    }

    fn accept(&mut self, side: Side, client: Option<usize>) -> Option<usize> {
        let id = self.sb.accept(side, self.now, &mut self.rng).ok()?;
        self.sockets.push(SbSocket {
            id,
            buf: BytesMut::new(),
            client,
            closed: false,
        });
        self.drain();
        Some(self.sockets.len() - 1)
    }

    fn feed(&mut self, i: usize, bytes: &[u8], cut: usize) {
        let cut = cut.min(bytes.len());
        for part in [&bytes[..cut], &bytes[cut..]] {
            if self.sockets[i].closed {
                return;
            }
            let id = self.sockets[i].id;
            self.sockets[i].buf.extend_from_slice(part);
            let mut buf = std::mem::take(&mut self.sockets[i].buf);
            self.sb.handle_input(id, &mut buf, self.now, &mut self.rng);
            self.sockets[i].buf = buf;
            self.drain();
        }
    }

    /// Moves bytes between cooperative client `c` and its socket until neither has more (or only
    /// `limit` bytes gateway → client, to cut a stream mid-way).
    fn pump(&mut self, c: usize, limit: Option<usize>) {
        for _ in 0..8 {
            let Some(i) = self.clients[c].socket else {
                return;
            };
            let mut moved = false;
            while let Some(bytes) = self.clients[c].snet.poll_transmit() {
                self.feed(i, &bytes, bytes.len());
                moved = true;
            }
            if self.sockets[i].closed {
                return;
            }
            let mut out = Vec::new();
            let id = self.sockets[i].id;
            while self.sb.poll_transmit(id, self.now, &mut out) > 0 {}
            self.drain();
            let mut raw = BytesMut::new();
            for chunk in out {
                raw.extend_from_slice(&chunk);
            }
            if let Some(limit) = limit {
                raw.truncate(limit);
            }
            if !raw.is_empty() {
                moved = true;
                let client = &mut self.clients[c];
                if client
                    .snet
                    .handle_input(&mut raw, &mut client.plain, self.now)
                    .is_err()
                {
                    self.close_client_socket(c);
                    return;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn close_client_socket(&mut self, c: usize) {
        if let Some(i) = self.clients[c].socket.take() {
            if !self.sockets[i].closed {
                let id = self.sockets[i].id;
                self.sb.handle_closed(id, self.now);
                self.drain();
            }
            self.clients[c].snet.socket_closed(self.now);
        }
    }

    /// Cooperative client `c` writes `plain` stream bytes (encrypted by its session).
    fn client_send(&mut self, c: usize, plain: &[u8]) {
        let Some(i) = self.clients[c].socket else {
            return;
        };
        let mut bytes = plain.to_vec();
        if self.clients[c].snet.encrypt(&mut bytes).is_ok() {
            self.feed(i, &bytes, bytes.len() / 2);
        }
    }

    fn check(&self) {
        let live = self.sockets.iter().filter(|s| !s.closed).count();
        assert_eq!(self.sb.socket_count(), live, "socket count");
        let stats = self.sb.stats();
        check_routing(&self.sb.peers(), stats.vconns);
    }
}

/// Sockets on snet ports of a [`Switchboard`]; see the module docs.
pub fn switchboard_snet(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte_or0();
    let snet = SnetConfig {
        enable_crypt: flags & 1 != 0,
        rewriter_buffer_size: 64 << (flags >> 1 & 3),
        handshake_timeout: Duration::from_secs(1),
        reconn_wait_timeout: Duration::from_secs(u64::from(flags >> 3 & 3)),
    };
    let config = SwitchboardConfig {
        gateway: fuzz_gateway_config(),
        client_snet: Some(snet),
        server_snet: (flags & 0x20 != 0).then_some(snet),
    };
    let mut h = SbHarness {
        sb: Switchboard::new(config),
        sockets: Vec::new(),
        clients: Vec::new(),
        now: Instant::now(),
        rng: FuzzRng(u64::from(input.u32()) + 1),
        snet,
    };
    while let Some(op) = input.byte() {
        let side = if op & 0x80 == 0 {
            Side::Client
        } else {
            Side::Server
        };
        match op % 10 {
            0 => {
                let _ = h.accept(side, None);
            }
            1 => {
                // A cooperative snet client connects and completes its handshake.
                let snet = SnetClient::new(h.snet, h.now, &mut h.rng);
                h.clients.push(CoopClient {
                    snet,
                    side,
                    socket: None,
                    plain: BytesMut::new(),
                    challenge_answered: false,
                });
                let c = h.clients.len() - 1;
                if let Some(i) = h.accept(side, Some(c)) {
                    h.clients[c].socket = Some(i);
                    h.pump(c, None);
                }
            }
            2 => {
                let pick = input.byte_or0();
                let len = usize::from(input.byte_or0() % 64);
                let cut = usize::from(input.byte_or0());
                let bytes = input.take(len);
                if let Some(i) = h.live_socket(pick) {
                    h.feed(i, bytes, cut);
                }
            }
            3..=5 => {
                let pick = usize::from(input.byte_or0());
                let frame = valid_frame(&mut input);
                if !h.clients.is_empty() {
                    let c = pick % h.clients.len();
                    let mut plain = BytesMut::new();
                    let client = &mut h.clients[c];
                    if client.side == Side::Server
                        && !client.challenge_answered
                        && client.plain.len() >= 8
                    {
                        let bytes = client.plain.split_to(8);
                        let mut challenge = [0u8; 8];
                        challenge.copy_from_slice(&bytes);
                        let answer = server_response(&Challenge(challenge), KEY, 1);
                        plain.extend_from_slice(&answer);
                        client.challenge_answered = true;
                    }
                    plain.extend_from_slice(&frame);
                    h.client_send(c, &plain);
                    h.pump(c, None);
                }
            }
            6 => {
                // A cooperative client loses its socket, possibly after part of a transmission.
                let pick = usize::from(input.byte_or0());
                let limit = usize::from(input.byte_or0());
                if !h.clients.is_empty() {
                    let c = pick % h.clients.len();
                    h.pump(c, Some(limit));
                    h.close_client_socket(c);
                }
            }
            7 => {
                if let Some(i) = h.live_socket(input.byte_or0()) {
                    let id = h.sockets[i].id;
                    h.sb.handle_closed(id, h.now);
                    h.drain();
                }
            }
            8 => {
                h.now += Duration::from_millis(u64::from(input.byte_or0()) * 40);
                h.sb.handle_timeout(h.now);
                h.drain();
                for c in 0..h.clients.len() {
                    let request = h.clients[c].snet.handle_timeout(h.now);
                    match request {
                        SocketRequest::Open => {
                            let side = h.clients[c].side;
                            if let Some(i) = h.accept(side, Some(c)) {
                                h.clients[c].socket = Some(i);
                                h.pump(c, None);
                            }
                        }
                        SocketRequest::Abandon => h.close_client_socket(c),
                        SocketRequest::None => {}
                    }
                }
            }
            _ => {
                let pick = usize::from(input.byte_or0());
                if !h.clients.is_empty() {
                    let c = pick % h.clients.len();
                    h.pump(c, None);
                }
            }
        }
        h.check();
    }
    for i in 0..h.sockets.len() {
        if !h.sockets[i].closed {
            let id = h.sockets[i].id;
            h.sb.handle_closed(id, h.now);
            h.drain();
        }
    }
    // Sessions waiting for a reconnect end at their wait timeout.
    h.now += Duration::from_secs(3600);
    h.sb.handle_timeout(h.now);
    h.drain();
    assert_eq!(h.sb.socket_count(), 0);
    let stats = h.sb.stats();
    assert_eq!(
        (
            stats.clients,
            stats.servers,
            stats.handshaking,
            stats.vconns
        ),
        (0, 0, 0, 0),
        "peers left after every socket closed and every wait timed out"
    );
}

// ---- endpoint ------------------------------------------------------------------------------------

/// A well-formed frame a gateway could send an endpoint.
fn gateway_frame(input: &mut Input<'_>) -> BytesMut {
    let mut buf = BytesMut::new();
    let selector = input.byte_or0();
    let conn = u32::from(input.byte_or0() % 6);
    let remote = u32::from(input.byte_or0() % 4);
    match selector % 7 {
        0 => Command::Accept { conn, remote }.encode(&mut buf),
        1 => Command::Connect { conn, remote }.encode(&mut buf),
        2 => Command::Refuse { remote }.encode(&mut buf),
        3 => Command::Close { conn }.encode(&mut buf),
        4 => Command::Ping.encode(&mut buf),
        _ => {
            let payload = vec![selector; usize::from(input.byte_or0() % 32)];
            encode_data(conn.max(1), &payload, &mut buf);
        }
    }
    buf
}

/// An [`Endpoint`] fed arbitrary and well-formed gateway bytes between local calls.
pub fn endpoint(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte_or0();
    let role = if flags & 1 == 0 {
        Role::Client
    } else {
        Role::Server {
            id: 3,
            auth_key: KEY.to_vec(),
        }
    };
    let config = EndpointConfig {
        max_packet: 64,
        ping_interval: (flags & 2 != 0).then_some(Duration::from_secs(1)),
        ping_timeout: Duration::from_millis(500),
        ..EndpointConfig::default()
    };
    let max_packet = config.max_packet;
    let mut now = Instant::now();
    let Ok(mut ep) = Endpoint::new(role.clone(), config, now) else {
        return;
    };
    let decoder = FrameDecoder::new(max_packet);
    let mut sent = BytesMut::new();
    let mut answered = matches!(role, Role::Client);
    let mut buf = BytesMut::new();
    while let Some(op) = input.byte() {
        match op % 9 {
            0 => {
                let len = usize::from(input.byte_or0() % 48);
                buf.extend_from_slice(input.take(len));
                let _ = ep.handle_input(&mut buf, now);
            }
            1 | 2 => {
                let frame = gateway_frame(&mut input);
                let cut = usize::from(input.byte_or0()).min(frame.len());
                buf.extend_from_slice(&frame[..cut]);
                let _ = ep.handle_input(&mut buf, now);
                buf.extend_from_slice(&frame[cut..]);
                let _ = ep.handle_input(&mut buf, now);
            }
            3 => {
                let _ = ep.dial(u32::from(input.byte_or0() % 4));
            }
            4 => {
                let conn = u32::from(input.byte_or0() % 6);
                let len = usize::from(input.byte_or0());
                let _ = ep.send(conn, &vec![7u8; len]);
            }
            5 => {
                let _ = ep.close(u32::from(input.byte_or0() % 6));
            }
            6 => {
                now += Duration::from_millis(u64::from(input.byte_or0()) * 20);
                ep.handle_timeout(now);
            }
            7 => ep.handle_link_closed(),
            _ => {
                // The challenge, for a server endpoint that still waits for it.
                let challenge = input.take(8).to_vec();
                buf.extend_from_slice(&challenge);
                let _ = ep.handle_input(&mut buf, now);
            }
        }
        while let Some(bytes) = ep.poll_transmit() {
            sent.extend_from_slice(&bytes);
        }
        if !answered && sent.len() >= 20 {
            let _ = sent.split_to(20);
            answered = true;
        }
        if answered {
            match decode_all(&decoder, &mut sent) {
                Ok(frames) => {
                    for frame in frames {
                        if let Frame::Data(data) = frame {
                            assert!(data.wire().len() <= 4 + max_packet as usize);
                        }
                    }
                }
                Err(err) => panic!("the endpoint sent invalid framing: {err}"),
            }
        }
        while ep.poll_event().is_some() {}
        assert!(ep.conn_count() <= 256, "vconns without bound");
    }
}

#[cfg(test)]
mod tests {
    //! Bounded random passes of every harness in the normal test suite.

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn frame_decoder_harness(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            super::frame_decoder(&data);
        }

        #[test]
        fn gateway_harness(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            super::gateway(&data);
        }

        #[test]
        fn switchboard_snet_harness(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            super::switchboard_snet(&data);
        }

        #[test]
        fn endpoint_harness(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            super::endpoint(&data);
        }
    }
}
