//! End-to-end tests of snet ports (SNET.md) on the tokio gateway, over loopback sockets only.
//!
//! The snet peers are raw blocking clients (`common::SnetStream`) built on the core's client-side
//! state machines; every read has a timeout, so no test can hang.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use bytes::BytesMut;
use common::{
    Flavor, Gw, SnetStream, connect, drain_until_closed, expect, expect_closed, read_frame,
    wait_log, wait_until,
};
use fastway_core::auth::{Challenge, server_response};
use fastway_core::frame::{Command, encode_data};
use fastway_core::gateway::{GatewayConfig, Side};
use fastway_core::snet::{HandshakeError, REFUSAL, SnetConfig};
use fastway_tokio::ServerConfig;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

fn snet(encrypt: bool) -> SnetConfig {
    SnetConfig {
        enable_crypt: encrypt,
        rewriter_buffer_size: 1 << 20,
        handshake_timeout: Duration::from_secs(5),
        reconn_wait_timeout: Duration::from_secs(10),
    }
}

fn config(client_snet: Option<SnetConfig>, server_snet: Option<SnetConfig>) -> ServerConfig {
    ServerConfig {
        gateway: GatewayConfig {
            auth_key: b"k".to_vec(),
            ..GatewayConfig::default()
        },
        client_snet,
        server_snet,
        client_addr: "127.0.0.1:0".parse().unwrap(),
        server_addr: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    }
}

fn cmd(command: Command) -> Vec<u8> {
    command.to_bytes().to_vec()
}

fn data(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_data(conn, payload, &mut buf);
    buf.to_vec()
}

/// A plain game server, authenticated as `id`.
fn plain_server(gw: &Gw, id: u32) -> TcpStream {
    let mut s = connect(gw.server);
    let mut challenge = [0u8; 8];
    s.read_exact(&mut challenge).unwrap();
    s.write_all(&server_response(&Challenge(challenge), b"k", id))
        .unwrap();
    wait_until("server registration", || gw.handle.stats().servers == 1);
    s
}

/// The snet client dials server `remote` and both sides see the new vconn; returns its id.
fn dial(client: &mut SnetStream, server: &mut TcpStream, remote: u32) -> u32 {
    client.send(&cmd(Command::Dial { remote }));
    client.expect(&cmd(Command::Accept { conn: 1, remote }));
    expect(server, &cmd(Command::Connect { conn: 1, remote: 1 }));
    1
}

/// A numbered payload: the index, then filler, so frames are told apart and order is checkable.
fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![(i % 251) as u8; len.max(4)];
    payload[..4].copy_from_slice(&i.to_le_bytes());
    payload
}

fn index_of(frame: &[u8]) -> u32 {
    u32::from_le_bytes(frame[8..12].try_into().unwrap())
}

#[test]
fn snet_client_port_routes_to_a_plain_server_with_and_without_encryption() {
    for (encrypt, flavor) in [(false, Flavor::CurrentThread), (true, Flavor::MultiThread)] {
        let gw = Gw::start(flavor, config(Some(snet(encrypt)), None));
        let mut server = plain_server(&gw, 7);
        let mut client = SnetStream::connect(gw.client, snet(encrypt), 1);
        let conn = dial(&mut client, &mut server, 7);

        client.send(&data(conn, b"up"));
        expect(&mut server, &data(conn, b"up"));
        server.write_all(&data(conn, b"down")).unwrap();
        client.expect(&data(conn, b"down"));
        // Bigger than a read, so decryption spans several reads on both sides.
        let big = data(conn, &numbered(1, 200_000));
        client.send(&big);
        assert_eq!(read_frame(&mut server), big);
        server.write_all(&big).unwrap();
        assert_eq!(client.read_frame(), big);
        client.send(&cmd(Command::Ping));
        client.expect(&cmd(Command::Ping));

        let stats = gw.handle.stats();
        assert_eq!((stats.clients, stats.servers, stats.vconns), (1, 1, 1));
        gw.stop();
        // The shutdown's Close frame reaches the snet client through its session, encrypted.
        client.expect(&cmd(Command::Close { conn }));
        expect(&mut server, &cmd(Command::Close { conn }));
    }
}

