//! The endpoint conformance suite: the original repository's endpoint tests (ENDPOINT.md §4) end to
//! end, written once against the blocking facade in `common/endpoints.rs` and run for each runtime's
//! endpoint library against the same runtime's gateway (`cargo test --all-features` runs all three).
//!
//! The std endpoint is used as it is, the tokio one through a tokio runtime built by the facade, the
//! smol one through `smol::block_on`. Everything binds 127.0.0.1 ephemeral ports; every wait is
//! bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::endpoints::{DialE, Ep, LinkError, Opts, RecvE, SendE, Vc, WAIT, XorShift};
use common::raw::eventually;
use common::{Gw, RuntimeKind, test_config};
use fastway_core::gateway::GatewayConfig;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// Instantiates each listed test once per runtime: that runtime's endpoint against its gateway.
macro_rules! endpoint_conformance {
    ($($test:ident),* $(,)?) => {
        #[cfg(feature = "rt-tokio")]
        mod tokio_rt {
            use super::common::endpoints::tokio_ep::TokioEp;
            $( #[test] fn $test() { super::$test::<TokioEp>(super::RuntimeKind::Tokio) } )*
        }
        #[cfg(feature = "rt-smol")]
        mod smol_rt {
            use super::common::endpoints::smol_ep::SmolEp;
            $( #[test] fn $test() { super::$test::<SmolEp>(super::RuntimeKind::Smol) } )*
        }
        #[cfg(feature = "rt-std")]
        mod std_rt {
            use super::common::endpoints::std_ep::StdEp;
            $( #[test] fn $test() { super::$test::<StdEp>(super::RuntimeKind::Std) } )*
        }
    };
}

endpoint_conformance!(
    random_traffic_on_dialed_and_dialed_back_vconns,
    parallel_echo_dialers,
    bad_endpoints,
    server_closing_at_once_while_clients_send,
    too_large_send_fails_and_the_vconn_still_works,
    close_semantics_through_the_gateway,
    keepalive_outlives_the_idle_timeout,
);

/// The original tests' settings: server 123, key "123", MaxPacket 2048.
const SERVER_ID: u32 = 123;
const KEY: &[u8] = b"123";
const MAX_PACKET: u32 = 2048;

fn config() -> GatewayConfig {
    GatewayConfig {
        max_packet: MAX_PACKET,
        auth_key: KEY.to_vec(),
        ..test_config()
    }
}

fn opts() -> Opts {
    Opts {
        max_packet: MAX_PACKET,
        ..Opts::default()
    }
}

/// A gateway with server endpoint 123 and one client endpoint, both registered.
fn start<E: Ep>(kind: RuntimeKind, config: GatewayConfig) -> (Gw, E, E) {
    let gw = Gw::start(kind, config);
    let server = E::server(gw.server, SERVER_ID, KEY, &opts()).expect("server connects");
    eventually("server registered", || gw.stats().servers == 1);
    let client = E::client(gw.client, &opts()).expect("client connects");
    eventually("client registered", || gw.stats().clients == 1);
    (gw, server, client)
}

/// `from` dials `remote` while `to` accepts: (dialed end, accepted end), same id on both.
fn open<E: Ep>(from: &E, to: &E, remote: u32) -> (E::V, E::V) {
    thread::scope(|scope| {
        let accepting = scope.spawn(|| to.accept());
        let dialed = from.dial(remote).expect("dial succeeds");
        let accepted = accepting.join().expect("accept succeeds");
        assert_eq!(dialed.id(), accepted.id(), "both ends see the same ConnID");
        (dialed, accepted)
    })
}

/// Waits until the gateway and both endpoints have no vconn left.
fn all_vconns_gone<E: Ep>(gw: &Gw, endpoints: &[&E]) {
    eventually("no vconns left anywhere", || {
        gw.stats().vconns == 0 && endpoints.iter().all(|ep| ep.conn_count() == 0)
    });
}

/// Test_Gateway: a client-dialed vconn and a server-dialed one (by the client id learned from the
/// first), random 1024-byte messages on random vconns and directions, then everything closes.
fn random_traffic_on_dialed_and_dialed_back_vconns<E: Ep>(kind: RuntimeKind) {
    let (gw, server, client) = start::<E>(kind, config());
    let (c1, s1) = open(&client, &server, SERVER_ID);
    assert_eq!(c1.remote_id(), SERVER_ID);
    let client_id = s1.remote_id();
    let (s2, c2) = open(&server, &client, client_id);
    assert_eq!(s2.remote_id(), client_id);
    assert_eq!(c2.remote_id(), SERVER_ID);

    let mut pairs = [(c1, s1), (c2, s2)];
    let mut rng = XorShift::new(0x0123_4567_89ab_cdef);
    for round in 0..2000 {
        let pick = rng.below(2);
        let (a, b) = &mut pairs[pick];
        let (from, to) = if rng.below(2) == 0 { (a, b) } else { (b, a) };
        let msg = rng.bytes(1024);
        from.send(msg.clone()).expect("send");
        assert_eq!(to.recv().expect("recv"), msg, "round {round}");
    }
    for (a, b) in &pairs {
        a.close();
        b.close();
    }
    all_vconns_gone(&gw, &[&client, &server]);
    assert_eq!(gw.stats().protocol_drops, 0);
}

/// Test_GatewayParallel: the server echoes every vconn; several threads of one client endpoint dial
/// concurrently and do echo rounds.
fn parallel_echo_dialers<E: Ep>(kind: RuntimeKind) {
    const DIALERS: u64 = 4;
    const ROUNDS: usize = 300;
    let (gw, server, client) = start::<E>(kind, config());
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let acceptor = scope.spawn(|| {
            let mut echoers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(mut vconn) = server.accept_within(Duration::from_millis(50)) {
                    echoers.push(thread::spawn(move || {
                        while let Ok(msg) = vconn.recv() {
                            if vconn.send(msg).is_err() {
                                break;
                            }
                        }
                    }));
                }
            }
            echoers
        });
        let dialers: Vec<_> = (0..DIALERS)
            .map(|i| {
                let client = &client;
                scope.spawn(move || {
                    let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15 ^ i);
                    let mut vconn = client.dial(SERVER_ID).expect("dial");
                    for _ in 0..ROUNDS {
                        let msg = rng.bytes(1024);
                        vconn.send(msg.clone()).expect("send");
                        assert_eq!(vconn.recv().expect("echo"), msg);
                    }
                    vconn.close();
                })
            })
            .collect();
        for dialer in dialers {
            dialer.join().expect("dialer");
        }
        stop.store(true, Ordering::Relaxed);
        let echoers = acceptor.join().expect("acceptor");
        assert_eq!(echoers.len(), DIALERS as usize);
        for echoer in echoers {
            echoer.join().expect("echoer ends when its vconn closes");
        }
    });
    all_vconns_gone(&gw, &[&client, &server]);
}

