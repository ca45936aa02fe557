//! The conformance suite: every rule of PROTOCOL.md §6 end to end over loopback sockets, written once
//! and run against each runtime compiled in (`cargo test --all-features` runs all three).
//!
//! Peers here are raw sockets, so the assertions are on exact bytes; the endpoint libraries are
//! exercised in `endpoints.rs`.

mod common;

use common::per_runtime;
use common::raw::{Raw, eventually};
use common::{Gw, RuntimeKind, test_config};
use fastway_core::frame::Command;
use fastway_core::gateway::GatewayConfig;
use std::time::Duration;

per_runtime!(
    client_dial_gets_accept_and_server_gets_connect,
    data_is_forwarded_verbatim_both_ways,
    ping_is_answered,
    close_is_echoed_to_both_members,
    dial_of_unknown_server_is_refused,
    data_on_unknown_vconn_is_answered_with_close,
    client_vconn_limit_refuses_extra_dials,
    server_can_dial_a_client,
    wrong_auth_key_closes_the_server_and_sends_nothing,
    silent_server_is_dropped_at_the_handshake_deadline,
    idle_client_is_dropped,
    oversize_length_drops_only_the_offender,
    too_short_frame_drops_only_the_offender,
    unknown_command_drops_only_the_offender,
    gateway_only_command_from_a_client_drops_it,
    writing_on_another_clients_vconn_drops_the_writer_only,
    close_from_a_non_member_is_ignored,
    server_disconnect_closes_its_vconns_at_the_clients,
    duplicate_server_id_newest_takes_dials_and_falls_back,
    truncated_frame_then_disconnect_is_harmless,
    slow_reading_client_is_dropped_without_harming_others,
    shutdown_closes_every_connection,
);

/// A gateway with a server 7 and one client with a vconn to it.
fn pair(kind: RuntimeKind, config: GatewayConfig) -> (Gw, Raw, Raw, u32) {
    let gw = Gw::start(kind, config);
    let mut server = Raw::server(gw.server, 7, "");
    eventually("server registered", || gw.stats().servers == 1);
    let mut client = Raw::connect(gw.client);
    let conn = client.dial(7);
    let (connected, _) = server.expect_connect();
    assert_eq!(connected, conn);
    (gw, server, client, conn)
}

fn client_dial_gets_accept_and_server_gets_connect(kind: RuntimeKind) {
    let gw = Gw::start(kind, test_config());
    let mut server = Raw::server(gw.server, 7, "");
    eventually("server registered", || gw.stats().servers == 1);
    let mut client = Raw::connect(gw.client);
    client.send(&[9, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]);
    client.expect(&[13, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 7, 0, 0, 0]);
    server.expect(&[13, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 1, 0, 0, 0]);
}

fn data_is_forwarded_verbatim_both_ways(kind: RuntimeKind) {
    let (_gw, mut server, mut client, conn) = pair(kind, test_config());
    client.send_data(conn, b"Hello");
    server.expect_data(conn, b"Hello");
    server.send_data(conn, b"");
    client.expect_data(conn, b"");
    let big = vec![0xabu8; 100_000];
    server.send_data(conn, &big);
    client.expect_data(conn, &big);
    for i in 0..200u32 {
        client.send_data(conn, &i.to_le_bytes());
    }
    for i in 0..200u32 {
        server.expect_data(conn, &i.to_le_bytes());
    }
}

fn ping_is_answered(kind: RuntimeKind) {
    let gw = Gw::start(kind, test_config());
    let mut client = Raw::connect(gw.client);
    client.send(&[7, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2]);
    client.expect(&[5, 0, 0, 0, 0, 0, 0, 0, 5]);
}

fn close_is_echoed_to_both_members(kind: RuntimeKind) {
    let (gw, mut server, mut client, conn) = pair(kind, test_config());
    client.send_command(Command::Close { conn });
    client.expect_command(Command::Close { conn });
    server.expect_command(Command::Close { conn });
    eventually("vconn gone", || gw.stats().vconns == 0);
}

fn dial_of_unknown_server_is_refused(kind: RuntimeKind) {
    let gw = Gw::start(kind, test_config());
    let mut client = Raw::connect(gw.client);
    client.send_command(Command::Dial { remote: 8 });
    client.expect_command(Command::Refuse { remote: 8 });
}

