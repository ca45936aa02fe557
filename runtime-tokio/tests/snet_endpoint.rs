//! The tokio endpoint over snet (`EndpointOptions::snet`) against a real tokio gateway with snet
//! ports, through a fault-injecting proxy: links are cut, frozen, refused; loopback only, every wait
//! bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod snet_proxy;

use bytes::Bytes;
use common::{Flavor, Gw};
use fastway_core::gateway::GatewayConfig;
use fastway_core::snet::CloseReason;
use fastway_tokio::ServerConfig;
use fastway_tokio::endpoint::{
    ConnectError, DialError, Endpoint, EndpointConfig, EndpointOptions, LinkError,
    PingTimeoutPolicy, RecvError, SnetClientError, SnetConfig, VConn,
};
use snet_proxy::{FaultyProxy, Mode};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::timeout;

const KEY: &[u8] = b"k";
const SERVER_ID: u32 = 7;
/// Upper bound on any single wait in these tests.
const LIMIT: Duration = Duration::from_secs(10);

fn snet(encrypt: bool, wait: Duration) -> SnetConfig {
    SnetConfig {
        enable_crypt: encrypt,
        // The tests push messages as fast as they can through every outage: the rewrite buffer must
        // cover everything in flight (socket buffers on both sides included), or a reconnect is
        // refused by design.
        rewriter_buffer_size: 16 << 20,
        handshake_timeout: Duration::from_secs(2),
        reconn_wait_timeout: wait,
    }
}

fn gateway(client_snet: Option<SnetConfig>, server_snet: Option<SnetConfig>) -> Gw {
    Gw::start(
        Flavor::MultiThread,
        ServerConfig {
            gateway: GatewayConfig {
                auth_key: KEY.to_vec(),
                // What the server sends during an outage queues here; on a loaded machine a long
                // outage can exceed the default 4 MiB bound, which drops the session by design.
                client_queue: fastway_core::gateway::QueueLimits {
                    max_frames: 1 << 20,
                    max_bytes: 64 << 20,
                },
                ..GatewayConfig::default()
            },
            client_snet,
            server_snet,
            client_addr: "127.0.0.1:0".parse().unwrap(),
            server_addr: "127.0.0.1:0".parse().unwrap(),
            ..ServerConfig::default()
        },
    )
}

fn options(snet: Option<SnetConfig>) -> EndpointOptions {
    EndpointOptions {
        core: EndpointConfig {
            ping_interval: None,
            ..EndpointConfig::default()
        },
        dial_timeout: Some(LIMIT),
        connect_timeout: Some(Duration::from_secs(2)),
        snet,
        ..EndpointOptions::default()
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`LIMIT`].
async fn within<T>(fut: impl Future<Output = T>) -> T {
    timeout(LIMIT, fut).await.expect("timed out")
}

/// Waits (without blocking the runtime) until `cond` holds, for at most [`LIMIT`].
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + LIMIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The game server endpoint accepts a vconn the client endpoint dials: (client end, server end).
async fn open(client: &Endpoint, server: &Endpoint) -> (VConn, VConn) {
    let (c, s) = tokio::join!(within(client.dial(SERVER_ID)), within(server.accept()));
    (c.unwrap(), s.unwrap())
}

/// Message `i`: its index, then filler whose length varies with `i` (1..=1500 bytes more).
fn numbered(i: u32) -> Bytes {
    let len = 4 + (i as usize * 7919) % 1500 + 1;
    let mut payload = vec![(i % 251) as u8; len];
    payload[..4].copy_from_slice(&i.to_le_bytes());
    Bytes::from(payload)
}

/// A tiny deterministic RNG for the cut moments.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Cuts every proxied connection `cuts` times at random moments (10..90 ms apart, each once the
/// previous cut was reconnected), then sets `done`.
fn cutter(proxy: Arc<FaultyProxy>, cuts: usize, seed: u64, done: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut rng = XorShift(seed | 1);
        for cut in 0..cuts {
            std::thread::sleep(Duration::from_millis(10 + rng.below(80)));
            // Wait for the reconnect of the previous cut, so that each cut hits a live link.
            let end = std::time::Instant::now() + LIMIT;
            while proxy.accepted.load(Ordering::Relaxed) < cut + 1
                && std::time::Instant::now() < end
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            proxy.cut_all();
        }
        done.store(true, Ordering::Relaxed);
    });
}

