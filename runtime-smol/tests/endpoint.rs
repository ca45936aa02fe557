//! Endpoint tests against a fake gateway (the core's `Gateway` on loopback sockets in a thread) and a
//! silent gateway that never answers. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod endpoint_support;

use bytes::Bytes;
use endpoint_support::{AUTH_KEY, FakeGateway, SilentGateway};
use fastway_core::endpoint::EndpointConfig;
use fastway_core::frame::{Command, PING_FRAME};
use fastway_smol::endpoint::{
    ConnectError, DialError, Endpoint, EndpointOptions, LinkError, RecvError, SendError, VConn,
};
use smol::Timer;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const SERVER_ID: u32 = 7;

/// Runs `fut`, failing the test if it takes longer than `secs` seconds.
async fn within<T>(secs: f64, fut: impl Future<Output = T>) -> T {
    smol::future::or(fut, async {
        Timer::after(Duration::from_secs_f64(secs)).await;
        panic!("timed out after {secs} s")
    })
    .await
}

fn run<T>(fut: impl Future<Output = T>) -> T {
    smol::block_on(within(15.0, fut))
}

fn options() -> EndpointOptions {
    EndpointOptions::default()
}

/// A server endpoint (id 7, registered) and a client endpoint on `gw`.
async fn pair(gw: &FakeGateway, client_options: EndpointOptions) -> (Endpoint, Endpoint) {
    let server = Endpoint::connect_server(gw.server_addr, SERVER_ID, AUTH_KEY, options())
        .await
        .unwrap();
    gw.wait_server(SERVER_ID);
    let client = Endpoint::connect_client(gw.client_addr, client_options)
        .await
        .unwrap();
    (client, server)
}

/// A vconn from the client to the server, both ends.
async fn open(client: &Endpoint, server: &Endpoint) -> (VConn, VConn) {
    let (c, s) = smol::future::zip(client.dial(SERVER_ID), server.accept()).await;
    let (c, s) = (c.unwrap(), s.unwrap());
    assert_eq!(c.id(), s.id());
    (c, s)
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Endpoint>();
    check::<VConn>();
    check::<fastway_smol::endpoint::VConnSender>();
}

#[test]
fn client_connects_and_closes() {
    let gw = FakeGateway::start();
    run(async {
        let client = Endpoint::connect_client(gw.client_addr, options())
            .await
            .unwrap();
        assert_eq!(client.peer_addr(), gw.client_addr);
        assert!(client.local_addr().ip().is_loopback());
        assert_eq!(client.conn_count(), 0);
        assert!(!client.is_closed());
        client.close();
        client.close(); // idempotent
        assert_eq!(within(3.0, client.closed()).await, LinkError::Shutdown);
        assert!(client.is_closed());
        assert_eq!(
            client.dial(SERVER_ID).await.unwrap_err(),
            DialError::Closed(LinkError::Shutdown)
        );
        assert_eq!(client.accept().await.unwrap_err(), LinkError::Shutdown);
    });
}

#[test]
fn server_with_right_key_is_registered_and_reachable() {
    let gw = FakeGateway::start();
    run(async {
        let (client, server) = pair(&gw, options()).await;
        let (mut c, mut s) = open(&client, &server).await;
        assert_eq!(c.remote_id(), SERVER_ID);
        c.send("hi").await.unwrap();
        assert_eq!(s.recv().await.unwrap(), Bytes::from_static(b"hi"));
        s.send("ho").await.unwrap();
        assert_eq!(c.recv().await.unwrap(), Bytes::from_static(b"ho"));
        assert!(!server.is_closed());
    });
}

#[test]
fn server_with_wrong_key_sees_the_link_close() {
    let gw = FakeGateway::start();
    run(async {
        let server = Endpoint::connect_server(gw.server_addr, SERVER_ID, b"wrong", options())
            .await
            .expect("a wrong key is not detected while connecting");
        assert_eq!(within(3.0, server.closed()).await, LinkError::SocketClosed);
        assert_eq!(server.accept().await.unwrap_err(), LinkError::SocketClosed);
    });
}

