//! snet tests: SNET.md §11 vectors, handshake rules, refusals, timeouts, and properties.
#![allow(clippy::unwrap_used)]

use super::dh64::KeyPair;
use super::*;
use bytes::BytesMut;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// Yields scripted `u64`s first, then a splitmix64 sequence. `fill_bytes` uses whole `u64`s (LE).
struct TestRng {
    script: VecDeque<u64>,
    state: u64,
}

impl TestRng {
    fn new(script: &[u64]) -> Self {
        Self {
            script: script.iter().copied().collect(),
            state: 0x5EED,
        }
    }
    fn seeded(seed: u64) -> Self {
        Self {
            script: VecDeque::new(),
            state: seed,
        }
    }
}

impl rand_core::TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        if let Some(v) = self.script.pop_front() {
            return Ok(v);
        }
        self.state = self.state.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const CLIENT_PRIVATE: u64 = 0x0123456789ABCDEF;
const SERVER_PRIVATE: u64 = 0x1122334455667788;
const CHALLENGE: [u8; 8] = [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];

fn config(crypt: bool) -> SnetConfig {
    SnetConfig {
        enable_crypt: crypt,
        ..SnetConfig::default()
    }
}

fn drain_server(hs: &mut ServerHandshake) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = hs.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

fn drain_client(rc: &mut ClientReconnect) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = rc.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

/// A connected pair built from the §11 fixed keys.
struct Pair {
    listener: SnetListener,
    client: Session,
    client_link: LinkId,
    conn_id: u64,
    server_link: LinkId,
    rng: TestRng,
    now: Instant,
}

fn connect_fixed(cfg: SnetConfig) -> (Pair, Vec<u8>, Vec<u8>, [u8; 16]) {
    let now = Instant::now();
    let mut listener = SnetListener::new(cfg);
    let mut rng = TestRng::new(&[SERVER_PRIVATE, u64::from_le_bytes(CHALLENGE)]);
    let mut client_hs =
        ClientHandshake::with_key_pair(cfg, KeyPair::from_private(CLIENT_PRIVATE).unwrap());
    let request = client_hs.request().to_vec();
    let mut hs = listener.accept(now);
    let mut server_in = BytesMut::from(&request[..]);
    assert_eq!(
        hs.handle_input(&mut listener, &mut server_in, now, &mut rng),
        None
    );
    let response = drain_server(&mut hs);
    let mut client_in = BytesMut::from(&response[..]);
    let connected = client_hs.handle_input(&mut client_in).unwrap().unwrap();
    server_in.extend_from_slice(&connected.proof);
    let event = hs.handle_input(&mut listener, &mut server_in, now, &mut rng);
    let Some(ServerEvent::NewSession { conn_id, link }) = event else {
        panic!("expected a new session, got {event:?}");
    };
    assert_eq!(conn_id, connected.session.conn_id());
    let pair = Pair {
        listener,
        client: connected.session,
        client_link: connected.link,
        conn_id,
        server_link: link,
        rng,
        now,
    };
    (pair, request, response, connected.proof)
}

#[test]
fn snet_s11_full_handshake_bytes_both_ways() {
    let (pair, request, response, proof) = connect_fixed(config(false));
    assert_eq!(request, hex("00 81a1a7f474ea5f44"));
    assert_eq!(
        response,
        hex("b470cd5e16ae0b2d f3876c3a229f8583 a1a2a3a4a5a6a7a8")
    );
    assert_eq!(proof.to_vec(), hex("2383a480e7070b48e084b458b3676a93"));
    assert_eq!(pair.conn_id, 1);
    assert_eq!(pair.client.conn_id(), 1);
}

#[test]
fn snet_s11_key_public_keys_and_md5_proof() {
    let client = KeyPair::from_private(CLIENT_PRIVATE).unwrap();
    let server = KeyPair::from_private(SERVER_PRIVATE).unwrap();
    assert_eq!(client.public(), 0x445FEA74F4A7A181);
    assert_eq!(server.public(), 0x2D0BAE165ECD70B4);
    let secret = client.secret(server.public()).unwrap();
    assert_eq!(secret, 0xFFB4BB2B23C1B12E);
    assert_eq!(server.secret(client.public()), Ok(secret));
    let key = Key::from_secret(secret);
    assert_eq!(key.0.to_vec(), hex("2eb1c1232bbbb4ff"));
    assert_eq!(
        proof(&CHALLENGE, &key).to_vec(),
        hex("2383a480e7070b48e084b458b3676a93")
    );
}

#[test]
fn snet_s11_keystream_and_enc_conn_id() {
    // With crypt on, the server's first app bytes use keystream offset 8: encrypting zeros shows it.
    let (mut pair, _, response, _) = connect_fixed(config(true));
    assert_eq!(response[8..16].to_vec(), hex("f3876c3a229f8583"));
    let mut zeros = [0u8; 8];
    pair.listener
        .encrypt_outbound(pair.conn_id, pair.server_link, &mut zeros)
        .unwrap();
    assert_eq!(zeros.to_vec(), hex("8b3dc393ca33a7fc"));
}

