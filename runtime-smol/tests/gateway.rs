//! End-to-end tests of the smol gateway over real loopback sockets (127.0.0.1, port 0 only), with raw
//! `std::net` clients and servers. Every read has a timeout, so a failure cannot hang the suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use fastway_core::gateway::{QueueLimits, Side};
use fastway_smol::{GatewayHandle, GatewayServer};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::*;

#[test]
fn handle_is_send_sync_and_run_is_send() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<GatewayHandle>();
    let localhost = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = smol::block_on(GatewayServer::bind(fastway_smol::ServerConfig::new(
        localhost, localhost,
    )))
    .unwrap();
    server.handle().shutdown();
    let run = server.run();
    send(&run);
    smol::block_on(run).unwrap();
}

#[test]
fn bind_resolves_ephemeral_ports_and_logs_the_addresses() {
    let gw = Running::start(|_| {});
    for addr in [gw.client, gw.server] {
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_ne!(addr.port(), 0);
    }
    assert_ne!(gw.client, gw.server);
    let line = wait_for_log(&format!("setup client listener at - {}", gw.client));
    assert!(line.starts_with("INFO"), "{line}");
    let line = wait_for_log(&format!("setup server listener at - {}", gw.server));
    assert!(line.starts_with("INFO"), "{line}");
    gw.stop().unwrap();
}

#[test]
fn dial_data_ping_and_close_flow_between_client_and_server() {
    let gw = Running::start(|_| {});
    let mut server = gw.server(7);
    let server_local = server.local_addr().unwrap();
    wait_for_log(&format!("accept server 7 from {server_local}"));

    let mut client = gw.client();
    client.write_all(&dial(7)).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), accept(1, 7));
    assert_eq!(read_frame(&mut server).unwrap(), connect_cmd(1, 1));

    client.write_all(&data(1, b"Hello")).unwrap();
    assert_eq!(read_frame(&mut server).unwrap(), data(1, b"Hello"));
    server.write_all(&data(1, b"")).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), data(1, b""));
    // Several frames in one write arrive verbatim and in order.
    let mut burst = Vec::new();
    for i in 0..50u8 {
        burst.extend_from_slice(&data(1, &[i; 33]));
    }
    server.write_all(&burst).unwrap();
    let mut got = vec![0u8; burst.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, burst);

    client.write_all(&ping()).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), ping());
    server.write_all(&ping()).unwrap();
    assert_eq!(read_frame(&mut server).unwrap(), ping());

    let peers = gw.handle.peers();
    assert_eq!(peers.len(), 2);
    assert!(
        peers
            .iter()
            .any(|p| p.side == Side::Server && p.id == Some(7) && p.vconns == [1])
    );
    assert!(
        peers
            .iter()
            .any(|p| p.side == Side::Client && p.id == Some(1) && p.vconns == [1])
    );

    client.write_all(&close(1)).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), close(1));
    assert_eq!(read_frame(&mut server).unwrap(), close(1));

    let stats = gw.handle.stats();
    assert_eq!((stats.clients, stats.servers, stats.vconns), (1, 1, 0));
    assert_eq!(stats.dials_accepted, 1);
    assert_eq!(stats.frames_routed, 52);
    assert_eq!(stats.bytes_routed, (13 + 8 + 50 * 41) as u64);
    gw.stop().unwrap();
}

#[test]
fn unknown_server_is_refused_and_data_on_unknown_vconn_is_closed() {
    let gw = Running::start(|_| {});
    let mut client = gw.client();
    client.write_all(&dial(8)).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), refuse(8));
    client.write_all(&data(99, b"x")).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), close(99));
    // The client is still served.
    client.write_all(&ping()).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), ping());
    assert_eq!(gw.handle.stats().dials_refused, 1);
    gw.stop().unwrap();
}