#[test]
fn connect_errors_are_reported() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let hangs_up = SilentGateway::start_with(b"", true);
    run(async {
        let error = Endpoint::connect_client(closed_port, options())
            .await
            .unwrap_err();
        assert!(matches!(error, ConnectError::Connect(_)), "{error:?}");
        assert!(!error.to_string().is_empty());

        let error = Endpoint::connect_server(hangs_up.addr, SERVER_ID, AUTH_KEY, options())
            .await
            .unwrap_err();
        assert!(matches!(error, ConnectError::Handshake(_)), "{error:?}");

        let bad = EndpointOptions {
            core: EndpointConfig {
                max_packet: 4,
                ..EndpointConfig::default()
            },
            ..options()
        };
        let error = Endpoint::connect_client(closed_port, bad)
            .await
            .unwrap_err();
        assert!(matches!(error, ConnectError::Config(_)), "{error:?}");
    });
}

#[test]
fn messages_flow_both_ways_in_order() {
    let gw = FakeGateway::start();
    run(async {
        let (client, server) = pair(&gw, options()).await;
        let (mut c, mut s) = open(&client, &server).await;
        let max = EndpointConfig::default().max_payload();
        let big: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();

        // Many messages each way, an empty one and a maximal one among them.
        let count = 2000u32;
        let sender = c.sender();
        let up = smol::spawn({
            let big = big.clone();
            async move {
                for i in 0..count {
                    sender.send(i.to_le_bytes().to_vec()).await.unwrap();
                }
                sender.send(Bytes::new()).await.unwrap();
                sender.send(big).await.unwrap();
            }
        });
        for i in 0..count {
            s.send(i.to_le_bytes().to_vec()).await.unwrap();
        }
        s.send(Bytes::new()).await.unwrap();
        s.send(big.clone()).await.unwrap();
        for i in 0..count {
            assert_eq!(
                s.recv().await.unwrap(),
                Bytes::from(i.to_le_bytes().to_vec())
            );
            assert_eq!(
                c.recv().await.unwrap(),
                Bytes::from(i.to_le_bytes().to_vec())
            );
        }
        assert_eq!(s.recv().await.unwrap(), Bytes::new());
        assert_eq!(c.recv().await.unwrap(), Bytes::new());
        assert_eq!(s.recv().await.unwrap(), big);
        assert_eq!(c.recv().await.unwrap(), big);
        up.await;

        // The server opens a vconn to the client it learned about.
        let client_id = s.remote_id();
        let (s2, c2) = smol::future::zip(server.dial(client_id), client.accept()).await;
        let (s2, mut c2) = (s2.unwrap(), c2.unwrap());
        assert_eq!(s2.id(), c2.id());
        assert_eq!(c2.remote_id(), SERVER_ID);
        s2.send("from server").await.unwrap();
        assert_eq!(c2.recv().await.unwrap(), Bytes::from_static(b"from server"));
        assert_eq!(client.conn_count(), 2);
    });
}

#[test]
fn back_pressure_delivers_everything() {
    let gw = FakeGateway::start();
    run(async {
        let (client, server) = pair(&gw, options()).await;
        let (c, mut s) = open(&client, &server).await;
        let chunk = Bytes::from(vec![7u8; 256 * 1024]);
        let total = 48; // 12 MiB: well above the 4 MiB send bound.
        let send = smol::spawn(async move {
            for _ in 0..total {
                c.send(chunk.clone()).await.unwrap();
            }
            c
        });
        for _ in 0..total {
            assert_eq!(s.recv().await.unwrap().len(), 256 * 1024);
        }
        let _c = send.await;
    });
}