#[test]
fn snet_s11_encrypted_hello_both_directions() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    let mut s2c = *b"hello";
    pair.listener
        .encrypt_outbound(pair.conn_id, pair.server_link, &mut s2c)
        .unwrap();
    assert_eq!(s2c.to_vec(), hex("e358afffa5"));
    let mut c2s = *b"hello";
    pair.client
        .encrypt_outbound(pair.client_link, &mut c2s)
        .unwrap();
    assert_eq!(c2s.to_vec(), hex("9ae200564d"));
    pair.client
        .decrypt_inbound(pair.client_link, &mut s2c)
        .unwrap();
    pair.listener
        .decrypt_inbound(pair.conn_id, pair.server_link, &mut c2s)
        .unwrap();
    assert_eq!(&s2c, b"hello");
    assert_eq!(&c2s, b"hello");
}

#[test]
fn snet_s11_encrypted_first_dial_frame() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    let mut frame = hex("09000000000000000007000000");
    pair.client
        .encrypt_outbound(pair.client_link, &mut frame)
        .unwrap();
    assert_eq!(frame, hex("fb876c3a229f85838b3ac393ca"));
}

#[test]
fn snet_s3_without_crypt_application_bytes_are_clear() {
    let (mut pair, _, _, _) = connect_fixed(config(false));
    let mut data = *b"hello";
    pair.client
        .encrypt_outbound(pair.client_link, &mut data)
        .unwrap();
    assert_eq!(&data, b"hello");
}

/// Client writes "hello" (5), server writes "world" (5), both delivered: counts 5/5 on both sides.
fn exchange_hello(pair: &mut Pair) {
    let mut c2s = *b"hello";
    pair.client
        .encrypt_outbound(pair.client_link, &mut c2s)
        .unwrap();
    pair.listener
        .decrypt_inbound(pair.conn_id, pair.server_link, &mut c2s)
        .unwrap();
    let mut s2c = *b"world";
    pair.listener
        .encrypt_outbound(pair.conn_id, pair.server_link, &mut s2c)
        .unwrap();
    pair.client
        .decrypt_inbound(pair.client_link, &mut s2c)
        .unwrap();
}

#[test]
fn snet_s11_reconnect_request_bytes() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    exchange_hello(&mut pair);
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let rc = ClientReconnect::new(&pair.client).unwrap();
    assert_eq!(
        rc.request().to_vec(),
        hex(
            "ff 0100000000000000 0500000000000000 0500000000000000 35976fd3f43a855759fe7fe0c1d42345"
        )
    );
}

/// Feeds a reconnect request to a fresh server handshake; returns its event and what it wrote.
fn reconnect_once(pair: &mut Pair, request: &[u8]) -> (Option<ServerEvent>, Vec<u8>) {
    let mut hs = pair.listener.accept(pair.now);
    let mut server_in = BytesMut::from(request);
    let event = hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng);
    (event, drain_server(&mut hs))
}

#[test]
fn snet_s5_unknown_conn_id_is_refused_with_24_zero_bytes() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    let mut request = vec![0xFF];
    request.extend_from_slice(&[0; 40]);
    request[1] = 2; // ConnID 2 does not exist
    let (event, out) = reconnect_once(&mut pair, &request);
    assert_eq!(
        event,
        Some(ServerEvent::Refused(HandshakeError::UnknownConn(2)))
    );
    assert_eq!(out, vec![0u8; 24]);
}

#[test]
fn snet_s5_wrong_request_digest_is_refused_and_session_untouched() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    exchange_hello(&mut pair);
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let mut request = ClientReconnect::new(&pair.client).unwrap().request();
    request[40] ^= 1;
    let (event, out) = reconnect_once(&mut pair, &request);
    assert_eq!(
        event,
        Some(ServerEvent::Refused(HandshakeError::BadRequestDigest))
    );
    assert_eq!(out, vec![0u8; 24]);
    // The server's link was not retired.
    let mut more = *b"x";
    pair.listener
        .encrypt_outbound(pair.conn_id, pair.server_link, &mut more)
        .unwrap();
}

/// A request with forged counts but a correct digest (as a buggy client with the key would send).
fn forged_request(pair: &Pair, write: u64, read: u64) -> Vec<u8> {
    let key = Key::from_secret(0xFFB4BB2B23C1B12E);
    let mut body = Vec::new();
    body.extend_from_slice(&pair.conn_id.to_le_bytes());
    body.extend_from_slice(&write.to_le_bytes());
    body.extend_from_slice(&read.to_le_bytes());
    let digest = proof(&body, &key);
    let mut request = vec![TYPE_RECONN];
    request.extend_from_slice(&body);
    request.extend_from_slice(&digest);
    request
}

