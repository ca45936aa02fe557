//! The blocking endpoint against a fake gateway on loopback: connect, handshake, dials, messages,
//! closes, keepalive, overflow, concurrency. Every wait is bounded.

#![allow(clippy::unwrap_used)]

mod endpoint_support;

use bytes::Bytes;
use endpoint_support::{FakeGateway, KEY, MAX_PACKET, SilentGateway, wait_until};
use fastway_std::endpoint::{
    ConnectError, DialError, Endpoint, EndpointConfig, EndpointOptions, LinkError, RecvError,
    SendError, VConn,
};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

const SERVER_ID: u32 = 7;
const WAIT: Duration = Duration::from_secs(5);

fn options() -> EndpointOptions {
    EndpointOptions {
        core: EndpointConfig {
            max_packet: MAX_PACKET,
            ..EndpointConfig::default()
        },
        dial_timeout: Some(WAIT),
        ..EndpointOptions::default()
    }
}

fn server(gateway: &FakeGateway) -> Endpoint {
    let server = Endpoint::connect_server(gateway.server_addr, SERVER_ID, KEY, options()).unwrap();
    gateway.wait_server(SERVER_ID);
    server
}

fn client(gateway: &FakeGateway) -> Endpoint {
    Endpoint::connect_client(gateway.client_addr, options()).unwrap()
}

/// A client vconn and the server's side of it.
fn pair(client: &Endpoint, server: &Endpoint) -> (VConn, VConn) {
    let dialed = client.dial(SERVER_ID).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    assert_eq!(dialed.id(), accepted.id());
    (dialed, accepted)
}

fn recv(vconn: &mut VConn) -> Bytes {
    vconn
        .recv_timeout(WAIT)
        .unwrap()
        .expect("message within 5 s")
}

fn recv_err(vconn: &mut VConn) -> RecvError {
    let deadline = Instant::now() + WAIT;
    loop {
        match vconn.recv_timeout(Duration::from_millis(50)) {
            Err(error) => return error,
            Ok(Some(message)) => panic!("unexpected message {message:?}"),
            Ok(None) => assert!(Instant::now() < deadline, "no end of stream within 5 s"),
        }
    }
}

#[test]
fn client_connects_and_closes() {
    let gateway = FakeGateway::start();
    let client = client(&gateway);
    assert_eq!(client.peer_addr(), gateway.client_addr);
    assert!(client.local_addr().ip().is_loopback());
    assert_eq!(client.conn_count(), 0);
    assert_eq!(client.close_reason(), None);
    client.close();
    client.close(); // idempotent
    assert_eq!(client.closed_timeout(WAIT), Some(LinkError::Shutdown));
    assert_eq!(client.closed(), LinkError::Shutdown);
    assert!(matches!(
        client.dial(SERVER_ID),
        Err(DialError::Closed(LinkError::Shutdown))
    ));
}

#[test]
fn server_right_key_is_accepted_and_stays_up() {
    let gateway = FakeGateway::start();
    let server = server(&gateway);
    assert_eq!(server.closed_timeout(Duration::from_millis(200)), None);
}

#[test]
fn server_wrong_key_closes_the_link_soon_after() {
    let gateway = FakeGateway::start();
    let server =
        Endpoint::connect_server(gateway.server_addr, SERVER_ID, b"wrong", options()).unwrap();
    assert_eq!(server.closed_timeout(WAIT), Some(LinkError::SocketClosed));
    assert!(matches!(server.accept(), Err(LinkError::SocketClosed)));
}

#[test]
fn server_handshake_fails_when_the_gateway_hangs_up() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || drop(listener.accept()));
    let result = Endpoint::connect_server(addr, SERVER_ID, KEY, options());
    assert!(
        matches!(result, Err(ConnectError::Handshake(_))),
        "{result:?}"
    );
}

#[test]
fn connect_to_a_closed_port_fails() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let result = Endpoint::connect_client(addr, options());
    assert!(
        matches!(result, Err(ConnectError::Connect(_))),
        "{result:?}"
    );
    let mut bad = options();
    bad.core.max_packet = 1;
    let result = Endpoint::connect_client(addr, bad);
    assert!(matches!(result, Err(ConnectError::Config(_))), "{result:?}");
}

