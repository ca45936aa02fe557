//! End-to-end tests of the tokio gateway over real loopback sockets (127.0.0.1, port 0 only).
//!
//! The game clients and servers are raw blocking `std::net::TcpStream`s with read timeouts, so no
//! test can hang. The gateway runs either on its own thread with a runtime of the chosen flavor, or
//! inside a `#[tokio::test]` runtime while the raw peers run on the blocking pool.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use bytes::BytesMut;
use common::{
    Flavor, connect, drain_until_closed, expect, expect_closed, init_logs, read_frame, wait_log,
    wait_until,
};
use fastway_core::auth::{Challenge, server_response};
use fastway_core::frame::{Command, encode_data};
use fastway_core::gateway::{GatewayConfig, QueueLimits, Side};
use fastway_tokio::{GatewayHandle, GatewayServer, ServerConfig};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

// ---- gateway harness -----------------------------------------------------------------------------

struct Gw {
    client: SocketAddr,
    server: SocketAddr,
    handle: GatewayHandle,
    done: mpsc::Receiver<io::Result<()>>,
}

fn server_config(gateway: GatewayConfig) -> ServerConfig {
    ServerConfig {
        gateway,
        client_snet: None,
        server_snet: None,
        client_addr: "127.0.0.1:0".parse().unwrap(),
        server_addr: "127.0.0.1:0".parse().unwrap(),
        reuse_port: false,
        client_read_buffer: 2048,
        server_read_buffer: 65536,
    }
}

impl Gw {
    /// Runs a gateway on its own thread and runtime.
    fn start(flavor: Flavor, gateway: GatewayConfig) -> Gw {
        init_logs();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        thread::spawn(move || {
            let runtime = match flavor {
                Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
                Flavor::MultiThread => {
                    let mut b = tokio::runtime::Builder::new_multi_thread();
                    b.worker_threads(2);
                    b
                }
            }
            .enable_all()
            .build()
            .unwrap();
            runtime.block_on(async move {
                let server = GatewayServer::bind(server_config(gateway)).await.unwrap();
                ready_tx
                    .send((server.client_addr(), server.server_addr(), server.handle()))
                    .unwrap();
                let _ = done_tx.send(server.run().await);
            });
        });
        let (client, server, handle) = ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Gw {
            client,
            server,
            handle,
            done,
        }
    }

    /// Runs a gateway as a task of the caller's runtime.
    async fn spawn_here(gateway: GatewayConfig) -> Gw {
        init_logs();
        let server = GatewayServer::bind(server_config(gateway)).await.unwrap();
        let (done_tx, done) = mpsc::channel();
        let gw = Gw {
            client: server.client_addr(),
            server: server.server_addr(),
            handle: server.handle(),
            done,
        };
        tokio::spawn(async move {
            let _ = done_tx.send(server.run().await);
        });
        gw
    }

    /// Shuts down and checks that `run` returned `Ok` in time.
    fn stop(&self) {
        self.handle.shutdown();
        let result = self.done.recv_timeout(Duration::from_secs(4));
        assert!(
            matches!(result, Ok(Ok(()))),
            "run did not return Ok: {result:?}"
        );
    }

    fn client(&self) -> TcpStream {
        connect(self.client)
    }

    /// Connects and authenticates a raw game server; returns once the gateway registered it.
    fn server(&self, key: &[u8], id: u32) -> TcpStream {
        let mut s = connect(self.server);
        let mut challenge = [0u8; 8];
        s.read_exact(&mut challenge).unwrap();
        s.write_all(&server_response(&Challenge(challenge), key, id))
            .unwrap();
        let before = self.handle.stats().servers;
        wait_until("server registration", || {
            self.handle
                .peers()
                .iter()
                .any(|p| p.side == Side::Server && p.id == Some(id))
                || self.handle.stats().servers > before
        });
        s
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn config() -> GatewayConfig {
    GatewayConfig {
        auth_key: b"k".to_vec(),
        ..GatewayConfig::default()
    }
}

// ---- wire helpers --------------------------------------------------------------------------------

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cmd(command: Command) -> Vec<u8> {
    command.to_bytes().to_vec()
}

fn data(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_data(conn, payload, &mut buf);
    buf.to_vec()
}

fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).unwrap();
}