#[test]
fn send_waits_when_the_gateway_stops_reading_and_close_wakes_it() {
    // A "gateway" that opens vconn 1 to us and then never reads a byte.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let connect = Command::Connect {
            conn: 1,
            remote: 42,
        }
        .to_bytes();
        std::io::Write::write_all(&mut stream, &connect).unwrap();
        std::thread::sleep(Duration::from_secs(3));
    });
    run(async {
        let client = Endpoint::connect_client(addr, options()).await.unwrap();
        let vconn = within(3.0, client.accept()).await.unwrap();
        assert_eq!((vconn.id(), vconn.remote_id()), (1, 42));
        let sent = Arc::new(AtomicUsize::new(0));
        let chunks = 400; // 100 MiB: far more than kernel buffers plus the 4 MiB bound.
        let sender = smol::spawn({
            let sent = sent.clone();
            let chunk = Bytes::from(vec![1u8; 256 * 1024]);
            async move {
                for _ in 0..chunks {
                    vconn.send(chunk.clone()).await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, SendError>(())
            }
        });
        Timer::after(Duration::from_millis(500)).await;
        let before = sent.load(Ordering::Relaxed);
        assert!(before < chunks, "send never waited");
        Timer::after(Duration::from_millis(200)).await;
        assert_eq!(
            sent.load(Ordering::Relaxed),
            before,
            "send went on without the writer"
        );
        client.close();
        assert_eq!(
            within(3.0, sender).await.unwrap_err(),
            SendError::Link(LinkError::Shutdown)
        );
        // The socket is closed even though the peer never read (bounded flush).
        assert_eq!(within(3.0, client.closed()).await, LinkError::Shutdown);
    });
    holder.join().unwrap();
}

#[test]
fn dial_refused() {
    let gw = FakeGateway::start();
    run(async {
        let client = Endpoint::connect_client(gw.client_addr, options())
            .await
            .unwrap();
        let error = client.dial(99).await.unwrap_err();
        assert_eq!(error, DialError::Refused { remote: 99 });
        assert!(error.to_string().contains("refused"));
        assert_eq!(client.conn_count(), 0);
    });
}

#[test]
fn dial_times_out_when_the_gateway_never_answers() {
    let gw = SilentGateway::start(b"");
    run(async {
        let opts = EndpointOptions {
            dial_timeout: Some(Duration::from_millis(200)),
            ..options()
        };
        let client = Endpoint::connect_client(gw.addr, opts).await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            client.dial(SERVER_ID).await.unwrap_err(),
            DialError::Timeout
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(client.conn_count(), 0);
        assert!(!client.is_closed());
    });
}

#[test]
fn too_large_send_keeps_the_vconn() {
    let gw = FakeGateway::start();
    run(async {
        let (client, server) = pair(&gw, options()).await;
        let (c, mut s) = open(&client, &server).await;
        let max = EndpointConfig::default().max_payload();
        let error = c.send(vec![0u8; max + 1]).await.unwrap_err();
        assert_eq!(error, SendError::TooLarge { len: max + 1, max });
        c.send("still open").await.unwrap();
        assert_eq!(s.recv().await.unwrap(), Bytes::from_static(b"still open"));
        assert!(!client.is_closed());
    });
}

