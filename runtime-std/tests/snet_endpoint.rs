//! The blocking endpoint over snet (`EndpointOptions::snet`) against this crate's real gateway, with a
//! fault-injecting proxy between the snet endpoint and the gateway's snet port: the link reconnects by
//! itself and nothing is lost or duplicated, it gives up with a clear reason after the wait timeout,
//! a game server authenticates inside snet, and unanswered pings reconnect under `KeepOpen`.
//!
//! Loopback only; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod snet_proxy;

use bytes::Bytes;
use fastway_core::gateway::Side;
use fastway_core::snet::CloseReason;
use fastway_std::endpoint::{
    ConnectError, Endpoint, EndpointConfig, EndpointOptions, LinkError, PingTimeoutPolicy,
    RecvError, SnetClientError, SnetConfig, VConn,
};
use fastway_std::{GatewayConfig, GatewayHandle, GatewayServer, ServerConfig};
use snet_proxy::{FaultyProxy, Mode};
use std::io;
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KEY: &[u8] = b"snet endpoint key";
const SERVER_ID: u32 = 7;
const WAIT: Duration = Duration::from_secs(10);

fn snet(encrypt: bool, wait: Duration) -> SnetConfig {
    SnetConfig {
        enable_crypt: encrypt,
        rewriter_buffer_size: 1 << 20,
        handshake_timeout: Duration::from_secs(2),
        reconn_wait_timeout: wait,
    }
}