/// Runs a full reconnect (whole messages at once) from the client's current state; returns the
/// server's event and the client's result.
fn full_reconnect(
    pair: &mut Pair,
) -> (Option<ServerEvent>, Result<Option<LinkId>, HandshakeError>) {
    let mut rc = ClientReconnect::new(&pair.client).unwrap();
    let mut hs = pair.listener.accept(pair.now);
    let mut server_in = BytesMut::from(&rc.request()[..]);
    let mut client_in = BytesMut::new();
    let mut event = None;
    let mut result = Ok(None);
    for _ in 0..4 {
        if event.is_none() {
            event = hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng);
        }
        client_in.extend_from_slice(&drain_server(&mut hs));
        if matches!(result, Ok(None)) && !client_in.is_empty() {
            result = rc.handle_input(&mut pair.client, &mut client_in);
        }
        server_in.extend_from_slice(&drain_client(&mut rc));
    }
    if let Some(ServerEvent::Resumed { link, .. }) = event {
        pair.server_link = link;
        assert!(server_in.is_empty(), "all bytes consumed by the handshake");
    }
    if let Ok(Some(link)) = result {
        pair.client_link = link;
        // Whatever followed the reply is the server's retransmission: deliver it.
        pair.client
            .decrypt_inbound(link, &mut client_in[..])
            .unwrap();
    }
    (event, result)
}

#[test]
fn snet_s5_client_write_below_server_read_is_refused_and_session_stays_resumable() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    exchange_hello(&mut pair);
    // Live-verified: C.Write one less than the server's read count → 24 zeros.
    let request = forged_request(&pair, 4, 5);
    let (event, out) = reconnect_once(&mut pair, &request);
    assert_eq!(
        event,
        Some(ServerEvent::Refused(HandshakeError::CountersOutOfRange))
    );
    assert_eq!(out, vec![0u8; 24]);
    let session = pair.listener.session(pair.conn_id).unwrap();
    assert_eq!(session.link_state(), LinkState::Up(pair.server_link));
    assert_eq!((session.write_count(), session.read_count()), (5, 5));
    // A correct reconnect still works, and the stream continues.
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let (event, result) = full_reconnect(&mut pair);
    assert!(matches!(
        event,
        Some(ServerEvent::Resumed { conn_id: 1, .. })
    ));
    assert!(matches!(result, Ok(Some(_))));
    let mut data = *b"again";
    pair.client
        .encrypt_outbound(pair.client_link, &mut data)
        .unwrap();
    pair.listener
        .decrypt_inbound(pair.conn_id, pair.server_link, &mut data)
        .unwrap();
    assert_eq!(&data, b"again");
}

#[test]
fn snet_s5_client_read_above_server_write_is_refused() {
    let (mut pair, _, _, _) = connect_fixed(config(false));
    exchange_hello(&mut pair);
    let request = forged_request(&pair, 5, 6);
    let (event, out) = reconnect_once(&mut pair, &request);
    assert_eq!(
        event,
        Some(ServerEvent::Refused(HandshakeError::CountersOutOfRange))
    );
    assert_eq!(out, vec![0u8; 24]);
}

#[test]
fn snet_s5_gap_larger_than_the_rewrite_buffer_is_refused() {
    let cfg = SnetConfig {
        rewriter_buffer_size: 4,
        ..config(false)
    };
    let (mut pair, _, _, _) = connect_fixed(cfg);
    exchange_hello(&mut pair);
    // The client claims to have read nothing: the server would have to resend 5 > 4 bytes.
    let request = forged_request(&pair, 5, 0);
    let (event, out) = reconnect_once(&mut pair, &request);
    assert_eq!(
        event,
        Some(ServerEvent::Refused(HandshakeError::CountersOutOfRange))
    );
    assert_eq!(out, vec![0u8; 24]);
}

#[test]
fn snet_s11_reconnect_claiming_read_4_short_resends_exactly_the_last_4_ciphertext_bytes() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    let mut s2c = *b"0123456789";
    pair.listener
        .encrypt_outbound(pair.conn_id, pair.server_link, &mut s2c)
        .unwrap();
    let request = forged_request(&pair, 0, 6);
    let mut hs = pair.listener.accept(pair.now);
    let mut server_in = BytesMut::from(&request[..]);
    assert_eq!(
        hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng),
        None
    );
    let reply = drain_server(&mut hs);
    assert_eq!(
        reply[..16].to_vec(),
        hex("0a00000000000000 0000000000000000")
    );
    let key = Key::from_secret(0xFFB4BB2B23C1B12E);
    server_in.extend_from_slice(&proof(&reply[16..24], &key));
    let event = hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng);
    assert!(matches!(
        event,
        Some(ServerEvent::Resumed { conn_id: 1, .. })
    ));
    assert_eq!(drain_server(&mut hs), s2c[6..].to_vec());
}

#[test]
fn snet_s5_valid_reconnect_retires_the_old_socket_even_if_it_looks_open() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    exchange_hello(&mut pair);
    let old = pair.server_link;
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let (event, result) = full_reconnect(&mut pair);
    assert!(matches!(event, Some(ServerEvent::Resumed { .. })));
    assert!(matches!(result, Ok(Some(_))));
    assert_ne!(old, pair.server_link);
    let mut late = *b"late";
    assert_eq!(
        pair.listener.decrypt_inbound(pair.conn_id, old, &mut late),
        Err(SnetError::LinkRetired)
    );
    assert_eq!(
        pair.listener.encrypt_outbound(pair.conn_id, old, &mut late),
        Err(SnetError::LinkRetired)
    );
}

