//! Slow peers against the real `fastway` binary (a child process, so its resident memory can be read
//! honestly from `/proc`), on every compiled runtime:
//!
//! * a slow reader: clients that stop reading while a game server floods them. They are dropped when
//!   their bounded queue fills; the gateway's peak RSS stays within [`SLOW_READER_RSS_BOUND_MIB`] of
//!   its RSS before the attack, and the round trips of well-behaved clients keep at least
//!   [`MIN_THROUGHPUT_RATIO`] of the rate measured just before, in the same run;
//! * a flooding client: one client writes as fast as it can to a server that reads slowly. The
//!   gateway stops reading the clients of that server (backpressure) instead of dropping it; the
//!   server, the flooder and the other clients of that server all stay connected, and every message
//!   of the other clients arrives, in order.
//!
//! Tests here take a process-wide lock so that their measurements never overlap.

mod common;

use common::RuntimeKind;
use common::load::{EchoServer, exclusive, split_frames, write_whole};
use common::per_runtime;
use common::process::GatewayProcess;
use common::raw::{Raw, WAIT};
use fastway_core::frame::encode_data;
use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Peak RSS during the slow-reader attack may exceed the RSS before it by at most this much. With a
/// client queue bound of 1 MiB and [`SLOW_CLIENTS_AT_ONCE`] slow clients, queued bytes alone can
/// reach 8 MiB; the rest is read buffers and allocator slack.
const SLOW_READER_RSS_BOUND_MIB: u64 = 48;
/// Peak RSS during the flood may exceed the RSS before it by at most this much (server queue bound
/// 1 MiB in that test).
const FLOOD_RSS_BOUND_MIB: u64 = 48;
/// Well-behaved clients keep at least this fraction of their baseline round-trip rate under attack.
const MIN_THROUGHPUT_RATIO: f64 = 0.5;
const SLOW_CLIENTS_AT_ONCE: usize = 8;
const PHASE: Duration = Duration::from_millis(2000);

per_runtime!(
    slow_readers_are_dropped_with_bounded_memory_and_others_keep_their_throughput,
    a_flooding_client_is_paused_and_its_server_is_not_disconnected,
);

/// Clients doing back-to-back round trips through an echo server, counting them.
struct RoundTrippers {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl RoundTrippers {
    fn start(client_addr: SocketAddr, server_id: u32, count: usize) -> RoundTrippers {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..count)
            .map(|i| {
                let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
                let mut client = Raw::connect(client_addr);
                let conn = client.dial(server_id);
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let payload = format!("client {i} message {n} {}", "x".repeat(32));
                        client.send_data(conn, payload.as_bytes());
                        client.expect_data(conn, payload.as_bytes());
                        done.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                })
            })
            .collect();
        RoundTrippers {
            stop,
            done,
            threads,
        }
    }

    /// Round trips per second over `phase`.
    fn rate(&self, phase: Duration) -> f64 {
        let before = self.done.load(Ordering::Relaxed);
        std::thread::sleep(phase);
        (self.done.load(Ordering::Relaxed) - before) as f64 / phase.as_secs_f64()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("round trips stayed correct");
        }
    }
}

fn runtime_flag(kind: RuntimeKind) -> String {
    format!("--runtime={}", kind.name())
}