#[test]
fn clients_over_the_limit_are_closed_at_once() {
    let gw = Running::start(|config| config.gateway.max_clients = 1);
    let mut first = gw.client();
    first.write_all(&ping()).unwrap();
    assert_eq!(read_frame(&mut first).unwrap(), ping());
    let mut second = gw.client();
    expect_closed(&mut second);
    wait_for_log("refuse client from");
    assert_eq!(gw.handle.stats().clients_refused, 1);
    first.write_all(&ping()).unwrap();
    assert_eq!(read_frame(&mut first).unwrap(), ping());
    gw.stop().unwrap();
}

#[test]
fn wrong_auth_key_closes_the_socket_without_sending_anything() {
    let gw = Running::start(|_| {});
    let mut server = auth_server(gw.server, b"wrong", 7);
    let local = server.local_addr().unwrap();
    expect_closed(&mut server);
    let line = wait_for_log(&format!(
        "error happends when accept server from {local}: server auth failed"
    ));
    assert!(
        line.starts_with("WARN") || line.starts_with("ERROR"),
        "{line}"
    );
    wait_until(|| gw.handle.stats().auth_failures == 1);
    assert_eq!(gw.handle.stats().servers, 0);
    gw.stop().unwrap();
}

#[test]
fn silent_server_is_dropped_after_the_handshake_deadline() {
    let gw = Running::start(|config| config.gateway.handshake_timeout = Duration::from_millis(300));
    let started = Instant::now();
    let mut server = connect(gw.server);
    let mut challenge = [0u8; 8];
    server.read_exact(&mut challenge).unwrap();
    assert_eq!(gw.handle.stats().handshaking, 1);
    expect_closed(&mut server);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "dropped too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "dropped too late: {elapsed:?}"
    );
    wait_until(|| gw.handle.stats().handshaking == 0);
    gw.stop().unwrap();
}

#[test]
fn idle_timeout_drops_a_silent_client_but_not_a_talking_one() {
    let gw = Running::start(|config| {
        config.gateway.client_idle_timeout = Some(Duration::from_millis(300));
    });
    let started = Instant::now();
    let mut silent = gw.client();
    let mut talking = gw.client();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        talking.write_all(&ping()).unwrap();
        assert_eq!(read_frame(&mut talking).unwrap(), ping());
    }
    expect_closed(&mut silent);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "dropped too early: {elapsed:?}"
    );
    talking.write_all(&ping()).unwrap();
    assert_eq!(read_frame(&mut talking).unwrap(), ping());
    assert_eq!(gw.handle.stats().timeout_drops, 1);
    gw.stop().unwrap();
}

#[test]
fn malformed_input_drops_only_the_offender() {
    let gw = Running::start(|config| config.gateway.max_packet = 1024);
    let mut server = gw.server(7);
    let (mut bystander, conn) = gw.dialed_client(7);
    assert_eq!(read_frame(&mut server).unwrap()[8], 2);

    let offences: [(&str, Vec<u8>); 5] = [
        ("oversize length", 1025u32.to_le_bytes().to_vec()),
        ("too-short frame", vec![2, 0, 0, 0, 0, 0]),
        ("too-short command", vec![4, 0, 0, 0, 0, 0, 0, 0]),
        ("unknown command", command(9, &[])),
        ("gateway-only command", accept(1, 7)),
    ];
    for (i, (what, bytes)) in offences.iter().enumerate() {
        let mut offender = gw.client();
        offender.write_all(bytes).unwrap();
        expect_closed(&mut offender);
        wait_until(|| gw.handle.stats().protocol_drops == i as u64 + 1);
        bystander.write_all(&data(conn, what.as_bytes())).unwrap();
        assert_eq!(
            read_frame(&mut server).unwrap(),
            data(conn, what.as_bytes())
        );
        server.write_all(&data(conn, b"ok")).unwrap();
        assert_eq!(read_frame(&mut bystander).unwrap(), data(conn, b"ok"));
    }
    wait_for_log("malformed input");
    // A frame of exactly MaxPacket is fine.
    let payload = vec![0xab; 1020];
    bystander.write_all(&data(conn, &payload)).unwrap();
    assert_eq!(read_frame(&mut server).unwrap(), data(conn, &payload));
    gw.stop().unwrap();
}

