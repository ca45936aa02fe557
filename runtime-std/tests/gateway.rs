//! End-to-end tests of the std gateway over real loopback sockets (127.0.0.1, ephemeral ports).
//!
//! Every socket has read and write timeouts, so no test can hang; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fastway_core::auth::{Challenge, server_response};
use fastway_core::gateway::{GatewayConfig, QueueLimits, Side};
use fastway_std::{GatewayHandle, GatewayServer, ServerConfig};
use std::collections::HashSet;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const KEY: &[u8] = b"k";
const IO_TIMEOUT: Duration = Duration::from_secs(3);

// ---- log capture ----------------------------------------------------------------------------------

struct Capture(Mutex<Vec<String>>);

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        self.0.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOGS).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
}

/// Waits until a captured log line contains `needle`; returns that line.
fn wait_for_log(needle: &str) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        if let Some(line) = LOGS.0.lock().unwrap().iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        assert!(Instant::now() < deadline, "no log line contains {needle:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

// ---- the gateway under test -----------------------------------------------------------------------

struct TestGateway {
    handle: GatewayHandle,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    thread: Option<JoinHandle<io::Result<()>>>,
}

fn config() -> GatewayConfig {
    GatewayConfig {
        auth_key: KEY.to_vec(),
        ..GatewayConfig::default()
    }
}

impl TestGateway {
    fn start(gateway: GatewayConfig) -> Self {
        init_logs();
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = GatewayServer::bind(ServerConfig::new(gateway, local, local)).unwrap();
        let (client_addr, server_addr) = (server.client_addr(), server.server_addr());
        let handle = server.handle();
        let thread = thread::Builder::new()
            .name("test-gateway".into())
            .spawn(move || server.run())
            .unwrap();
        Self {
            handle,
            client_addr,
            server_addr,
            thread: Some(thread),
        }
    }

    /// Shuts down and checks `run` returned `Ok` in time; returns how long it took.
    fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.handle.shutdown();
        let thread = self.thread.take().unwrap();
        while !thread.is_finished() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "run did not return"
            );
            thread::sleep(Duration::from_millis(5));
        }
        thread.join().unwrap().unwrap();
        started.elapsed()
    }

    fn client(&self) -> TcpStream {
        connect(self.client_addr)
    }

    /// A server that passed the handshake as `id` and is registered (proven by a Ping round trip).
    fn server(&self, id: u32) -> TcpStream {
        let mut server = connect(self.server_addr);
        let mut challenge = [0u8; 8];
        server.read_exact(&mut challenge).unwrap();
        server
            .write_all(&server_response(&Challenge(challenge), KEY, id))
            .unwrap();
        ping(&mut server);
        server
    }

    /// Waits until `check` holds for the gateway's stats.
    fn wait_stats(&self, what: &str, check: impl Fn(&fastway_std::GatewayStats) -> bool) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let stats = self.handle.stats();
            if check(&stats) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stats never showed {what}: {stats:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

// ---- raw peers ------------------------------------------------------------------------------------

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

fn command(kind: u8, args: &[u32]) -> Vec<u8> {
    let length = 5 + 4 * args.len() as u32;
    let mut frame = length.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0, 0, 0, 0, kind]);
    for arg in args {
        frame.extend_from_slice(&arg.to_le_bytes());
    }
    frame
}

fn dial(remote: u32) -> Vec<u8> {
    command(0, &[remote])
}
fn accept(conn: u32, remote: u32) -> Vec<u8> {
    command(1, &[conn, remote])
}
fn connect_cmd(conn: u32, remote: u32) -> Vec<u8> {
    command(2, &[conn, remote])
}
fn refuse(remote: u32) -> Vec<u8> {
    command(3, &[remote])
}
fn close(conn: u32) -> Vec<u8> {
    command(4, &[conn])
}
const PING: [u8; 9] = [5, 0, 0, 0, 0, 0, 0, 0, 5];

