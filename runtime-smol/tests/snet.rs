//! End-to-end tests of snet ports (SNET.md) on the smol gateway, over loopback sockets only: a raw snet
//! client ([`common::SnetClient`]) on the client port or the server port, plain raw peers on the
//! other. Every read has a timeout, so a failure cannot hang the suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use common::{SnetClient, snet_config};
use fastway_core::auth::{CHALLENGE_LEN, Challenge, server_response};
use fastway_core::snet::{HandshakeError, REFUSAL};
use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

/// A wait timeout no test reaches unless it means to.
const LONG_WAIT: Duration = Duration::from_secs(30);

/// The client dials `server_id`; returns the vconn after checking the Accept and the server's Connect.
fn open_vconn(client: &mut SnetClient, server: &mut TcpStream, server_id: u32) -> u32 {
    client.send(&dial(server_id));
    let accepted = client.recv_frame();
    assert_eq!(accepted.len(), 17, "expected Accept, got {accepted:02x?}");
    assert_eq!(accepted[8], 1, "expected Accept, got {accepted:02x?}");
    assert_eq!(u32_at(&accepted, 13), server_id);
    let conn = u32_at(&accepted, 9);
    let connect = read_frame(server).unwrap();
    assert_eq!(connect[8], 2, "expected Connect, got {connect:02x?}");
    assert_eq!(u32_at(&connect, 9), conn);
    conn
}

/// A payload that says which one it is.
fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut payload = i.to_le_bytes().to_vec();
    payload.resize(len.max(4), (i % 251) as u8);
    payload
}

#[test]
fn an_snet_client_reaches_a_plain_server_both_ways_with_and_without_encryption() {
    for (encrypt, exec) in [
        (false, Exec::Smol),
        (true, Exec::Smol),
        (true, Exec::AsyncStdSpawn),
    ] {
        let config = snet_config(encrypt, LONG_WAIT);
        let gw = Running::start_on(exec, |c| c.client_snet = Some(config));
        let mut server = gw.server(7);
        let mut client = SnetClient::connect(gw.client, config);
        let conn = open_vconn(&mut client, &mut server, 7);

        client.send(&data(conn, b"up"));
        assert_eq!(read_frame(&mut server).unwrap(), data(conn, b"up"));
        server.write_all(&data(conn, b"down")).unwrap();
        assert_eq!(client.recv_frame(), data(conn, b"down"));

        // Bursts in both directions, larger than one read buffer, arrive verbatim and in order.
        let mut burst = Vec::new();
        for i in 0..200 {
            burst.extend_from_slice(&data(conn, &numbered(i, 100)));
        }
        server.write_all(&burst).unwrap();
        assert_eq!(client.recv(burst.len()), burst);
        client.send(&burst);
        let mut got = Vec::new();
        while got.len() < burst.len() {
            got.extend(read_frame(&mut server).unwrap());
        }
        assert_eq!(got, burst);

        client.send(&ping());
        assert_eq!(client.recv_frame(), ping());
        assert_eq!(gw.handle.stats().clients, 1);
        gw.stop().unwrap();
    }
}