#[test]
fn snet_s5_old_socket_is_retired_as_soon_as_the_reconnect_request_is_accepted() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let rc = ClientReconnect::new(&pair.client).unwrap();
    let mut hs = pair.listener.accept(pair.now);
    let mut server_in = BytesMut::from(&rc.request()[..]);
    assert_eq!(
        hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng),
        None
    );
    let mut late = *b"late";
    assert_eq!(
        pair.listener
            .decrypt_inbound(pair.conn_id, pair.server_link, &mut late),
        Err(SnetError::LinkRetired)
    );
}

#[test]
fn snet_s5_client_refusal_closes_the_session() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let mut rc = ClientReconnect::new(&pair.client).unwrap();
    let mut input = BytesMut::from(&[0u8; 24][..]);
    assert_eq!(
        rc.handle_input(&mut pair.client, &mut input),
        Err(HandshakeError::Refused)
    );
    assert_eq!(
        pair.client.link_state(),
        LinkState::Closed(CloseReason::Refused)
    );
    assert_eq!(
        ClientReconnect::new(&pair.client).unwrap_err(),
        HandshakeError::SessionClosed
    );
}

fn client_reply(write: u64, read: u64) -> BytesMut {
    let mut reply = BytesMut::new();
    reply.extend_from_slice(&write.to_le_bytes());
    reply.extend_from_slice(&read.to_le_bytes());
    reply.extend_from_slice(&CHALLENGE);
    reply
}

#[test]
fn snet_s5_client_closes_when_server_write_is_below_client_read() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    exchange_hello(&mut pair);
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let mut rc = ClientReconnect::new(&pair.client).unwrap();
    assert_eq!(
        rc.handle_input(&mut pair.client, &mut client_reply(4, 5)),
        Err(HandshakeError::CountersOutOfRange)
    );
    assert!(pair.client.is_closed());
}

#[test]
fn snet_s5_client_closes_when_client_write_is_below_server_read() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    exchange_hello(&mut pair);
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let mut rc = ClientReconnect::new(&pair.client).unwrap();
    assert_eq!(
        rc.handle_input(&mut pair.client, &mut client_reply(5, 6)),
        Err(HandshakeError::CountersOutOfRange)
    );
    assert!(pair.client.is_closed());
}

#[test]
fn snet_s5_client_closes_when_its_gap_exceeds_its_rewrite_buffer() {
    let cfg = SnetConfig {
        rewriter_buffer_size: 4,
        ..config(true)
    };
    let (mut pair, _, _, _) = connect_fixed(cfg);
    exchange_hello(&mut pair);
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let mut rc = ClientReconnect::new(&pair.client).unwrap();
    assert_eq!(
        rc.handle_input(&mut pair.client, &mut client_reply(5, 0)),
        Err(HandshakeError::CountersOutOfRange)
    );
    assert!(pair.client.is_closed());
}

#[test]
fn snet_s5_client_sends_proof_then_its_retransmission() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    let mut data = *b"abcdef";
    pair.client
        .encrypt_outbound(pair.client_link, &mut data)
        .unwrap();
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let mut rc = ClientReconnect::new(&pair.client).unwrap();
    // The server got 2 of the 6 bytes.
    assert!(matches!(
        rc.handle_input(&mut pair.client, &mut client_reply(0, 2)),
        Ok(Some(_))
    ));
    let out = drain_client(&mut rc);
    let key = Key::from_secret(0xFFB4BB2B23C1B12E);
    assert_eq!(out[..16], proof(&CHALLENGE, &key));
    assert_eq!(out[16..], data[2..]);
}