#[test]
fn frames_larger_than_the_read_buffers_are_forwarded_verbatim() {
    let gw = Running::start(|config| {
        config.client_read_buffer = 2048;
        config.server_read_buffer = 4096;
    });
    let mut server = gw.server(7);
    let (mut client, conn) = gw.dialed_client(7);
    read_frame(&mut server).unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let client_side = client.try_clone().unwrap();
    let sent = data(conn, &big);
    let writer = std::thread::spawn(move || (&client_side).write_all(&sent));
    assert_eq!(read_frame(&mut server).unwrap(), data(conn, &big));
    writer.join().unwrap().unwrap();
    let server_side = server.try_clone().unwrap();
    let sent = data(conn, &big);
    let writer = std::thread::spawn(move || (&server_side).write_all(&sent));
    assert_eq!(read_frame(&mut client).unwrap(), data(conn, &big));
    writer.join().unwrap().unwrap();
    gw.stop().unwrap();
}

#[test]
fn a_leaving_server_closes_every_vconn_of_its_clients() {
    let gw = Running::start(|_| {});
    let server = gw.server(7);
    let (mut client, first) = gw.dialed_client(7);
    client.write_all(&dial(7)).unwrap();
    let second = u32_at(&read_frame(&mut client).unwrap(), 9);
    let (mut other, third) = gw.dialed_client(7);
    drop(server);
    let mut closes = vec![
        read_frame(&mut client).unwrap(),
        read_frame(&mut client).unwrap(),
    ];
    closes.sort();
    let mut expected = vec![close(first), close(second)];
    expected.sort();
    assert_eq!(closes, expected);
    assert_eq!(read_frame(&mut other).unwrap(), close(third));
    wait_until(|| gw.handle.stats().servers == 0);
    assert_eq!(gw.handle.stats().vconns, 0);
    // The clients stay connected.
    client.write_all(&ping()).unwrap();
    assert_eq!(read_frame(&mut client).unwrap(), ping());
    gw.stop().unwrap();
}

#[test]
fn shutdown_flushes_closes_every_socket_and_returns() {
    let gw = Running::start(|_| {});
    let mut server = gw.server(7);
    let (mut client, conn) = gw.dialed_client(7);
    assert_eq!(read_frame(&mut server).unwrap()[8], 2);
    let mut idle = gw.client();
    let client_addr = gw.client;
    let started = Instant::now();
    gw.stop().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(read_frame(&mut client).unwrap(), close(conn));
    expect_closed(&mut client);
    assert_eq!(read_frame(&mut server).unwrap(), close(conn));
    expect_closed(&mut server);
    expect_closed(&mut idle);
    // The listeners are gone.
    assert!(TcpStream::connect_timeout(&client_addr, TIMEOUT).is_err());
}

#[test]
fn a_client_that_stops_reading_is_dropped_without_harming_another() {
    let gw = Running::start(|config| {
        config.gateway.client_queue = QueueLimits {
            max_frames: 256,
            max_bytes: 256 << 10,
        };
    });
    let mut server = gw.server(7);
    // The slow client has a small receive window so the kernel buffers fill quickly.
    let mut slow = connect_small_window(gw.client);
    slow.write_all(&dial(7)).unwrap();
    let slow_conn = u32_at(&read_frame(&mut slow).unwrap(), 9);
    let (mut fast, fast_conn) = gw.dialed_client(7);
    read_frame(&mut server).unwrap();
    read_frame(&mut server).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = Arc::clone(&stop);
        let mut out = server.try_clone().unwrap();
        let frame = data(slow_conn, &[7u8; 16 << 10]);
        std::thread::spawn(move || {
            let mut batch = Vec::new();
            for _ in 0..8 {
                batch.extend_from_slice(&frame);
            }
            // At most 64 MiB, far more than the socket buffers can hide.
            for _ in 0..512 {
                if stop.load(Ordering::Relaxed) || out.write_all(&batch).is_err() {
                    break;
                }
            }
        })
    };
    // Once the slow client is dropped the gateway answers its vconn's data with Close.
    loop {
        let frame = read_frame(&mut server).unwrap();
        if frame == close(slow_conn) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    assert_eq!(gw.handle.stats().queue_full_drops, 1);
    wait_for_log("outbound queue full");

    server.write_all(&data(fast_conn, b"still here")).unwrap();
    assert_eq!(
        read_frame(&mut fast).unwrap(),
        data(fast_conn, b"still here")
    );
    fast.write_all(&data(fast_conn, b"me too")).unwrap();
    loop {
        let frame = read_frame(&mut server).unwrap();
        if frame == data(fast_conn, b"me too") {
            break;
        }
        assert_eq!(frame, close(slow_conn));
    }
    // The slow client gets whatever the kernel held, then the end of the stream.
    slow.shutdown(Shutdown::Write).unwrap();
    let mut sink = Vec::new();
    let _ = slow.read_to_end(&mut sink);
    gw.stop().unwrap();
}