fn data(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (4 + payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&conn.to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn recv(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    stream.read_exact(&mut bytes).unwrap();
    bytes
}

/// Reads one whole frame.
fn recv_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut frame = recv(stream, 4);
    let length = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    frame.extend(recv(stream, length));
    frame
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn ping(stream: &mut TcpStream) {
    stream.write_all(&PING).unwrap();
    assert_eq!(recv(stream, 9), PING);
}

/// The socket is closed by the gateway (EOF or reset) with no byte before it, within the timeout.
fn expect_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("expected the socket closed, got byte {:#x}", byte[0]),
        Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
        Err(err) => panic!("expected the socket closed, got {err}"),
    }
}

/// Reads (and discards) until the socket is closed.
fn drain_until_closed(stream: &mut TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        assert!(Instant::now() < deadline, "socket never closed");
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return,
            Err(err) => panic!("expected the socket closed, got {err}"),
        }
    }
}

/// Client dials `server_id`; returns (vconn id, client id as the server saw it).
fn open_vconn(client: &mut TcpStream, server: &mut TcpStream, server_id: u32) -> (u32, u32) {
    client.write_all(&dial(server_id)).unwrap();
    let accepted = recv(client, 17);
    let conn = u32_at(&accepted, 9);
    assert_eq!(accepted, accept(conn, server_id));
    let connected = recv(server, 17);
    let client_id = u32_at(&connected, 13);
    assert_eq!(connected, connect_cmd(conn, client_id));
    (conn, client_id)
}

// ---- tests ----------------------------------------------------------------------------------------

#[test]
fn bind_resolves_ephemeral_ports_and_logs_them() {
    let gw = TestGateway::start(config());
    assert!(gw.client_addr.ip().is_loopback() && gw.client_addr.port() != 0);
    assert!(gw.server_addr.ip().is_loopback() && gw.server_addr.port() != 0);
    assert_ne!(gw.client_addr, gw.server_addr);
    let line = wait_for_log(&format!("setup client listener at - {}", gw.client_addr));
    assert!(line.starts_with("INFO"), "{line}");
    wait_for_log(&format!("setup server listener at - {}", gw.server_addr));
}

#[test]
fn a_whole_session_is_routed_verbatim() {
    let gw = TestGateway::start(config());
    let mut server = gw.server(7);
    wait_for_log(&format!(
        "accept server 7 from {}",
        server.local_addr().unwrap()
    ));
    let mut client = gw.client();
    let (conn, _) = open_vconn(&mut client, &mut server, 7);

    client.write_all(&data(conn, b"Hello")).unwrap();
    assert_eq!(recv(&mut server, 13), data(conn, b"Hello"));
    server.write_all(&data(conn, b"")).unwrap();
    assert_eq!(recv(&mut client, 8), data(conn, b""));
    // Several frames in one write come out intact and in order.
    let burst: Vec<u8> = (0..50u8).flat_map(|i| data(conn, &[i; 100])).collect();
    server.write_all(&burst).unwrap();
    assert_eq!(recv(&mut client, burst.len()), burst);

    ping(&mut client);
    client.write_all(&data(99, b"x")).unwrap();
    assert_eq!(recv(&mut client, 13), close(99));
    client.write_all(&dial(8)).unwrap();
    assert_eq!(recv(&mut client, 13), refuse(8));

    client.write_all(&close(conn)).unwrap();
    assert_eq!(recv(&mut client, 13), close(conn));
    assert_eq!(recv(&mut server, 13), close(conn));

    let stats = gw.handle.stats();
    assert_eq!((stats.clients, stats.servers, stats.vconns), (1, 1, 0));
    assert_eq!(stats.frames_routed, 52);
    assert_eq!(stats.bytes_routed, 13 + 8 + burst.len() as u64);
    assert_eq!((stats.dials_accepted, stats.dials_refused), (1, 1));
    let peers = gw.handle.peers();
    assert_eq!(peers.len(), 2);
    assert!(
        peers
            .iter()
            .any(|p| p.side == Side::Server && p.id == Some(7))
    );
}