#[test]
fn remote_close_delivers_queued_messages_then_closed() {
    let gw = FakeGateway::start();
    run(async {
        let (client, server) = pair(&gw, options()).await;
        let (mut c, s) = open(&client, &server).await;
        s.send("a").await.unwrap();
        s.send("b").await.unwrap();
        s.send(Bytes::new()).await.unwrap();
        s.close();
        // Let the Close arrive behind the data before reading anything.
        within(3.0, async {
            while client.conn_count() != 0 {
                Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        assert_eq!(c.recv().await.unwrap(), Bytes::from_static(b"a"));
        assert_eq!(c.recv().await.unwrap(), Bytes::from_static(b"b"));
        assert_eq!(c.recv().await.unwrap(), Bytes::new());
        assert_eq!(c.recv().await.unwrap_err(), RecvError::Closed);
        assert_eq!(c.recv().await.unwrap_err(), RecvError::Closed);
        assert_eq!(c.send("late").await.unwrap_err(), SendError::Closed);
    });
}

#[test]
fn local_close_discards_queued_messages_and_drop_closes_the_vconn() {
    let gw = FakeGateway::start();
    run(async {
        let (client, server) = pair(&gw, options()).await;
        let (mut c, mut s) = open(&client, &server).await;
        s.send("before close").await.unwrap();
        // Wait until it is queued on our side (the Debug output shows the queue length).
        within(3.0, async {
            while format!("{c:?}").contains("queued: 0") {
                Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        c.close();
        c.close(); // idempotent
        // The user closed it: what had arrived is discarded, end of stream at once.
        assert_eq!(c.try_recv().unwrap_err(), RecvError::Closed);
        assert_eq!(c.recv().await.unwrap_err(), RecvError::Closed);
        assert_eq!(c.send("x").await.unwrap_err(), SendError::Closed);
        assert_eq!(within(3.0, s.recv()).await.unwrap_err(), RecvError::Closed);

        let (c, mut s) = open(&client, &server).await;
        drop(c);
        assert_eq!(within(3.0, s.recv()).await.unwrap_err(), RecvError::Closed);
        assert_eq!(client.conn_count(), 0);
    });
}

#[test]
fn endpoint_close_fails_pending_dial_and_accept() {
    let gw = SilentGateway::start(b"");
    run(async {
        let opts = EndpointOptions {
            dial_timeout: None,
            ..options()
        };
        let client = Endpoint::connect_client(gw.addr, opts).await.unwrap();
        let dial = smol::spawn({
            let client = client.clone();
            async move { client.dial(SERVER_ID).await.map(|_| ()) }
        });
        let accept = smol::spawn({
            let client = client.clone();
            async move { client.accept().await.map(|_| ()) }
        });
        Timer::after(Duration::from_millis(50)).await;
        client.close();
        assert_eq!(
            within(3.0, dial).await.unwrap_err(),
            DialError::Closed(LinkError::Shutdown)
        );
        assert_eq!(within(3.0, accept).await.unwrap_err(), LinkError::Shutdown);
    });
}

#[test]
fn endpoint_close_and_drop_fail_pending_recv() {
    let gw = FakeGateway::start();
    run(async {
        let (client, server) = pair(&gw, options()).await;
        let (mut c, mut s) = open(&client, &server).await;
        let recv = smol::spawn(async move { c.recv().await });
        Timer::after(Duration::from_millis(50)).await;
        client.close();
        assert_eq!(
            within(3.0, recv).await.unwrap_err(),
            RecvError::Link(LinkError::Shutdown)
        );
        // The gateway saw the client go and closed its vconn.
        assert_eq!(within(3.0, s.recv()).await.unwrap_err(), RecvError::Closed);

        // Dropping the last handle closes the link too.
        let client = Endpoint::connect_client(gw.client_addr, options())
            .await
            .unwrap();
        let (c, mut s) = open(&client, &server).await;
        drop(client);
        assert_eq!(within(3.0, s.recv()).await.unwrap_err(), RecvError::Closed);
        drop(c);
    });
}

fn keepalive(interval_ms: u64, timeout_ms: u64) -> EndpointOptions {
    EndpointOptions {
        core: EndpointConfig {
            ping_interval: Some(Duration::from_millis(interval_ms)),
            ping_timeout: Duration::from_millis(timeout_ms),
            ..EndpointConfig::default()
        },
        ..options()
    }
}

#[test]
fn unanswered_pings_end_the_link() {
    let gw = SilentGateway::start(b"");
    run(async {
        let client = Endpoint::connect_client(gw.addr, keepalive(50, 150))
            .await
            .unwrap();
        assert_eq!(within(3.0, client.closed()).await, LinkError::PingTimeout);
        let received = gw.received();
        assert!(
            received.windows(PING_FRAME.len()).any(|w| w == PING_FRAME),
            "no Ping seen: {received:?}"
        );
    });
}

#[test]
fn answered_pings_keep_the_link() {
    let gw = FakeGateway::start();
    run(async {
        let client = Endpoint::connect_client(gw.client_addr, keepalive(20, 300))
            .await
            .unwrap();
        Timer::after(Duration::from_millis(500)).await;
        assert!(
            !client.is_closed(),
            "the link died although pings were answered"
        );
    });
}

#[test]
fn recv_queue_overflow_closes_that_vconn() {
    let gw = FakeGateway::start();
    run(async {
        let opts = EndpointOptions {
            recv_queue: 4,
            ..options()
        };
        let (client, server) = pair(&gw, opts).await;
        let (mut c, mut s) = open(&client, &server).await;
        let (mut other_c, other_s) = open(&client, &server).await;
        for i in 0..10u8 {
            s.send(vec![i]).await.unwrap();
        }
        // The server sees the vconn closed by the client.
        assert_eq!(within(3.0, s.recv()).await.unwrap_err(), RecvError::Closed);
        for i in 0..4u8 {
            assert_eq!(c.recv().await.unwrap(), Bytes::from(vec![i]));
        }
        assert_eq!(c.recv().await.unwrap_err(), RecvError::Overflow);
        assert!(RecvError::Overflow.to_string().contains("overflow"));
        // Other vconns are unaffected.
        other_s.send("fine").await.unwrap();
        assert_eq!(other_c.recv().await.unwrap(), Bytes::from_static(b"fine"));
    });
}

#[test]
fn concurrent_dials_from_tasks_and_threads() {
    let gw = FakeGateway::start();
    let (client, server) = run(pair(&gw, options()));
    let tasks = 8;
    let threads = 4;
    let acceptor = smol::spawn({
        let server = server.clone();
        async move {
            let mut accepted = Vec::new();
            for _ in 0..tasks + threads {
                accepted.push(server.accept().await.unwrap());
            }
            accepted
        }
    });
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || run(async move { client.dial(SERVER_ID).await.unwrap() }))
        })
        .collect();
    let mut ids: Vec<u32> = run(async {
        let dials: Vec<_> = (0..tasks)
            .map(|_| {
                let client = client.clone();
                smol::spawn(async move { client.dial(SERVER_ID).await.unwrap() })
            })
            .collect();
        let mut vconns = Vec::new();
        for dial in dials {
            vconns.push(dial.await);
        }
        vconns.iter().map(VConn::id).collect()
    });
    for handle in handles {
        ids.push(handle.join().unwrap().id());
    }
    let accepted = run(acceptor);
    let mut accepted_ids: Vec<u32> = accepted.iter().map(VConn::id).collect();
    ids.sort_unstable();
    accepted_ids.sort_unstable();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), tasks + threads);
    assert_eq!(ids, accepted_ids);
}

#[test]
fn works_under_async_std() {
    let gw = FakeGateway::start();
    async_std::task::block_on(within(15.0, async {
        let (client, server) = pair(&gw, options()).await;
        let echo = async_std::task::spawn({
            let server = server.clone();
            async move {
                let mut vconn = server.accept().await.unwrap();
                while let Ok(msg) = vconn.recv().await {
                    vconn.send(msg).await.unwrap();
                }
            }
        });
        let mut vconn = client.dial(SERVER_ID).await.unwrap();
        for i in 0..100u32 {
            vconn.send(i.to_le_bytes().to_vec()).await.unwrap();
            assert_eq!(
                vconn.recv().await.unwrap(),
                Bytes::from(i.to_le_bytes().to_vec())
            );
        }
        vconn.close();
        within(3.0, echo).await;
        client.close();
        assert_eq!(client.closed().await, LinkError::Shutdown);
    }));
}

#[test]
fn local_close_wins_over_a_remote_close_and_works_through_a_sender() {
    let gw = FakeGateway::start();
    run(async {
        let (client, server) = pair(&gw, options()).await;
        // The remote closed with messages queued; the user then closes too: nothing more is read.
        let (mut c, s) = open(&client, &server).await;
        s.send("queued").await.unwrap();
        s.close();
        within(3.0, async {
            while client.conn_count() != 0 {
                Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        c.close();
        assert_eq!(c.recv().await.unwrap_err(), RecvError::Closed);

        // A close through a sender is a local close as well.
        let (mut c, s) = open(&client, &server).await;
        assert_eq!(c.try_recv(), Ok(None));
        s.send("queued").await.unwrap();
        within(3.0, async {
            while format!("{c:?}").contains("queued: 0") {
                Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        let sender = c.sender();
        assert_eq!(sender.remote_id(), c.remote_id());
        sender.close();
        assert_eq!(c.try_recv().unwrap_err(), RecvError::Closed);
        assert_eq!(c.recv().await.unwrap_err(), RecvError::Closed);
        assert!(client.close_reason().is_none());
        client.close();
        assert_eq!(client.close_reason(), Some(LinkError::Shutdown));
    });
}
