//! The `event_loop` example, driven over loopback by a game server and a game client written with the
//! core's own [`Endpoint`] on blocking sockets: what the example promises (auth, dial, data both ways,
//! close, refused keys, idle timers, graceful shutdown) works through its hand-written loop.

#[path = "../examples/event_loop.rs"]
#[allow(dead_code)] // the example's `main`
mod example;

use bytes::BytesMut;
use example::{EventLoop, StopHandle};
use fastway_core::endpoint::{Endpoint, EndpointConfig, Event, Role};
use fastway_core::gateway::{GatewayConfig, GatewayStats, QueueLimits};
use fastway_core::switchboard::SwitchboardConfig;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long any single expectation may take before the test fails (never reached when things work).
const PATIENCE: Duration = Duration::from_secs(10);

/// The example's loop on its own thread, on free loopback ports.
struct Running {
    clients: SocketAddr,
    servers: SocketAddr,
    stop: StopHandle,
    thread: JoinHandle<GatewayStats>,
}

fn start(gateway: GatewayConfig) -> Running {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let config = SwitchboardConfig {
        gateway,
        ..SwitchboardConfig::default()
    };
    let mut event_loop = EventLoop::bind(loopback, loopback, config).expect("bind loopback");
    let (clients, servers) = event_loop.local_addrs().expect("local addresses");
    let stop = event_loop.stop_handle();
    let thread = std::thread::spawn(move || {
        event_loop.run().expect("the loop runs");
        event_loop.stats()
    });
    Running {
        clients,
        servers,
        stop,
        thread,
    }
}

impl Running {
    /// Stops the loop and returns the core's final counters.
    fn stop(self) -> GatewayStats {
        self.stop.stop().expect("wake the loop");
        self.thread.join().expect("the loop thread ends cleanly")
    }
}

/// A game client or game server: the core's endpoint machine on a blocking socket.
struct Peer {
    stream: TcpStream,
    endpoint: Endpoint,
    buf: BytesMut,
}

impl Peer {
    fn connect(addr: SocketAddr, role: Role) -> Peer {
        let stream = TcpStream::connect(addr).expect("connect to the gateway");
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let endpoint =
            Endpoint::new(role, EndpointConfig::default(), Instant::now()).expect("endpoint");
        Peer {
            stream,
            endpoint,
            buf: BytesMut::new(),
        }
    }

    fn server(addr: SocketAddr, id: u32, key: &[u8]) -> Peer {
        Peer::connect(
            addr,
            Role::Server {
                id,
                auth_key: key.to_vec(),
            },
        )
    }

    /// Writes what the endpoint owes.
    fn flush(&mut self) {
        while let Some(bytes) = self.endpoint.poll_transmit() {
            // The gateway may already have closed the socket; the events say so.
            let _ = self.stream.write_all(&bytes);
        }
    }

