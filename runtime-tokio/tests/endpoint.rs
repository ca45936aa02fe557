//! The tokio endpoint against a fake gateway (the core gateway driven by a blocking thread), on
//! loopback only. Every case runs on both the current-thread and the multi-thread runtime, and every
//! wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod endpoint_harness;

use bytes::Bytes;
use endpoint_harness::{FakeGateway, KEY};
use fastway_tokio::endpoint::{
    ConnectError, DialError, Endpoint, EndpointConfig, EndpointOptions, LinkError, RecvError,
    SendError, VConn,
};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::timeout;

const MAX_PACKET: u32 = 512 * 1024;
const SERVER_ID: u32 = 7;
/// Upper bound on any single wait in these tests.
const LIMIT: Duration = Duration::from_secs(5);

fn options() -> EndpointOptions {
    EndpointOptions {
        core: EndpointConfig {
            max_packet: MAX_PACKET,
            ping_interval: None,
            ..EndpointConfig::default()
        },
        dial_timeout: Some(LIMIT),
        ..EndpointOptions::default()
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`LIMIT`].
async fn within<T>(fut: impl Future<Output = T>) -> T {
    timeout(LIMIT, fut).await.expect("timed out")
}

/// Polls `cond` until it holds, for at most [`LIMIT`], without blocking the runtime.
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

/// A gateway with one authenticated server (id 7) and one client.
async fn setup(
    server_opts: EndpointOptions,
    client_opts: EndpointOptions,
) -> (FakeGateway, Endpoint, Endpoint) {
    let gw = FakeGateway::start(MAX_PACKET);
    let server = within(Endpoint::connect_server(
        gw.server_addr,
        SERVER_ID,
        KEY,
        server_opts,
    ))
    .await
    .unwrap();
    let control = &gw.control;
    eventually("server auth", || {
        control.servers.load(Ordering::SeqCst) >= 1
    })
    .await;
    let client = within(Endpoint::connect_client(gw.client_addr, client_opts))
        .await
        .unwrap();
    (gw, server, client)
}

/// A vconn from the client to the server: (client end, server end).
async fn pair(server: &Endpoint, client: &Endpoint) -> (VConn, VConn) {
    let (dialed, accepted) =
        within(async { tokio::join!(client.dial(SERVER_ID), server.accept()) }).await;
    let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap());
    assert_eq!(dialed.id(), accepted.id());
    (dialed, accepted)
}

async fn client_connects_and_closes() {
    let gw = FakeGateway::start(MAX_PACKET);
    let client = within(Endpoint::connect_client(gw.client_addr, options()))
        .await
        .unwrap();
    assert_eq!(client.peer_addr(), gw.client_addr);
    assert!(client.local_addr().ip().is_loopback());
    assert_eq!(client.conn_count(), 0);
    assert_eq!(client.close_reason(), None);
    client.close();
    client.close(); // idempotent
    assert_eq!(within(client.closed()).await, LinkError::Shutdown);
    assert_eq!(client.close_reason(), Some(LinkError::Shutdown));
    assert_eq!(
        within(client.dial(SERVER_ID)).await.unwrap_err(),
        DialError::Closed(LinkError::Shutdown)
    );
}

async fn connect_errors() {
    // Nothing listens on a port we bound and released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = within(Endpoint::connect_client(addr, options()))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Io(_)), "{err}");
    // A bad config is reported before connecting.
    let mut bad = options();
    bad.core.max_packet = 4;
    let err = within(Endpoint::connect_client(addr, bad))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Config(_)), "{err}");
    // A "gateway" that accepts and closes at once: the server handshake fails.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let closer = std::thread::spawn(move || drop(listener.accept()));
    let err = within(Endpoint::connect_server(addr, 1, KEY, options()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::Handshake(LinkError::SocketClosed)),
        "{err}"
    );
    closer.join().unwrap();
}

async fn server_right_key_is_registered() {
    let (gw, server, client) = setup(options(), options()).await;
    let (c, s) = pair(&server, &client).await;
    assert_eq!(c.remote_id(), SERVER_ID);
    assert_eq!(s.remote_id(), 1); // the first client's physical id
    assert_eq!(client.conn_count(), 1);
    assert_eq!(server.conn_count(), 1);
    assert_eq!(gw.vconns(), 1);
}

