//! Switchboard tests: plain sockets behave as the gateway; snet sockets carry peers across reconnects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::auth::server_response;
use crate::frame::{Command, Frame, FrameDecoder, encode_data};
use crate::snet::{ClientHandshake, ClientReconnect, REFUSAL, Session};
use crate::test_support::TestRng;
use std::time::Duration;

struct Harness {
    sb: Switchboard,
    now: Instant,
    rng: TestRng,
    closed: Vec<(SocketId, SocketCloseReason, Vec<u8>)>,
    authenticated: Vec<(SocketId, u32)>,
    ended: Vec<SocketCloseReason>,
    paused: Vec<SocketId>,
}

/// An in-memory snet client: its session, its socket, and what it has received (decrypted).
struct SnetClient {
    session: Session,
    link: LinkId,
    socket: SocketId,
    received: BytesMut,
}

fn snet_config(encrypt: bool) -> SnetConfig {
    SnetConfig {
        enable_crypt: encrypt,
        rewriter_buffer_size: 4096,
        handshake_timeout: Duration::from_secs(10),
        reconn_wait_timeout: Duration::from_secs(60),
    }
}

impl Harness {
    fn new(client_snet: Option<SnetConfig>, server_snet: Option<SnetConfig>) -> Self {
        Self {
            sb: Switchboard::new(SwitchboardConfig {
                gateway: GatewayConfig {
                    client_idle_timeout: None,
                    server_idle_timeout: None,
                    ..GatewayConfig::default()
                },
                client_snet,
                server_snet,
            }),
            now: Instant::now(),
            rng: TestRng::new(11),
            closed: Vec::new(),
            authenticated: Vec::new(),
            ended: Vec::new(),
            paused: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.sb.poll_action() {
            match action {
                Action::Close {
                    socket,
                    reason,
                    flush,
                } => self.closed.push((socket, reason, flush.concat())),
                Action::ServerAuthenticated { socket, server_id } => {
                    self.authenticated.push((socket, server_id))
                }
                Action::SessionEnded { reason, .. } => self.ended.push(reason),
                Action::PauseReading(socket) => self.paused.push(socket),
                _ => {}
            }
        }
    }

    fn accept(&mut self, side: Side) -> SocketId {
        let socket = self.sb.accept(side, self.now, &mut self.rng).unwrap();
        self.drain();
        socket
    }

    fn input(&mut self, socket: SocketId, bytes: &[u8]) {
        let mut buf = BytesMut::from(bytes);
        self.sb
            .handle_input(socket, &mut buf, self.now, &mut self.rng);
        self.drain();
    }

    fn take(&mut self, socket: SocketId) -> Vec<u8> {
        // Like a writer: take batches until nothing is left (each call says the last was written).
        let mut out = Vec::new();
        while self.sb.poll_transmit(socket, self.now, &mut out) > 0 {}
        self.drain();
        out.concat()
    }

    fn plain_server(&mut self, id: u32) -> SocketId {
        let socket = self.accept(Side::Server);
        let challenge = Challenge(self.take(socket).try_into().unwrap());
        self.input(socket, &server_response(&challenge, b"", id));
        socket
    }

    fn snet_connect(&mut self, side: Side, encrypt: bool) -> SnetClient {
        let socket = self.accept(side);
        let mut handshake = ClientHandshake::new(snet_config(encrypt), &mut self.rng);
        self.input(socket, &handshake.request());
        let mut reply = BytesMut::from(&self.take(socket)[..]);
        let connected = handshake.handle_input(&mut reply).unwrap().unwrap();
        self.input(socket, &connected.proof);
        SnetClient {
            session: connected.session,
            link: connected.link,
            socket,
            received: BytesMut::new(),
        }
    }

    /// The client writes `plain` through its snet session.
    fn snet_send(&mut self, client: &mut SnetClient, plain: &[u8]) {
        let mut bytes = plain.to_vec();
        client
            .session
            .encrypt_outbound(client.link, &mut bytes)
            .unwrap();
        self.input(client.socket, &bytes);
    }

    /// The client reads what the switchboard has for it.
    fn snet_recv(&mut self, client: &mut SnetClient) -> Vec<Frame> {
        let mut bytes = self.take(client.socket);
        client
            .session
            .decrypt_inbound(client.link, &mut bytes)
            .unwrap();
        client.received.extend_from_slice(&bytes);
        let mut frames = Vec::new();
        while let Some(frame) = FrameDecoder::default()
            .decode(&mut client.received)
            .unwrap()
        {
            frames.push(frame);
        }
        frames
    }

    /// The client's socket dies; it reconnects on a new socket.
    fn snet_reconnect(&mut self, side: Side, client: &mut SnetClient) {
        client.session.link_down(client.link, self.now).unwrap();
        let socket = self.accept(side);
        let mut attempt = ClientReconnect::new(&client.session).unwrap();
        self.input(socket, &attempt.request());
        let mut reply = BytesMut::from(&self.take(socket)[..]);
        let link = attempt
            .handle_input(&mut client.session, &mut reply)
            .unwrap();
        let mut proof_and_resend = Vec::new();
        while let Some(bytes) = attempt.poll_transmit() {
            proof_and_resend.extend_from_slice(&bytes);
        }
        let link = match link {
            Some(link) => link,
            None => {
                self.input(socket, &proof_and_resend);
                let mut rest = BytesMut::from(&self.take(socket)[..]);
                reply.extend_from_slice(&rest.split());
                attempt
                    .handle_input(&mut client.session, &mut reply)
                    .unwrap()
                    .unwrap()
            }
        };
        if !proof_and_resend.is_empty()
            && self
                .sb
                .sockets
                .get(&socket.0)
                .is_some_and(|s| matches!(s.state, SocketState::Handshaking(_)))
        {
            self.input(socket, &proof_and_resend);
        }
        client.link = link;
        client.socket = socket;
        client
            .session
            .decrypt_inbound(link, &mut reply[..])
            .unwrap();
        client.received.extend_from_slice(&reply);
    }
}

fn data(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_data(conn, payload, &mut buf);
    buf.to_vec()
}

fn accept_of(frames: &[Frame]) -> u32 {
    frames
        .iter()
        .find_map(|f| match f {
            Frame::Command(Command::Accept { conn, .. }) => Some(*conn),
            _ => None,
        })
        .expect("an Accept")
}

#[test]
fn plain_ports_route_exactly_as_the_gateway() {
    let mut h = Harness::new(None, None);
    let server = h.plain_server(7);
    assert_eq!(h.authenticated, vec![(server, 7)]);
    let client = h.accept(Side::Client);
    h.input(client, &Command::Dial { remote: 7 }.to_bytes());
    assert_eq!(
        h.take(client),
        Command::Accept { conn: 1, remote: 7 }.to_bytes().to_vec()
    );
    assert_eq!(
        h.take(server),
        Command::Connect { conn: 1, remote: 1 }.to_bytes().to_vec()
    );
    h.input(client, &data(1, b"hi"));
    assert_eq!(h.take(server), data(1, b"hi"));
    h.sb.handle_closed(client, h.now);
    h.drain();
    assert_eq!(
        h.take(server),
        Command::Close { conn: 1 }.to_bytes().to_vec()
    );
    assert_eq!(h.closed.len(), 1);
    assert_eq!(h.sb.socket_count(), 1);
}

#[test]
fn snet_client_and_plain_server_route_between_them_with_and_without_encryption() {
    for encrypt in [false, true] {
        let mut h = Harness::new(Some(snet_config(encrypt)), None);
        let server = h.plain_server(7);
        let mut client = h.snet_connect(Side::Client, encrypt);
        h.snet_send(&mut client, &Command::Dial { remote: 7 }.to_bytes());
        let conn = accept_of(&h.snet_recv(&mut client));
        assert_eq!(
            h.take(server),
            Command::Connect { conn, remote: 1 }.to_bytes().to_vec()
        );
        h.snet_send(&mut client, &data(conn, b"up"));
        assert_eq!(h.take(server), data(conn, b"up"));
        h.input(server, &data(conn, b"down"));
        let frames = h.snet_recv(&mut client);
        assert!(matches!(&frames[..], [Frame::Data(d)] if d.payload().as_ref() == b"down"));
    }
}

#[test]
fn snet_server_port_authenticates_over_the_decrypted_stream() {
    let mut h = Harness::new(None, Some(snet_config(true)));
    let mut server = h.snet_connect(Side::Server, true);
    let mut challenge = h.take(server.socket);
    server
        .session
        .decrypt_inbound(server.link, &mut challenge)
        .unwrap();
    let challenge = Challenge(challenge.try_into().unwrap());
    h.snet_send(&mut server, &server_response(&challenge, b"", 9));
    assert_eq!(h.authenticated, vec![(server.socket, 9)]);
    let client = h.accept(Side::Client);
    h.input(client, &Command::Dial { remote: 9 }.to_bytes());
    assert_eq!(
        h.take(client),
        Command::Accept { conn: 1, remote: 9 }.to_bytes().to_vec()
    );
}

#[test]
fn snet_link_loss_keeps_the_peer_and_a_reconnect_delivers_what_was_missed() {
    for encrypt in [false, true] {
        let mut h = Harness::new(Some(snet_config(encrypt)), None);
        let server = h.plain_server(7);
        let mut client = h.snet_connect(Side::Client, encrypt);
        h.snet_send(&mut client, &Command::Dial { remote: 7 }.to_bytes());
        let conn = accept_of(&h.snet_recv(&mut client));
        h.take(server);
        // A frame is taken by the writer (encrypted, counted) but "lost" with the socket.
        h.input(server, &data(conn, b"lost in flight"));
        let _in_flight = h.take(client.socket);
        h.sb.handle_closed(client.socket, h.now);
        h.drain();
        assert_eq!(h.sb.stats().clients, 1, "the peer waits for its reconnect");
        assert_eq!(h.sb.stats().vconns, 1);
        h.input(server, &data(conn, b"queued while down"));
        h.snet_reconnect(Side::Client, &mut client);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let decoder = FrameDecoder::default();
        while let Some(Frame::Data(d)) = decoder.decode(&mut client.received).unwrap() {
            got.push(d.payload().to_vec());
        }
        for frame in h.snet_recv(&mut client) {
            if let Frame::Data(d) = frame {
                got.push(d.payload().to_vec());
            }
        }
        assert_eq!(
            got,
            vec![b"lost in flight".to_vec(), b"queued while down".to_vec()]
        );
        h.snet_send(&mut client, &data(conn, b"after"));
        assert_eq!(h.take(server), data(conn, b"after"));
    }
}

#[test]
fn snet_wait_timeout_closes_the_peer_and_its_vconns() {
    let mut h = Harness::new(Some(snet_config(false)), None);
    let server = h.plain_server(7);
    let mut client = h.snet_connect(Side::Client, false);
    h.snet_send(&mut client, &Command::Dial { remote: 7 }.to_bytes());
    let conn = accept_of(&h.snet_recv(&mut client));
    h.take(server);
    h.sb.handle_closed(client.socket, h.now);
    h.drain();
    h.now += Duration::from_secs(59);
    h.sb.handle_timeout(h.now);
    assert_eq!(h.sb.stats().clients, 1);
    h.now += Duration::from_secs(1);
    h.sb.handle_timeout(h.now);
    h.drain();
    assert_eq!(h.sb.stats().clients, 0);
    assert_eq!(h.take(server), Command::Close { conn }.to_bytes().to_vec());
    assert!(h.sb.poll_timeout().is_none_or(|t| t > h.now));
}

#[test]
fn snet_reconnect_for_an_unknown_session_is_refused_and_the_real_one_is_untouched() {
    let mut h = Harness::new(Some(snet_config(false)), None);
    h.plain_server(7);
    let mut client = h.snet_connect(Side::Client, false);
    let rogue = h.accept(Side::Client);
    let mut request = vec![0xFF];
    request.extend_from_slice(&99u64.to_le_bytes());
    request.extend_from_slice(&[0u8; 32]);
    h.input(rogue, &request);
    let (socket, reason, flush) = h.closed.last().cloned().expect("rogue closed");
    assert_eq!(socket, rogue);
    assert!(matches!(reason, SocketCloseReason::Snet(_)), "{reason:?}");
    assert_eq!(flush, REFUSAL.to_vec());
    h.snet_send(&mut client, &Command::Ping.to_bytes());
    assert_eq!(
        h.snet_recv(&mut client),
        vec![Frame::Command(Command::Ping)]
    );
}

#[test]
fn snet_handshake_deadline_closes_a_silent_socket() {
    let mut h = Harness::new(Some(snet_config(false)), None);
    let silent = h.accept(Side::Client);
    h.now += Duration::from_secs(10);
    h.sb.handle_timeout(h.now);
    h.drain();
    assert_eq!(h.closed.first().map(|c| c.0), Some(silent));
    assert_eq!(h.sb.socket_count(), 0);
}

#[test]
fn gateway_drop_of_an_snet_peer_ends_its_session() {
    let mut h = Harness::new(Some(snet_config(false)), None);
    let mut client = h.snet_connect(Side::Client, false);
    h.snet_send(&mut client, &[5, 0, 0, 0, 0, 0, 0, 0, 0x42]);
    let (socket, reason, _) = h.closed.last().cloned().expect("closed");
    assert_eq!(socket, client.socket);
    assert!(matches!(reason, SocketCloseReason::Peer(r) if r.is_violation()));
    assert_eq!(h.sb.stats().clients, 0);
    // A reconnect for the ended session is refused.
    let retry = h.accept(Side::Client);
    client.session.link_down(client.link, h.now).unwrap();
    let attempt = ClientReconnect::new(&client.session).unwrap();
    h.input(retry, &attempt.request());
    assert_eq!(h.closed.last().map(|c| c.2.clone()), Some(REFUSAL.to_vec()));
}

#[test]
fn shutdown_closes_every_socket() {
    let mut h = Harness::new(Some(snet_config(true)), None);
    h.plain_server(7);
    let _client = h.snet_connect(Side::Client, true);
    let _handshaking = h.accept(Side::Client);
    h.sb.shutdown(h.now);
    h.drain();
    assert_eq!(h.closed.len(), 3);
    assert_eq!(h.sb.socket_count(), 0);
}

#[test]
fn a_frame_split_across_a_reconnect_arrives_whole() {
    for encrypt in [false, true] {
        let mut h = Harness::new(Some(snet_config(encrypt)), None);
        let server = h.plain_server(7);
        let mut client = h.snet_connect(Side::Client, encrypt);
        h.snet_send(&mut client, &Command::Dial { remote: 7 }.to_bytes());
        let conn = accept_of(&h.snet_recv(&mut client));
        h.take(server);
        let frame = data(conn, b"split across two sockets");
        let (head, tail) = frame.split_at(10);
        h.snet_send(&mut client, head);
        h.sb.handle_closed(client.socket, h.now);
        h.drain();
        h.snet_reconnect(Side::Client, &mut client);
        h.snet_send(&mut client, tail);
        assert_eq!(h.take(server), frame, "encrypt={encrypt}");
        assert_eq!(h.sb.stats().protocol_drops, 0);
    }
}

#[test]
fn backpressure_follows_a_session_to_its_new_socket() {
    let mut h = Harness::new(Some(snet_config(false)), None);
    h.sb = Switchboard::new(SwitchboardConfig {
        gateway: GatewayConfig {
            client_idle_timeout: None,
            server_idle_timeout: None,
            server_queue: gateway::QueueLimits {
                max_frames: 8,
                max_bytes: 1 << 20,
            },
            ..GatewayConfig::default()
        },
        client_snet: Some(snet_config(false)),
        server_snet: None,
    });
    let server = h.plain_server(7);
    let mut client = h.snet_connect(Side::Client, false);
    h.snet_send(&mut client, &Command::Dial { remote: 7 }.to_bytes());
    let conn = accept_of(&h.snet_recv(&mut client));
    h.take(server);
    let mut burst = Vec::new();
    for i in 0..10u8 {
        burst.extend_from_slice(&data(conn, &[i]));
    }
    h.snet_send(&mut client, &burst);
    assert_eq!(h.paused, vec![client.socket]);
    h.sb.handle_closed(client.socket, h.now);
    h.drain();
    h.snet_reconnect(Side::Client, &mut client);
    assert_eq!(
        h.paused.last(),
        Some(&client.socket),
        "paused again on the new socket"
    );
    // The server drains: every frame arrives once, in order, from the session's inbox.
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(h.take(server));
    }
    assert_eq!(got, burst);
}