/// Test_BadEndPoint: a dial of an unknown id is refused; connecting to a closed port fails; a wrong
/// key is accepted by the handshake and then the gateway closes the link; a "gateway" that accepts and
/// hangs up at once fails the server handshake. The good client is unharmed throughout.
fn bad_endpoints<E: Ep>(kind: RuntimeKind) {
    let (gw, server, client) = start::<E>(kind, config());
    assert_eq!(client.dial(12345).err(), Some(DialE::Refused));

    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    assert!(E::client(closed_port, &opts()).is_err());
    assert!(E::server(closed_port, SERVER_ID, KEY, &opts()).is_err());

    // A wrong key is not acknowledged either way: the gateway just closes the socket, which the
    // endpoint sees right after connecting or, on a fast gateway, while it is still connecting.
    if let Ok(bad) = E::server(gw.server, 124, b"bad", &opts()) {
        assert_eq!(bad.closed_within(WAIT), Some(LinkError::SocketClosed));
    }
    assert_eq!(gw.stats().servers, 1);

    let hang_up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hang_up_addr = hang_up.local_addr().expect("addr");
    let hanger = thread::spawn(move || drop(hang_up.accept()));
    assert!(E::server(hang_up_addr, SERVER_ID, KEY, &opts()).is_err());
    hanger.join().expect("hang-up listener");

    let (c, mut s) = open(&client, &server, SERVER_ID);
    c.send(Bytes::from_static(b"still fine")).expect("send");
    assert_eq!(s.recv().expect("recv"), &b"still fine"[..]);
    assert!(client.close_reason().is_none());
}