#[test]
fn large_frames_cross_in_both_directions() {
    let gw = TestGateway::start(config());
    let mut server = gw.server(1);
    let mut client = gw.client();
    let (conn, _) = open_vconn(&mut client, &mut server, 1);
    let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let frame = data(conn, &payload);
    client.write_all(&frame).unwrap();
    assert_eq!(recv(&mut server, frame.len()), frame);
    server.write_all(&frame).unwrap();
    assert_eq!(recv(&mut client, frame.len()), frame);
}

#[test]
fn a_server_can_dial_a_client() {
    let gw = TestGateway::start(config());
    let mut server = gw.server(3);
    let mut client = gw.client();
    let (conn, client_id) = open_vconn(&mut client, &mut server, 3);
    server.write_all(&dial(client_id)).unwrap();
    let accepted = recv(&mut server, 17);
    let second = u32_at(&accepted, 9);
    assert_ne!(second, conn);
    assert_eq!(accepted, accept(second, client_id));
    assert_eq!(recv(&mut client, 17), connect_cmd(second, 3));
}

#[test]
fn the_client_vconn_limit_refuses_extra_dials() {
    let gw = TestGateway::start(GatewayConfig {
        client_max_conn: 1,
        ..config()
    });
    let mut server = gw.server(7);
    let mut client = gw.client();
    open_vconn(&mut client, &mut server, 7);
    client.write_all(&dial(7)).unwrap();
    assert_eq!(recv(&mut client, 13), refuse(7));
}

#[test]
fn the_client_connection_limit_closes_extra_clients() {
    let gw = TestGateway::start(GatewayConfig {
        max_clients: 1,
        ..config()
    });
    let mut first = gw.client();
    ping(&mut first);
    let mut second = gw.client();
    let addr = second.local_addr().unwrap();
    expect_closed(&mut second);
    wait_for_log(&format!("refuse client from {addr}"));
    assert_eq!(gw.handle.stats().clients_refused, 1);
    ping(&mut first);
}

#[test]
fn a_wrong_auth_key_closes_the_socket_without_a_word() {
    let gw = TestGateway::start(config());
    let mut server = connect(gw.server_addr);
    let challenge = recv(&mut server, 8);
    let challenge = Challenge(challenge.try_into().unwrap());
    server
        .write_all(&server_response(&challenge, b"wrong", 7))
        .unwrap();
    expect_closed(&mut server);
    let line = wait_for_log(&format!(
        "error happends when accept server from {}: server auth failed",
        server.local_addr().unwrap()
    ));
    assert!(
        line.starts_with("WARN") || line.starts_with("ERROR"),
        "{line}"
    );
    let stats = gw.handle.stats();
    assert_eq!(
        (stats.auth_failures, stats.servers, stats.handshaking),
        (1, 0, 0)
    );
    // The id was never registered.
    let mut client = gw.client();
    client.write_all(&dial(7)).unwrap();
    assert_eq!(recv(&mut client, 13), refuse(7));
}

#[test]
fn a_silent_server_is_dropped_after_the_handshake_deadline() {
    let gw = TestGateway::start(GatewayConfig {
        handshake_timeout: Duration::from_millis(300),
        ..config()
    });
    let started = Instant::now();
    let mut server = connect(gw.server_addr);
    recv(&mut server, 8);
    expect_closed(&mut server);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "dropped too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(2),
        "dropped too late: {waited:?}"
    );
    assert_eq!(gw.handle.stats().handshaking, 0);
}

#[test]
fn the_idle_timeout_drops_a_silent_client_but_not_a_pinging_one() {
    let gw = TestGateway::start(GatewayConfig {
        client_idle_timeout: Some(Duration::from_millis(300)),
        ..config()
    });
    let started = Instant::now();
    let mut silent = gw.client();
    let mut pinging = gw.client();
    for _ in 0..6 {
        thread::sleep(Duration::from_millis(100));
        ping(&mut pinging);
    }
    expect_closed(&mut silent);
    assert!(started.elapsed() < Duration::from_secs(2));
    ping(&mut pinging);
    gw.wait_stats("a timeout drop", |s| s.timeout_drops == 1 && s.clients == 1);
}