#[test]
fn a_session_ended_during_its_outage_is_reported() {
    let mut h = Harness::new(Some(snet_config(false)), None);
    h.plain_server(7);
    let client = h.snet_connect(Side::Client, false);
    h.sb.handle_closed(client.socket, h.now);
    h.drain();
    h.now += Duration::from_secs(60);
    h.sb.handle_timeout(h.now);
    h.drain();
    assert_eq!(h.ended, vec![SocketCloseReason::SnetWaitTimeout]);
}

#[test]
fn only_the_byte_bound_applies_to_a_client_whose_link_is_down() {
    let mut h = Harness::new(Some(snet_config(false)), None);
    h.sb = Switchboard::new(SwitchboardConfig {
        gateway: GatewayConfig {
            client_idle_timeout: None,
            server_idle_timeout: None,
            client_queue: gateway::QueueLimits {
                max_frames: 4,
                max_bytes: 4096,
            },
            ..GatewayConfig::default()
        },
        client_snet: Some(snet_config(false)),
        server_snet: None,
    });
    let server = h.plain_server(7);
    let mut client = h.snet_connect(Side::Client, false);
    h.snet_send(&mut client, &Command::Dial { remote: 7 }.to_bytes());
    let conn = accept_of(&h.snet_recv(&mut client));
    h.take(server);
    h.input(server, &data(conn, b"in flight"));
    let _lost = h.take(client.socket);
    h.sb.handle_closed(client.socket, h.now);
    h.drain();
    for _ in 0..50 {
        h.input(server, &data(conn, b"0123456789"));
    }
    assert!(
        h.ended.is_empty(),
        "50 small frames fit in the byte bound during the outage"
    );
    for _ in 0..300 {
        h.input(server, &data(conn, b"0123456789"));
    }
    assert!(
        matches!(
            h.ended.as_slice(),
            [SocketCloseReason::Peer(gateway::CloseReason::QueueFull)]
        ),
        "{:?}",
        h.ended
    );
}

