//! The hostile-client suite: every kind of misbehaviour a raw socket can produce, against every
//! compiled runtime. After each attack a victim client and a bystander client (each with a vconn to
//! game server 7) must still exchange messages both ways, byte for byte.
//!
//! Bounded: loopback only, every wait bounded by `common::raw::WAIT`, at most ~1,600 sockets per test.

mod common;

use common::per_runtime;
use common::raw::{Raw, WAIT, eventually};
use common::{Gw, RuntimeKind, test_config};
use fastway_core::frame::{Command, encode_data};
use fastway_core::gateway::{GatewayConfig, QueueLimits};
use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

per_runtime!(
    oversize_and_zero_lengths_drop_only_the_offender_both_ports,
    max_packet_is_enforced_in_both_directions,
    truncated_frames_then_silence_are_cut_by_the_deadlines,
    every_invalid_command_type_drops_only_the_offender,
    writes_on_and_closes_of_other_clients_vconns_harm_nobody,
    dial_flood_past_the_vconn_limit_is_refused,
    thousands_of_silent_connects_are_held_and_released,
    max_clients_refuses_extra_sockets_cleanly,
    unauthenticated_server_is_never_routed_to_and_cannot_dial,
    challenges_come_from_the_os_rng,
    server_that_never_reads_is_dropped_and_its_clients_released,
    snet_handshake_deadline_cuts_silent_and_partial_sockets,
);

const KEY: &str = "k";

fn config() -> GatewayConfig {
    GatewayConfig {
        auth_key: KEY.as_bytes().to_vec(),
        max_packet: 4096,
        ..test_config()
    }
}

/// A gateway, game server 7, and two clients with a vconn each: the victim and the bystander.
struct Scene {
    gw: Gw,
    server: Raw,
    victim: (Raw, u32),
    bystander: (Raw, u32),
    round: u32,
}

impl Scene {
    fn start(kind: RuntimeKind, config: GatewayConfig) -> Scene {
        let gw = Gw::start(kind, config);
        let mut server = Raw::server(gw.server, 7, KEY);
        server.ping();
        let mut clients = Vec::new();
        for _ in 0..2 {
            let mut client = Raw::connect(gw.client);
            let conn = client.dial(7);
            assert_eq!(server.expect_connect().0, conn);
            clients.push((client, conn));
        }
        let bystander = clients.pop().expect("two clients");
        let victim = clients.pop().expect("two clients");
        let mut scene = Scene {
            gw,
            server,
            victim,
            bystander,
            round: 0,
        };
        scene.assert_alive();
        scene
    }

    /// Victim and bystander each exchange a message with the server both ways, byte for byte.
    fn assert_alive(&mut self) {
        self.round += 1;
        for (client, conn) in [&mut self.victim, &mut self.bystander] {
            let up = format!("up {} on {conn}", self.round);
            client.send_data(*conn, up.as_bytes());
            self.server.expect_data_among_commands(*conn, up.as_bytes());
            let down = format!("down {} on {conn}", self.round);
            self.server.send_data(*conn, down.as_bytes());
            client.expect_data_among_commands(*conn, down.as_bytes());
        }
    }

    /// Pings from server, victim and bystander (keeps them from idling out during a long wait).
    fn keep_alive(&mut self) {
        self.server.ping_among_commands();
        self.victim.0.ping_among_commands();
        self.bystander.0.ping_among_commands();
    }
}

fn header(length: u32, conn: u32) -> Vec<u8> {
    let mut bytes = length.to_le_bytes().to_vec();
    bytes.extend_from_slice(&conn.to_le_bytes());
    bytes
}

fn oversize_and_zero_lengths_drop_only_the_offender_both_ports(kind: RuntimeKind) {
    let mut scene = Scene::start(kind, config());
    let bad_inputs: Vec<Vec<u8>> = vec![
        0u32.to_le_bytes().to_vec(),
        1u32.to_le_bytes().to_vec(),
        3u32.to_le_bytes().to_vec(),
        4097u32.to_le_bytes().to_vec(),
        u32::MAX.to_le_bytes().to_vec(),
        header(0x8000_0000, 1),
        // Length 4 with ConnID 0: a command without a type byte.
        header(4, 0),
    ];
    for bad in &bad_inputs {
        let mut attacker = Raw::connect(scene.gw.client);
        attacker.send(bad);
        attacker.expect_closed();
        let mut attacker_server = Raw::server(scene.gw.server, 9, KEY);
        attacker_server.ping();
        attacker_server.send(bad);
        attacker_server.expect_closed();
    }
    scene.assert_alive();
    let drops = 2 * bad_inputs.len() as u64;
    eventually("every offender counted", || {
        scene.gw.stats().protocol_drops == drops
    });
}

