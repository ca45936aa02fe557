//! What connections cost in threads: none. The gateway serves every socket from the thread that
//! calls `run`, however many clients connect and talk. One test per binary, so no other test's
//! threads are counted. Linux only (threads are counted in `/proc/self/task`).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fastway_std::{GatewayConfig, GatewayServer, ServerConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

const PING: [u8; 9] = [5, 0, 0, 0, 0, 0, 0, 0, 5];

/// How many threads this process has.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn the_gateway_serves_every_connection_from_the_thread_that_runs_it() {
    const CLIENTS: usize = 20;
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server =
        GatewayServer::bind(ServerConfig::new(GatewayConfig::default(), local, local)).unwrap();
    let addr = server.client_addr();
    let handle = server.handle();
    let before = thread_count();
    let running = thread::spawn(move || server.run());
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let client = TcpStream::connect(addr).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            client
        })
        .collect();
    // Every client is served (pings are answered), with data in flight on all of them at once.
    for client in &mut clients {
        client.write_all(&PING).unwrap();
    }
    for client in &mut clients {
        let mut reply = [0u8; 9];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(reply, PING);
    }
    assert_eq!(handle.stats().clients, CLIENTS);
    assert_eq!(
        thread_count(),
        before + 1,
        "the gateway started threads besides the one running it"
    );
    drop(clients);
    handle.shutdown();
    running.join().unwrap().unwrap();
}