    /// Writes what the endpoint owes, then reads and feeds until `want` picks an event.
    fn until<T>(&mut self, mut want: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.flush();
            while let Some(event) = self.endpoint.poll_event() {
                if let Some(found) = want(&event) {
                    return found;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no expected event within {PATIENCE:?}"
            );
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.endpoint.handle_link_closed(),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    let now = Instant::now();
                    self.endpoint
                        .handle_input(&mut self.buf, now)
                        .expect("valid frames");
                }
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => self.endpoint.handle_link_closed(),
            }
        }
    }

    /// Dials `server` until the gateway knows it (its answer to the challenge may still be in flight).
    fn dial(&mut self, server: u32) -> u32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.endpoint.dial(server).expect("dial");
            let conn = self.until(|event| match event {
                Event::Dialed { conn, .. } => Some(Some(*conn)),
                Event::DialRefused { .. } => Some(None),
                _ => None,
            });
            if let Some(conn) = conn {
                return conn;
            }
            assert!(
                Instant::now() < deadline,
                "server {server} never registered"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn a_client_and_a_server_talk_through_the_hand_written_loop() {
    let gateway = start(GatewayConfig {
        auth_key: b"key".to_vec(),
        ..GatewayConfig::default()
    });
    let mut server = Peer::server(gateway.servers, 7, b"key");
    server.until(|event| (*event == Event::Ready).then_some(()));
    let mut client = Peer::connect(gateway.clients, Role::Client);
    let conn = client.dial(7);
    let incoming = server.until(|event| match event {
        Event::Incoming { conn, .. } => Some(*conn),
        _ => None,
    });
    assert_eq!(incoming, conn);

    // A message bigger than one read chunk, to cross several reads and writes.
    let big = vec![0x5a; 100_000];
    client.endpoint.send(conn, &big).expect("send");
    client.flush();
    let got = server.until(|event| match event {
        Event::Data { payload, .. } => Some(payload.clone()),
        _ => None,
    });
    assert_eq!(&got[..], &big[..]);
    server.endpoint.send(conn, b"welcome").expect("reply");
    server.flush();
    let reply = client.until(|event| match event {
        Event::Data { payload, .. } => Some(payload.clone()),
        _ => None,
    });
    assert_eq!(&reply[..], b"welcome");

    client.endpoint.close(conn);
    client.flush();
    server
        .until(|event| matches!(event, Event::Closed { conn: c, .. } if *c == conn).then_some(()));

    let stats = gateway.stop();
    assert_eq!(stats.vconns, 0);
    // The shutdown closed both sockets after flushing: both see the end of the link.
    for peer in [&mut server, &mut client] {
        peer.until(|event| matches!(event, Event::LinkClosed { .. }).then_some(()));
    }
}

#[test]
fn a_server_with_the_wrong_key_is_closed() {
    let gateway = start(GatewayConfig {
        auth_key: b"right".to_vec(),
        ..GatewayConfig::default()
    });
    let mut server = Peer::server(gateway.servers, 1, b"wrong");
    server.until(|event| matches!(event, Event::LinkClosed { .. }).then_some(()));
    let stats = gateway.stop();
    assert_eq!(stats.auth_failures, 1);
    assert_eq!(stats.servers, 0);
}

#[test]
fn the_core_timers_run_an_idle_client_is_dropped() {
    let gateway = start(GatewayConfig {
        client_idle_timeout: Some(Duration::from_millis(100)),
        ..GatewayConfig::default()
    });
    let mut silent = Peer::connect(gateway.clients, Role::Client);
    silent.until(|event| matches!(event, Event::LinkClosed { .. }).then_some(()));
    let stats = gateway.stop();
    assert_eq!(stats.timeout_drops, 1);
}

/// A server that does not read fills its small queue; the loop then pauses the client feeding it and
/// resumes it as the server catches up. Every message still arrives, in order.
#[test]
fn backpressure_pauses_and_resumes_the_client_without_loss() {
    let small = QueueLimits {
        max_frames: 64,
        max_bytes: 64 * 1024,
    };
    let gateway = start(GatewayConfig {
        server_queue: small,
        ..GatewayConfig::default()
    });
    let mut server = Peer::server(gateway.servers, 3, b"");
    server.until(|event| (*event == Event::Ready).then_some(()));
    let mut client = Peer::connect(gateway.clients, Role::Client);
    let conn = client.dial(3);
    server.until(|event| matches!(event, Event::Incoming { .. }).then_some(()));

    // 32 MiB: far more than the kernel's socket buffers, so the gateway must pause the client.
    const MESSAGES: usize = 2048;
    let writer = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            let message = vec![(i % 251) as u8; 16 * 1024];
            client.endpoint.send(conn, &message).expect("send");
            client.flush();
        }
        client
    });
    std::thread::sleep(Duration::from_millis(200)); // let the queue fill before reading
    for i in 0..MESSAGES {
        let payload = server.until(|event| match event {
            Event::Data { payload, .. } => Some(payload.clone()),
            _ => None,
        });
        assert_eq!(payload.len(), 16 * 1024, "message {i}");
        assert!(
            payload.iter().all(|&b| b == (i % 251) as u8),
            "message {i} corrupted"
        );
    }
    let _client = writer.join().expect("the writer finishes");
    assert_eq!(gateway.stop().queue_full_drops, 0);
}