#[test]
fn dial_accept_and_messages_both_ways() {
    let gateway = FakeGateway::start();
    let (server, client) = (server(&gateway), client(&gateway));
    let (mut c, mut s) = pair(&client, &server);
    assert_eq!(c.remote_id(), SERVER_ID);
    assert_eq!(client.conn_count(), 1);

    // Many messages, in order, both ways at once (the server sends from another thread).
    let sender = s.sender();
    let pump = thread::spawn(move || {
        for i in 0..2000u32 {
            sender.send(i.to_le_bytes().to_vec()).unwrap();
        }
    });
    for i in 0..2000u32 {
        c.send(i.to_be_bytes().to_vec()).unwrap();
    }
    for i in 0..2000u32 {
        assert_eq!(recv(&mut c), &i.to_le_bytes()[..]);
        assert_eq!(recv(&mut s), &i.to_be_bytes()[..]);
    }
    pump.join().unwrap();

    // Empty messages are messages.
    c.send(Bytes::new()).unwrap();
    s.send(Vec::new()).unwrap();
    assert!(recv(&mut s).is_empty());
    assert!(recv(&mut c).is_empty());

    // The biggest message; one byte more is refused and the vconn keeps working.
    let max = MAX_PACKET as usize - 4;
    let big: Vec<u8> = (0..max).map(|i| i as u8).collect();
    c.send(big.clone()).unwrap();
    assert_eq!(recv(&mut s), &big[..]);
    s.send(big.clone()).unwrap();
    assert_eq!(recv(&mut c), &big[..]);
    assert_eq!(
        c.send(vec![0u8; max + 1]),
        Err(SendError::TooLarge { len: max + 1, max })
    );
    c.send(&b"still open"[..]).unwrap();
    assert_eq!(recv(&mut s), &b"still open"[..]);

    // The server dials the client back by its id; the client accepts.
    let mut back = server.dial(s.remote_id()).unwrap();
    let mut incoming = client.accept_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        (back.id(), incoming.remote_id()),
        (incoming.id(), SERVER_ID)
    );
    back.send(&b"hi"[..]).unwrap();
    assert_eq!(recv(&mut incoming), &b"hi"[..]);
    incoming.send(&b"ho"[..]).unwrap();
    assert_eq!(recv(&mut back), &b"ho"[..]);
}

#[test]
fn dial_refused() {
    let gateway = FakeGateway::start();
    let client = client(&gateway);
    assert_eq!(
        client.dial(99).unwrap_err(),
        DialError::Refused { remote: 99 }
    );
    assert_eq!(client.conn_count(), 0);
}

