//! Every counter of [`GatewayStats`] moves for its own event and no other.

use super::*;

/// The wire length of a command frame.
fn len(command: Command) -> u64 {
    command.encoded_len() as u64
}

/// The wire length of a data frame with `payload`.
fn data_len(payload: &[u8]) -> u64 {
    8 + payload.len() as u64
}

fn traffic(frames: u64, bytes: u64) -> Traffic {
    Traffic { frames, bytes }
}

#[test]
fn frames_and_bytes_are_counted_per_side_and_direction() {
    let mut h = Harness::with_key("k");
    let server = h.server(7);
    let client = h.client();
    let conn = h.dial(client, 7);
    h.send_data(client, conn, b"hello");
    h.send_data(server, conn, b"hi");
    h.send(client, &PING_FRAME);
    let stats = h.gw.stats();
    let dial = len(Command::Dial { remote: 7 });
    let ping = PING_FRAME.len() as u64;
    // The server's auth answer is not a frame; the challenge sent to it is not either.
    assert_eq!(stats.received.server, traffic(1, data_len(b"hi")));
    assert_eq!(
        stats.received.client,
        traffic(3, dial + data_len(b"hello") + ping)
    );
    let accept = len(Command::Accept { conn, remote: 7 });
    let connect = len(Command::Connect { conn, remote: 1 });
    assert_eq!(
        stats.sent.client,
        traffic(3, accept + data_len(b"hi") + ping)
    );
    assert_eq!(stats.sent.server, traffic(2, connect + data_len(b"hello")));
    assert_eq!(stats.frames_routed, 2);
    assert_eq!(stats.bytes_routed, data_len(b"hello") + data_len(b"hi"));
}

#[test]
fn each_dial_refusal_reason_has_its_own_counter() {
    let mut h = Harness::new(GatewayConfig {
        client_max_conn: 1,
        ..GatewayConfig::default()
    });
    let server = h.server(7);
    let client = h.client();
    h.send_command(client, Command::Dial { remote: 99 });
    assert_eq!(h.gw.stats().dial_refusals.no_such_server, 1);
    h.send_command(server, Command::Dial { remote: 42 });
    assert_eq!(h.gw.stats().dial_refusals.no_such_client, 1);
    assert_eq!(h.take(client), refuse(99));
    h.dial(client, 7);
    h.send_command(client, Command::Dial { remote: 7 });
    let stats = h.gw.stats();
    assert_eq!(
        stats.dial_refusals,
        DialRefusals {
            no_such_server: 1,
            no_such_client: 1,
            vconn_limit: 1,
        }
    );
    assert_eq!(stats.dials_refused, 3);
    assert_eq!(stats.dial_refusals.total(), stats.dials_refused);
    assert_eq!(stats.dials_accepted, 1);
}

/// The drop counters as one tuple: (protocol, queue full, idle, write stall, timeout, auth).
fn drops(stats: &GatewayStats) -> (u64, u64, u64, u64, u64, u64) {
    (
        stats.protocol_drops,
        stats.queue_full_drops,
        stats.idle_drops,
        stats.write_stall_drops,
        stats.timeout_drops,
        stats.auth_failures,
    )
}

#[test]
fn idle_and_write_stall_drops_are_told_apart() {
    let mut h = Harness::new(GatewayConfig {
        server_idle_timeout: Some(Duration::from_secs(10)),
        client_idle_timeout: Some(Duration::from_secs(30)),
        client_queue: QueueLimits {
            max_frames: 64,
            max_bytes: 1 << 20,
        },
        ..GatewayConfig::default()
    });
    let server = h.server(7);
    let client = h.client();
    let conn = h.dial(client, 7);
    h.take(server);
    h.send_data(client, conn, b"x");
    let mut stuck = Vec::new();
    h.gw.poll_transmit(server, h.now, &mut stuck); // the server's writer never comes back
    for _ in 0..3 {
        h.advance(Duration::from_secs(4));
        h.send(server, &PING_FRAME);
        h.send(client, &PING_FRAME);
        h.take(client);
    }
    assert_eq!(h.close_reason(server), Some(CloseReason::WriteStalled));
    assert_eq!(drops(&h.gw.stats()), (0, 0, 0, 1, 1, 0));
    h.advance(Duration::from_secs(30));
    assert_eq!(h.close_reason(client), Some(CloseReason::IdleTimeout));
    assert_eq!(drops(&h.gw.stats()), (0, 0, 1, 1, 2, 0));
}

#[test]
fn protocol_queue_and_auth_drops_each_count_once() {
    let mut h = Harness::with_key("k");
    let server = h.server(7);
    let rogue = h.client();
    h.send_command(rogue, Command::Accept { conn: 1, remote: 1 });
    assert!(h.close_reason(rogue).is_some());
    assert_eq!(drops(&h.gw.stats()), (1, 0, 0, 0, 0, 0));
    let slow = h.client();
    h.gw.handle_queue_full(slow, h.now);
    assert_eq!(drops(&h.gw.stats()), (1, 1, 0, 0, 0, 0));
    h.server_with_key(8, "wrong");
    assert_eq!(drops(&h.gw.stats()), (1, 1, 0, 0, 0, 1));
    // A server that never answers its challenge is an auth failure too (not an idle drop).
    h.gw.accept_server(h.now, &mut h.rng);
    h.advance(Duration::from_secs(6));
    assert_eq!(drops(&h.gw.stats()), (1, 1, 0, 0, 0, 2));
    // Ordinary disconnects are not drops.
    h.gw.handle_closed(server, h.now);
    assert_eq!(drops(&h.gw.stats()), (1, 1, 0, 0, 0, 2));
}

fn status(stats: &GatewayStats) -> Vec<(u32, bool)> {
    stats
        .server_status
        .iter()
        .map(|s| (s.id, s.online))
        .collect()
}

#[test]
fn a_server_id_stays_listed_as_offline_after_its_last_connection_leaves() {
    let mut h = Harness::with_key("");
    assert_eq!(status(&h.gw.stats()), []);
    let first = h.server(9);
    let second = h.server(9);
    let other = h.server(3);
    assert_eq!(status(&h.gw.stats()), [(3, true), (9, true)]);
    h.gw.handle_closed(first, h.now);
    assert_eq!(
        status(&h.gw.stats()),
        [(3, true), (9, true)],
        "a duplicate still holds the id"
    );
    h.gw.handle_closed(second, h.now);
    h.gw.handle_closed(other, h.now);
    assert_eq!(status(&h.gw.stats()), [(3, false), (9, false)]);
    h.server(9);
    assert_eq!(status(&h.gw.stats()), [(3, false), (9, true)]);
    // A server that fails auth never held an id.
    h.server_with_key(5, "wrong");
    assert_eq!(status(&h.gw.stats()), [(3, false), (9, true)]);
}