#[test]
fn a_killed_socket_reconnects_and_every_frame_arrives_once_in_order() {
    const DOWN: u32 = 3000;
    const UP: u32 = 50;
    for encrypt in [false, true] {
        let config = snet_config(encrypt, LONG_WAIT);
        let gw = Running::start(|c| c.client_snet = Some(config));
        let mut server = gw.server(7);
        let mut client = SnetClient::connect(gw.client, config);
        let conn = open_vconn(&mut client, &mut server, 7);

        // The server keeps sending throughout, before, during and after the outage.
        let mut writer = server.try_clone().unwrap();
        let sender = thread::spawn(move || {
            for i in 0..DOWN {
                writer.write_all(&data(conn, &numbered(i, 60))).unwrap();
                if i % 100 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let mut next = 0;
        while next < DOWN / 3 {
            assert_eq!(client.recv_frame(), data(conn, &numbered(next, 60)));
            next += 1;
        }
        // Frames going up right before the socket dies must not be lost either.
        for i in 0..UP {
            client.send(&data(conn, &numbered(i, 30)));
        }
        client.kill();
        client.reconnect(gw.client).expect("reconnect");
        while next < DOWN {
            assert_eq!(
                client.recv_frame(),
                data(conn, &numbered(next, 60)),
                "encrypt={encrypt}"
            );
            next += 1;
        }
        sender.join().unwrap();
        for i in 0..UP {
            assert_eq!(
                read_frame(&mut server).unwrap(),
                data(conn, &numbered(i, 30))
            );
        }
        // The vconn survived: same conn, both ways, and nothing extra arrived.
        client.send(&data(conn, b"after"));
        assert_eq!(read_frame(&mut server).unwrap(), data(conn, b"after"));
        server.write_all(&data(conn, b"still")).unwrap();
        assert_eq!(client.recv_frame(), data(conn, b"still"));
        assert!(client.received.is_empty(), "duplicated bytes");
        let stats = gw.handle.stats();
        assert_eq!((stats.clients, stats.vconns), (1, 1));
        gw.stop().unwrap();
    }
}

#[test]
fn a_reconnect_while_the_old_socket_still_looks_open_closes_the_old_socket() {
    let config = snet_config(true, LONG_WAIT);
    let gw = Running::start(|c| c.client_snet = Some(config));
    let mut server = gw.server(7);
    let mut client = SnetClient::connect(gw.client, config);
    let conn = open_vconn(&mut client, &mut server, 7);
    server.write_all(&data(conn, b"before")).unwrap();
    assert_eq!(client.recv_frame(), data(conn, b"before"));
    // The client gives up on a socket the gateway still considers healthy (a silent network
    // failure): the gateway must close that socket once the session moved to the new one.
    let mut old = client.abandon();
    server.write_all(&data(conn, b"during")).unwrap();
    client.reconnect(gw.client).expect("reconnect");
    // The old socket may still get bytes the gateway wrote before the reconnect; then it closes.
    loop {
        match std::io::Read::read(&mut old, &mut [0u8; 256]) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("the old socket was not closed: {err}"),
        }
    }
    let line = wait_for_log("snet session moved to a newer connection");
    assert!(line.starts_with("INFO"), "{line}");
    // Whatever reached the old socket is retransmitted on the new one exactly once.
    assert_eq!(client.recv_frame(), data(conn, b"during"));
    client.send(&data(conn, b"after"));
    assert_eq!(read_frame(&mut server).unwrap(), data(conn, b"after"));
    assert!(client.received.is_empty(), "duplicated bytes");
    assert_eq!(gw.handle.stats().clients, 1);
    gw.stop().unwrap();
}

#[test]
fn a_frame_split_across_a_reconnect_arrives_whole() {
    let config = snet_config(true, LONG_WAIT);
    let gw = Running::start(|c| c.client_snet = Some(config));
    let mut server = gw.server(7);
    let mut client = SnetClient::connect(gw.client, config);
    let conn = open_vconn(&mut client, &mut server, 7);
    let frame = data(conn, &numbered(42, 500));
    client.send(&frame[..123]);
    client.kill();
    client.reconnect(gw.client).expect("reconnect");
    client.send(&frame[123..]);
    assert_eq!(read_frame(&mut server).unwrap(), frame);
    gw.stop().unwrap();
}

#[test]
fn a_reconnect_naming_an_unknown_session_is_refused_and_the_real_one_still_works() {
    let config = snet_config(false, LONG_WAIT);
    let gw = Running::start(|c| c.client_snet = Some(config));
    let mut server = gw.server(7);
    let mut client = SnetClient::connect(gw.client, config);
    let conn = open_vconn(&mut client, &mut server, 7);

    let mut rogue = connect(gw.client);
    let mut request = vec![0xFF];
    request.extend_from_slice(&999u64.to_le_bytes());
    request.extend_from_slice(&[0u8; 32]);
    rogue.write_all(&request).unwrap();
    let mut reply = [0u8; 24];
    std::io::Read::read_exact(&mut rogue, &mut reply).unwrap();
    assert_eq!(reply, REFUSAL);
    expect_closed(&mut rogue);
    let line = wait_for_log("no session with id 999");
    assert!(line.starts_with("WARN"), "{line}");

    client.send(&data(conn, b"still here"));
    assert_eq!(read_frame(&mut server).unwrap(), data(conn, b"still here"));
    server.write_all(&data(conn, b"so am I")).unwrap();
    assert_eq!(client.recv_frame(), data(conn, b"so am I"));
    assert_eq!(gw.handle.stats().clients, 1);
    gw.stop().unwrap();
}

#[test]
fn a_session_whose_wait_timeout_passes_closes_its_vconns_at_the_server() {
    let config = snet_config(false, Duration::from_millis(300));
    let gw = Running::start(|c| c.client_snet = Some(config));
    let mut server = gw.server(7);
    let mut client = SnetClient::connect(gw.client, config);
    let conn = open_vconn(&mut client, &mut server, 7);

    let killed = Instant::now();
    client.kill();
    // The peer waits for its client first: the server hears nothing until the wait timeout passes.
    assert_eq!(read_frame(&mut server).unwrap(), close(conn));
    assert!(
        killed.elapsed() >= Duration::from_millis(250),
        "closed too early"
    );
    wait_until(|| gw.handle.stats().clients == 0);
    assert_eq!(gw.handle.stats().vconns, 0);
    let line = wait_for_log("did not reconnect within the wait timeout");
    assert!(line.starts_with("WARN"), "{line}");
    // Too late: the session is gone, the gateway refuses it.
    assert_eq!(client.reconnect(gw.client), Err(HandshakeError::Refused));
    gw.stop().unwrap();
}

#[test]
fn an_snet_game_server_authenticates_and_routes() {
    let config = snet_config(true, LONG_WAIT);
    let gw = Running::start(|c| c.server_snet = Some(config));
    let mut server = SnetClient::connect(gw.server, config);
    let challenge: [u8; CHALLENGE_LEN] = server.recv(CHALLENGE_LEN).try_into().unwrap();
    server.send(&server_response(&Challenge(challenge), b"key", 9));
    wait_until(|| gw.handle.stats().servers == 1);
    let server_local = server.stream.local_addr().unwrap();
    wait_for_log(&format!("accept server 9 from {server_local}"));

    let mut client = gw.client();
    client.write_all(&dial(9)).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), accept(1, 9));
    let connect = server.recv_frame();
    assert_eq!(connect[8], 2, "expected Connect, got {connect:02x?}");
    assert_eq!(u32_at(&connect, 9), 1);
    client.write_all(&data(1, b"to the server")).unwrap();
    assert_eq!(server.recv_frame(), data(1, b"to the server"));
    server.send(&data(1, b"to the client"));
    assert_eq!(read_frame(&mut client).unwrap(), data(1, b"to the client"));

    // A game server with the wrong key is dropped with the original's log line.
    let mut impostor = SnetClient::connect(gw.server, config);
    let challenge: [u8; CHALLENGE_LEN] = impostor.recv(CHALLENGE_LEN).try_into().unwrap();
    impostor.send(&server_response(&Challenge(challenge), b"wrong", 3));
    let impostor_local = impostor.stream.local_addr().unwrap();
    let line = wait_for_log(&format!(
        "error happends when accept server from {impostor_local}: server auth failed"
    ));
    assert!(line.starts_with("WARN"), "{line}");
    assert!(
        impostor.read_once().is_err(),
        "impostor's socket stays open"
    );
    assert_eq!(gw.handle.stats().servers, 1);
    gw.stop().unwrap();
}