#[test]
fn dial_times_out_when_the_gateway_never_answers() {
    let gateway = SilentGateway::start();
    let options = EndpointOptions {
        dial_timeout: Some(Duration::from_millis(200)),
        ..options()
    };
    let client = Endpoint::connect_client(gateway.addr, options).unwrap();
    let started = Instant::now();
    assert_eq!(client.dial(SERVER_ID).unwrap_err(), DialError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The Dial frame went out: Length 9, conn 0, type 0 (Dial), remote 7.
    let dial = [9, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0];
    wait_until(WAIT, || gateway.received().windows(13).any(|w| w == dial));
}

#[test]
fn remote_close_delivers_queued_messages_then_closed() {
    let gateway = FakeGateway::start();
    let (server, client) = (server(&gateway), client(&gateway));
    let (mut c, s) = pair(&client, &server);
    for message in [&b"one"[..], b"two", b""] {
        s.send(message).unwrap();
    }
    s.close();
    // Wait until the client has processed the Close, so the messages are queued before the end.
    wait_until(WAIT, || client.conn_count() == 0);
    assert_eq!(recv(&mut c), &b"one"[..]);
    assert_eq!(recv(&mut c), &b"two"[..]);
    assert!(recv(&mut c).is_empty());
    assert_eq!(recv_err(&mut c), RecvError::Closed);
    assert_eq!(c.recv(), Err(RecvError::Closed));
    assert_eq!(c.send(&b"late"[..]), Err(SendError::Closed));
}

#[test]
fn local_close_tells_the_remote() {
    let gateway = FakeGateway::start();
    let (server, client) = (server(&gateway), client(&gateway));
    let (mut c, mut s) = pair(&client, &server);
    let sender = c.sender();
    c.close();
    c.close(); // idempotent
    assert_eq!(c.send(&b"x"[..]), Err(SendError::Closed));
    assert_eq!(sender.send(&b"x"[..]), Err(SendError::Closed));
    assert_eq!(c.recv(), Err(RecvError::Closed));
    assert_eq!(recv_err(&mut s), RecvError::Closed);
    wait_until(WAIT, || gateway.vconns() == 0 && server.conn_count() == 0);
    // Dropping a vconn closes it too.
    let (c, mut s) = pair(&client, &server);
    drop(c);
    assert_eq!(recv_err(&mut s), RecvError::Closed);
}

#[test]
fn local_close_discards_queued_messages() {
    let gateway = FakeGateway::start();
    let (server, client) = (server(&gateway), client(&gateway));
    // A second vconn over the same link: once its marker arrives, everything sent before it on the
    // first vconn is queued at the client (one link, frames in order).
    let (mut marker_c, marker_s) = pair(&client, &server);
    let mut queued_behind_marker = |s: &VConn| {
        s.send(&b"queued"[..]).unwrap();
        marker_s.send(&b"marker"[..]).unwrap();
        assert_eq!(recv(&mut marker_c), &b"marker"[..]);
    };

    let (mut c, s) = pair(&client, &server);
    assert_eq!(c.try_recv(), Ok(None));
    queued_behind_marker(&s);
    c.close();
    assert_eq!(c.try_recv(), Err(RecvError::Closed));
    assert_eq!(c.recv(), Err(RecvError::Closed));

    // After a remote close with messages still queued, a local close discards them too.
    let (mut c, s) = pair(&client, &server);
    queued_behind_marker(&s);
    s.close();
    wait_until(WAIT, || client.conn_count() == 1);
    c.close();
    assert_eq!(c.recv(), Err(RecvError::Closed));

    // A close through a sender is a local close as well.
    let (mut c, s) = pair(&client, &server);
    queued_behind_marker(&s);
    let sender = c.sender();
    assert_eq!(sender.remote_id(), c.remote_id());
    sender.close();
    assert_eq!(c.recv(), Err(RecvError::Closed));
    assert_eq!(c.send(&b"x"[..]), Err(SendError::Closed));
    assert!(!client.is_closed());
}

#[test]
fn endpoint_close_fails_pending_dial_accept_and_recv() {
    let silent = SilentGateway::start();
    let options = EndpointOptions {
        dial_timeout: None,
        ..options()
    };
    let lonely = Endpoint::connect_client(silent.addr, options).unwrap();
    let dialer = lonely.clone();
    let dial = thread::spawn(move || dialer.dial(SERVER_ID).map(|v| v.id()));
    let acceptor = lonely.clone();
    let accept = thread::spawn(move || acceptor.accept().map(|v| v.id()));

    let gateway = FakeGateway::start();
    let (server, client) = (server(&gateway), client(&gateway));
    let (mut c, mut s) = pair(&client, &server);
    let recv = thread::spawn(move || c.recv());

    thread::sleep(Duration::from_millis(100));
    lonely.close();
    client.close();
    assert_eq!(
        dial.join().unwrap(),
        Err(DialError::Closed(LinkError::Shutdown))
    );
    assert_eq!(accept.join().unwrap(), Err(LinkError::Shutdown));
    assert_eq!(
        recv.join().unwrap(),
        Err(RecvError::Link(LinkError::Shutdown))
    );
    // The client's Close frames were flushed before the socket closed.
    assert_eq!(recv_err(&mut s), RecvError::Closed);
}

#[test]
fn dropping_the_last_endpoint_handle_closes_the_link() {
    let gateway = FakeGateway::start();
    let (server, client) = (server(&gateway), client(&gateway));
    let (mut c, mut s) = pair(&client, &server);
    let clone = client.clone();
    drop(client);
    assert_eq!(clone.close_reason(), None);
    drop(clone);
    assert_eq!(recv_err(&mut c), RecvError::Link(LinkError::Shutdown));
    assert_eq!(recv_err(&mut s), RecvError::Closed);
}

#[test]
fn keepalive_pings_and_ping_timeout() {
    let silent = SilentGateway::start();
    let mut options = options();
    options.core.ping_interval = Some(Duration::from_millis(100));
    options.core.ping_timeout = Duration::from_millis(200);
    let client = Endpoint::connect_client(silent.addr, options).unwrap();
    let started = Instant::now();
    assert_eq!(client.closed_timeout(WAIT), Some(LinkError::PingTimeout));
    assert!(started.elapsed() >= Duration::from_millis(250));
    let ping = [5, 0, 0, 0, 0, 0, 0, 0, 5];
    assert!(silent.received().windows(9).any(|w| w == ping));
}

#[test]
fn answered_pings_keep_the_link_up() {
    let gateway = FakeGateway::start();
    let mut options = options();
    options.core.ping_interval = Some(Duration::from_millis(30));
    options.core.ping_timeout = Duration::from_millis(200);
    let client = Endpoint::connect_client(gateway.client_addr, options).unwrap();
    assert_eq!(client.closed_timeout(Duration::from_millis(600)), None);
}

#[test]
fn recv_queue_overflow_closes_that_vconn() {
    let gateway = FakeGateway::start();
    let server = server(&gateway);
    let options = EndpointOptions {
        recv_queue: 2,
        ..options()
    };
    let client = Endpoint::connect_client(gateway.client_addr, options).unwrap();
    let (mut c, mut s) = pair(&client, &server);
    let (mut c2, mut s2) = pair(&client, &server);
    for i in 0..5u8 {
        s.send(vec![i]).unwrap();
    }
    // The overflow closes the vconn, which the server sees.
    assert_eq!(recv_err(&mut s), RecvError::Closed);
    assert_eq!(recv(&mut c), &[0u8][..]);
    assert_eq!(recv(&mut c), &[1u8][..]);
    assert_eq!(c.recv(), Err(RecvError::Overflow));
    assert_eq!(c.send(&b"x"[..]), Err(SendError::Closed));
    // The other vconn is unaffected.
    s2.send(&b"fine"[..]).unwrap();
    assert_eq!(recv(&mut c2), &b"fine"[..]);
    c2.send(&b"ok"[..]).unwrap();
    assert_eq!(recv(&mut s2), &b"ok"[..]);
}

#[test]
fn concurrent_dials_from_many_threads() {
    let gateway = FakeGateway::start();
    let (server, client) = (server(&gateway), client(&gateway));
    let echo = thread::spawn(move || {
        let mut workers = Vec::new();
        while let Ok(Some(mut vconn)) = server.accept_timeout(WAIT) {
            workers.push(thread::spawn(move || {
                while let Ok(message) = vconn.recv() {
                    if vconn.send(message).is_err() {
                        break;
                    }
                }
            }));
            if workers.len() == 8 {
                break;
            }
        }
        for worker in workers {
            worker.join().unwrap();
        }
        server
    });
    let dialers: Vec<_> = (0..8u8)
        .map(|t| {
            let client = client.clone();
            thread::spawn(move || {
                let mut vconn = client.dial(SERVER_ID).unwrap();
                for i in 0..100u8 {
                    vconn.send(vec![t, i]).unwrap();
                    assert_eq!(recv(&mut vconn), &[t, i][..]);
                }
                vconn.id()
            })
        })
        .collect();
    let mut ids: Vec<u32> = dialers.into_iter().map(|d| d.join().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    let server = echo.join().unwrap();
    wait_until(WAIT, || {
        client.conn_count() == 0 && server.conn_count() == 0
    });
    assert_eq!(gateway.vconns(), 0);
}

#[test]
fn send_blocks_under_back_pressure_and_close_releases_it() {
    // A scripted gateway: opens vconn 5 to the client with a Connect frame, then never reads.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let gateway = thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let connect = [13, 0, 0, 0, 0, 0, 0, 0, 2, 5, 0, 0, 0, 9, 0, 0, 0];
        std::io::Write::write_all(&mut socket, &connect).unwrap();
        socket // kept open, never read
    });
    let client = Endpoint::connect_client(addr, options()).unwrap();
    let vconn = client.accept_timeout(WAIT).unwrap().unwrap();
    assert_eq!((vconn.id(), vconn.remote_id()), (5, 9));
    let _socket = gateway.join().unwrap();

    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&sent);
    let sender = vconn.sender();
    let flood = thread::spawn(move || {
        let message = Bytes::from(vec![0u8; 60 * 1024]);
        loop {
            if let Err(error) = sender.send(message.clone()) {
                return error;
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // Progress stops: the sender is held once ~4 MiB wait beyond what the kernel buffers took.
    let mut last = usize::MAX;
    wait_until(WAIT, || {
        thread::sleep(Duration::from_millis(100));
        let now = sent.load(std::sync::atomic::Ordering::Relaxed);
        std::mem::replace(&mut last, now) == now
    });
    assert!(
        last < 1000,
        "{last} messages of 60 KiB queued: no back-pressure"
    );
    client.close();
    assert_eq!(flood.join().unwrap(), SendError::Link(LinkError::Shutdown));
}
