//! The endpoint over snet (`EndpointOptions::snet`) against this crate's own gateway, through a
//! fault-injecting proxy ([`proxy::FaultyProxy`]) that cuts, freezes or refuses links. Loopback only;
//! every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/proxy.rs"]
mod proxy;
mod support;

use fastway_core::snet::HandshakeError;
use fastway_smol::endpoint::{
    ConnectError, Endpoint, EndpointConfig, EndpointOptions, LinkError, PingTimeoutPolicy,
    RecvError, SnetClientError, SnetCloseReason, SnetConfig, VConn, VConnSender,
};
use proxy::{FaultyProxy, Mode};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{Running, wait_until};

const SERVER_ID: u32 = 7;
const KEY: &[u8] = b"key";

/// Fails the test if `fut` takes longer than `secs`.
async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    smol::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(Duration::from_secs(secs)).await;
        None
    })
    .await
    .unwrap_or_else(|| panic!("timed out after {secs} s"))
}

/// snet settings for both ends: a retransmission buffer larger than everything a test sends, so a cut
/// can never lose more than can be resent.
fn snet(encrypt: bool, wait: Duration) -> SnetConfig {
    SnetConfig {
        enable_crypt: encrypt,
        rewriter_buffer_size: 4 << 20,
        handshake_timeout: Duration::from_secs(3),
        reconn_wait_timeout: wait,
    }
}

fn options(snet: Option<SnetConfig>) -> EndpointOptions {
    EndpointOptions {
        core: EndpointConfig {
            ping_timeout_policy: PingTimeoutPolicy::KeepOpen,
            ..EndpointConfig::default()
        },
        snet,
        ..EndpointOptions::default()
    }
}

/// A tiny xorshift generator (seeded from the clock, printed so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        println!("rng seed {seed}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Message `i`: its number, then a length and filler derived from it.
fn message(i: u32) -> Vec<u8> {
    let len = 4 + (i as usize * 7919) % 900;
    let mut msg = i.to_le_bytes().to_vec();
    msg.resize(len, (i % 251) as u8);
    msg
}

/// The last message of a numbered stream.
const END: [u8; 4] = u32::MAX.to_le_bytes();

/// Sends numbered messages, about one per millisecond, at least `count` and until `done` is set (so
/// that every cut lands mid-stream), then [`END`]. Returns how many were sent.
async fn send_numbered(vconn: &VConnSender, count: u32, done: &AtomicBool) -> u32 {
    let mut i = 0;
    while i < count || !done.load(Ordering::Relaxed) {
        vconn.send(message(i)).await.expect("send");
        i += 1;
        smol::Timer::after(Duration::from_millis(1)).await;
    }
    vconn.send(&END[..]).await.expect("send end");
    i
}

/// Receives numbered messages until [`END`] and checks each is the next number, intact: exactly once,
/// in order. Returns how many arrived.
async fn recv_numbered(vconn: &mut VConn, side: &str) -> u32 {
    let mut i = 0;
    loop {
        let got = vconn
            .recv()
            .await
            .unwrap_or_else(|e| panic!("{side}: message {i}: {e}"));
        if got[..] == END {
            return i;
        }
        assert_eq!(&got[..], &message(i)[..], "{side}: message {i} wrong");
        i += 1;
    }
}

/// A plain server endpoint on the gateway's server port, registered.
async fn plain_server(gw: &Running) -> Endpoint {
    let before = gw.handle.stats().servers;
    let server = Endpoint::connect_server(gw.server, SERVER_ID, KEY, options(None))
        .await
        .expect("server connects");
    wait_until(|| gw.handle.stats().servers > before);
    server
}

/// The client dials, the server accepts: both ends of one vconn.
async fn open(client: &Endpoint, server: &Endpoint) -> (VConn, VConn) {
    let (c, s) = smol::future::zip(client.dial(SERVER_ID), server.accept()).await;
    (c.expect("dial"), s.expect("accept"))
}

