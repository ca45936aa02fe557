//! Soak: thousands of clients held at once, opening and closing vconns, exchanging messages and
//! reconnecting for a bounded time against the `fastway` binary (a child process, so its memory is
//! read from `/proc`), on every compiled runtime. At the end every client leaves: the live peer and
//! vconn counts must return to their start (two echo servers, no client, no vconn), every message
//! must have come back byte for byte, and RSS must return near its start.
//!
//! Defaults keep it short for the normal suite (3 s, 1,000 clients per runtime). A long run:
//!
//! ```text
//! FASTWAY_SOAK_SECS=600 FASTWAY_SOAK_CLIENTS=10000 cargo test --release -p fastway --all-features \
//!     --test soak -- --nocapture
//! ```

mod common;

use common::RuntimeKind;
use common::load::{EchoServer, exclusive};
use common::per_runtime;
use common::process::GatewayProcess;
use common::raw::{Raw, WAIT};
use fastway_core::frame::Command;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// After the soak, RSS may exceed its value before the clients came by at most this much (the
/// allocator keeps some freed memory; connection state itself must be gone).
const RSS_RETURN_SLACK_MIB: u64 = 24;
const WORKERS: usize = 4;

per_runtime!(soak_returns_to_zero);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One client slot: a connection (or none, between reconnects) and its open vconns.
struct Slot {
    client: Option<Raw>,
    vconns: Vec<u32>,
}

/// What one worker did.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    connects: u64,
    dials: u64,
    closes: u64,
    messages: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.connects += other.connects;
        self.dials += other.dials;
        self.closes += other.closes;
        self.messages += other.messages;
        self.bytes += other.bytes;
    }
}

/// Cheap deterministic pseudo-random numbers.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Holds `clients` connections and cycles through them until `until`: dial, exchange, close,
/// reconnect. Every echo is checked byte for byte.
fn worker(addr: SocketAddr, clients: usize, until: Instant, seed: u64) -> Tally {
    let mut tally = Tally::default();
    let mut slots: Vec<Slot> = (0..clients)
        .map(|_| {
            tally.connects += 1;
            Slot {
                client: Some(Raw::connect(addr)),
                vconns: Vec::new(),
            }
        })
        .collect();
    let mut rng = seed | 1;
    while Instant::now() < until {
        for slot in &mut slots {
            let roll = next(&mut rng) % 100;
            let Some(client) = slot.client.as_mut() else {
                slot.client = Some(Raw::connect(addr));
                tally.connects += 1;
                continue;
            };
            match roll {
                0..=2 => {
                    // Leave abruptly, vconns and all; reconnect next round.
                    slot.client = None;
                    slot.vconns.clear();
                }
                3..=19 if slot.vconns.len() < 4 => {
                    let server = 7 + (roll % 2) as u32;
                    slot.vconns.push(client.dial(server));
                    tally.dials += 1;
                }
                20..=29 if !slot.vconns.is_empty() => {
                    let conn = slot.vconns.remove(0);
                    client.send_command(Command::Close { conn });
                    client.expect_command(Command::Close { conn });
                    tally.closes += 1;
                }
                _ if !slot.vconns.is_empty() => {
                    let conn = slot.vconns[(roll as usize) % slot.vconns.len()];
                    let len = (next(&mut rng) % 200) as usize;
                    let payload: Vec<u8> = (0..len).map(|i| (i as u8) ^ (conn as u8)).collect();
                    client.send_data(conn, &payload);
                    client.expect_data(conn, &payload);
                    tally.messages += 1;
                    tally.bytes += len as u64;
                }
                _ => client.ping(),
            }
        }
    }
    tally
}

fn soak_returns_to_zero(kind: RuntimeKind) {
    let _serial = exclusive();
    let _ = fastway::limits::raise_nofile_limit();
    let secs = env_or("FASTWAY_SOAK_SECS", 3);
    let clients = env_or("FASTWAY_SOAK_CLIENTS", 1000) as usize;
    let runtime = format!("--runtime={}", kind.name());
    let name = format!("soak-{}", kind.name());
    let (mut gw, client_addr, server_addr) = GatewayProcess::start(
        &name,
        &[&runtime, "-ClientIdleTimeout=0", "-ServerIdleTimeout=0"],
    );
    let echoes = [
        EchoServer::start(server_addr, 7, ""),
        EchoServer::start(server_addr, 8, ""),
    ];
    let start = gw.stats_until(WAIT, |s| s.servers == 2);
    let rss_start = gw.rss_kib();

    let until = Instant::now() + Duration::from_secs(secs);
    let per_worker = clients.div_ceil(WORKERS);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            std::thread::spawn(move || {
                worker(client_addr, per_worker, until, 0x9e37_79b9 + w as u64)
            })
        })
        .collect();
    // Sample the counts while the clients are held.
    std::thread::sleep(Duration::from_secs(secs).min(Duration::from_secs(1)));
    let during = gw.stats();
    let rss_during = gw.rss_kib();
    let mut total = Tally::default();
    for worker in workers {
        total.add(worker.join().expect("every exchange was byte-exact"));
    }
    // Every client has left (the workers dropped their sockets).
    let end = gw.stats_until(WAIT * 2, |s| s.clients == 0 && s.vconns == 0);
    std::thread::sleep(Duration::from_millis(300));
    let rss_end = gw.rss_kib();
    eprintln!(
        "soak on {}: {secs} s, {} clients held ({} at the sample, {} vconns); {} connects, {} dials, {} closes, {} messages ({} bytes) echoed exactly; RSS start {rss_start} KiB, during {rss_during} KiB, end {rss_end} KiB",
        kind.name(),
        per_worker * WORKERS,
        during.clients,
        during.vconns,
        total.connects,
        total.dials,
        total.closes,
        total.messages,
        total.bytes,
    );
    assert!(echoes.iter().all(EchoServer::writable));
    assert_eq!(
        (end.clients, end.servers, end.handshaking, end.vconns),
        (0, start.servers, 0, 0),
        "counts did not return to their start: {end:?}"
    );
    assert!(
        during.clients as usize >= clients / 2,
        "too few clients held at once: {during:?}"
    );
    assert!(
        rss_end <= rss_start + RSS_RETURN_SLACK_MIB * 1024,
        "RSS did not return near its start: {rss_start} KiB -> {rss_end} KiB"
    );
    assert!(total.messages > 0 && total.dials > 0 && total.closes > 0);
}