/// Sends numbered messages on `vconn` until at least `n` are out and `done` is set; returns how many.
async fn send_numbered(vconn: &VConn, n: u32, done: &AtomicBool) -> u32 {
    let mut i = 0;
    while i < n || !done.load(Ordering::Relaxed) {
        vconn.send(numbered(i)).await.unwrap();
        i += 1;
        if i % 16 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    i
}

/// Receives exactly the messages `0..n`, in order.
async fn recv_numbered(vconn: &mut VConn, n: u32) {
    for i in 0..n {
        let msg = within(vconn.recv()).await.unwrap();
        assert_eq!(msg, numbered(i), "message {i}");
    }
}

/// Numbered messages flow both ways between a client endpoint over snet and a plain game server
/// while the proxy cuts the client's link 5 times; all arrive exactly once, in order, both ways.
async fn survives_cuts(encrypt: bool, seed: u64) {
    let config = snet(encrypt, Duration::from_secs(10));
    let gw = gateway(Some(config), None);
    let proxy = Arc::new(FaultyProxy::start(gw.client));
    let server = within(Endpoint::connect_server(
        gw.server,
        SERVER_ID,
        KEY,
        options(None),
    ))
    .await
    .unwrap();
    eventually("server registration", || gw.handle.stats().servers == 1).await;
    let client = within(Endpoint::connect_client(proxy.addr, options(Some(config))))
        .await
        .unwrap();
    let (mut c, mut s) = open(&client, &server).await;

    let done = Arc::new(AtomicBool::new(false));
    cutter(Arc::clone(&proxy), 5, seed, Arc::clone(&done));
    let (sent_up, sent_down) = tokio::join!(
        async {
            let n = send_numbered(&c, 3000, &done).await;
            c.send(Bytes::from_static(b"end")).await.unwrap();
            n
        },
        async {
            let n = send_numbered(&s, 3000, &done).await;
            s.send(Bytes::from_static(b"end")).await.unwrap();
            n
        },
    );
    let ((), ()) = tokio::join!(
        recv_numbered(&mut s, sent_up),
        recv_numbered(&mut c, sent_down)
    );
    assert_eq!(within(s.recv()).await.unwrap(), &b"end"[..]);
    assert_eq!(within(c.recv()).await.unwrap(), &b"end"[..]);
    assert!(
        proxy.accepted.load(Ordering::Relaxed) >= 6,
        "5 cuts, 5 reconnects"
    );
    assert!(!client.is_closed() && !server.is_closed());
    assert_eq!(gw.handle.stats().servers, 1);

    // Nothing extra arrives, and the vconn still works both ways.
    assert!(matches!(c.try_recv(), Ok(None)), "an extra message arrived");
    assert!(matches!(s.try_recv(), Ok(None)), "an extra message arrived");
    c.send(Bytes::from_static(b"ping")).await.unwrap();
    assert_eq!(within(s.recv()).await.unwrap(), &b"ping"[..]);
    c.close();
    assert_eq!(within(s.recv()).await, Err(RecvError::Closed));
    client.close();
    server.close();
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_survive_cuts_plain() {
    survives_cuts(false, 11).await;
}

#[tokio::test(flavor = "current_thread")]
async fn messages_survive_cuts_encrypted() {
    survives_cuts(true, 23).await;
}

/// The proxy stops letting the client back in (`mode`), the link is cut: after the short wait
/// timeout the client endpoint gives up with a clear reason, and the gateway closes the server's
/// vconn after its own.
async fn gives_up_after_the_wait_timeout(mode: Mode) {
    let wait = Duration::from_millis(500);
    let config = SnetConfig {
        handshake_timeout: Duration::from_millis(200),
        ..snet(true, wait)
    };
    let gw = gateway(Some(config), None);
    let proxy = FaultyProxy::start(gw.client);
    let server = within(Endpoint::connect_server(
        gw.server,
        SERVER_ID,
        KEY,
        options(None),
    ))
    .await
    .unwrap();
    eventually("server registration", || gw.handle.stats().servers == 1).await;
    let client = within(Endpoint::connect_client(proxy.addr, options(Some(config))))
        .await
        .unwrap();
    let (mut c, mut s) = open(&client, &server).await;
    c.send(Bytes::from_static(b"before")).await.unwrap();
    assert_eq!(within(s.recv()).await.unwrap(), &b"before"[..]);

    proxy.set_mode(mode);
    let cut_at = tokio::time::Instant::now();
    proxy.cut_all();
    // Sent during the outage: never delivered.
    c.send(Bytes::from_static(b"lost")).await.unwrap();
    assert_eq!(within(client.closed()).await, LinkError::SocketClosed);
    let waited = cut_at.elapsed();
    assert!(
        waited >= wait && waited < wait + Duration::from_secs(2),
        "gave up after {waited:?}"
    );
    let reason = client.snet_close_reason().expect("an snet reason");
    assert_eq!(reason, SnetClientError::Closed(CloseReason::WaitTimeout));
    assert!(
        reason
            .to_string()
            .contains("no reconnect within the wait timeout"),
        "{reason}"
    );
    assert_eq!(
        within(c.recv()).await,
        Err(RecvError::Link(LinkError::SocketClosed))
    );
    assert_eq!(
        within(client.dial(SERVER_ID)).await.unwrap_err(),
        DialError::Closed(LinkError::SocketClosed)
    );
    // The gateway's session times out as well and closes the server's end.
    assert_eq!(within(s.recv()).await, Err(RecvError::Closed));
    assert!(
        proxy.accepted.load(Ordering::Relaxed) >= 2,
        "it tried again"
    );
    assert!(!server.is_closed());
    server.close();
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_timeout_when_reconnects_are_refused() {
    gives_up_after_the_wait_timeout(Mode::Refuse).await;
}

#[tokio::test(flavor = "current_thread")]
async fn wait_timeout_when_reconnects_go_unanswered() {
    gives_up_after_the_wait_timeout(Mode::Blackhole).await;
}

/// A game server endpoint over snet authenticates through the snet stream and survives a cut: the
/// gateway keeps it registered, nothing is lost either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snet_server_endpoint_authenticates_and_survives_a_cut() {
    let config = snet(true, Duration::from_secs(10));
    let gw = gateway(None, Some(config));
    let proxy = FaultyProxy::start(gw.server);
    let server = within(Endpoint::connect_server(
        proxy.addr,
        SERVER_ID,
        KEY,
        options(Some(config)),
    ))
    .await
    .unwrap();
    eventually("server registration", || gw.handle.stats().servers == 1).await;
    let client = within(Endpoint::connect_client(gw.client, options(None)))
        .await
        .unwrap();
    let (mut c, mut s) = open(&client, &server).await;
    for i in 0..50 {
        c.send(numbered(i)).await.unwrap();
        s.send(numbered(i)).await.unwrap();
    }
    proxy.cut_all();
    for i in 50..100 {
        c.send(numbered(i)).await.unwrap();
        s.send(numbered(i)).await.unwrap();
    }
    recv_numbered(&mut s, 100).await;
    recv_numbered(&mut c, 100).await;
    assert_eq!(proxy.accepted.load(Ordering::Relaxed), 2);
    assert_eq!(gw.handle.stats().servers, 1);
    // New vconns work after the reconnect too.
    let (c2, mut s2) = open(&client, &server).await;
    c2.send(Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(within(s2.recv()).await.unwrap(), &b"second"[..]);
    assert!(!server.is_closed());
    client.close();
    server.close();
    gw.stop();
}

/// A silent link (bytes vanish, TCP notices nothing): with `PingTimeoutPolicy::KeepOpen` the ping
/// timeout makes the snet endpoint drop the socket and reconnect; what was sent meanwhile arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_with_keep_open_reconnects() {
    let config = snet(false, Duration::from_secs(10));
    let gw = gateway(Some(config), None);
    let proxy = FaultyProxy::start(gw.client);
    let server = within(Endpoint::connect_server(
        gw.server,
        SERVER_ID,
        KEY,
        options(None),
    ))
    .await
    .unwrap();
    eventually("server registration", || gw.handle.stats().servers == 1).await;
    let mut opts = options(Some(config));
    opts.core.ping_interval = Some(Duration::from_millis(100));
    opts.core.ping_timeout = Duration::from_millis(200);
    opts.core.ping_timeout_policy = PingTimeoutPolicy::KeepOpen;
    let client = within(Endpoint::connect_client(proxy.addr, opts))
        .await
        .unwrap();
    let (mut c, mut s) = open(&client, &server).await;
    c.send(Bytes::from_static(b"one")).await.unwrap();
    assert_eq!(within(s.recv()).await.unwrap(), &b"one"[..]);

    proxy.freeze_all();
    c.send(Bytes::from_static(b"two")).await.unwrap();
    s.send(Bytes::from_static(b"three")).await.unwrap();
    assert_eq!(within(s.recv()).await.unwrap(), &b"two"[..]);
    assert_eq!(within(c.recv()).await.unwrap(), &b"three"[..]);
    assert_eq!(proxy.accepted.load(Ordering::Relaxed), 2, "one reconnect");
    assert_eq!(client.snet_reconnects(), 1);
    assert!(!client.is_closed());
    client.close();
    server.close();
    gw.stop();
}

/// The first connection is not retried: snet against a plain port fails to connect.
#[tokio::test(flavor = "current_thread")]
async fn snet_against_a_plain_port_fails_to_connect() {
    let gw = gateway(None, None);
    let config = SnetConfig {
        handshake_timeout: Duration::from_millis(300),
        ..snet(false, Duration::from_secs(10))
    };
    let err = within(Endpoint::connect_client(gw.client, options(Some(config))))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::Snet(_) | ConnectError::Io(_)),
        "{err}"
    );
    // And a refused first connection is a plain connect error.
    let proxy = FaultyProxy::start(gw.client);
    proxy.set_mode(Mode::Refuse);
    let err = within(Endpoint::connect_client(proxy.addr, options(Some(config))))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Io(_)), "{err}");
    assert_eq!(proxy.accepted.load(Ordering::Relaxed), 1, "not retried");
    gw.stop();
}
