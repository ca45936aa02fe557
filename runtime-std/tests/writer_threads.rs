//! What a connection costs in threads: a reader each, and a writer only while there is something a
//! routing thread could not send itself. One test per binary, so no other test's gateway threads are
//! counted. Linux only (thread names come from `/proc/self/task`).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fastway_std::{GatewayConfig, GatewayServer, ServerConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const PING: [u8; 9] = [5, 0, 0, 0, 0, 0, 0, 0, 5];

/// How many threads of this process have a name starting with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[test]
fn clients_whose_replies_fit_in_the_socket_have_no_writer_thread() {
    const CLIENTS: usize = 10;
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server =
        GatewayServer::bind(ServerConfig::new(GatewayConfig::default(), local, local)).unwrap();
    let addr = server.client_addr();
    let handle = server.handle();
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
    // Each reply is sent by the client's own reader, which routed the ping.
    for client in &mut clients {
        client.write_all(&PING).unwrap();
        let mut reply = [0u8; 9];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(reply, PING);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while threads_named("fw-r-") < CLIENTS {
        assert!(Instant::now() < deadline, "reader threads did not start");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(threads_named("fw-r-"), CLIENTS);
    assert_eq!(
        threads_named("fw-w-"),
        0,
        "an idle client has a writer thread"
    );
    drop(clients);
    handle.shutdown();
    running.join().unwrap().unwrap();
}