/// Test_VConnSimultaneouslyCloseAndReceive: the server closes every vconn right after accepting it;
/// fresh client endpoints dial, send and close. Every dial succeeds and nothing panics.
fn server_closing_at_once_while_clients_send<E: Ep>(kind: RuntimeKind) {
    let gw = Gw::start(kind, config());
    let server = E::server(gw.server, SERVER_ID, KEY, &opts()).expect("server connects");
    eventually("server registered", || gw.stats().servers == 1);
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if let Some(vconn) = server.accept_within(Duration::from_millis(20)) {
                    vconn.close();
                }
            }
        });
        for i in 0..300 {
            let client = E::client(gw.client, &opts()).expect("client connects");
            let vconn = client
                .dial(SERVER_ID)
                .unwrap_or_else(|e| panic!("dial {i} failed: {e:?}"));
            match vconn.send(Bytes::from_static(b"0123456789")) {
                Ok(()) | Err(SendE::Closed) => {}
                Err(error) => panic!("send {i} failed: {error:?}"),
            }
            client.close();
        }
        stop.store(true, Ordering::Relaxed);
    });
    eventually("every client gone", || {
        let stats = gw.stats();
        stats.clients == 0 && stats.vconns == 0
    });
    assert!(server.close_reason().is_none());
    // The gateway counts a vconn gone when it queues the close for the server; the server endpoint
    // sees it once the gateway's writer has sent it, which on a loaded machine can be a little later.
    eventually("server saw every close", || server.conn_count() == 0);
}

/// Test_BadVirtualCodec: a payload of MaxPacket - 3 bytes fails with TooLarge (the gateway would drop
/// the link for it) and the vconn still works, up to exactly MaxPacket - 4; closing with a message
/// still queued is harmless.
fn too_large_send_fails_and_the_vconn_still_works<E: Ep>(kind: RuntimeKind) {
    let (gw, server, client) = start::<E>(kind, config());
    let (c, mut s) = open(&client, &server, SERVER_ID);
    let max = MAX_PACKET as usize - 4;
    assert_eq!(
        c.send(Bytes::from(vec![0; max + 1])),
        Err(SendE::TooLarge { len: max + 1, max })
    );
    let mut rng = XorShift::new(7);
    let biggest = rng.bytes(max);
    c.send(biggest.clone()).expect("the largest payload passes");
    assert_eq!(s.recv().expect("recv"), biggest);
    s.send(biggest.clone()).expect("and back");

    // The biggest message is still queued at `c` when it closes: discarded, no crash.
    let (mut marker_c, marker_s) = open(&client, &server, SERVER_ID);
    marker_s.send(Bytes::new()).expect("marker");
    assert_eq!(marker_c.recv().expect("marker"), Bytes::new());
    c.close();
    assert_eq!(s.recv(), Err(RecvE::Closed));
    drop((marker_c, marker_s));
    all_vconns_gone(&gw, &[&client, &server]);
    assert_eq!(gw.stats().protocol_drops, 0);
    assert!(client.close_reason().is_none() && server.close_reason().is_none());
}