// ---- scenarios -----------------------------------------------------------------------------------

/// PROTOCOL.md §8, byte for byte: dial, data both ways, empty payload, ping, unknown vconn, unknown
/// server, close echoed to both. Also checks the stats counters and the auth log line.
fn worked_session(gw: Gw) {
    let mut server = gw.server(b"k", 7);
    let server_local = server.local_addr().unwrap();
    wait_log(&format!("accept server 7 from {server_local}"));
    let mut client = gw.client();

    send(&mut client, &hex("09000000 00000000 00 07000000"));
    expect(&mut client, &hex("0d000000 00000000 01 01000000 07000000"));
    expect(&mut server, &hex("0d000000 00000000 02 01000000 01000000"));

    send(&mut client, &hex("09000000 01000000 48656c6c6f"));
    expect(&mut server, &hex("09000000 01000000 48656c6c6f"));
    send(&mut server, &hex("04000000 01000000"));
    expect(&mut client, &hex("04000000 01000000"));
    send(&mut server, &data(1, b"from the server"));
    expect(&mut client, &data(1, b"from the server"));

    send(&mut client, &hex("05000000 00000000 05"));
    expect(&mut client, &hex("05000000 00000000 05"));
    // A ping with extra bytes still gets the canonical 9-byte reply.
    send(&mut server, &hex("07000000 00000000 05 aabb"));
    expect(&mut server, &hex("05000000 00000000 05"));

    send(&mut client, &hex("05000000 63000000 78"));
    expect(&mut client, &hex("09000000 00000000 04 63000000"));
    send(&mut client, &hex("09000000 00000000 00 08000000"));
    expect(&mut client, &hex("09000000 00000000 03 08000000"));

    let stats = gw.handle.stats();
    assert_eq!(stats.clients, 1);
    assert_eq!(stats.servers, 1);
    assert_eq!(stats.vconns, 1);
    assert_eq!(stats.frames_routed, 3);
    assert_eq!(stats.bytes_routed, 13 + 8 + 23);
    assert_eq!(stats.dials_accepted, 1);
    assert_eq!(stats.dials_refused, 1);

    send(&mut client, &hex("09000000 00000000 04 01000000"));
    expect(&mut client, &hex("09000000 00000000 04 01000000"));
    expect(&mut server, &hex("09000000 00000000 04 01000000"));
    wait_until("vconn gone", || gw.handle.stats().vconns == 0);

    // Nothing else was sent to either side.
    drop(client);
    gw.stop();
    expect_closed(&mut server);
}

#[test]
fn worked_session_current_thread() {
    worked_session(Gw::start(Flavor::CurrentThread, config()));
}