#[test]
fn malformed_input_drops_only_the_offender() {
    let gw = TestGateway::start(GatewayConfig {
        max_packet: 1024,
        ..config()
    });
    let mut server = gw.server(7);
    let mut bystander = gw.client();
    let (conn, _) = open_vconn(&mut bystander, &mut server, 7);
    let offences: [&[u8]; 4] = [
        &1025u32.to_le_bytes(),                   // Length over MaxPacket
        &[2, 0, 0, 0, 0, 0],                      // shorter than any frame
        &[5, 0, 0, 0, 0, 0, 0, 0, 9],             // unknown command
        &[9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0], // gateway-only command (Accept)
    ];
    for (i, offence) in offences.iter().enumerate() {
        let mut offender = gw.client();
        let (offender_conn, _) = open_vconn(&mut offender, &mut server, 7);
        offender.write_all(offence).unwrap();
        expect_closed(&mut offender);
        // The server hears that the offender's vconn is gone...
        assert_eq!(recv_frame(&mut server), close(offender_conn));
        // ...and the bystander is unharmed.
        let msg = format!("still here {i}");
        bystander.write_all(&data(conn, msg.as_bytes())).unwrap();
        assert_eq!(recv_frame(&mut server), data(conn, msg.as_bytes()));
        server.write_all(&data(conn, b"ok")).unwrap();
        assert_eq!(recv_frame(&mut bystander), data(conn, b"ok"));
    }
    gw.wait_stats("4 protocol drops", |s| {
        s.protocol_drops == 4 && s.clients == 1
    });
    wait_for_log("exceeds MaxPacket");
}

#[test]
fn a_server_leaving_closes_every_vconn_of_its_clients() {
    let gw = TestGateway::start(config());
    let mut server = gw.server(7);
    let mut client = gw.client();
    let (a, _) = open_vconn(&mut client, &mut server, 7);
    let (b, _) = open_vconn(&mut client, &mut server, 7);
    drop(server);
    let closed: HashSet<Vec<u8>> = [recv(&mut client, 13), recv(&mut client, 13)].into();
    assert_eq!(closed, HashSet::from([close(a), close(b)]));
    gw.wait_stats("the server gone", |s| s.servers == 0 && s.vconns == 0);
    ping(&mut client);
}

#[test]
fn shutdown_returns_and_closes_every_socket_after_the_close_frames() {
    let gw = TestGateway::start(config());
    let mut server = gw.server(7);
    let mut client = gw.client();
    let (conn, _) = open_vconn(&mut client, &mut server, 7);
    let mut idle = gw.client();
    let handle = gw.handle.clone();
    let (client_addr, server_addr) = (gw.client_addr, gw.server_addr);
    let took = gw.stop();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(recv(&mut client, 13), close(conn));
    expect_closed(&mut client);
    assert_eq!(recv(&mut server, 13), close(conn));
    expect_closed(&mut server);
    expect_closed(&mut idle);
    assert!(handle.peers().is_empty());
    // The listeners are gone.
    for addr in [client_addr, server_addr] {
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    }
}