#[test]
fn a_silent_socket_on_an_snet_port_is_closed_at_the_handshake_deadline() {
    let mut config = snet_config(false, LONG_WAIT);
    config.handshake_timeout = Duration::from_millis(300);
    let gw = Running::start(|c| c.client_snet = Some(config));
    let opened = Instant::now();
    let mut silent = connect(gw.client);
    expect_closed(&mut silent);
    assert!(
        opened.elapsed() >= Duration::from_millis(250),
        "closed too early"
    );
    let line = wait_for_log("snet handshake timed out");
    assert!(line.starts_with("WARN"), "{line}");
    gw.stop().unwrap();
}

#[test]
fn shutdown_while_a_writer_is_blocked_delivers_whole_frames_then_the_close() {
    const FRAMES: u32 = 200;
    const PAYLOAD: usize = 60_000;
    let config = snet_config(true, LONG_WAIT);
    let gw = Running::start(|c| {
        c.client_snet = Some(config);
        c.gateway.client_queue.max_bytes = 64 << 20;
    });
    let mut server = gw.server(7);
    let mut client = SnetClient::handshake(connect_small_window(gw.client), config);
    let conn = open_vconn(&mut client, &mut server, 7);
    // Far more than the client's window and the gateway's socket buffer: its writer blocks mid-batch.
    for i in 0..FRAMES {
        server
            .write_all(&data(conn, &numbered(i, PAYLOAD)))
            .unwrap();
    }
    thread::sleep(Duration::from_millis(100));
    gw.handle.shutdown();
    // The batch in flight is written whole before the last flush (the vconn's Close): the encrypted
    // stream has no gap and no frame is cut.
    for i in 0..FRAMES {
        let frame = client.recv_frame();
        assert!(
            frame == data(conn, &numbered(i, PAYLOAD)),
            "frame {i} is cut or wrong"
        );
    }
    assert_eq!(client.recv_frame(), close(conn));
    assert!(
        client.read_once().is_err(),
        "socket still open after the flush"
    );
    gw.stop().unwrap();
}