/// The endpoints' end-of-stream rules through a real gateway: a remote close delivers the queued
/// messages first; a local close discards them and reports Closed at once; the end of the link
/// delivers the queued messages, then the link's reason.
fn close_semantics_through_the_gateway<E: Ep>(kind: RuntimeKind) {
    let (gw, server, client) = start::<E>(kind, config());
    // Once the marker arrives on its own vconn, everything sent before it on the same link is queued
    // at the client: one physical link, frames in order.
    let (mut marker_c, marker_s) = open(&client, &server, SERVER_ID);
    let mut queued_behind_marker = |s: &E::V, messages: &[&'static [u8]]| {
        for msg in messages {
            s.send(Bytes::from_static(msg)).expect("send");
        }
        marker_s
            .send(Bytes::from_static(b"marker"))
            .expect("marker");
        assert_eq!(marker_c.recv().expect("marker"), &b"marker"[..]);
    };

    // Remote close: "a", "b", "" and then Closed.
    let (mut c, s) = open(&client, &server, SERVER_ID);
    queued_behind_marker(&s, &[b"a", b"b", b""]);
    s.close();
    eventually("the close reached the client", || client.conn_count() == 1);
    assert_eq!(c.recv().expect("a"), &b"a"[..]);
    assert_eq!(c.try_recv().expect("b"), Some(Bytes::from_static(b"b")));
    assert_eq!(c.recv().expect("empty message"), Bytes::new());
    assert_eq!(c.recv(), Err(RecvE::Closed));
    assert_eq!(c.send(Bytes::from_static(b"late")), Err(SendE::Closed));

    // Local close: the queued message is discarded.
    let (mut c, mut s) = open(&client, &server, SERVER_ID);
    assert_eq!(c.try_recv(), Ok(None));
    queued_behind_marker(&s, &[b"unread"]);
    c.close();
    assert_eq!(c.try_recv(), Err(RecvE::Closed));
    assert_eq!(c.recv(), Err(RecvE::Closed));
    assert_eq!(c.send(Bytes::from_static(b"x")), Err(SendE::Closed));
    assert_eq!(s.recv(), Err(RecvE::Closed), "the remote sees the close");

    // Link end (the client endpoint closes): queued messages first, then the reason.
    let (mut c, s) = open(&client, &server, SERVER_ID);
    queued_behind_marker(&s, &[b"last"]);
    client.close();
    assert_eq!(c.recv().expect("queued before the end"), &b"last"[..]);
    assert_eq!(c.recv(), Err(RecvE::Link(LinkError::Shutdown)));
    assert_eq!(
        c.send(Bytes::from_static(b"x")),
        Err(SendE::Link(LinkError::Shutdown))
    );
    eventually("the gateway saw the client go", || gw.stats().clients == 0);
    assert_eq!(server.closed_within(Duration::ZERO), None);
}

/// Keepalive against the real gateway: with a 1 s idle timeout, endpoints that ping every 200 ms stay
/// connected well past it, while a client without pings is dropped.
fn keepalive_outlives_the_idle_timeout<E: Ep>(kind: RuntimeKind) {
    let idle = Duration::from_secs(1);
    let config = GatewayConfig {
        client_idle_timeout: Some(idle),
        server_idle_timeout: Some(idle),
        ..config()
    };
    let gw = Gw::start(kind, config);
    let pinging = Opts {
        ping_interval: Some(Duration::from_millis(200)),
        ping_timeout: Duration::from_secs(1),
        ..opts()
    };
    let server = E::server(gw.server, SERVER_ID, KEY, &pinging).expect("server connects");
    eventually("server registered", || gw.stats().servers == 1);
    let client = E::client(gw.client, &pinging).expect("client connects");
    let quiet = E::client(gw.client, &opts()).expect("quiet client connects");
    let (mut c, mut s) = open(&client, &server, SERVER_ID);

    assert_eq!(
        quiet.closed_within(idle * 3),
        Some(LinkError::SocketClosed),
        "a client without pings is dropped for idleness"
    );
    // Quiet was dropped after about one idle timeout; 1.5 more make it 2.5 since `open`.
    thread::sleep(idle + idle / 2);
    assert!(client.close_reason().is_none(), "pings kept the client");
    assert!(server.close_reason().is_none(), "pings kept the server");
    c.send(Bytes::from_static(b"still here")).expect("send");
    assert_eq!(s.recv().expect("recv"), &b"still here"[..]);
    s.send(Bytes::from_static(b"me too")).expect("send");
    assert_eq!(c.recv().expect("recv"), &b"me too"[..]);
}