fn max_packet_is_enforced_in_both_directions(kind: RuntimeKind) {
    let mut scene = Scene::start(kind, config());
    // Exactly MaxPacket (Length = ConnID + 4092 payload bytes) passes both ways.
    let biggest = vec![0x5a; 4092];
    let (conn, victim) = (scene.victim.1, &mut scene.victim.0);
    victim.send_data(conn, &biggest);
    scene.server.expect_data_among_commands(conn, &biggest);
    scene.server.send_data(conn, &biggest);
    scene.victim.0.expect_data_among_commands(conn, &biggest);
    // One byte more drops the sender, on either port, and only it.
    let mut client = Raw::connect(scene.gw.client);
    let client_conn = client.dial(7);
    scene.server.send_data(client_conn, b"hello");
    client.expect_data_among_commands(client_conn, b"hello");
    client.send_data(client_conn, &[1; 4093]);
    client.expect_closed();
    let mut big_server = Raw::server(scene.gw.server, 8, KEY);
    big_server.ping();
    let big_conn = scene.bystander.0.dial(8);
    assert_eq!(big_server.expect_connect().0, big_conn);
    big_server.send_data(big_conn, &[2; 4093]);
    big_server.expect_closed();
    // The bystander gets a Close for its vconn to server 8 among its frames; assert_alive skips it.
    scene.assert_alive();
}

fn truncated_frames_then_silence_are_cut_by_the_deadlines(kind: RuntimeKind) {
    let config = GatewayConfig {
        client_idle_timeout: Some(Duration::from_millis(800)),
        handshake_timeout: Duration::from_millis(500),
        ..config()
    };
    let mut scene = Scene::start(kind, config);
    let mut attackers = Vec::new();
    for bad in [
        vec![100, 0, 0, 0, 1, 0],                  // half a header
        vec![100, 0],                              // half a length field
        [header(4000, 1), vec![0; 1000]].concat(), // a quarter of a body
    ] {
        let mut attacker = Raw::connect(scene.gw.client);
        attacker.send(&bad);
        attackers.push(attacker);
    }
    // A server that sends half its answer and then nothing.
    let mut half_server = Raw::connect(scene.gw.server);
    assert_eq!(half_server.read_exact_n(8).len(), 8);
    half_server.send(&[0; 10]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        scene.keep_alive();
        std::thread::sleep(Duration::from_millis(150));
    }
    for attacker in &mut attackers {
        attacker.expect_closed();
    }
    half_server.expect_closed();
    scene.assert_alive();
    let stats = scene.gw.stats();
    assert_eq!(stats.timeout_drops, 3, "{stats:?}");
    assert_eq!(stats.auth_failures, 1, "{stats:?}");
}

/// A command frame of type `kind` long enough for any type (so only the type is wrong).
fn command_of_type(kind: u8) -> Vec<u8> {
    let mut frame = header(13, 0);
    frame.push(kind);
    frame.extend_from_slice(&[0; 8]);
    frame
}

fn every_invalid_command_type_drops_only_the_offender(kind: RuntimeKind) {
    let mut scene = Scene::start(kind, config());
    // Dial (0), Close (4) and Ping (5) are the only commands a peer may send.
    let invalid: Vec<u8> = (0..=255u8).filter(|t| ![0, 4, 5].contains(t)).collect();
    let mut clients: Vec<Raw> = invalid
        .iter()
        .map(|&t| {
            let mut attacker = Raw::connect(scene.gw.client);
            attacker.send(&command_of_type(t));
            attacker
        })
        .collect();
    for attacker in &mut clients {
        attacker.expect_closed();
    }
    scene.assert_alive();
    for &t in &invalid {
        let mut attacker = Raw::server(scene.gw.server, 100 + u32::from(t), KEY);
        attacker.send(&command_of_type(t));
        attacker.expect_closed();
    }
    scene.assert_alive();
    let expected = 2 * invalid.len() as u64;
    eventually("every offender counted", || {
        scene.gw.stats().protocol_drops == expected
    });
}

fn writes_on_and_closes_of_other_clients_vconns_harm_nobody(kind: RuntimeKind) {
    let mut scene = Scene::start(kind, config());
    let victim_conn = scene.victim.1;
    // A client with a vconn of its own writes on the victim's: it alone is dropped.
    let mut writer = Raw::connect(scene.gw.client);
    let writers_conn = writer.dial(7);
    writer.send_data(victim_conn, b"spoofed");
    writer.expect_closed();
    scene.assert_alive();
    // A client closes every vconn id it can guess: ignored, it stays connected with its own vconn.
    let mut closer = Raw::connect(scene.gw.client);
    let closers_conn = closer.dial(7);
    for conn in 1..=256u32 {
        if conn != closers_conn {
            closer.send_command(Command::Close { conn });
        }
    }
    closer.ping_among_commands();
    scene.assert_alive();
    closer.send_data(closers_conn, b"mine still works");
    scene
        .server
        .expect_data_among_commands(closers_conn, b"mine still works");
    // A second game server writes on server 7's vconn: dropped.
    let mut rogue = Raw::server(scene.gw.server, 9, KEY);
    rogue.ping();
    rogue.send_data(victim_conn, b"spoofed");
    rogue.expect_closed();
    // A server closing another server's vconns is ignored too.
    let mut rogue_closer = Raw::server(scene.gw.server, 10, KEY);
    rogue_closer.send_command(Command::Close { conn: victim_conn });
    rogue_closer.ping();
    scene.assert_alive();
    assert_ne!(writers_conn, victim_conn);
    eventually("two offenders", || scene.gw.stats().protocol_drops == 2);
}