#[test]
fn snet_s6_reread_is_committed_only_when_the_whole_retransmission_arrived() {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    // The client wrote 6 bytes the server never received.
    let mut data = *b"abcdef";
    pair.client
        .encrypt_outbound(pair.client_link, &mut data)
        .unwrap();
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    pair.listener
        .link_down(pair.conn_id, pair.server_link, pair.now)
        .unwrap();

    // First attempt: the new socket dies after 3 of the 6 retransmitted bytes.
    let mut rc = ClientReconnect::new(&pair.client).unwrap();
    let mut hs = pair.listener.accept(pair.now);
    let mut server_in = BytesMut::from(&rc.request()[..]);
    assert_eq!(
        hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng),
        None
    );
    let mut client_in = BytesMut::from(&drain_server(&mut hs)[..]);
    let attempt_link = rc
        .handle_input(&mut pair.client, &mut client_in)
        .unwrap()
        .unwrap();
    let sent = drain_client(&mut rc);
    server_in.extend_from_slice(&sent[..16 + 3]);
    assert_eq!(
        hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng),
        None
    );
    drop(hs);
    assert_eq!(pair.listener.session(pair.conn_id).unwrap().read_count(), 0);
    pair.client_link = attempt_link;
    pair.client.link_down(pair.client_link, pair.now).unwrap();

    // Second attempt: everything arrives, followed by fresh bytes in the same read.
    let (event, result) = {
        let mut rc = ClientReconnect::new(&pair.client).unwrap();
        let mut hs = pair.listener.accept(pair.now);
        let mut server_in = BytesMut::from(&rc.request()[..]);
        assert_eq!(
            hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng),
            None
        );
        let mut client_in = BytesMut::from(&drain_server(&mut hs)[..]);
        let result = rc.handle_input(&mut pair.client, &mut client_in);
        let link = result.unwrap().unwrap();
        server_in.extend_from_slice(&drain_client(&mut rc));
        let mut fresh = *b"ghi";
        pair.client.encrypt_outbound(link, &mut fresh).unwrap();
        server_in.extend_from_slice(&fresh);
        let event = hs.handle_input(&mut pair.listener, &mut server_in, pair.now, &mut pair.rng);
        let Some(ServerEvent::Resumed { conn_id, link }) = event else {
            panic!("expected resume, got {event:?}");
        };
        pair.listener
            .decrypt_inbound(conn_id, link, &mut server_in[..])
            .unwrap();
        assert_eq!(&server_in[..], b"abcdefghi");
        (event, result)
    };
    assert!(event.is_some());
    assert!(result.is_ok());
    assert_eq!(pair.listener.session(pair.conn_id).unwrap().read_count(), 9);
}

#[test]
fn snet_s5_a_newer_reconnect_supersedes_an_older_one() {
    let (mut pair, _, _, _) = connect_fixed(config(false));
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let key = Key::from_secret(0xFFB4BB2B23C1B12E);
    let rc = ClientReconnect::new(&pair.client).unwrap();
    let mut first = pair.listener.accept(pair.now);
    let mut first_in = BytesMut::from(&rc.request()[..]);
    assert_eq!(
        first.handle_input(&mut pair.listener, &mut first_in, pair.now, &mut pair.rng),
        None
    );
    let first_reply = drain_server(&mut first);
    let mut second = pair.listener.accept(pair.now);
    let mut second_in = BytesMut::from(&rc.request()[..]);
    assert_eq!(
        second.handle_input(&mut pair.listener, &mut second_in, pair.now, &mut pair.rng),
        None
    );
    first_in.extend_from_slice(&proof(&first_reply[16..24], &key));
    assert_eq!(
        first.handle_input(&mut pair.listener, &mut first_in, pair.now, &mut pair.rng),
        Some(ServerEvent::Failed(HandshakeError::Superseded))
    );
}

#[test]
fn snet_s4_wrong_proof_fails_and_still_consumes_the_conn_id() {
    let now = Instant::now();
    let mut listener = SnetListener::new(config(false));
    let mut rng = TestRng::seeded(1);
    let client = ClientHandshake::new(config(false), &mut rng);
    let mut hs = listener.accept(now);
    let mut input = BytesMut::from(&client.request()[..]);
    input.extend_from_slice(&[0u8; 16]);
    assert_eq!(
        hs.handle_input(&mut listener, &mut input, now, &mut rng),
        Some(ServerEvent::Failed(HandshakeError::BadProof))
    );
    assert!(listener.is_empty());
    // Next handshake gets ConnID 2.
    let mut client = ClientHandshake::new(config(false), &mut rng);
    let mut hs = listener.accept(now);
    let mut input = BytesMut::from(&client.request()[..]);
    hs.handle_input(&mut listener, &mut input, now, &mut rng);
    let mut reply = BytesMut::from(&drain_server(&mut hs)[..]);
    let connected = client.handle_input(&mut reply).unwrap().unwrap();
    assert_eq!(connected.session.conn_id(), 2);
}

#[test]
fn snet_s4_unknown_type_byte_fails() {
    let now = Instant::now();
    let mut listener = SnetListener::new(config(false));
    let mut hs = listener.accept(now);
    let mut input = BytesMut::from(&[1u8][..]);
    assert_eq!(
        hs.handle_input(&mut listener, &mut input, now, &mut TestRng::seeded(1)),
        Some(ServerEvent::Failed(HandshakeError::UnknownType(1)))
    );
    assert_eq!(hs.poll_transmit(), None);
}

#[test]
fn snet_s4_zero_client_public_key_fails() {
    let now = Instant::now();
    let mut listener = SnetListener::new(config(false));
    let mut hs = listener.accept(now);
    let mut input = BytesMut::from(&[0u8; 9][..]);
    assert_eq!(
        hs.handle_input(&mut listener, &mut input, now, &mut TestRng::seeded(1)),
        Some(ServerEvent::Failed(HandshakeError::ZeroPublicKey))
    );
    let mut input = BytesMut::new();
    input.extend_from_slice(&[0]);
    input.extend_from_slice(&dh64::P.to_le_bytes());
    let mut hs = listener.accept(now);
    assert_eq!(
        hs.handle_input(&mut listener, &mut input, now, &mut TestRng::seeded(1)),
        Some(ServerEvent::Failed(HandshakeError::ZeroPublicKey))
    );
}

