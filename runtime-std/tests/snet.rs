//! End-to-end tests of snet ports (SNET.md) on the std gateway, over loopback sockets: a raw snet
//! client (tests/common) talks to the gateway's snet port, raw game servers to its server port.
//!
//! Every socket has read and write timeouts and every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use fastway_core::auth::{CHALLENGE_LEN, Challenge, server_response};
use fastway_core::gateway::GatewayConfig;
use fastway_core::snet::{REFUSAL, SnetConfig};
use fastway_std::{GatewayHandle, GatewayServer, ServerConfig};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const KEY: &[u8] = b"k";
const LONG_WAIT: Duration = Duration::from_secs(60);

struct TestGateway {
    handle: GatewayHandle,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestGateway {
    fn start(client_snet: Option<SnetConfig>, server_snet: Option<SnetConfig>) -> Self {
        init_logs();
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let gateway = GatewayConfig {
            auth_key: KEY.to_vec(),
            ..GatewayConfig::default()
        };
        let config = ServerConfig {
            client_snet,
            server_snet,
            ..ServerConfig::new(gateway, local, local)
        };
        let server = GatewayServer::bind(config).unwrap();
        let (client_addr, server_addr) = (server.client_addr(), server.server_addr());
        let handle = server.handle();
        let thread = thread::spawn(move || server.run());
        Self {
            handle,
            client_addr,
            server_addr,
            thread: Some(thread),
        }
    }

    /// A plain game server registered as `id` (proven by a Ping round trip).
    fn plain_server(&self, id: u32) -> TcpStream {
        let mut server = connect(self.server_addr);
        let challenge = recv(&mut server, CHALLENGE_LEN);
        let challenge = Challenge(challenge.try_into().unwrap());
        server
            .write_all(&server_response(&challenge, KEY, id))
            .unwrap();
        server.write_all(&PING).unwrap();
        assert_eq!(recv(&mut server, 9), PING);
        server
    }

    fn wait_until(&self, what: &str, check: impl Fn(&GatewayHandle) -> bool) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !check(&self.handle) {
            assert!(Instant::now() < deadline, "never saw {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Shuts down and checks `run` returned `Ok` in time.
    fn stop(mut self) {
        self.handle.shutdown();
        let thread = self.thread.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !thread.is_finished() {
            assert!(Instant::now() < deadline, "run did not return");
            thread::sleep(Duration::from_millis(5));
        }
        thread.join().unwrap().unwrap();
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

/// The snet client dials `server_id`; returns the vconn id after checking both sides saw it.
fn open_vconn(client: &mut SnetClient, server: &mut TcpStream, server_id: u32) -> u32 {
    client.send(&dial(server_id));
    let accepted = client.recv_frame();
    let conn = u32_at(&accepted, 9);
    assert_eq!(accepted, accept(conn, server_id));
    let connected = recv_frame(server);
    assert_eq!(connected, connect_cmd(conn, u32_at(&connected, 13)));
    conn
}

#[test]
fn an_snet_client_reaches_a_plain_server_with_and_without_encryption() {
    for encrypt in [false, true] {
        let snet = snet_config(encrypt, LONG_WAIT);
        let gw = TestGateway::start(Some(snet), None);
        let mut server = gw.plain_server(7);
        let mut client = SnetClient::connect(gw.client_addr, snet);
        let conn = open_vconn(&mut client, &mut server, 7);

        client.send(&data(conn, b"up"));
        assert_eq!(recv_frame(&mut server), data(conn, b"up"));
        // Several frames in one write, and one larger than a read, come out intact and in order.
        let burst: Vec<u8> = (0..40u8).flat_map(|i| data(conn, &[i; 300])).collect();
        server.write_all(&burst).unwrap();
        assert_eq!(client.recv(burst.len()), burst);
        client.send(&PING);
        assert_eq!(client.recv_frame(), PING.to_vec());

        client.send(&close(conn));
        assert_eq!(recv_frame(&mut server), close(conn));
        assert_eq!(client.recv_frame(), close(conn));
        gw.stop();
    }
}

/// Reads and discards until the gateway closes `stream`.
fn drain_until_closed(stream: &mut TcpStream) {
    let deadline = Instant::now() + IO_TIMEOUT;
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

/// The server streams numbered frames while the client's socket dies (`abandon` = false: killed, the
/// gateway sees it go; true: left open, so the gateway keeps writing into it until the reconnect
/// replaces it and the missed bytes must be retransmitted).
#[test]
fn a_lost_snet_socket_reconnects_and_nothing_is_lost_or_repeated() {
    const FRAMES: u32 = 300;
    for (encrypt, abandon) in [(false, false), (true, false), (false, true), (true, true)] {
        let snet = snet_config(encrypt, LONG_WAIT);
        let gw = TestGateway::start(Some(snet), None);
        let mut server = gw.plain_server(7);
        let mut client = SnetClient::connect(gw.client_addr, snet);
        let conn = open_vconn(&mut client, &mut server, 7);

        // The server streams numbered frames, paced, through the whole outage.
        let sender = {
            let mut server = server.try_clone().unwrap();
            thread::spawn(move || {
                for seq in 0..FRAMES {
                    let mut payload = seq.to_le_bytes().to_vec();
                    payload.extend_from_slice(&[0xA5; 60]);
                    server.write_all(&data(conn, &payload)).unwrap();
                    thread::sleep(Duration::from_micros(700));
                }
            })
        };
        let mut got = Vec::new();
        let take = |got: &mut Vec<u32>, frame: Vec<u8>| {
            assert_eq!(frame.len(), 4 + 4 + 4 + 60, "unexpected frame {frame:?}");
            assert_eq!(u32_at(&frame, 4), conn);
            got.push(u32_at(&frame, 8));
        };
        for _ in 0..FRAMES / 4 {
            take(&mut got, client.recv_frame());
        }
        // Client bytes written right before the socket dies may or may not reach the gateway.
        for i in 0..20u8 {
            client.send(&data(conn, &[i]));
        }
        let old = if abandon {
            Some(client.abandon())
        } else {
            client.kill();
            None
        };
        thread::sleep(Duration::from_millis(50));
        client.reconnect(gw.client_addr).unwrap();
        if let Some(mut old) = old {
            drain_until_closed(&mut old);
            wait_for_log("snet session moved to a newer connection");
        }
        for i in 20..40u8 {
            client.send(&data(conn, &[i]));
        }
        while got.len() < FRAMES as usize {
            take(&mut got, client.recv_frame());
        }
        sender.join().unwrap();
        assert_eq!(
            got,
            (0..FRAMES).collect::<Vec<_>>(),
            "encrypt={encrypt} abandon={abandon}"
        );
        for i in 0..40u8 {
            assert_eq!(
                recv_frame(&mut server),
                data(conn, &[i]),
                "encrypt={encrypt} abandon={abandon}"
            );
        }
        // The vconn survived: it still works both ways, and the gateway saw one client all along.
        server.write_all(&data(conn, b"still here")).unwrap();
        assert_eq!(client.recv_frame(), data(conn, b"still here"));
        let stats = gw.handle.stats();
        assert_eq!((stats.clients, stats.vconns), (1, 1), "{stats:?}");
        // Shutdown's Close frames are encrypted for the new link.
        gw.stop();
        assert_eq!(
            client.recv_frame(),
            close(conn),
            "encrypt={encrypt} abandon={abandon}"
        );
    }
}

#[test]
fn a_reconnect_for_an_unknown_session_is_refused_and_the_real_one_is_untouched() {
    let snet = snet_config(true, LONG_WAIT);
    let gw = TestGateway::start(Some(snet), None);
    let mut server = gw.plain_server(7);
    let mut client = SnetClient::connect(gw.client_addr, snet);
    let conn = open_vconn(&mut client, &mut server, 7);

    let mut rogue = connect(gw.client_addr);
    let mut request = vec![0xFF];
    request.extend_from_slice(&(client.session.conn_id() + 1000).to_le_bytes());
    request.extend_from_slice(&[0u8; 32]);
    rogue.write_all(&request).unwrap();
    assert_eq!(recv(&mut rogue, REFUSAL.len()), REFUSAL.to_vec());
    expect_closed(&mut rogue);

    client.send(&data(conn, b"fine"));
    assert_eq!(recv_frame(&mut server), data(conn, b"fine"));
    server.write_all(&data(conn, b"yes")).unwrap();
    assert_eq!(client.recv_frame(), data(conn, b"yes"));
    gw.stop();
}

#[test]
fn a_session_whose_wait_timeout_passes_closes_its_vconns_at_the_server() {
    let wait = Duration::from_millis(300);
    let snet = snet_config(false, wait);
    let gw = TestGateway::start(Some(snet), None);
    let mut server = gw.plain_server(7);
    let mut client = SnetClient::connect(gw.client_addr, snet);
    let conn = open_vconn(&mut client, &mut server, 7);

    let killed = Instant::now();
    client.kill();
    // The peer waits for its reconnect first...
    thread::sleep(Duration::from_millis(100));
    let stats = gw.handle.stats();
    assert_eq!((stats.clients, stats.vconns), (1, 1), "{stats:?}");
    // ...then the wait timeout ends it.
    assert_eq!(recv_frame(&mut server), close(conn));
    assert!(
        killed.elapsed() >= wait,
        "closed after {:?}",
        killed.elapsed()
    );
    gw.wait_until("the client gone", |h| h.stats().clients == 0);
    // A reconnect now names a session that is gone.
    assert!(client.reconnect(gw.client_addr).is_err());
    gw.stop();
}

#[test]
fn an_snet_game_server_authenticates_and_routes() {
    for encrypt in [false, true] {
        let snet = snet_config(encrypt, LONG_WAIT);
        let gw = TestGateway::start(None, Some(snet));
        let mut server = SnetClient::connect(gw.server_addr, snet);
        let challenge = Challenge(server.recv(CHALLENGE_LEN).try_into().unwrap());
        server.send(&server_response(&challenge, KEY, 9));
        server.send(&PING);
        assert_eq!(server.recv_frame(), PING.to_vec());
        let addr = server.stream.local_addr().unwrap();
        wait_for_log(&format!("accept server 9 from {addr}"));

        let mut client = connect(gw.client_addr);
        client.write_all(&dial(9)).unwrap();
        let accepted = recv_frame(&mut client);
        let conn = u32_at(&accepted, 9);
        assert_eq!(accepted, accept(conn, 9));
        let connected = server.recv_frame();
        assert_eq!(connected, connect_cmd(conn, u32_at(&connected, 13)));

        client.write_all(&data(conn, b"to server")).unwrap();
        assert_eq!(server.recv_frame(), data(conn, b"to server"));
        server.send(&data(conn, b"to client"));
        assert_eq!(recv_frame(&mut client), data(conn, b"to client"));
        gw.stop();
    }
}

#[test]
fn a_wrong_key_on_an_snet_server_port_is_refused_with_the_usual_log_line() {
    let snet = snet_config(true, LONG_WAIT);
    let gw = TestGateway::start(None, Some(snet));
    let mut server = SnetClient::connect(gw.server_addr, snet);
    let challenge = Challenge(server.recv(CHALLENGE_LEN).try_into().unwrap());
    server.send(&server_response(&challenge, b"wrong key", 9));
    expect_closed(&mut server.stream);
    let addr = server.stream.local_addr().unwrap();
    let line = wait_for_log(&format!(
        "error happends when accept server from {addr}: server auth failed"
    ));
    assert!(line.starts_with("WARN "), "{line}");
    assert_eq!(gw.handle.stats().servers, 0);
    gw.stop();
}

/// A frame split across the socket break: its first half reached the gateway on the old socket, the
/// rest comes on the new one. The server must receive the frame whole.
///
/// The head of the frame is read (and counted by snet) on the old socket, so the client does not
/// resend it: the switchboard must keep it for the session, not for the socket.
#[test]
fn a_frame_split_across_a_reconnect_arrives_whole() {
    for encrypt in [false, true] {
        let snet = snet_config(encrypt, LONG_WAIT);
        let gw = TestGateway::start(Some(snet), None);
        let mut server = gw.plain_server(7);
        let mut client = SnetClient::connect(gw.client_addr, snet);
        let conn = open_vconn(&mut client, &mut server, 7);

        let frame = data(conn, b"split across two sockets");
        let (head, tail) = frame.split_at(10);
        client.send(head);
        // Let the gateway read (and decrypt) the head on the old socket.
        thread::sleep(Duration::from_millis(50));
        client.kill();
        client.reconnect(gw.client_addr).unwrap();
        client.send(tail);
        client.send(&data(conn, b"next"));
        assert_eq!(recv_frame(&mut server), frame, "encrypt={encrypt}");
        assert_eq!(recv_frame(&mut server), data(conn, b"next"));
        gw.stop();
    }
}