fn data_on_unknown_vconn_is_answered_with_close(kind: RuntimeKind) {
    let gw = Gw::start(kind, test_config());
    let mut client = Raw::connect(gw.client);
    client.send_data(99, b"x");
    client.expect_command(Command::Close { conn: 99 });
    client.ping();
}

fn client_vconn_limit_refuses_extra_dials(kind: RuntimeKind) {
    let config = GatewayConfig {
        client_max_conn: 2,
        ..test_config()
    };
    let (_gw, _server, mut client, _conn) = pair(kind, config);
    client.dial(7);
    client.send_command(Command::Dial { remote: 7 });
    client.expect_command(Command::Refuse { remote: 7 });
}

fn server_can_dial_a_client(kind: RuntimeKind) {
    let (_gw, mut server, mut client, _conn) = pair(kind, test_config());
    let conn = server.dial(1);
    let (connected, remote) = client.expect_connect();
    assert_eq!((connected, remote), (conn, 7));
    client.send_data(conn, b"from client");
    server.expect_data(conn, b"from client");
}

fn wrong_auth_key_closes_the_server_and_sends_nothing(kind: RuntimeKind) {
    let config = GatewayConfig {
        auth_key: b"123".to_vec(),
        ..test_config()
    };
    let gw = Gw::start(kind, config);
    let mut bad = Raw::server(gw.server, 123, "bad");
    bad.expect_closed();
    let mut good = Raw::server(gw.server, 123, "123");
    good.ping();
    eventually("auth failure counted", || gw.stats().auth_failures == 1);
}

fn silent_server_is_dropped_at_the_handshake_deadline(kind: RuntimeKind) {
    let config = GatewayConfig {
        handshake_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let gw = Gw::start(kind, config);
    let mut silent = Raw::connect(gw.server);
    assert_eq!(silent.read_exact_n(8).len(), 8);
    silent.expect_closed();
    let mut good = Raw::server(gw.server, 1, "");
    good.ping();
}

fn idle_client_is_dropped(kind: RuntimeKind) {
    let config = GatewayConfig {
        client_idle_timeout: Some(Duration::from_millis(300)),
        ..test_config()
    };
    let gw = Gw::start(kind, config);
    let mut idle = Raw::connect(gw.client);
    let mut active = Raw::connect(gw.client);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        active.ping();
    }
    idle.expect_closed();
    active.ping();
}

/// Sends `bad` from a fresh client and checks it alone is dropped while the pair keeps working.
fn offender_is_dropped(kind: RuntimeKind, bad: &[u8]) {
    let (gw, mut server, mut client, conn) = pair(kind, test_config());
    let mut offender = Raw::connect(gw.client);
    let offenders_conn = offender.dial(7);
    let _ = server.expect_connect();
    offender.send(bad);
    offender.expect_closed();
    server.expect_command(Command::Close {
        conn: offenders_conn,
    });
    client.send_data(conn, b"still here");
    server.expect_data(conn, b"still here");
    eventually("violation counted", || gw.stats().protocol_drops == 1);
}

fn oversize_length_drops_only_the_offender(kind: RuntimeKind) {
    offender_is_dropped(kind, &[0x01, 0x00, 0x10, 0x00]);
}