async fn server_wrong_key_link_closes() {
    let gw = FakeGateway::start(MAX_PACKET);
    let server = within(Endpoint::connect_server(
        gw.server_addr,
        SERVER_ID,
        b"wrong",
        options(),
    ))
    .await
    .unwrap();
    assert_eq!(within(server.closed()).await, LinkError::SocketClosed);
    assert_eq!(
        within(server.accept()).await.unwrap_err(),
        LinkError::SocketClosed
    );
}

async fn dial_refused() {
    let (_gw, _server, client) = setup(options(), options()).await;
    assert_eq!(
        within(client.dial(99)).await.unwrap_err(),
        DialError::Refused { remote: 99 }
    );
    // The endpoint is fine afterwards.
    assert_eq!(client.close_reason(), None);
}

async fn dial_timeout() {
    let gw = FakeGateway::start(MAX_PACKET);
    gw.set_deaf(true);
    let opts = EndpointOptions {
        dial_timeout: Some(Duration::from_millis(200)),
        ..options()
    };
    let client = within(Endpoint::connect_client(gw.client_addr, opts))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(
        within(client.dial(SERVER_ID)).await.unwrap_err(),
        DialError::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(client.close_reason(), None);
    assert_eq!(client.conn_count(), 0);
}

async fn server_dials_client() {
    let (_gw, server, client) = setup(options(), options()).await;
    let (c1, s1) = pair(&server, &client).await;
    // The server opens a second vconn to the client it learned from the first.
    let (dialed, accepted) =
        within(async { tokio::join!(server.dial(s1.remote_id()), client.accept()) }).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    assert_eq!(dialed.id(), accepted.id());
    assert_ne!(dialed.id(), c1.id());
    assert_eq!(accepted.remote_id(), SERVER_ID);
    dialed.send(&b"ping"[..]).await.unwrap();
    assert_eq!(within(accepted.recv()).await.unwrap(), &b"ping"[..]);
    accepted.send(Vec::from(&b"pong"[..])).await.unwrap();
    assert_eq!(within(dialed.recv()).await.unwrap(), &b"pong"[..]);
}

async fn messages_both_ways() {
    let (_gw, server, client) = setup(options(), options()).await;
    let (mut c, mut s) = pair(&server, &client).await;
    const N: u32 = 2000;
    // Many messages, in order, both directions at once.
    let cs = c.sender();
    let ss = s.sender();
    let send_c = async {
        for i in 0..N {
            cs.send(Bytes::from(i.to_le_bytes().to_vec()))
                .await
                .unwrap();
        }
    };
    let send_s = async {
        for i in 0..N {
            ss.send(Bytes::from((i + N).to_le_bytes().to_vec()))
                .await
                .unwrap();
        }
    };
    let recv_s = async {
        for i in 0..N {
            assert_eq!(s.recv().await.unwrap(), &i.to_le_bytes()[..]);
        }
    };
    let recv_c = async {
        for i in 0..N {
            assert_eq!(c.recv().await.unwrap(), &(i + N).to_le_bytes()[..]);
        }
    };
    within(async { tokio::join!(send_c, send_s, recv_s, recv_c) }).await;

    // An empty message is a message, not end of stream.
    c.send(Bytes::new()).await.unwrap();
    c.send(&b"after"[..]).await.unwrap();
    assert_eq!(within(s.recv()).await.unwrap(), Bytes::new());
    assert_eq!(within(s.recv()).await.unwrap(), &b"after"[..]);

    // The biggest message the gateway accepts, both ways, intact.
    let max = MAX_PACKET as usize - 4;
    let big: Vec<u8> = (0..max).map(|i| (i * 7 + i / 251) as u8).collect();
    c.send(big.clone()).await.unwrap();
    s.send(big.clone()).await.unwrap();
    assert_eq!(within(s.recv()).await.unwrap(), &big[..]);
    assert_eq!(within(c.recv()).await.unwrap(), &big[..]);

    // One byte more is refused, and the vconn keeps working.
    let too_big = vec![0u8; max + 1];
    assert_eq!(
        c.send(too_big).await.unwrap_err(),
        SendError::TooLarge { len: max + 1, max }
    );
    c.send(&b"still here"[..]).await.unwrap();
    assert_eq!(within(s.recv()).await.unwrap(), &b"still here"[..]);
    assert_eq!(c.try_recv(), Ok(None));
}

async fn remote_close_delivers_queued_then_closed() {
    let (_gw, server, client) = setup(options(), options()).await;
    let (mut c, s) = pair(&server, &client).await;
    for msg in [&b"one"[..], b"two", b""] {
        s.send(msg).await.unwrap();
    }
    s.close();
    assert_eq!(s.send(&b"late"[..]).await.unwrap_err(), SendError::Closed);
    // Wait until the client has processed the Close, then read what was queued before it.
    eventually("remote close", || client.conn_count() == 0).await;
    assert_eq!(within(c.recv()).await.unwrap(), &b"one"[..]);
    assert_eq!(c.try_recv().unwrap().unwrap(), &b"two"[..]);
    assert_eq!(within(c.recv()).await.unwrap(), Bytes::new());
    assert_eq!(within(c.recv()).await.unwrap_err(), RecvError::Closed);
    assert_eq!(within(c.recv()).await.unwrap_err(), RecvError::Closed);
    assert_eq!(c.send(&b"x"[..]).await.unwrap_err(), SendError::Closed);
}

async fn local_close() {
    let (gw, server, client) = setup(options(), options()).await;
    let (mut c, mut s) = pair(&server, &client).await;
    c.close();
    c.close(); // idempotent
    assert_eq!(c.send(&b"x"[..]).await.unwrap_err(), SendError::Closed);
    assert_eq!(within(c.recv()).await.unwrap_err(), RecvError::Closed);
    assert_eq!(client.conn_count(), 0);
    assert_eq!(within(s.recv()).await.unwrap_err(), RecvError::Closed);
    // Dropping a VConn closes it too.
    let (c2, mut s2) = pair(&server, &client).await;
    drop(c2);
    assert_eq!(within(s2.recv()).await.unwrap_err(), RecvError::Closed);
    eventually("gateway forgets vconns", || gw.vconns() == 0).await;
}

async fn local_close_discards_queued_messages() {
    let (_gw, server, client) = setup(options(), options()).await;
    // A second vconn over the same link: once its marker arrives, everything sent before it on the
    // other vconn is queued at the client (one link, frames in order).
    let (mut marker_c, marker_s) = pair(&server, &client).await;
    async fn queued_behind_marker(s: &VConn, marker_s: &VConn, marker_c: &mut VConn) {
        s.send(&b"queued"[..]).await.unwrap();
        marker_s.send(&b"marker"[..]).await.unwrap();
        assert_eq!(within(marker_c.recv()).await.unwrap(), &b"marker"[..]);
    }

    let (mut c, s) = pair(&server, &client).await;
    queued_behind_marker(&s, &marker_s, &mut marker_c).await;
    c.close();
    assert_eq!(c.try_recv(), Err(RecvError::Closed));
    assert_eq!(within(c.recv()).await.unwrap_err(), RecvError::Closed);

    // After a remote close with messages still queued, a local close discards them too.
    let (mut c, s) = pair(&server, &client).await;
    queued_behind_marker(&s, &marker_s, &mut marker_c).await;
    s.close();
    eventually("remote close", || client.conn_count() == 1).await;
    c.close();
    assert_eq!(within(c.recv()).await.unwrap_err(), RecvError::Closed);

    // A close through a sender is a local close as well.
    let (mut c, s) = pair(&server, &client).await;
    queued_behind_marker(&s, &marker_s, &mut marker_c).await;
    let sender = c.sender();
    assert_eq!(sender.remote_id(), c.remote_id());
    sender.close();
    assert_eq!(within(c.recv()).await.unwrap_err(), RecvError::Closed);
    assert_eq!(c.send(&b"x"[..]).await.unwrap_err(), SendError::Closed);
    assert!(!client.is_closed());
}

async fn endpoint_close_fails_pending_calls() {
    let (gw, server, client) = setup(options(), options()).await;
    let (mut c, mut s) = pair(&server, &client).await;
    let accepting = client.clone();
    let accept = tokio::spawn(async move { accepting.accept().await });
    let recv = tokio::spawn(async move { c.recv().await });
    // A dial the gateway never answers.
    gw.set_deaf(true);
    let dialing = client.clone();
    let dial = tokio::spawn(async move { dialing.dial(SERVER_ID).await.map(|v| v.id()) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.close();
    assert_eq!(
        within(accept).await.unwrap().unwrap_err(),
        LinkError::Shutdown
    );
    assert_eq!(
        within(recv).await.unwrap().unwrap_err(),
        RecvError::Link(LinkError::Shutdown)
    );
    assert_eq!(
        within(dial).await.unwrap().unwrap_err(),
        DialError::Closed(LinkError::Shutdown)
    );
    assert_eq!(within(client.closed()).await, LinkError::Shutdown);
    // The server's end learns of it once the gateway sees the client go.
    gw.set_deaf(false);
    assert_eq!(within(s.recv()).await.unwrap_err(), RecvError::Closed);
}

async fn dropping_last_endpoint_closes_link() {
    let (gw, server, client) = setup(options(), options()).await;
    let (c, mut s) = pair(&server, &client).await;
    let clone = client.clone();
    drop(client);
    assert_eq!(clone.close_reason(), None, "a clone keeps the link open");
    drop(clone);
    assert_eq!(within(s.recv()).await.unwrap_err(), RecvError::Closed);
    eventually("gateway forgets the client", || gw.vconns() == 0).await;
    drop(c);
}

async fn keepalive_pings_then_ping_timeout() {
    let gw = FakeGateway::start(MAX_PACKET);
    let mut opts = options();
    opts.core.ping_interval = Some(Duration::from_millis(50));
    opts.core.ping_timeout = Duration::from_millis(200);
    let client = within(Endpoint::connect_client(gw.client_addr, opts))
        .await
        .unwrap();
    eventually("three pings", || gw.pings() >= 3).await;
    assert_eq!(
        client.close_reason(),
        None,
        "answered pings keep the link up"
    );
    // The gateway stops answering: the link ends with PingTimeout.
    gw.set_deaf(true);
    let started = tokio::time::Instant::now();
    assert_eq!(within(client.closed()).await, LinkError::PingTimeout);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        within(client.dial(SERVER_ID)).await.unwrap_err(),
        DialError::Closed(LinkError::PingTimeout)
    );
}

async fn recv_queue_overflow_closes_vconn() {
    let client_opts = EndpointOptions {
        recv_queue: 4,
        ..options()
    };
    let (_gw, server, client) = setup(options(), client_opts).await;
    let (mut c, mut s) = pair(&server, &client).await;
    for i in 0u8..10 {
        s.send(vec![i]).await.unwrap();
    }
    eventually("overflow close", || client.conn_count() == 0).await;
    for i in 0u8..4 {
        assert_eq!(within(c.recv()).await.unwrap(), &[i][..]);
    }
    assert_eq!(within(c.recv()).await.unwrap_err(), RecvError::Overflow);
    assert_eq!(c.send(&b"x"[..]).await.unwrap_err(), SendError::Closed);
    // The server's end is told.
    assert_eq!(within(s.recv()).await.unwrap_err(), RecvError::Closed);
    // Other vconns are unaffected.
    let (c2, mut s2) = pair(&server, &client).await;
    c2.send(&b"ok"[..]).await.unwrap();
    assert_eq!(within(s2.recv()).await.unwrap(), &b"ok"[..]);
}

async fn concurrent_dials() {
    let (gw, server, client) = setup(options(), options()).await;
    const DIALERS: u32 = 8;
    // The server echoes every vconn.
    let echo = {
        let server = server.clone();
        tokio::spawn(async move {
            while let Ok(mut vconn) = server.accept().await {
                tokio::spawn(async move {
                    while let Ok(msg) = vconn.recv().await {
                        if vconn.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
            }
        })
    };
    let mut tasks = Vec::new();
    for i in 0..DIALERS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut vconn = client.dial(SERVER_ID).await.unwrap();
            for round in 0..50u32 {
                let msg = Bytes::from(format!("{i}:{round}"));
                vconn.send(msg.clone()).await.unwrap();
                assert_eq!(vconn.recv().await.unwrap(), msg);
            }
            vconn.id()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(within(task).await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), DIALERS as usize, "every dial got its own vconn");
    eventually("all vconns closed", || gw.vconns() == 0).await;
    server.close();
    within(echo).await.unwrap();
}

async fn send_back_pressure() {
    // A raw "gateway" that announces one incoming vconn and then never reads again.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let gateway = std::thread::spawn(move || {
        use std::io::Write;
        let (mut sock, _) = listener.accept().unwrap();
        // Connect conn=1 remote=1 (PROTOCOL.md §4).
        sock.write_all(&[13, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 1, 0, 0, 0])
            .unwrap();
        let _ = hold_rx.recv_timeout(LIMIT);
    });
    let client = within(Endpoint::connect_client(addr, options()))
        .await
        .unwrap();
    let vconn = within(client.accept()).await.unwrap();
    assert_eq!((vconn.id(), vconn.remote_id()), (1, 1));
    // Send until the link stops taking data; count what went through.
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = vconn.sender();
    let sending = {
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let chunk = Bytes::from(vec![0u8; 256 * 1024]);
            loop {
                if let Err(error) = sender.send(chunk.clone()).await {
                    return error;
                }
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        })
    };
    // Wait until no send has completed for 300 ms: `send` is waiting on back-pressure.
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = sent.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        assert!(now < 256 << 20, "send never waited after {now} bytes");
        last = now;
    }
    assert!(!sending.is_finished());
    // The waiting send is failed by closing the endpoint.
    client.close();
    assert_eq!(
        within(sending).await.unwrap(),
        SendError::Link(LinkError::Shutdown)
    );
    hold_tx.send(()).unwrap();
    gateway.join().unwrap();
}