fn slow_readers_are_dropped_with_bounded_memory_and_others_keep_their_throughput(
    kind: RuntimeKind,
) {
    let _serial = exclusive();
    let runtime = runtime_flag(kind);
    let name = format!("slowreader-{}", kind.name());
    let queue = "--client-max-queue-bytes=1048576";
    let (mut gw, client_addr, server_addr) = GatewayProcess::start(&name, &[&runtime, queue]);
    let _echo = EchoServer::start(server_addr, 7, "");

    // The flooding server: it floods every vconn opened to it until that vconn closes.
    let mut flood_server = Raw::server(server_addr, 8, "");
    flood_server.ping();
    let open: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicU64::new(0));
    let tracker = {
        let (open, stop) = (Arc::clone(&open), Arc::clone(&stop));
        let mut reader = flood_server.stream.try_clone().expect("clone");
        reader
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        std::thread::spawn(move || {
            let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 65536]);
            while !stop.load(Ordering::Relaxed) {
                match reader.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        continue;
                    }
                    Err(_) => return,
                }
                for (_, frame) in split_frames(&mut buf) {
                    let conn = u32::from_le_bytes(frame[9..13].try_into().expect("4"));
                    match frame[8] {
                        2 => open.lock().expect("lock").insert(conn),
                        4 => open.lock().expect("lock").remove(&conn),
                        _ => false,
                    };
                }
            }
        })
    };
    let flooder = {
        let (open, stop, flooded) = (Arc::clone(&open), Arc::clone(&stop), Arc::clone(&flooded));
        let mut writer = flood_server.stream.try_clone().expect("clone");
        writer
            .set_write_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        std::thread::spawn(move || {
            let payload = vec![0xf1u8; 16 * 1024];
            let mut frame = bytes::BytesMut::new();
            while !stop.load(Ordering::Relaxed) {
                let conns: Vec<u32> = open.lock().expect("lock").iter().copied().collect();
                if conns.is_empty() {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                // At most ~128 MiB/s: enough to fill any queue in milliseconds, without the flooder
                // itself taking the CPU the measured clients need (the machine has two cores).
                std::thread::sleep(Duration::from_millis(1));
                for conn in conns.into_iter().take(8) {
                    frame.clear();
                    encode_data(conn, &payload, &mut frame);
                    if !write_whole(&mut writer, &frame, &stop) {
                        return;
                    }
                    flooded.fetch_add(frame.len() as u64, Ordering::Relaxed);
                }
            }
        })
    };

    let trippers = RoundTrippers::start(client_addr, 7, 4);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = trippers.rate(PHASE);
    let rss_before = gw.rss_kib();

    // The attack: SLOW_CLIENTS_AT_ONCE slow clients, each dials the flooding server, reads its Accept
    // and never reads again; they are held for the whole phase (the kernel's socket buffers take
    // several MiB of each flood before the gateway's queue even starts to fill).
    let attacking = Arc::new(AtomicBool::new(true));
    let attacker = {
        let attacking = Arc::clone(&attacking);
        std::thread::spawn(move || {
            let mut slow: Vec<Raw> = Vec::new();
            while slow.len() < SLOW_CLIENTS_AT_ONCE {
                let mut client = Raw::connect(client_addr);
                client.dial(8);
                slow.push(client);
                std::thread::sleep(Duration::from_millis(20));
            }
            while attacking.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
            slow.len()
        })
    };
    let under_attack = trippers.rate(PHASE);
    attacking.store(false, Ordering::Relaxed);
    let slow_clients = attacker.join().expect("attacker");
    let peak = gw.peak_rss_kib();
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flooder");
    tracker.join().expect("tracker");
    trippers.stop();

    let ratio = under_attack / baseline;
    let growth_mib = peak.saturating_sub(rss_before) / 1024;
    let stats = gw.stats();
    eprintln!(
        "slow reader on {}: {slow_clients} slow clients, {} MiB flooded; round trips/s {baseline:.0} -> {under_attack:.0} (ratio {ratio:.2}); RSS before {} KiB, peak {peak} KiB (+{growth_mib} MiB); queue-full drops {}",
        kind.name(),
        flooded.load(Ordering::Relaxed) >> 20,
        rss_before,
        stats.queue_full
    );
    assert!(
        stats.queue_full >= 1,
        "no slow client was dropped: {stats:?}"
    );
    assert!(
        growth_mib <= SLOW_READER_RSS_BOUND_MIB,
        "RSS grew by {growth_mib} MiB"
    );
    assert!(
        ratio >= MIN_THROUGHPUT_RATIO,
        "throughput fell to {ratio:.2} of baseline"
    );
    assert_eq!(stats.servers, 2, "a game server was dropped: {stats:?}");
}