fn dial_flood_past_the_vconn_limit_is_refused(kind: RuntimeKind) {
    let config = GatewayConfig {
        client_max_conn: 16,
        ..config()
    };
    let mut scene = Scene::start(kind, config);
    let mut flooder = Raw::connect(scene.gw.client);
    let mut burst = Vec::new();
    for _ in 0..1000 {
        burst.extend_from_slice(&Command::Dial { remote: 7 }.to_bytes());
    }
    for remote in 1000..1500u32 {
        burst.extend_from_slice(&Command::Dial { remote }.to_bytes());
    }
    flooder.send(&burst);
    let (mut accepts, mut refuses) = (0, 0);
    while accepts + refuses < 1500 {
        let frame = flooder.read_frame();
        match frame[8] {
            1 => accepts += 1,
            3 => refuses += 1,
            other => panic!("unexpected command {other}"),
        }
    }
    assert_eq!((accepts, refuses), (16, 1484));
    for _ in 0..16 {
        scene.server.expect_connect();
    }
    assert_eq!(scene.gw.stats().vconns, 18);
    scene.assert_alive();
    drop(flooder);
    eventually("the flooder's vconns are gone", || {
        scene.gw.stats().vconns == 2
    });
    scene.assert_alive();
}

fn thousands_of_silent_connects_are_held_and_released(kind: RuntimeKind) {
    let _ = fastway::limits::raise_nofile_limit();
    let config = GatewayConfig {
        handshake_timeout: Duration::from_secs(1),
        ..config()
    };
    let mut scene = Scene::start(kind, config);
    const SILENT_CLIENTS: usize = 1500;
    const SILENT_SERVERS: usize = 100;
    let clients: Vec<Raw> = (0..SILENT_CLIENTS)
        .map(|_| Raw::connect(scene.gw.client))
        .collect();
    let servers: Vec<Raw> = (0..SILENT_SERVERS)
        .map(|_| Raw::connect(scene.gw.server))
        .collect();
    eventually("every silent client is held", || {
        scene.gw.stats().clients == SILENT_CLIENTS + 2
    });
    scene.assert_alive();
    // Silent servers get their challenge and are dropped at the handshake deadline.
    eventually("silent servers dropped at the handshake deadline", || {
        let stats = scene.gw.stats();
        stats.handshaking == 0 && stats.auth_failures == SILENT_SERVERS as u64
    });
    scene.assert_alive();
    drop(clients);
    drop(servers);
    eventually("every silent client released", || {
        scene.gw.stats().clients == 2
    });
    scene.assert_alive();
}

fn max_clients_refuses_extra_sockets_cleanly(kind: RuntimeKind) {
    let config = GatewayConfig {
        max_clients: 22,
        ..config()
    };
    let mut scene = Scene::start(kind, config);
    let mut admitted: Vec<Raw> = (0..20).map(|_| Raw::connect(scene.gw.client)).collect();
    for client in &mut admitted {
        client.ping();
    }
    for _ in 0..10 {
        // Refused: closed at once, without a byte.
        let mut extra = Raw::connect(scene.gw.client);
        extra.expect_closed();
    }
    assert_eq!(scene.gw.stats().clients_refused, 10);
    for client in &mut admitted {
        client.ping();
    }
    scene.assert_alive();
    admitted.truncate(15);
    eventually("five left", || scene.gw.stats().clients == 17);
    for _ in 0..5 {
        let mut again = Raw::connect(scene.gw.client);
        again.ping();
        admitted.push(again);
    }
    scene.assert_alive();
}