#[test]
fn worked_session_multi_thread() {
    worked_session(Gw::start(Flavor::MultiThread, config()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worked_session_inside_a_multi_thread_test_runtime() {
    let gw = Gw::spawn_here(config()).await;
    tokio::task::spawn_blocking(move || worked_session(gw))
        .await
        .unwrap();
}

#[tokio::test]
async fn bind_logs_the_addresses_actually_bound() {
    init_logs();
    let server = GatewayServer::bind(server_config(config())).await.unwrap();
    assert!(server.client_addr().ip().is_loopback());
    assert_ne!(server.client_addr().port(), 0);
    assert_ne!(server.server_addr().port(), 0);
    assert_ne!(server.client_addr(), server.server_addr());
    wait_log(&format!(
        "setup client listener at - {}",
        server.client_addr()
    ));
    wait_log(&format!(
        "setup server listener at - {}",
        server.server_addr()
    ));
    // Binding the same address again fails with a message naming the listener.
    let mut taken = server_config(config());
    taken.client_addr = server.client_addr();
    let err = GatewayServer::bind(taken).await.unwrap_err();
    assert!(
        err.to_string().contains("setup client listener at"),
        "{err}"
    );
}

#[test]
fn client_vconn_limit_and_server_dial() {
    let gw = Gw::start(
        Flavor::CurrentThread,
        GatewayConfig {
            client_max_conn: 2,
            ..config()
        },
    );
    let mut server = gw.server(b"k", 3);
    let mut client = gw.client();
    for conn in 1..=2 {
        send(&mut client, &cmd(Command::Dial { remote: 3 }));
        expect(&mut client, &cmd(Command::Accept { conn, remote: 3 }));
        expect(&mut server, &cmd(Command::Connect { conn, remote: 1 }));
    }
    send(&mut client, &cmd(Command::Dial { remote: 3 }));
    expect(&mut client, &cmd(Command::Refuse { remote: 3 }));
    // The limit binds clients only: the server may still dial the client (ids: vconn 3 was consumed
    // by the refused dial, PROTOCOL.md §6.2).
    send(&mut server, &cmd(Command::Dial { remote: 1 }));
    expect(&mut server, &cmd(Command::Accept { conn: 4, remote: 1 }));
    expect(&mut client, &cmd(Command::Connect { conn: 4, remote: 3 }));
    assert_eq!(gw.handle.stats().dials_refused, 1);
    gw.stop();
}

#[test]
fn max_clients_refuses_and_closes_at_once() {
    let gw = Gw::start(
        Flavor::MultiThread,
        GatewayConfig {
            max_clients: 1,
            ..config()
        },
    );
    let mut first = gw.client();
    wait_until("first client", || gw.handle.stats().clients == 1);
    let mut second = gw.client();
    let second_local = second.local_addr().unwrap();
    expect_closed(&mut second);
    wait_log(&format!("refuse client from {second_local}"));
    assert_eq!(gw.handle.stats().clients_refused, 1);
    send(&mut first, &cmd(Command::Ping));
    expect(&mut first, &cmd(Command::Ping));
    gw.stop();
}

#[test]
fn wrong_auth_key_closes_the_socket_and_sends_nothing() {
    let gw = Gw::start(Flavor::CurrentThread, config());
    let mut s = connect(gw.server);
    let local = s.local_addr().unwrap();
    let mut challenge = [0u8; 8];
    s.read_exact(&mut challenge).unwrap();
    s.write_all(&server_response(&Challenge(challenge), b"wrong", 5))
        .unwrap();
    expect_closed(&mut s);
    wait_log(&format!(
        "error happends when accept server from {local}: server auth failed"
    ));
    let stats = gw.handle.stats();
    assert_eq!(stats.auth_failures, 1);
    assert_eq!((stats.servers, stats.handshaking), (0, 0));
    // Nobody is registered under the claimed id.
    let mut client = gw.client();
    send(&mut client, &cmd(Command::Dial { remote: 5 }));
    expect(&mut client, &cmd(Command::Refuse { remote: 5 }));
    gw.stop();
}

#[test]
fn silent_server_is_dropped_after_the_handshake_deadline() {
    let gw = Gw::start(
        Flavor::MultiThread,
        GatewayConfig {
            handshake_timeout: Duration::from_millis(300),
            ..config()
        },
    );
    let started = Instant::now();
    let mut s = connect(gw.server);
    let local = s.local_addr().unwrap();
    let mut challenge = [0u8; 8];
    s.read_exact(&mut challenge).unwrap();
    wait_until("handshaking", || gw.handle.stats().handshaking == 1);
    expect_closed(&mut s);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "dropped too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1500),
        "dropped too late: {waited:?}"
    );
    wait_log(&format!(
        "error happends when accept server from {local}: server auth timed out"
    ));
    assert_eq!(gw.handle.stats().handshaking, 0);
    gw.stop();
}

#[test]
fn idle_client_is_dropped_while_a_pinging_one_stays() {
    let gw = Gw::start(
        Flavor::CurrentThread,
        GatewayConfig {
            client_idle_timeout: Some(Duration::from_millis(300)),
            ..config()
        },
    );
    let started = Instant::now();
    let mut silent = gw.client();
    let mut pinging = gw.client();
    // Keep one alive past the timeout of the other.
    for _ in 0..5 {
        thread::sleep(Duration::from_millis(100));
        send(&mut pinging, &cmd(Command::Ping));
        expect(&mut pinging, &cmd(Command::Ping));
    }
    expect_closed(&mut silent);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(1500),
        "dropped too late: {waited:?}"
    );
    let stats = gw.handle.stats();
    assert_eq!(stats.timeout_drops, 1);
    assert_eq!(stats.clients, 1);
    wait_log("idle timeout");
    gw.stop();
}

/// Oversize length, a too-short frame and an unknown command each drop only the offender; a
/// bystander keeps its vconn working.
fn malformed_input(gw: Gw) {
    let mut server = gw.server(b"k", 9);
    let mut bystander = gw.client();
    send(&mut bystander, &cmd(Command::Dial { remote: 9 }));
    expect(&mut bystander, &cmd(Command::Accept { conn: 1, remote: 9 }));
    expect(&mut server, &cmd(Command::Connect { conn: 1, remote: 1 }));

    let offences: [&[u8]; 4] = [
        &(1_000_000u32).to_le_bytes(),         // Length > MaxPacket
        &hex("02000000 0000"),                 // Length 2 < 4
        &hex("05000000 00000000 09"),          // unknown command 9
        &hex("09000000 00000000 01 01000000"), // gateway-only command (Accept)
    ];
    for (i, bad) in offences.iter().enumerate() {
        let mut offender = gw.client();
        send(&mut offender, bad);
        expect_closed(&mut offender);
        assert_eq!(gw.handle.stats().protocol_drops, i as u64 + 1);

        send(&mut bystander, &data(1, b"still here"));
        expect(&mut server, &data(1, b"still here"));
        send(&mut server, &data(1, b"me too"));
        expect(&mut bystander, &data(1, b"me too"));
    }
    wait_log("malformed input");
    gw.stop();
}

#[test]
fn malformed_input_current_thread() {
    malformed_input(Gw::start(Flavor::CurrentThread, config()));
}

#[test]
fn malformed_input_multi_thread() {
    malformed_input(Gw::start(Flavor::MultiThread, config()));
}

#[test]
fn a_frame_larger_than_the_read_buffer_arrives_whole() {
    let gw = Gw::start(Flavor::CurrentThread, config());
    let mut server = gw.server(b"k", 1);
    let mut client = gw.client();
    send(&mut client, &cmd(Command::Dial { remote: 1 }));
    expect(&mut client, &cmd(Command::Accept { conn: 1, remote: 1 }));
    expect(&mut server, &cmd(Command::Connect { conn: 1, remote: 1 }));
    // Bigger than the 2048-byte client buffer; sent in pieces to exercise partial frames.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let frame = data(1, &payload);
    for chunk in frame.chunks(70_000) {
        send(&mut client, chunk);
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(read_frame(&mut server), frame);
    // And back: the largest payload MaxPacket allows.
    let max = data(1, &vec![0xab; 512 * 1024 - 4]);
    send(&mut server, &max);
    assert_eq!(read_frame(&mut client), max);
    gw.stop();
}

#[test]
fn server_leaving_closes_each_of_its_vconns_on_the_client() {
    let gw = Gw::start(Flavor::MultiThread, config());
    let mut server = gw.server(b"k", 4);
    let mut other = gw.server(b"k", 5);
    let mut client = gw.client();
    for (conn, remote) in [(1, 4), (2, 5), (3, 4)] {
        send(&mut client, &cmd(Command::Dial { remote }));
        expect(&mut client, &cmd(Command::Accept { conn, remote }));
    }
    expect(&mut server, &cmd(Command::Connect { conn: 1, remote: 1 }));
    expect(&mut server, &cmd(Command::Connect { conn: 3, remote: 1 }));
    expect(&mut other, &cmd(Command::Connect { conn: 2, remote: 1 }));
    let server_local = server.local_addr().unwrap();
    drop(server);
    let mut closes = vec![read_frame(&mut client), read_frame(&mut client)];
    closes.sort();
    let mut expected = vec![
        cmd(Command::Close { conn: 1 }),
        cmd(Command::Close { conn: 3 }),
    ];
    expected.sort();
    assert_eq!(closes, expected);
    wait_log(&format!("from {server_local} closed"));
    // The vconn to the other server is untouched, and dialing the gone server is refused.
    send(&mut client, &data(2, b"ok"));
    expect(&mut other, &data(2, b"ok"));
    send(&mut client, &cmd(Command::Dial { remote: 4 }));
    expect(&mut client, &cmd(Command::Refuse { remote: 4 }));
    assert_eq!(gw.handle.stats().vconns, 1);
    gw.stop();
}

/// Shutdown returns, and every peer gets the Close frames of its vconns, then EOF.
fn shutdown_flushes_and_closes(gw: Gw) {
    let mut server = gw.server(b"k", 2);
    let mut client = gw.client();
    let mut idle = gw.client();
    send(&mut client, &cmd(Command::Dial { remote: 2 }));
    expect(&mut client, &cmd(Command::Accept { conn: 1, remote: 2 }));
    expect(&mut server, &cmd(Command::Connect { conn: 1, remote: 1 }));
    let started = Instant::now();
    gw.stop();
    assert!(started.elapsed() < Duration::from_secs(1), "slow shutdown");
    expect(&mut client, &cmd(Command::Close { conn: 1 }));
    expect(&mut server, &cmd(Command::Close { conn: 1 }));
    expect_closed(&mut client);
    expect_closed(&mut server);
    expect_closed(&mut idle);
    // The listeners are gone.
    assert!(TcpStream::connect(gw.client).is_err());
    assert!(TcpStream::connect(gw.server).is_err());
    wait_log("gateway stopped");
}

#[test]
fn shutdown_current_thread() {
    shutdown_flushes_and_closes(Gw::start(Flavor::CurrentThread, config()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_inside_a_multi_thread_test_runtime() {
    let gw = Gw::spawn_here(config()).await;
    tokio::task::spawn_blocking(move || shutdown_flushes_and_closes(gw))
        .await
        .unwrap();
}

#[tokio::test]
async fn shutdown_before_run_returns_at_once() {
    init_logs();
    let server = GatewayServer::bind(server_config(config())).await.unwrap();
    server.handle().shutdown();
    tokio::time::timeout(Duration::from_secs(2), server.run())
        .await
        .unwrap()
        .unwrap();
}

/// A client that stops reading while a server floods it is dropped (queue full); a second client on
/// the same server is unharmed.
fn slow_reader(gw: Gw) {
    let mut server = gw.server(b"k", 6);
    let mut slow = small_receive_buffer_client(gw.client);
    let mut good = gw.client();
    for (client, conn) in [(&mut slow, 1), (&mut good, 2)] {
        send(client, &cmd(Command::Dial { remote: 6 }));
        expect(client, &cmd(Command::Accept { conn, remote: 6 }));
        expect(&mut server, &cmd(Command::Connect { conn, remote: conn }));
    }
    let slow_local = slow.local_addr().unwrap();
    // Flood vconn 1 until the gateway gives up on its client (bounded: at most 64 MiB).
    let chunk: Vec<u8> = data(1, &[0x5a; 16 * 1024 - 8]).repeat(16);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = 0usize;
    while gw.handle.stats().queue_full_drops == 0 {
        assert!(
            Instant::now() < deadline && sent < 64 << 20,
            "slow client never dropped"
        );
        send(&mut server, &chunk);
        sent += chunk.len();
    }
    wait_log(&format!("from {slow_local} dropped: outbound queue full"));
    // The good client still works both ways (the server's inbound Close frames for vconn 1 are
    // skipped until our data arrives).
    send(&mut good, &data(2, b"ping through"));
    let expected = data(2, b"ping through");
    let found = (0..100_000).any(|_| read_frame(&mut server) == expected);
    assert!(found, "data from the good client never reached the server");
    send(&mut server, &data(2, b"pong"));
    expect(&mut good, &data(2, b"pong"));
    assert_eq!(gw.handle.stats().clients, 1);
    drain_until_closed(&mut slow);
    gw.stop();
}

fn small_receive_buffer_client(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn flood_config() -> GatewayConfig {
    GatewayConfig {
        client_queue: QueueLimits {
            max_frames: 1024,
            max_bytes: 256 * 1024,
        },
        ..config()
    }
}

#[test]
fn slow_reader_current_thread() {
    slow_reader(Gw::start(Flavor::CurrentThread, flood_config()));
}

#[test]
fn slow_reader_multi_thread() {
    slow_reader(Gw::start(Flavor::MultiThread, flood_config()));
}

#[test]
fn peers_lists_connections_and_vconns() {
    let gw = Gw::start(Flavor::CurrentThread, config());
    let mut server = gw.server(b"k", 11);
    let mut client = gw.client();
    send(&mut client, &cmd(Command::Dial { remote: 11 }));
    expect(
        &mut client,
        &cmd(Command::Accept {
            conn: 1,
            remote: 11,
        }),
    );
    expect(&mut server, &cmd(Command::Connect { conn: 1, remote: 1 }));
    let peers = gw.handle.peers();
    assert_eq!(peers.len(), 2);
    assert!(
        peers
            .iter()
            .any(|p| p.side == Side::Server && p.id == Some(11) && p.vconns == [1])
    );
    assert!(
        peers
            .iter()
            .any(|p| p.side == Side::Client && p.id == Some(1) && p.vconns == [1])
    );
    gw.stop();
}

/// A server that stops reading makes the gateway pause the client flooding it (backpressure), not
/// drop anyone; once the server reads again the client resumes and every frame arrives in order.
fn backpressure(gw: Gw) {
    let mut server = small_receive_buffer_server(&gw, 8);
    let mut client = gw.client();
    send(&mut client, &cmd(Command::Dial { remote: 8 }));
    expect(&mut client, &cmd(Command::Accept { conn: 1, remote: 8 }));
    expect(&mut server, &cmd(Command::Connect { conn: 1, remote: 1 }));

    const FRAMES: u32 = 1024;
    let frame = |i: u32| {
        let mut payload = vec![(i % 256) as u8; 16 * 1024 - 8];
        payload[..4].copy_from_slice(&i.to_le_bytes());
        data(1, &payload)
    };
    let flood = thread::spawn(move || {
        client
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        for i in 0..FRAMES {
            client.write_all(&frame(i)).unwrap();
        }
        client
    });
    wait_until("client paused", || {
        gw.handle
            .peers()
            .iter()
            .any(|p| p.side == Side::Client && p.paused)
    });
    for i in 0..FRAMES {
        assert!(read_frame(&mut server) == frame(i), "frame {i} differs");
    }
    let mut client = flood.join().unwrap();
    let stats = gw.handle.stats();
    assert_eq!(
        (stats.queue_full_drops, stats.clients, stats.servers),
        (0, 1, 1)
    );
    assert!(gw.handle.peers().iter().all(|p| !p.paused));
    send(&mut client, &cmd(Command::Ping));
    expect(&mut client, &cmd(Command::Ping));
    gw.stop();
}

fn small_receive_buffer_server(gw: &Gw, id: u32) -> TcpStream {
    let mut s = small_receive_buffer_client(gw.server);
    let mut challenge = [0u8; 8];
    s.read_exact(&mut challenge).unwrap();
    s.write_all(&server_response(&Challenge(challenge), b"k", id))
        .unwrap();
    wait_until("server registration", || gw.handle.stats().servers == 1);
    s
}

fn backpressure_config() -> GatewayConfig {
    GatewayConfig {
        server_queue: QueueLimits {
            max_frames: 1024,
            max_bytes: 1024 * 1024,
        },
        ..config()
    }
}

#[test]
fn backpressure_current_thread() {
    backpressure(Gw::start(Flavor::CurrentThread, backpressure_config()));
}

#[test]
fn backpressure_multi_thread() {
    backpressure(Gw::start(Flavor::MultiThread, backpressure_config()));
}