/// The client loses its socket twice mid-stream while the server keeps sending and the client keeps
/// writing: once it abandons a socket the gateway still sees open and reconnects at once (the
/// gateway closes the old socket), once the socket dies and the client reconnects after a pause.
/// Every frame arrives exactly once, in order, and the vconn survives.
#[test]
fn killed_socket_reconnects_and_every_frame_arrives_once_in_order() {
    const DOWN: u32 = 3000;
    const UP: u32 = 300;
    let config = config(Some(snet(true)), None);
    let gw = Gw::start(Flavor::MultiThread, config);
    let mut server = plain_server(&gw, 7);
    let mut client = SnetStream::connect(gw.client, snet(true), 2);
    let conn = dial(&mut client, &mut server, 7);

    let mut server_in = server.try_clone().unwrap();
    server_in
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sender = thread::spawn(move || {
        for i in 0..DOWN {
            server.write_all(&data(conn, &numbered(i, 64))).unwrap();
            if i % 20 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        server
    });
    let receiver = thread::spawn(move || {
        (0..UP)
            .map(|_| index_of(&read_frame(&mut server_in)))
            .collect::<Vec<u32>>()
    });

    let mut next_up = 0u32;
    let mut send_up = |client: &mut SnetStream, n: u32| {
        for _ in 0..n {
            // A write on a socket the peer already reset may fail: the session keeps the bytes
            // and retransmits them after the reconnect.
            let _ = client.try_send(&data(conn, &numbered(next_up, 32)));
            next_up += 1;
        }
    };
    let mut got = Vec::new();
    while got.len() < DOWN as usize {
        let i = index_of(&client.read_frame());
        got.push(i);
        match got.len() {
            500 => {
                send_up(&mut client, 100);
                client.abandon();
                let mut old = client.reconnect(gw.client).unwrap();
                drain_until_closed(&mut old);
                wait_log("closed: snet session moved to a newer connection");
            }
            1500 => {
                send_up(&mut client, 100);
                client.kill();
                thread::sleep(Duration::from_millis(100));
                client.reconnect(gw.client).unwrap();
                send_up(&mut client, 100);
            }
            _ => {}
        }
    }
    assert_eq!(got, (0..DOWN).collect::<Vec<_>>());
    let mut server = sender.join().unwrap();
    assert_eq!(receiver.join().unwrap(), (0..UP).collect::<Vec<_>>());

    // Same session, same vconn, nothing closed at the server.
    let stats = gw.handle.stats();
    assert_eq!((stats.clients, stats.vconns), (1, 1));
    client.send(&data(conn, b"after"));
    expect(&mut server, &data(conn, b"after"));
    server.write_all(&data(conn, b"back")).unwrap();
    client.expect(&data(conn, b"back"));
    gw.stop();
}

#[test]
fn reconnect_naming_an_unknown_session_is_refused_and_the_real_one_still_works() {
    let gw = Gw::start(Flavor::CurrentThread, config(Some(snet(false)), None));
    let mut server = plain_server(&gw, 7);
    let mut client = SnetStream::connect(gw.client, snet(false), 3);
    let conn = dial(&mut client, &mut server, 7);

    let mut rogue = connect(gw.client);
    let mut request = vec![0xFF];
    request.extend_from_slice(&(client.conn_id() + 1000).to_le_bytes());
    request.extend_from_slice(&[0u8; 32]);
    rogue.write_all(&request).unwrap();
    expect(&mut rogue, &REFUSAL);
    expect_closed(&mut rogue);

    client.send(&data(conn, b"still here"));
    expect(&mut server, &data(conn, b"still here"));
    server.write_all(&data(conn, b"me too")).unwrap();
    client.expect(&data(conn, b"me too"));
    assert_eq!(gw.handle.stats().clients, 1);
    gw.stop();
}

#[test]
fn a_session_whose_wait_timeout_passes_closes_its_vconns_at_the_server() {
    let wait = Duration::from_millis(300);
    let short = SnetConfig {
        reconn_wait_timeout: wait,
        ..snet(true)
    };
    let gw = Gw::start(Flavor::CurrentThread, config(Some(short), None));
    let mut server = plain_server(&gw, 7);
    let mut client = SnetStream::connect(gw.client, short, 4);
    let conn = dial(&mut client, &mut server, 7);

    let killed = Instant::now();
    client.kill();
    // Until the wait timeout the peer and its vconn stay.
    thread::sleep(Duration::from_millis(100));
    let stats = gw.handle.stats();
    assert_eq!((stats.clients, stats.vconns), (1, 1));
    expect(&mut server, &cmd(Command::Close { conn }));
    let waited = killed.elapsed();
    assert!(waited >= wait, "closed too early: {waited:?}");
    assert!(
        waited < Duration::from_millis(1500),
        "closed too late: {waited:?}"
    );
    wait_until("client gone", || gw.handle.stats().clients == 0);
    assert_eq!(gw.handle.stats().vconns, 0);
    // A reconnect after that is refused.
    assert_eq!(
        client.reconnect(gw.client).err(),
        Some(HandshakeError::Refused)
    );
    gw.stop();
}

#[test]
fn snet_server_port_authenticates_and_routes() {
    let gw = Gw::start(Flavor::MultiThread, config(None, Some(snet(true))));
    let mut server = SnetStream::connect(gw.server, snet(true), 5);
    let challenge: [u8; 8] = server.read_exact(8).try_into().unwrap();
    server.send(&server_response(&Challenge(challenge), b"k", 9));
    wait_until("server registration", || {
        gw.handle
            .peers()
            .iter()
            .any(|p| p.side == Side::Server && p.id == Some(9))
    });

    let mut client = connect(gw.client);
    client.write_all(&cmd(Command::Dial { remote: 9 })).unwrap();
    expect(&mut client, &cmd(Command::Accept { conn: 1, remote: 9 }));
    server.expect(&cmd(Command::Connect { conn: 1, remote: 1 }));
    client.write_all(&data(1, b"to the server")).unwrap();
    server.expect(&data(1, b"to the server"));
    server.send(&data(1, b"to the client"));
    expect(&mut client, &data(1, b"to the client"));
    gw.stop();
}

#[test]
fn snet_server_port_with_the_wrong_key_is_not_registered() {
    let gw = Gw::start(Flavor::CurrentThread, config(None, Some(snet(false))));
    let mut server = SnetStream::connect(gw.server, snet(false), 6);
    let local = server.stream.local_addr().unwrap();
    let challenge: [u8; 8] = server.read_exact(8).try_into().unwrap();
    server.send(&server_response(&Challenge(challenge), b"wrong", 9));
    assert!(
        server.try_read_frame().is_err(),
        "the gateway must close it"
    );
    wait_log(&format!(
        "error happends when accept server from {local}: server auth failed"
    ));
    wait_until("auth failure counted", || {
        gw.handle.stats().auth_failures == 1
    });
    assert_eq!(gw.handle.stats().servers, 0);
    gw.stop();
}

/// Switchboard problem (see the report): when the gateway drops an snet peer whose link is down
/// (here: its outbound queue fills while it waits for a reconnect), the switchboard emits no action
/// at all, so the runtime cannot log why the session ended. The same holds for a wait timeout.
#[test]
fn a_client_dropped_during_its_outage_is_logged() {
    let mut config = config(Some(snet(false)), None);
    // While the link is down only the byte bound applies.
    config.gateway.client_queue.max_bytes = 512;
    let gw = Gw::start(Flavor::CurrentThread, config);
    let mut server = plain_server(&gw, 7);
    let mut client = SnetStream::connect(gw.client, snet(false), 7);
    let local = client.stream.local_addr().unwrap();
    let conn = dial(&mut client, &mut server, 7);
    client.kill();
    wait_log(&format!("client socket#2 from {local} closed"));
    for i in 0..64 {
        server.write_all(&data(conn, &numbered(i, 16))).unwrap();
    }
    expect(&mut server, &cmd(Command::Close { conn }));
    assert_eq!(gw.handle.stats().queue_full_drops, 1);
    wait_log("drop client snet session while it was reconnecting: outbound queue full");
    gw.stop();
}

#[test]
fn a_silent_socket_on_an_snet_port_is_closed_at_the_handshake_deadline() {
    let quick = SnetConfig {
        handshake_timeout: Duration::from_millis(300),
        ..snet(false)
    };
    let gw = Gw::start(Flavor::MultiThread, config(Some(quick), None));
    let started = Instant::now();
    let mut silent = connect(gw.client);
    let local = silent.local_addr().unwrap();
    expect_closed(&mut silent);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1500),
        "closed too late: {waited:?}"
    );
    wait_log(&format!(
        "client socket#1 from {local} dropped: snet handshake timed out"
    ));
    gw.stop();
}