#[test]
fn snet_s4_client_rejects_a_zero_server_public_key() {
    let mut client = ClientHandshake::new(config(false), &mut TestRng::seeded(1));
    let mut input = BytesMut::from(&[0u8; 24][..]);
    assert_eq!(
        client.handle_input(&mut input).unwrap_err(),
        HandshakeError::ZeroPublicKey
    );
}

#[test]
fn snet_s4_handshake_timeout_applies_to_type_byte_and_new_conn() {
    let now = Instant::now();
    let mut listener = SnetListener::new(config(false));
    let mut hs = listener.accept(now);
    assert_eq!(hs.poll_timeout(), Some(now + Duration::from_secs(10)));
    assert_eq!(hs.handle_timeout(now + Duration::from_secs(9)), None);
    assert_eq!(
        hs.handle_timeout(now + Duration::from_secs(10)),
        Some(ServerEvent::Failed(HandshakeError::Timeout))
    );
    // A reconnect switches to ReconnWaitTimeout from the type byte on.
    let mut hs = listener.accept(now);
    let later = now + Duration::from_secs(5);
    let mut input = BytesMut::from(&[0xFFu8][..]);
    assert_eq!(
        hs.handle_input(&mut listener, &mut input, later, &mut TestRng::seeded(1)),
        None
    );
    assert_eq!(hs.poll_timeout(), Some(later + Duration::from_secs(60)));
}

#[test]
fn snet_s7_link_down_waits_then_wait_timeout_closes_the_session() {
    let (mut pair, _, _, _) = connect_fixed(config(false));
    let t0 = pair.now;
    let mut data = *b"x";
    pair.listener
        .link_down(pair.conn_id, pair.server_link, t0)
        .unwrap();
    assert_eq!(
        pair.listener
            .encrypt_outbound(pair.conn_id, pair.server_link, &mut data),
        Err(SnetError::LinkDown)
    );
    assert_eq!(
        pair.listener.poll_timeout(),
        Some(t0 + Duration::from_secs(60))
    );
    assert!(
        pair.listener
            .handle_timeout(t0 + Duration::from_secs(59))
            .is_empty()
    );
    assert_eq!(
        pair.listener.handle_timeout(t0 + Duration::from_secs(60)),
        vec![1]
    );
    assert!(pair.listener.is_empty());
    assert_eq!(pair.listener.poll_timeout(), None);
    // The client's own wait timeout.
    pair.client.link_down(pair.client_link, t0).unwrap();
    assert_eq!(
        pair.client.poll_timeout(),
        Some(t0 + Duration::from_secs(60))
    );
    assert_eq!(
        pair.client.handle_timeout(t0 + Duration::from_secs(60)),
        Err(SnetError::Closed(CloseReason::WaitTimeout))
    );
    // And a reconnect now is refused (unknown ConnID).
    let request = forged_request(&pair, 0, 0);
    let (event, out) = reconnect_once(&mut pair, &request);
    assert_eq!(
        event,
        Some(ServerEvent::Refused(HandshakeError::UnknownConn(1)))
    );
    assert_eq!(out, vec![0u8; 24]);
}

#[test]
fn snet_s7_zero_wait_timeout_closes_at_the_first_link_failure() {
    let cfg = SnetConfig {
        reconn_wait_timeout: Duration::ZERO,
        ..config(false)
    };
    let (mut pair, _, _, _) = connect_fixed(cfg);
    assert_eq!(
        pair.listener
            .link_down(pair.conn_id, pair.server_link, pair.now),
        Err(SnetError::Closed(CloseReason::WaitTimeout))
    );
    assert!(pair.listener.is_empty());
}

#[test]
fn snet_s7_resume_cancels_the_wait_timeout() {
    let (mut pair, _, _, _) = connect_fixed(config(false));
    pair.listener
        .link_down(pair.conn_id, pair.server_link, pair.now)
        .unwrap();
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let (event, _) = full_reconnect(&mut pair);
    assert!(matches!(event, Some(ServerEvent::Resumed { .. })));
    assert_eq!(pair.listener.poll_timeout(), None);
    assert_eq!(pair.client.poll_timeout(), None);
}

#[test]
fn snet_s7_close_removes_the_session_and_later_reconnects_are_refused() {
    let (mut pair, _, _, _) = connect_fixed(config(false));
    assert!(pair.listener.close(pair.conn_id));
    assert!(!pair.listener.close(pair.conn_id));
    pair.client.link_down(pair.client_link, pair.now).unwrap();
    let (event, result) = full_reconnect(&mut pair);
    assert_eq!(
        event,
        Some(ServerEvent::Refused(HandshakeError::UnknownConn(1)))
    );
    assert_eq!(result, Err(HandshakeError::Refused));
}

#[test]
fn snet_errors_have_readable_messages() {
    assert_eq!(
        SnetError::Closed(CloseReason::WaitTimeout).to_string(),
        "snet session closed: no reconnect within the wait timeout"
    );
    assert_eq!(
        HandshakeError::UnknownConn(7).to_string(),
        "snet reconnect refused: no session with id 7"
    );
}