fn a_flooding_client_is_paused_and_its_server_is_not_disconnected(kind: RuntimeKind) {
    let _serial = exclusive();
    let runtime = runtime_flag(kind);
    let name = format!("flood-{}", kind.name());
    let queue = "--server-max-queue-bytes=1048576";
    let (mut gw, client_addr, server_addr) = GatewayProcess::start(&name, &[&runtime, queue]);

    // The slow server: reads 64 KiB every 5 ms (about 12 MiB/s), records the other clients' messages.
    let mut server = Raw::server(server_addr, 7, "");
    server.ping();
    let stop_server = Arc::new(AtomicBool::new(false));
    let received: Arc<Mutex<HashMap<u32, Vec<String>>>> = Arc::default();
    let pings = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, received, pings) = (
            Arc::clone(&stop_server),
            Arc::clone(&received),
            Arc::clone(&pings),
        );
        let mut stream = server.stream.try_clone().expect("clone");
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        std::thread::spawn(move || {
            let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 64 * 1024]);
            let mut total = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match stream.read(&mut chunk) {
                    Ok(0) => return total,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        total += n as u64;
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return total,
                }
                for (conn, frame) in split_frames(&mut buf) {
                    if conn == 0 && frame.get(8) == Some(&5) {
                        pings.fetch_add(1, Ordering::Relaxed);
                    } else if frame.len() < 64 && conn != 0 {
                        let text = String::from_utf8_lossy(&frame[8..]).into_owned();
                        received
                            .lock()
                            .expect("lock")
                            .entry(conn)
                            .or_default()
                            .push(text);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            total
        })
    };

    let mut flood_client = Raw::connect(client_addr);
    let flood_conn = flood_client.dial(7);
    let mut others: Vec<(Raw, u32)> = (0..3)
        .map(|_| {
            let mut client = Raw::connect(client_addr);
            let conn = client.dial(7);
            (client, conn)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = gw.rss_kib();

    let stop_flood = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, flooded) = (Arc::clone(&stop_flood), Arc::clone(&flooded));
        let mut writer = flood_client.stream.try_clone().expect("clone");
        writer
            .set_write_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        std::thread::spawn(move || {
            let mut frame = bytes::BytesMut::new();
            encode_data(flood_conn, &[0xfau8; 16 * 1024], &mut frame);
            while !stop.load(Ordering::Relaxed) && write_whole(&mut writer, &frame, &stop) {
                flooded.fetch_add(frame.len() as u64, Ordering::Relaxed);
            }
        })
    };
    // The other clients write a numbered message every 20 ms during the flood (their writes may be
    // paused too: they feed the same server).
    let stop_flag = AtomicBool::new(false);
    let mut sent = 0u32;
    let flood_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < flood_until {
        for (client, conn) in &mut others {
            let mut frame = bytes::BytesMut::new();
            encode_data(*conn, format!("seq {sent}").as_bytes(), &mut frame);
            client
                .stream
                .set_write_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            assert!(write_whole(&mut client.stream, &frame, &stop_flag));
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_flood.store(true, Ordering::Relaxed);
    flooder.join().expect("flooder");
    let peak = gw.peak_rss_kib();

    // Every message of the other clients arrives, in order, once the server has read the backlog.
    let deadline = Instant::now() + WAIT * 4;
    loop {
        let complete = {
            let received = received.lock().expect("lock");
            others
                .iter()
                .all(|(_, conn)| received.get(conn).map_or(0, Vec::len) == sent as usize)
        };
        if complete {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other clients' messages did not all arrive"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    {
        let received = received.lock().expect("lock");
        for (_, conn) in &others {
            let expected: Vec<String> = (0..sent).map(|n| format!("seq {n}")).collect();
            assert_eq!(received[conn], expected, "messages of vconn {conn}");
        }
    }
    // Nobody was disconnected: server (its Ping reply comes after the flood backlog), flooder and
    // the others all still answer.
    server.send_command(fastway_core::frame::Command::Ping);
    let deadline = Instant::now() + WAIT * 4;
    while pings.load(Ordering::Relaxed) < 1 {
        assert!(Instant::now() < deadline, "the server got no Ping reply");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_server.store(true, Ordering::Relaxed);
    let server_read = reader.join().expect("reader");
    flood_client.ping_among_commands();
    for (client, _) in &mut others {
        client.ping_among_commands();
    }
    let stats = gw.stats();
    let growth_mib = peak.saturating_sub(rss_before) / 1024;
    eprintln!(
        "flooding client on {}: {} MiB written by the flooder, {} MiB read by the slow server, {} messages x 3 others delivered; RSS before {rss_before} KiB, peak {peak} KiB (+{growth_mib} MiB)",
        kind.name(),
        flooded.load(Ordering::Relaxed) >> 20,
        server_read >> 20,
        sent,
    );
    assert_eq!((stats.servers, stats.clients), (1, 4), "{stats:?}");
    assert_eq!(stats.queue_full, 0, "{stats:?}");
    assert!(
        growth_mib <= FLOOD_RSS_BOUND_MIB,
        "RSS grew by {growth_mib} MiB"
    );
}