fn too_short_frame_drops_only_the_offender(kind: RuntimeKind) {
    offender_is_dropped(kind, &[6, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
}

fn unknown_command_drops_only_the_offender(kind: RuntimeKind) {
    offender_is_dropped(kind, &[5, 0, 0, 0, 0, 0, 0, 0, 0x42]);
}

fn gateway_only_command_from_a_client_drops_it(kind: RuntimeKind) {
    offender_is_dropped(kind, &Command::Refuse { remote: 123 }.to_bytes());
}

fn writing_on_another_clients_vconn_drops_the_writer_only(kind: RuntimeKind) {
    let (gw, mut server, mut client, conn) = pair(kind, test_config());
    let mut attacker = Raw::connect(gw.client);
    attacker.send_data(conn, b"spoof");
    attacker.expect_closed();
    client.send_data(conn, b"real");
    server.expect_data(conn, b"real");
}

fn close_from_a_non_member_is_ignored(kind: RuntimeKind) {
    let (gw, mut server, mut client, conn) = pair(kind, test_config());
    let mut stranger = Raw::connect(gw.client);
    stranger.send_command(Command::Close { conn });
    stranger.ping();
    client.send_data(conn, b"open");
    server.expect_data(conn, b"open");
}

fn server_disconnect_closes_its_vconns_at_the_clients(kind: RuntimeKind) {
    let (gw, server, mut client, conn) = pair(kind, test_config());
    let second = client.dial(7);
    drop(server);
    let mut closes = vec![client.read_exact_n(13), client.read_exact_n(13)];
    closes.sort();
    let mut expected = vec![
        Command::Close { conn }.to_bytes().to_vec(),
        Command::Close { conn: second }.to_bytes().to_vec(),
    ];
    expected.sort();
    assert_eq!(closes, expected);
    eventually("server gone", || {
        gw.stats().servers == 0 && gw.stats().vconns == 0
    });
    client.send_command(Command::Dial { remote: 7 });
    client.expect_command(Command::Refuse { remote: 7 });
}

fn duplicate_server_id_newest_takes_dials_and_falls_back(kind: RuntimeKind) {
    let gw = Gw::start(kind, test_config());
    let mut old = Raw::server(gw.server, 7, "");
    eventually("old registered", || gw.stats().servers == 1);
    let mut new = Raw::server(gw.server, 7, "");
    eventually("new registered", || gw.stats().servers == 2);
    let mut client = Raw::connect(gw.client);
    let conn = client.dial(7);
    assert_eq!(new.expect_connect().0, conn);
    drop(new);
    client.expect_command(Command::Close { conn });
    eventually("new gone", || gw.stats().servers == 1);
    let conn = client.dial(7);
    assert_eq!(old.expect_connect().0, conn);
}

fn truncated_frame_then_disconnect_is_harmless(kind: RuntimeKind) {
    let (gw, mut server, mut client, conn) = pair(kind, test_config());
    let mut half = Raw::connect(gw.client);
    half.send(&[100, 0, 0, 0, 1, 0]);
    drop(half);
    let mut bad_server = Raw::connect(gw.server);
    bad_server.send(&[1, 2, 3]);
    drop(bad_server);
    client.send_data(conn, b"ok");
    server.expect_data(conn, b"ok");
    eventually("both gone", || {
        gw.stats().clients == 1 && gw.stats().handshaking == 0
    });
}

fn slow_reading_client_is_dropped_without_harming_others(kind: RuntimeKind) {
    let config = GatewayConfig {
        client_queue: fastway_core::gateway::QueueLimits {
            max_frames: 64,
            max_bytes: 256 * 1024,
        },
        ..test_config()
    };
    let (gw, mut server, mut client, conn) = pair(kind, config);
    let mut slow = Raw::connect(gw.client);
    let slow_conn = slow.dial(7);
    let _ = server.expect_connect();
    // `slow` never reads; the server floods it until the gateway gives up on it.
    let chunk = vec![1u8; 16 * 1024];
    let mut flood = server.stream.try_clone().expect("clone");
    let flooder = std::thread::spawn(move || {
        let mut buf = bytes::BytesMut::new();
        fastway_core::frame::encode_data(slow_conn, &chunk, &mut buf);
        for _ in 0..2_000 {
            if std::io::Write::write_all(&mut flood, &buf).is_err() {
                break;
            }
        }
    });
    eventually("slow client dropped", || gw.stats().queue_full_drops == 1);
    flooder.join().expect("flooder");
    // The server gets the Close for the slow client's vconn somewhere in its stream; the other client
    // still works end to end.
    client.send_data(conn, b"fine");
    let mut seen = Vec::new();
    let needle = {
        let mut buf = bytes::BytesMut::new();
        fastway_core::frame::encode_data(conn, b"fine", &mut buf);
        buf.to_vec()
    };
    while !seen.windows(needle.len()).any(|w| w == needle.as_slice()) {
        let mut byte = server.read_exact_n(1);
        seen.append(&mut byte);
    }
}

fn shutdown_closes_every_connection(kind: RuntimeKind) {
    let (gw, mut server, mut client, conn) = pair(kind, test_config());
    gw.shutdown();
    // Best effort: the Close for the vconn may arrive before the socket closes.
    for raw in [&mut server, &mut client] {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut raw.stream, &mut buf);
        assert!(
            buf.is_empty() || buf == Command::Close { conn }.to_bytes().to_vec(),
            "{buf:?}"
        );
    }
}