struct Gateway {
    handle: GatewayHandle,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Gateway {
    fn start(client_snet: Option<SnetConfig>, server_snet: Option<SnetConfig>) -> Self {
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

    /// Waits (bounded) until game server `id` is registered.
    fn wait_server(&self, id: u32) {
        wait_until("the game server registered", || {
            self.handle
                .peers()
                .iter()
                .any(|peer| peer.side == Side::Server && peer.id == Some(id))
        });
    }
}

impl Drop for Gateway {
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

fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn options(snet: Option<SnetConfig>) -> EndpointOptions {
    EndpointOptions {
        dial_timeout: Some(WAIT),
        snet,
        ..EndpointOptions::default()
    }
}

fn recv(vconn: &mut VConn) -> Bytes {
    vconn
        .recv_timeout(WAIT)
        .unwrap()
        .expect("a message within the wait")
}

/// The error `recv` ends with, within the wait.
fn recv_end(vconn: &mut VConn) -> RecvError {
    let deadline = Instant::now() + WAIT;
    loop {
        match vconn.recv_timeout(Duration::from_millis(50)) {
            Err(error) => return error,
            Ok(Some(message)) => panic!("unexpected message {message:?}"),
            Ok(None) => assert!(Instant::now() < deadline, "the vconn never ended"),
        }
    }
}

/// A tiny xorshift RNG for the cut moments; the seed is printed so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn from_time() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        println!("cut seed: {seed}");
        Self(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Message `i` of a numbered stream: its number, then some filler so that frames span reads.
fn numbered(i: u32) -> Bytes {
    let mut message = i.to_le_bytes().to_vec();
    message.resize(4 + (i as usize % 200), (i % 251) as u8);
    Bytes::from(message)
}

fn check_numbered(message: &[u8], expected: u32) {
    assert!(message.len() >= 4, "short message");
    let got = u32::from_le_bytes(message[..4].try_into().unwrap());
    assert_eq!(got, expected, "messages out of order, lost or duplicated");
    assert_eq!(
        message,
        &numbered(expected)[..],
        "message {expected} corrupted"
    );
}

/// Sends `count` numbered messages on `vconn` (pausing now and then) while receiving the other side's
/// `count`, checking every one arrives exactly once and in order.
fn exchange(mut vconn: VConn, count: u32) -> JoinHandle<VConn> {
    let sender = vconn.sender();
    thread::spawn(move || {
        let sending = thread::spawn(move || {
            for i in 0..count {
                sender.send(numbered(i)).unwrap();
                if i % 10 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
        });
        for i in 0..count {
            check_numbered(&recv(&mut vconn), i);
        }
        sending.join().unwrap();
        vconn
    })
}

#[test]
fn messages_survive_cut_links_exactly_once_in_order_both_ways() {
    for encrypt in [false, true] {
        let gateway = Gateway::start(Some(snet(encrypt, Duration::from_secs(30))), None);
        let proxy = FaultyProxy::start(gateway.client_addr);
        let server =
            Endpoint::connect_server(gateway.server_addr, SERVER_ID, KEY, options(None)).unwrap();
        gateway.wait_server(SERVER_ID);
        let client = Endpoint::connect_client(
            proxy.addr,
            options(Some(snet(encrypt, Duration::from_secs(30)))),
        )
        .unwrap();
        let dialed = client.dial(SERVER_ID).unwrap();
        let accepted = server.accept_timeout(WAIT).unwrap().unwrap();

        const COUNT: u32 = 6000;
        let client_side = exchange(dialed, COUNT);
        let server_side = exchange(accepted, COUNT);
        let mut rng = Lcg::from_time();
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(20 + rng.below(120)));
            proxy.cut_all();
        }
        let cuts_done = Instant::now();
        let dialed = client_side.join().unwrap();
        let mut accepted = server_side.join().unwrap();
        println!(
            "encrypt {encrypt}: {} connections, traffic ended {:?} after the last cut",
            proxy.accepted(),
            cuts_done.elapsed()
        );
        assert!(
            proxy.accepted() >= 4,
            "the client did not reconnect after the cuts (encrypt {encrypt})"
        );
        // Still one working vconn afterwards.
        dialed.send(&b"after"[..]).unwrap();
        assert_eq!(&recv(&mut accepted)[..], b"after");
        assert!(client.close_reason().is_none());
        assert!(client.snet_close_reason().is_none());
        client.close();
        assert_eq!(
            client.closed_timeout(WAIT),
            Some(LinkError::Shutdown),
            "close ends the link"
        );
        server.close();
    }
}

#[test]
fn gives_up_after_the_wait_timeout_with_a_clear_reason() {
    for mode in [Mode::Refuse, Mode::Blackhole] {
        let wait = Duration::from_millis(500);
        let gateway = Gateway::start(Some(snet(true, wait)), None);
        let proxy = FaultyProxy::start(gateway.client_addr);
        let server =
            Endpoint::connect_server(gateway.server_addr, SERVER_ID, KEY, options(None)).unwrap();
        gateway.wait_server(SERVER_ID);
        let client = Endpoint::connect_client(proxy.addr, options(Some(snet(true, wait)))).unwrap();
        let mut dialed = client.dial(SERVER_ID).unwrap();
        let mut accepted = server.accept_timeout(WAIT).unwrap().unwrap();
        dialed.send(&b"hello"[..]).unwrap();
        assert_eq!(&recv(&mut accepted)[..], b"hello");

        proxy.set_mode(mode);
        let cut_at = Instant::now();
        proxy.cut_all();
        assert_eq!(client.closed_timeout(WAIT), Some(LinkError::SocketClosed));
        let gave_up_after = cut_at.elapsed();
        assert!(
            gave_up_after >= Duration::from_millis(400) && gave_up_after < Duration::from_secs(3),
            "{mode:?}: gave up after {gave_up_after:?}"
        );
        let reason = client.snet_close_reason();
        assert_eq!(
            reason,
            Some(SnetClientError::Closed(CloseReason::WaitTimeout)),
            "{mode:?}"
        );
        let text = reason.unwrap().to_string();
        assert!(
            text.contains("no reconnect within the wait timeout"),
            "{text}"
        );
        assert_eq!(
            recv_end(&mut dialed),
            RecvError::Link(LinkError::SocketClosed)
        );
        assert!(proxy.accepted() >= 2, "{mode:?}: no reconnect was tried");
        // The gateway's session times out too: the game server sees the vconn closed.
        assert_eq!(recv_end(&mut accepted), RecvError::Closed);
        assert!(server.close_reason().is_none());
        server.close();
    }
}

#[test]
fn snet_server_endpoint_authenticates_and_survives_a_cut() {
    for encrypt in [false, true] {
        let config = snet(encrypt, Duration::from_secs(30));
        let gateway = Gateway::start(None, Some(config));
        let proxy = FaultyProxy::start(gateway.server_addr);
        let server =
            Endpoint::connect_server(proxy.addr, SERVER_ID, KEY, options(Some(config))).unwrap();
        gateway.wait_server(SERVER_ID);
        let client = Endpoint::connect_client(gateway.client_addr, options(None)).unwrap();
        let mut dialed = client.dial(SERVER_ID).unwrap();
        let mut accepted = server.accept_timeout(WAIT).unwrap().unwrap();
        dialed.send(&b"before"[..]).unwrap();
        assert_eq!(&recv(&mut accepted)[..], b"before");

        proxy.cut_all();
        // Sent while the link may be down: held, then delivered after the reconnect.
        accepted.send(&b"during"[..]).unwrap();
        dialed.send(&b"during too"[..]).unwrap();
        assert_eq!(&recv(&mut dialed)[..], b"during");
        assert_eq!(&recv(&mut accepted)[..], b"during too");
        wait_until("the server endpoint reconnected", || proxy.accepted() >= 2);
        accepted.send(&b"after"[..]).unwrap();
        assert_eq!(&recv(&mut dialed)[..], b"after");
        assert!(server.close_reason().is_none());
        // New vconns still work.
        let second = client.dial(SERVER_ID).unwrap();
        let mut second_accepted = server.accept_timeout(WAIT).unwrap().unwrap();
        second.send(&b"second"[..]).unwrap();
        assert_eq!(&recv(&mut second_accepted)[..], b"second");
        client.close();
        server.close();
    }
}

#[test]
fn unanswered_pings_reconnect_under_keep_open() {
    let config = snet(false, Duration::from_secs(30));
    let gateway = Gateway::start(Some(config), None);
    let proxy = FaultyProxy::start(gateway.client_addr);
    let server =
        Endpoint::connect_server(gateway.server_addr, SERVER_ID, KEY, options(None)).unwrap();
    gateway.wait_server(SERVER_ID);
    let client_options = EndpointOptions {
        core: EndpointConfig {
            ping_interval: Some(Duration::from_millis(100)),
            ping_timeout: Duration::from_millis(300),
            ping_timeout_policy: PingTimeoutPolicy::KeepOpen,
            ..EndpointConfig::default()
        },
        ..options(Some(config))
    };
    let client = Endpoint::connect_client(proxy.addr, client_options).unwrap();
    let mut dialed = client.dial(SERVER_ID).unwrap();
    let mut accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    dialed.send(&b"one"[..]).unwrap();
    assert_eq!(&recv(&mut accepted)[..], b"one");

    // The network goes silent without closing anything: only the pings can tell.
    proxy.freeze_all();
    dialed.send(&b"swallowed, then resent"[..]).unwrap();
    accepted.send(&b"swallowed too"[..]).unwrap();
    assert_eq!(&recv(&mut accepted)[..], b"swallowed, then resent");
    assert_eq!(&recv(&mut dialed)[..], b"swallowed too");
    assert!(proxy.accepted() >= 2, "no reconnect");
    assert!(client.snet_reconnects() >= 1, "no reconnect counted");
    assert!(client.close_reason().is_none());
    client.close();
    server.close();
}

#[test]
fn a_first_connection_that_fails_the_snet_handshake_is_not_retried() {
    let gateway = Gateway::start(Some(snet(false, Duration::from_secs(30))), None);
    let proxy = FaultyProxy::start(gateway.client_addr);
    let quick = SnetConfig {
        handshake_timeout: Duration::from_millis(300),
        ..snet(false, Duration::from_secs(30))
    };
    for mode in [Mode::Blackhole, Mode::Refuse] {
        proxy.set_mode(mode);
        let before = proxy.accepted();
        let started = Instant::now();
        match (
            mode,
            Endpoint::connect_client(proxy.addr, options(Some(quick))),
        ) {
            // No answer within handshake_timeout: the snet client's own verdict.
            (Mode::Blackhole, Err(ConnectError::Snet(SnetClientError::Handshake(_)))) => {}
            // The socket closed: an IO error, as on a plain-TCP port.
            (Mode::Refuse, Err(ConnectError::Handshake(error))) => {
                assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
            }
            (mode, other) => panic!("{mode:?}: expected a handshake error, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(3));
        thread::sleep(Duration::from_millis(100));
        assert_eq!(proxy.accepted(), before + 1, "{mode:?}: retried");
    }
}

#[test]
fn close_during_an_outage_ends_at_once() {
    let config = snet(false, Duration::from_secs(30));
    let gateway = Gateway::start(Some(config), None);
    let proxy = FaultyProxy::start(gateway.client_addr);
    let client = Endpoint::connect_client(proxy.addr, options(Some(config))).unwrap();
    proxy.set_mode(Mode::Refuse);
    proxy.cut_all();
    wait_until("a refused reconnect attempt", || proxy.accepted() >= 2);
    let started = Instant::now();
    client.close();
    assert_eq!(client.closed_timeout(WAIT), Some(LinkError::Shutdown));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        client.snet_close_reason(),
        Some(SnetClientError::Closed(CloseReason::Local))
    );
}

#[test]
fn a_reconnect_the_gateway_refuses_ends_the_link_with_that_reason() {
    // The gateway forgets the session after 300 ms; the client would keep trying for 30 s.
    let gateway = Gateway::start(Some(snet(false, Duration::from_millis(300))), None);
    let proxy = FaultyProxy::start(gateway.client_addr);
    let client = Endpoint::connect_client(
        proxy.addr,
        options(Some(snet(false, Duration::from_secs(30)))),
    )
    .unwrap();
    proxy.set_mode(Mode::Refuse);
    proxy.cut_all();
    // The immediate attempt is refused by the network; the next one (3 s later) reaches a gateway
    // that no longer knows the session.
    wait_until("the first reconnect attempt", || proxy.accepted() >= 2);
    thread::sleep(Duration::from_millis(500));
    proxy.set_mode(Mode::Forward);
    assert_eq!(client.closed_timeout(WAIT), Some(LinkError::SocketClosed));
    assert_eq!(
        client.snet_close_reason(),
        Some(SnetClientError::Closed(CloseReason::Refused))
    );
}
