//! Measures what an idle client costs the gateway: connects N clients that never send, and prints the
//! growth of the process's resident memory per client (the clients' own std sockets cost a few
//! bytes each; kernel socket buffers are not in RSS).
//!
//! `cargo run --release -p fastway-smol --example idle_rss -- 5000` (mind `ulimit -n`: 2 fds each).

#![allow(clippy::unwrap_used)]

use fastway_smol::{GatewayServer, ServerConfig};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(2000, |s| s.parse().unwrap());
    let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
    let server =
        smol::block_on(GatewayServer::bind(ServerConfig::new(localhost, localhost))).unwrap();
    let addr = server.client_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || smol::block_on(server.run()));
    let wait_for = |count: usize| {
        while handle.stats().clients < count {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // Warm up allocator arenas and the reactor before measuring.
    let warm: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
    wait_for(warm.len());
    let before = rss_kib();
    let idle: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    wait_for(warm.len() + idle.len());
    std::thread::sleep(Duration::from_millis(200));
    let grown = rss_kib() - before;
    println!(
        "{n} idle clients: {grown} KiB, {:.2} KiB per client",
        grown as f64 / n as f64
    );
    handle.shutdown();
    thread.join().unwrap().unwrap();
}