// ---------------------------------------------------------------------------------------------------
// Property: a client and a server joined by a link that is cut and resumed at random points deliver
// both byte streams exactly once, in order.

#[derive(Debug, Clone)]
enum Op {
    ClientWrite(usize),
    ServerWrite(usize),
    DeliverC2S(usize),
    DeliverS2C(usize),
    /// Cut the link: deliver `keep` more bytes each way, lose the rest; `server_notices` says whether
    /// the server saw the failure; `failures` reconnect attempts die after `chunk`-sized rounds.
    Cut {
        keep: usize,
        server_notices: bool,
        failures: Vec<usize>,
        chunk: usize,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..300).prop_map(Op::ClientWrite),
        3 => (1usize..300).prop_map(Op::ServerWrite),
        3 => (0usize..400).prop_map(Op::DeliverC2S),
        3 => (0usize..400).prop_map(Op::DeliverS2C),
        1 => (0usize..200, any::<bool>(), proptest::collection::vec(0usize..6, 0..3), 1usize..64)
            .prop_map(|(keep, server_notices, failures, chunk)| Op::Cut { keep, server_notices, failures, chunk }),
    ]
}

struct Sim {
    pair: Pair,
    capacity: usize,
    c2s: BytesMut,
    s2c: BytesMut,
    client_sent: Vec<u8>,
    server_sent: Vec<u8>,
    client_got: Vec<u8>,
    server_got: Vec<u8>,
}

fn pattern(offset: usize, salt: u8) -> u8 {
    (offset as u8).wrapping_mul(31).wrapping_add(salt) ^ ((offset >> 8) as u8)
}

impl Sim {
    fn client_write(&mut self, len: usize) {
        let server_read = self
            .pair
            .listener
            .session(self.pair.conn_id)
            .unwrap()
            .read_count();
        if self.pair.client.write_count() + len as u64 - server_read > self.capacity as u64 {
            return; // backpressure: the unacknowledged bytes must fit the rewrite buffer
        }
        let start = self.client_sent.len();
        let mut data: Vec<u8> = (start..start + len).map(|i| pattern(i, 7)).collect();
        self.client_sent.extend_from_slice(&data);
        self.pair
            .client
            .encrypt_outbound(self.pair.client_link, &mut data)
            .unwrap();
        self.c2s.extend_from_slice(&data);
    }

    fn server_write(&mut self, len: usize) {
        let session = self.pair.listener.session(self.pair.conn_id).unwrap();
        if session.write_count() + len as u64 - self.pair.client.read_count() > self.capacity as u64
        {
            return;
        }
        let start = self.server_sent.len();
        let mut data: Vec<u8> = (start..start + len).map(|i| pattern(i, 99)).collect();
        self.server_sent.extend_from_slice(&data);
        self.pair
            .listener
            .encrypt_outbound(self.pair.conn_id, self.pair.server_link, &mut data)
            .unwrap();
        self.s2c.extend_from_slice(&data);
    }

    fn deliver_c2s(&mut self, n: usize) {
        let n = n.min(self.c2s.len());
        let mut chunk = self.c2s.split_to(n);
        self.pair
            .listener
            .decrypt_inbound(self.pair.conn_id, self.pair.server_link, &mut chunk)
            .unwrap();
        self.server_got.extend_from_slice(&chunk);
    }

    fn deliver_s2c(&mut self, n: usize) {
        let n = n.min(self.s2c.len());
        let mut chunk = self.s2c.split_to(n);
        self.pair
            .client
            .decrypt_inbound(self.pair.client_link, &mut chunk)
            .unwrap();
        self.client_got.extend_from_slice(&chunk);
    }

    /// One reconnect attempt moving at most `chunk` bytes per direction per round; it dies after
    /// `die_after` rounds if given. Returns whether it completed.
    fn attempt(&mut self, chunk: usize, die_after: Option<usize>) -> bool {
        let p = &mut self.pair;
        let mut rc = ClientReconnect::new(&p.client).unwrap();
        let mut hs = p.listener.accept(p.now);
        let (mut c2s_wire, mut s2c_wire) = (BytesMut::from(&rc.request()[..]), BytesMut::new());
        let (mut server_in, mut client_in) = (BytesMut::new(), BytesMut::new());
        let (mut server_done, mut client_done) = (None, None);
        for round in 0.. {
            if Some(round) == die_after || round > 10_000 {
                break;
            }
            let n = chunk.min(c2s_wire.len());
            server_in.extend_from_slice(&c2s_wire.split_to(n));
            let n = chunk.min(s2c_wire.len());
            client_in.extend_from_slice(&s2c_wire.split_to(n));
            if server_done.is_none() {
                match hs.handle_input(&mut p.listener, &mut server_in, p.now, &mut p.rng) {
                    None => {}
                    Some(ServerEvent::Resumed { link, .. }) => server_done = Some(link),
                    Some(other) => panic!("server handshake ended with {other:?}"),
                }
            }
            while let Some(b) = hs.poll_transmit() {
                s2c_wire.extend_from_slice(&b);
            }
            if client_done.is_none() {
                client_done = rc.handle_input(&mut p.client, &mut client_in).unwrap();
            }
            while let Some(b) = rc.poll_transmit() {
                c2s_wire.extend_from_slice(&b);
            }
            if server_done.is_some() && client_done.is_some() {
                break;
            }
        }
        if let (Some(server_link), Some(client_link)) = (server_done, client_done) {
            p.server_link = server_link;
            p.client_link = client_link;
            server_in.extend_from_slice(&c2s_wire);
            client_in.extend_from_slice(&s2c_wire);
            // Leftovers are stream bytes in flight on the new link; new writes queue behind them.
            server_in.extend_from_slice(&self.c2s);
            client_in.extend_from_slice(&self.s2c);
            self.c2s = server_in;
            self.s2c = client_in;
            return true;
        }
        // The attempt's socket died: whichever side had already resumed sees its new link fail.
        if let Some(link) = server_done {
            p.listener.link_down(p.conn_id, link, p.now).unwrap();
        }
        if let Some(link) = client_done {
            p.client.link_down(link, p.now).unwrap();
        }
        false
    }