#[test]
fn shutdown_before_run_returns_at_once() {
    init_logs();
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = GatewayServer::bind(ServerConfig::new(config(), local, local)).unwrap();
    server.handle().shutdown();
    let started = Instant::now();
    server.run().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_client_that_stops_reading_is_dropped_without_harming_others() {
    let gw = TestGateway::start(GatewayConfig {
        client_queue: QueueLimits {
            max_frames: 64,
            max_bytes: 256 << 10,
        },
        ..config()
    });
    let mut server = gw.server(7);
    let mut sleepy = gw.client();
    let mut healthy = gw.client();
    let (sleepy_conn, _) = open_vconn(&mut sleepy, &mut server, 7);
    let (healthy_conn, _) = open_vconn(&mut healthy, &mut server, 7);
    let chunk = data(sleepy_conn, &[0xAB; 16 << 10]);
    let deadline = Instant::now() + Duration::from_secs(8);
    while gw.handle.stats().queue_full_drops == 0 {
        assert!(
            Instant::now() < deadline,
            "the sleepy client was never dropped"
        );
        for _ in 0..16 {
            server.write_all(&chunk).unwrap();
        }
    }
    wait_for_log("outbound queue full");
    drain_until_closed(&mut sleepy);
    // The server learns the vconn is gone; the healthy client still works both ways.
    server.write_all(&data(healthy_conn, b"hi")).unwrap();
    assert_eq!(recv_frame(&mut healthy), data(healthy_conn, b"hi"));
    healthy.write_all(&data(healthy_conn, b"back")).unwrap();
    loop {
        let frame = recv_frame(&mut server);
        if frame == close(sleepy_conn) {
            continue;
        }
        assert_eq!(frame, data(healthy_conn, b"back"));
        break;
    }
    let stats = gw.handle.stats();
    assert_eq!(
        (stats.queue_full_drops, stats.clients, stats.servers),
        (1, 1, 1)
    );
}

#[test]
fn a_backed_up_server_pauses_its_senders_instead_of_dropping_them() {
    let gw = TestGateway::start(GatewayConfig {
        server_queue: QueueLimits {
            max_frames: 1 << 20,
            max_bytes: 1 << 20,
        },
        ..config()
    });
    let mut server = gw.server(7);
    let mut client = gw.client();
    let (conn, _) = open_vconn(&mut client, &mut server, 7);
    const FRAMES: usize = 1500;
    let frame = data(conn, &[0x5A; 16 << 10]);
    let sender = {
        let mut client = client.try_clone().unwrap();
        client
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let frame = frame.clone();
        thread::spawn(move || {
            for _ in 0..FRAMES {
                client.write_all(&frame).unwrap();
            }
        })
    };
    // The server does not read: its queue backs up and the client gets paused, not dropped.
    let deadline = Instant::now() + Duration::from_secs(8);
    while !gw
        .handle
        .peers()
        .iter()
        .any(|p| p.side == Side::Client && p.paused)
    {
        assert!(Instant::now() < deadline, "the client was never paused");
        thread::sleep(Duration::from_millis(10));
    }
    // Now the server reads everything: the client resumes and every frame arrives intact.
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = vec![0u8; frame.len()];
    for _ in 0..FRAMES {
        server.read_exact(&mut got).unwrap();
        assert!(got == frame, "a frame was corrupted");
    }
    sender.join().unwrap();
    let stats = gw.handle.stats();
    assert_eq!(
        (stats.queue_full_drops, stats.clients, stats.servers),
        (0, 1, 1)
    );
    ping(&mut client);
}

#[test]
fn a_client_that_stops_reading_gets_every_byte_in_order_once_it_reads_again() {
    // 16 MiB: more than loopback's socket buffers hold while the client does not read, so the
    // gateway's non-blocking sends to it run out of room and the rest waits for a writable edge;
    // far less than the client's queue limit, so it is not dropped.
    const FRAMES: u32 = 1024;
    const SIZE: usize = 16 * 1024;
    let gateway = TestGateway::start(GatewayConfig {
        client_queue: QueueLimits {
            max_frames: 1 << 20,
            max_bytes: 256 << 20,
        },
        ..config()
    });
    let mut server = gateway.server(1);
    let mut client = gateway.client();
    let (conn, _) = open_vconn(&mut client, &mut server, 1);
    let payload = |seq: u32| -> Vec<u8> {
        let mut payload = seq.to_le_bytes().to_vec();
        payload.resize(SIZE, (seq % 251) as u8);
        payload
    };
    let sender = thread::spawn(move || {
        for seq in 0..FRAMES {
            server.write_all(&data(conn, &payload(seq))).unwrap();
        }
        server
    });
    thread::sleep(Duration::from_millis(500));
    for seq in 0..FRAMES {
        let frame = recv_frame(&mut client);
        assert_eq!(u32_at(&frame, 4), conn);
        assert_eq!(u32_at(&frame, 8), seq, "frames reordered or lost");
        assert!(frame[8..] == payload(seq), "frame {seq} garbled");
    }
    let _server = sender.join().unwrap();
    ping(&mut client);
    assert_eq!(gateway.handle.stats().clients, 1);
    gateway.stop();
}