#[test]
fn shutdown_flushes_encrypted_close_frames_to_snet_sockets() {
    let mut h = Harness::new(Some(snet_config(true)), None);
    let server = h.plain_server(7);
    let mut client = h.snet_connect(Side::Client, true);
    h.snet_send(&mut client, &Command::Dial { remote: 7 }.to_bytes());
    let conn = accept_of(&h.snet_recv(&mut client));
    h.take(server);
    h.sb.shutdown(h.now);
    h.drain();
    let (_, _, mut flush) = h
        .closed
        .iter()
        .find(|(socket, _, _)| *socket == client.socket)
        .cloned()
        .expect("client socket closed");
    client
        .session
        .decrypt_inbound(client.link, &mut flush)
        .unwrap();
    assert_eq!(flush, Command::Close { conn }.to_bytes().to_vec());
}

#[test]
fn snet_reconnects_and_refused_reconnects_are_counted_per_port() {
    let mut h = Harness::new(Some(snet_config(false)), None);
    h.plain_server(7);
    let mut client = h.snet_connect(Side::Client, false);
    assert_eq!(h.sb.stats().snet_reconnects, BySide::default());
    h.sb.handle_closed(client.socket, h.now);
    h.drain();
    h.snet_reconnect(Side::Client, &mut client);
    h.sb.handle_closed(client.socket, h.now);
    h.drain();
    h.snet_reconnect(Side::Client, &mut client);
    let rogue = h.accept(Side::Client);
    let mut request = vec![0xFF];
    request.extend_from_slice(&99u64.to_le_bytes());
    request.extend_from_slice(&[0u8; 32]);
    h.input(rogue, &request);
    let stats = h.sb.stats();
    assert_eq!(
        stats.snet_reconnects,
        BySide {
            client: 2,
            server: 0
        }
    );
    assert_eq!(
        stats.snet_reconnects_refused,
        BySide {
            client: 1,
            server: 0
        }
    );
    assert_eq!(stats.clients, 1, "the gateway's own counters come through");
}