    fn cut(&mut self, keep: usize, server_notices: bool, failures: &[usize], chunk: usize) {
        self.deliver_c2s(keep);
        self.deliver_s2c(keep);
        self.c2s.clear();
        self.s2c.clear();
        let p = &mut self.pair;
        p.client.link_down(p.client_link, p.now).unwrap();
        if server_notices {
            p.listener
                .link_down(p.conn_id, p.server_link, p.now)
                .unwrap();
        }
        for &die_after in failures {
            if self.attempt(chunk, Some(die_after)) {
                return;
            }
        }
        assert!(
            self.attempt(chunk, None),
            "final reconnect attempt must succeed"
        );
    }
}

fn run_sim(crypt: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let capacity = 1024;
    let cfg = SnetConfig {
        rewriter_buffer_size: capacity,
        ..config(crypt)
    };
    let (pair, _, _, _) = connect_fixed(cfg);
    let mut sim = Sim {
        pair,
        capacity,
        c2s: BytesMut::new(),
        s2c: BytesMut::new(),
        client_sent: Vec::new(),
        server_sent: Vec::new(),
        client_got: Vec::new(),
        server_got: Vec::new(),
    };
    for op in ops {
        match op {
            Op::ClientWrite(n) => sim.client_write(*n),
            Op::ServerWrite(n) => sim.server_write(*n),
            Op::DeliverC2S(n) => sim.deliver_c2s(*n),
            Op::DeliverS2C(n) => sim.deliver_s2c(*n),
            Op::Cut {
                keep,
                server_notices,
                failures,
                chunk,
            } => sim.cut(*keep, *server_notices, failures, *chunk),
        }
    }
    sim.deliver_c2s(usize::MAX);
    sim.deliver_s2c(usize::MAX);
    prop_assert_eq!(&sim.server_got, &sim.client_sent);
    prop_assert_eq!(&sim.client_got, &sim.server_sent);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn snet_s6_streams_survive_random_cuts_exactly_once_in_order(
        crypt in any::<bool>(),
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        run_sim(crypt, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------------------
// The server handshake never panics, whatever arrives.

fn fuzz_server(bytes: &[u8], splits: &[usize]) {
    let (mut pair, _, _, _) = connect_fixed(config(true));
    exchange_hello(&mut pair);
    let mut hs = pair.listener.accept(pair.now);
    let mut buf = BytesMut::new();
    let mut rest = bytes;
    for &split in splits.iter().chain(std::iter::once(&usize::MAX)) {
        let n = split.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        let _ = hs.handle_input(&mut pair.listener, &mut buf, pair.now, &mut pair.rng);
        while hs.poll_transmit().is_some() {}
    }
    let _ = hs.handle_timeout(pair.now + Duration::from_secs(3600));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn snet_server_handshake_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
        splits in proptest::collection::vec(0usize..50, 0..6),
    ) {
        fuzz_server(&bytes, &splits);
    }

    #[test]
    fn snet_server_handshake_never_panics_on_mutated_reconnects(
        write in any::<u64>(),
        read in any::<u64>(),
        conn_id in 0u64..3,
        tail in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let key = Key::from_secret(0xFFB4BB2B23C1B12E);
        let mut body = Vec::new();
        body.extend_from_slice(&conn_id.to_le_bytes());
        body.extend_from_slice(&write.to_le_bytes());
        body.extend_from_slice(&read.to_le_bytes());
        let digest = proof(&body, &key);
        let mut bytes = vec![TYPE_RECONN];
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&digest);
        bytes.extend_from_slice(&tail);
        fuzz_server(&bytes, &[]);
    }
}

#[test]
fn snet_rng_script_is_used_for_keys_then_challenge() {
    let mut rng = TestRng::new(&[1, 2]);
    assert_eq!(rand_core::Rng::next_u64(&mut rng), 1);
    let mut b = [0u8; 8];
    rand_core::Rng::fill_bytes(&mut rng, &mut b);
    assert_eq!(u64::from_le_bytes(b), 2);
}