async fn server_handshake_timeout() {
    // A "gateway" that accepts but never sends the challenge: the 5 s auth deadline applies.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let gateway = std::thread::spawn(move || {
        let accepted = listener.accept();
        let _ = hold_rx.recv_timeout(Duration::from_secs(10));
        drop(accepted);
    });
    let started = tokio::time::Instant::now();
    let err = timeout(
        Duration::from_secs(8),
        Endpoint::connect_server(addr, 1, KEY, options()),
    )
    .await
    .expect("the handshake deadline did not fire")
    .unwrap_err();
    assert!(
        matches!(err, ConnectError::Handshake(LinkError::HandshakeTimeout)),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(4900));
    hold_tx.send(()).unwrap();
    gateway.join().unwrap();
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Endpoint>();
    send_sync::<fastway_tokio::VConnSender>();
    send::<VConn>();
    send_sync::<ConnectError>();
}

macro_rules! both_flavours {
    ($($case:ident),* $(,)?) => {
        mod current_thread {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $case() {
                    super::within_test(super::$case()).await;
                }
            )*
        }
        mod multi_thread {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::within_test(super::$case()).await;
                }
            )*
        }
    };
}

/// Bounds a whole test case.
async fn within_test(case: impl Future<Output = ()>) {
    timeout(Duration::from_secs(15), case)
        .await
        .expect("test case took too long");
}

both_flavours!(
    client_connects_and_closes,
    connect_errors,
    server_right_key_is_registered,
    server_wrong_key_link_closes,
    dial_refused,
    dial_timeout,
    server_dials_client,
    messages_both_ways,
    remote_close_delivers_queued_then_closed,
    local_close,
    local_close_discards_queued_messages,
    endpoint_close_fails_pending_calls,
    dropping_last_endpoint_closes_link,
    keepalive_pings_then_ping_timeout,
    recv_queue_overflow_closes_vconn,
    concurrent_dials,
    send_back_pressure,
    server_handshake_timeout,
);