fn unauthenticated_server_is_never_routed_to_and_cannot_dial(kind: RuntimeKind) {
    let mut scene = Scene::start(kind, config());
    let mut pending = Raw::connect(scene.gw.server);
    assert_eq!(pending.read_exact_n(8).len(), 8);
    // A Dial before the answer is only the start of an (invalid) answer: nothing is dialed.
    pending.send(&Command::Dial { remote: 1 }.to_bytes());
    eventually("pending server counted", || {
        scene.gw.stats().handshaking == 1
    });
    // Clients cannot reach it under any id.
    for remote in [0, 1, 9, u32::MAX] {
        scene.victim.0.send_command(Command::Dial { remote });
        let frame = scene.victim.0.read_frame();
        assert_eq!(frame, Command::Refuse { remote }.to_bytes().to_vec());
    }
    pending.expect_silence(Duration::from_millis(200));
    assert_eq!(scene.gw.stats().dials_accepted, 2);
    // The rest of the "answer" arrives: auth fails, the socket closes without a byte.
    pending.send(&[0; 7]);
    pending.expect_closed();
    scene.assert_alive();
    assert_eq!(scene.gw.stats().auth_failures, 1);
}

fn challenges_come_from_the_os_rng(kind: RuntimeKind) {
    let gw = Gw::start(kind, config());
    let challenges: HashSet<Vec<u8>> = (0..64)
        .map(|_| Raw::connect(gw.server).read_exact_n(8))
        .collect();
    assert_eq!(challenges.len(), 64, "a challenge repeated");
    assert!(!challenges.contains(&vec![0; 8]));
}

fn server_that_never_reads_is_dropped_and_its_clients_released(kind: RuntimeKind) {
    let config = GatewayConfig {
        server_idle_timeout: Some(Duration::from_secs(1)),
        server_queue: QueueLimits {
            max_frames: 1024,
            max_bytes: 256 * 1024,
        },
        ..config()
    };
    let mut scene = Scene::start(kind, config);
    let mut stalled = Raw::server(scene.gw.server, 9, KEY);
    stalled.ping();
    let mut feeder = Raw::connect(scene.gw.client);
    let conn = feeder.dial(9);
    assert_eq!(stalled.expect_connect().0, conn);
    // The feeder writes as fast as it can; the stalled server never reads again but keeps pinging,
    // so only its lack of write progress can get it dropped.
    let stop = Arc::new(AtomicBool::new(false));
    let mut feed = feeder.stream.try_clone().expect("clone");
    feed.set_write_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let feeding = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut frame = bytes::BytesMut::new();
            encode_data(conn, &[3; 4000], &mut frame);
            // Whole frames only: a write that times out half-way is resumed where it stopped.
            let mut at = 0;
            while !stop.load(Ordering::Relaxed) {
                match feed.write(&frame[at..]) {
                    Ok(n) => at = (at + n) % frame.len(),
                    Err(err)
                        if matches!(
                            err.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
            }
            if at != 0 {
                let _ = feed.set_write_timeout(None);
                let _ = feed.write_all(&frame[at..]);
            }
        })
    };
    // The feeder reads what the gateway sends it (as an honest client does) until its vconn closes.
    let reading = {
        let mut reader = Raw {
            stream: feeder.stream.try_clone().expect("clone"),
        };
        std::thread::spawn(move || {
            let close = Command::Close { conn }.to_bytes().to_vec();
            while reader.read_frame() != close {}
        })
    };
    let mut pinger = stalled.stream.try_clone().expect("clone");
    let deadline = Instant::now() + WAIT;
    while scene.gw.stats().servers == 2 {
        assert!(
            Instant::now() < deadline,
            "the stalled server was not dropped"
        );
        let _ = pinger.write_all(&Command::Ping.to_bytes());
        scene.keep_alive();
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    feeding.join().expect("feeder");
    assert!(scene.gw.stats().timeout_drops >= 1);
    // The feeder was paused, not dropped: it is resumed and learns its vconn is gone.
    reading
        .join()
        .expect("the feeder got the Close of its vconn");
    feeder.ping_among_commands();
    scene.assert_alive();
}

fn snet_handshake_deadline_cuts_silent_and_partial_sockets(kind: RuntimeKind) {
    let snet = fastway_core::snet::SnetConfig {
        enable_crypt: true,
        handshake_timeout: Duration::from_millis(300),
        reconn_wait_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let mut options = fastway::serve::ServeOptions::loopback(config());
    options.client_snet = Some(snet);
    let running = fastway::serve::start(kind, options).expect("gateway with an snet port starts");
    let mut server = Raw::server(running.server_addr(), 7, KEY);
    let mut silent = Raw::connect(running.client_addr());
    let mut partial = Raw::connect(running.client_addr());
    partial.send(&[0, 1, 2, 3]); // new-connection type byte, then half a public key
    let mut garbage = Raw::connect(running.client_addr());
    garbage.send(&[7; 16]); // no such snet type byte
    garbage.expect_closed();
    let start = Instant::now();
    silent.expect_closed();
    partial.expect_closed();
    assert!(start.elapsed() < Duration::from_secs(3));
    server.ping();
    let stats = running.stats();
    assert_eq!((stats.clients, stats.servers), (0, 1), "{stats:?}");
    running.shutdown().expect("shutdown");
}
