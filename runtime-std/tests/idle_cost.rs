//! Measures what an idle client costs the std gateway (threads, stacks, no read buffer). Ignored by
//! default; run with `cargo test -p fastway-std --release --test idle_cost -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fastway_std::{GatewayConfig, GatewayServer, ServerConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "measurement, not a check; run explicitly"]
fn idle_clients_cost_little() {
    const CLIENTS: usize = 2000;
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server =
        GatewayServer::bind(ServerConfig::new(GatewayConfig::default(), local, local)).unwrap();
    let addr = server.client_addr();
    let handle = server.handle();
    let running = thread::spawn(move || server.run());
    thread::sleep(Duration::from_millis(100));
    let before = rss_kib();
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(TcpStream::connect(addr).unwrap());
    }
    while handle.stats().clients < CLIENTS {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200));
    let idle = rss_kib();
    // One ping each: now every connection has allocated its read buffer.
    for client in &mut clients {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.write_all(&[5, 0, 0, 0, 0, 0, 0, 0, 5]).unwrap();
        let mut reply = [0u8; 9];
        client.read_exact(&mut reply).unwrap();
    }
    let active = rss_kib();
    println!(
        "{CLIENTS} clients: idle {:.1} KiB/client, after one ping {:.1} KiB/client (RSS of gateway + test clients)",
        (idle - before) as f64 / CLIENTS as f64,
        (active - before) as f64 / CLIENTS as f64
    );
    handle.shutdown();
    running.join().unwrap().unwrap();
}