/// Waits (bounded) until `endpoint` has reconnected at least `n` times.
fn wait_reconnects(endpoint: &Endpoint, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while endpoint.snet_reconnects() < n {
        assert!(
            Instant::now() < deadline,
            "no reconnect #{n} within 10 s (link: {:?}, snet: {:?})",
            endpoint.close_reason(),
            endpoint.snet_close_reason()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

const MESSAGES: u32 = 500;
const CUTS: u64 = 5;

/// Numbered messages flow both ways between an snet client endpoint (behind the proxy) and a plain
/// server endpoint while the proxy cuts the link `CUTS` times at random moments: every message arrives
/// exactly once, in order, both ways.
async fn cuts_lose_nothing(encrypt: bool) {
    let config = snet(encrypt, Duration::from_secs(30));
    let gw = Running::start(|c| c.client_snet = Some(config));
    let proxy = Arc::new(FaultyProxy::start(gw.client));
    let server = plain_server(&gw).await;
    let client = Endpoint::connect_client(proxy.addr, options(Some(config)))
        .await
        .expect("snet client connects");
    let (mut c, mut s) = open(&client, &server).await;

    let done = Arc::new(AtomicBool::new(false));
    let cutter = {
        let (proxy, client, done) = (proxy.clone(), client.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new();
            for cut in 1..=CUTS {
                std::thread::sleep(Duration::from_millis(20 + rng.below(150)));
                proxy.cut_all();
                wait_reconnects(&client, cut);
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let (c_tx, s_tx) = (c.sender(), s.sender());
    let up = smol::future::zip(
        send_numbered(&c_tx, MESSAGES, &done),
        recv_numbered(&mut s, "server"),
    );
    let down = smol::future::zip(
        send_numbered(&s_tx, MESSAGES, &done),
        recv_numbered(&mut c, "client"),
    );
    let ((sent_up, got_up), (sent_down, got_down)) = within(60, smol::future::zip(up, down)).await;
    cutter.join().expect("cutter");
    assert_eq!(sent_up, got_up);
    assert_eq!(sent_down, got_down);

    assert_eq!(client.snet_reconnects(), CUTS);
    assert_eq!(proxy.relayed.load(Ordering::Relaxed), 1 + CUTS as usize);
    assert!(client.close_reason().is_none());
    assert!(client.snet_close_reason().is_none());
    // Still a working link afterwards.
    c_tx.send(&b"after"[..]).await.unwrap();
    assert_eq!(&within(5, s.recv()).await.unwrap()[..], b"after");
    client.close();
    assert_eq!(within(5, client.closed()).await, LinkError::Shutdown);
    assert_eq!(
        client.snet_close_reason(),
        Some(SnetClientError::Closed(SnetCloseReason::Local))
    );
}

#[test]
fn numbered_messages_survive_five_cuts_without_encryption() {
    smol::block_on(cuts_lose_nothing(false));
}

#[test]
fn numbered_messages_survive_five_cuts_with_encryption() {
    smol::block_on(cuts_lose_nothing(true));
}

#[test]
fn numbered_messages_survive_five_cuts_under_async_std() {
    async_std::task::block_on(cuts_lose_nothing(true));
}

/// The proxy stops letting the client back in (`mode`) and cuts the link: after the short wait timeout
/// the client endpoint ends with a clear reason, its vconn fails, and (once the gateway's own wait
/// timeout passed) the server endpoint sees its vconn closed.
async fn wait_timeout_ends_the_link(mode: Mode) {
    let wait = Duration::from_millis(500);
    let config = snet(true, wait);
    let gw = Running::start(|c| c.client_snet = Some(config));
    let proxy = FaultyProxy::start(gw.client);
    let server = plain_server(&gw).await;
    let client = Endpoint::connect_client(proxy.addr, options(Some(config)))
        .await
        .expect("snet client connects");
    let (mut c, mut s) = open(&client, &server).await;
    c.send(&b"before"[..]).await.unwrap();
    assert_eq!(&within(5, s.recv()).await.unwrap()[..], b"before");

    proxy.set_mode(mode);
    let cut_at = Instant::now();
    proxy.cut_all();
    let reason = within(5, client.closed()).await;
    let took = cut_at.elapsed();
    assert_eq!(reason, LinkError::SocketClosed);
    assert!(
        took >= wait && took < wait + Duration::from_secs(2),
        "gave up after {took:?}"
    );
    let snet_reason = client.snet_close_reason().expect("snet reason");
    assert_eq!(
        snet_reason,
        SnetClientError::Closed(SnetCloseReason::WaitTimeout)
    );
    assert_eq!(
        snet_reason.to_string(),
        "snet session closed: no reconnect within the wait timeout"
    );
    assert_eq!(
        within(5, c.recv()).await,
        Err(RecvError::Link(LinkError::SocketClosed))
    );
    assert!(client.dial(SERVER_ID).await.is_err());
    // The gateway gives up on the session after its own wait timeout and closes the vconn.
    assert_eq!(within(5, s.recv()).await, Err(RecvError::Closed));
    assert!(server.close_reason().is_none());
}

#[test]
fn wait_timeout_passes_when_reconnects_are_refused() {
    smol::block_on(wait_timeout_ends_the_link(Mode::Refuse));
}

#[test]
fn wait_timeout_passes_when_reconnects_go_unanswered() {
    smol::block_on(wait_timeout_ends_the_link(Mode::Blackhole));
}

/// A game server endpoint over snet (`connect_server` with snet) against a gateway whose server port
/// runs snet: it authenticates inside the snet stream, serves a plain client, survives a cut, and
/// accepts new vconns afterwards.
#[test]
fn an_snet_server_endpoint_authenticates_and_survives_a_cut() {
    for encrypt in [false, true] {
        smol::block_on(async {
            let config = snet(encrypt, Duration::from_secs(30));
            let gw = Running::start(|c| c.server_snet = Some(config));
            let proxy = FaultyProxy::start(gw.server);
            let server =
                Endpoint::connect_server(proxy.addr, SERVER_ID, KEY, options(Some(config)))
                    .await
                    .expect("snet server connects");
            wait_until(|| gw.handle.stats().servers == 1);
            let client = Endpoint::connect_client(gw.client, options(None))
                .await
                .expect("plain client connects");
            let (mut c, mut s) = open(&client, &server).await;
            c.send(&b"ping"[..]).await.unwrap();
            assert_eq!(&within(5, s.recv()).await.unwrap()[..], b"ping");

            proxy.cut_all();
            // Sent during the outage (or just after): held, then delivered after the reconnect.
            s.send(&b"pong"[..]).await.unwrap();
            c.send(&b"again"[..]).await.unwrap();
            assert_eq!(&within(10, c.recv()).await.unwrap()[..], b"pong");
            assert_eq!(&within(10, s.recv()).await.unwrap()[..], b"again");
            wait_reconnects(&server, 1);
            assert_eq!(gw.handle.stats().servers, 1);

            // A second vconn after the reconnect.
            let (mut c2, mut s2) = open(&client, &server).await;
            s2.send(&b"second"[..]).await.unwrap();
            assert_eq!(&within(5, c2.recv()).await.unwrap()[..], b"second");
            c2.send(&b"reply"[..]).await.unwrap();
            assert_eq!(&within(5, s2.recv()).await.unwrap()[..], b"reply");
            assert!(server.close_reason().is_none());
            server.close();
            assert_eq!(within(5, server.closed()).await, LinkError::Shutdown);
        });
    }
}

/// A socket that goes silent without failing (the proxy freezes it): with `KeepOpen`, the unanswered
/// Ping makes the endpoint drop the socket and reconnect; nothing is lost.
#[test]
fn a_ping_timeout_forces_a_reconnect_under_keep_open() {
    smol::block_on(async {
        let config = snet(false, Duration::from_secs(30));
        let gw = Running::start(|c| c.client_snet = Some(config));
        let proxy = FaultyProxy::start(gw.client);
        let server = plain_server(&gw).await;
        let mut opts = options(Some(config));
        opts.core.ping_interval = Some(Duration::from_millis(100));
        opts.core.ping_timeout = Duration::from_millis(200);
        let client = Endpoint::connect_client(proxy.addr, opts)
            .await
            .expect("snet client connects");
        let (mut c, mut s) = open(&client, &server).await;

        proxy.freeze_all();
        c.send(&b"into the void"[..]).await.unwrap();
        s.send(&b"also lost for now"[..]).await.unwrap();
        assert_eq!(&within(10, s.recv()).await.unwrap()[..], b"into the void");
        assert_eq!(
            &within(10, c.recv()).await.unwrap()[..],
            b"also lost for now"
        );
        assert_eq!(client.snet_reconnects(), 1);
        assert_eq!(proxy.relayed.load(Ordering::Relaxed), 2);
        assert!(client.close_reason().is_none());
    });
}

/// snet against a plain port: the gateway cannot parse the snet request and closes the socket (or,
/// had it waited, `handshake_timeout` would pass); `connect_client` fails with an error that names the
/// snet handshake (the first connection is not retried).
#[test]
fn snet_against_a_plain_port_fails_to_connect() {
    smol::block_on(async {
        let gw = Running::start(|_| {});
        let mut config = snet(false, Duration::from_secs(30));
        config.handshake_timeout = Duration::from_millis(300);
        let error = within(
            5,
            Endpoint::connect_client(gw.client, options(Some(config))),
        )
        .await
        .expect_err("no snet on a plain port");
        assert!(error.to_string().contains("snet handshake"), "{error}");
    });
}

/// The snet handshake gets no answer at all (a blackholed port): `connect_client` fails after
/// `handshake_timeout` with [`ConnectError::Snet`].
#[test]
fn an_unanswered_snet_handshake_times_out() {
    smol::block_on(async {
        let gw = Running::start(|_| {});
        let proxy = FaultyProxy::start(gw.client);
        proxy.set_mode(Mode::Blackhole);
        let mut config = snet(false, Duration::from_secs(30));
        config.handshake_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let error = within(
            5,
            Endpoint::connect_client(proxy.addr, options(Some(config))),
        )
        .await
        .expect_err("no answer");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            matches!(
                error,
                ConnectError::Snet(SnetClientError::Handshake(HandshakeError::Timeout))
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the snet handshake with the gateway failed: snet handshake timed out \
             (is snet enabled on that port?)"
        );
    });
}