/// The same session under async-std's executor: `run` awaited from `async_std::task::block_on`, and
/// from a task spawned with `async_std::task::spawn` (which also proves the future is `Send`).
#[test]
fn runs_under_async_std() {
    for exec in [Exec::AsyncStdBlockOn, Exec::AsyncStdSpawn] {
        let gw = Running::start_on(exec, |config| {
            config.gateway.client_idle_timeout = Some(Duration::from_millis(300));
        });
        let mut server = gw.server(7);
        let (mut client, conn) = gw.dialed_client(7);
        assert_eq!(read_frame(&mut server).unwrap(), connect_cmd(conn, 1));
        client.write_all(&data(conn, b"Hello")).unwrap();
        assert_eq!(read_frame(&mut server).unwrap(), data(conn, b"Hello"));
        server.write_all(&data(conn, b"World")).unwrap();
        assert_eq!(read_frame(&mut client).unwrap(), data(conn, b"World"));
        // The timer works there too: the silent client is dropped and the server told.
        assert_eq!(read_frame(&mut server).unwrap(), close(conn));
        expect_closed(&mut client);
        assert_eq!(gw.handle.stats().timeout_drops, 1, "{exec:?}");
        gw.stop().unwrap();
        expect_closed(&mut server);
    }
}

#[test]
fn a_backed_up_server_pauses_its_senders_and_resumes_them_without_loss() {
    let gw = Running::start(|config| {
        config.gateway.server_queue = QueueLimits {
            max_frames: 1 << 20,
            max_bytes: 1 << 20,
        };
    });
    let mut server = answer_challenge(connect_small_window(gw.server), b"key", 7);
    wait_until(|| gw.handle.stats().servers == 1);
    let (client, conn) = gw.dialed_client(7);
    assert_eq!(read_frame(&mut server).unwrap(), connect_cmd(conn, 1));

    // 8 MiB in 16 KiB frames, each carrying its sequence number, while the server does not read.
    const FRAMES: u32 = 512;
    let flooder = {
        let mut out = client.try_clone().unwrap();
        std::thread::spawn(move || {
            for seq in 0..FRAMES {
                let mut payload = vec![(seq % 251) as u8; 16 << 10];
                payload[..4].copy_from_slice(&seq.to_le_bytes());
                out.write_all(&data(conn, &payload)).unwrap();
            }
        })
    };
    wait_until(|| {
        gw.handle
            .peers()
            .iter()
            .any(|p| p.side == Side::Client && p.paused)
    });
    // Now drain: every frame arrives once, in order, verbatim.
    for seq in 0..FRAMES {
        let frame = read_frame(&mut server).unwrap();
        let mut payload = vec![(seq % 251) as u8; 16 << 10];
        payload[..4].copy_from_slice(&seq.to_le_bytes());
        assert!(frame == data(conn, &payload), "frame {seq} differs");
    }
    flooder.join().unwrap();
    let stats = gw.handle.stats();
    assert_eq!(
        (stats.queue_full_drops, stats.clients, stats.servers),
        (0, 1, 1)
    );
    assert_eq!(stats.frames_routed, u64::from(FRAMES));
    assert!(gw.handle.peers().iter().all(|p| !p.paused));
    drop(client);
    gw.stop().unwrap();
}
