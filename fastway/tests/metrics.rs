//! The metrics endpoint against every compiled runtime: real peers route frames, get refused, break
//! the protocol and fail auth; then a scrape over HTTP must show exactly those numbers.

mod common;

use common::per_runtime;
use common::raw::{Raw, eventually};
use common::scrape::{http, scrape};
use common::{Gw, RuntimeKind, test_config};
use fastway::metrics::MetricsServer;
use fastway_core::frame::Command;
use fastway_core::gateway::GatewayConfig;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

per_runtime!(
    a_scrape_shows_exactly_what_the_peers_did,
    the_endpoint_answers_404_elsewhere_and_stops_with_the_gateway,
);

const KEY: &str = "k";
/// Data frames routed each way.
const N: u64 = 10;

fn config() -> GatewayConfig {
    GatewayConfig {
        auth_key: KEY.as_bytes().to_vec(),
        ..test_config()
    }
}

fn metrics_for(gw: &Gw) -> MetricsServer {
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    MetricsServer::for_gateway(any_port, gw.running()).expect("metrics endpoint starts")
}

/// The wire length of a command frame.
fn len(command: Command) -> u64 {
    command.to_bytes().len() as u64
}

fn a_scrape_shows_exactly_what_the_peers_did(kind: RuntimeKind) {
    let gw = Gw::start(kind, config());
    let metrics = metrics_for(&gw);

    let mut server = Raw::server(gw.server, 7, KEY);
    server.ping();
    let mut client = Raw::connect(gw.client);
    let conn = client.dial(7);
    assert_eq!(server.expect_connect(), (conn, 1));
    let mut payload_bytes = 0;
    for i in 0..N {
        let up = format!("up {i}");
        let down = format!("down, longer {i}");
        client.send_data(conn, up.as_bytes());
        server.expect_data(conn, up.as_bytes());
        server.send_data(conn, down.as_bytes());
        client.expect_data(conn, down.as_bytes());
        payload_bytes += (up.len() + down.len()) as u64;
    }
    // A dial nobody can take.
    client.send_command(Command::Dial { remote: 99 });
    client.expect_command(Command::Refuse { remote: 99 });
    // A client sending a gateway-only command is dropped for breaking the protocol.
    let mut rogue = Raw::connect(gw.client);
    rogue.send_command(Command::Accept { conn: 5, remote: 5 });
    rogue.expect_closed();
    // A server with the wrong key fails auth.
    let mut impostor = Raw::server(gw.server, 8, "wrong key");
    impostor.expect_closed();
    // Server 9 comes and goes: it stays listed, offline.
    let mut leaving = Raw::server(gw.server, 9, KEY);
    leaving.ping();
    drop(leaving);
    eventually("server 9 gone", || gw.stats().servers == 1);

    let ping = len(Command::Ping);
    let dial = len(Command::Dial { remote: 7 });
    let accept = len(Command::Accept { conn, remote: 7 });
    let refuse = len(Command::Refuse { remote: 99 });
    let forbidden = len(Command::Accept { conn: 5, remote: 5 });
    let headers = 8 * N;
    let scraped = scrape(metrics.local_addr());
    scraped.expect(&[
        ("fastway_peers{side=\"client\"}", 1),
        ("fastway_peers{side=\"server\"}", 1),
        ("fastway_peers{side=\"server_handshaking\"}", 0),
        ("fastway_vconns", 1),
        ("fastway_server_online{server_id=\"7\"}", 1),
        ("fastway_server_online{server_id=\"9\"}", 0),
        // Client in: two dials, N data frames, the rogue's forbidden command.
        (
            "fastway_frames_total{side=\"client\",direction=\"in\"}",
            N + 3,
        ),
        // Client out: Accept, N data frames, Refuse.
        (
            "fastway_frames_total{side=\"client\",direction=\"out\"}",
            N + 2,
        ),
        // Server in: two pings (servers 7 and 9), N data frames.
        (
            "fastway_frames_total{side=\"server\",direction=\"in\"}",
            N + 2,
        ),
        // Server out: two ping answers, Connect, N data frames (challenges are not frames).
        (
            "fastway_frames_total{side=\"server\",direction=\"out\"}",
            N + 3,
        ),
        ("fastway_dials_total{result=\"accepted\"}", 1),
        (
            "fastway_dials_total{result=\"refused\",reason=\"no_such_server\"}",
            1,
        ),
        (
            "fastway_dials_total{result=\"refused\",reason=\"no_such_client\"}",
            0,
        ),
        (
            "fastway_dials_total{result=\"refused\",reason=\"vconn_limit\"}",
            0,
        ),
        ("fastway_drops_total{reason=\"protocol_violation\"}", 1),
        ("fastway_drops_total{reason=\"auth_failure\"}", 1),
        ("fastway_drops_total{reason=\"idle\"}", 0),
        ("fastway_drops_total{reason=\"write_stall\"}", 0),
        ("fastway_drops_total{reason=\"queue_full\"}", 0),
        ("fastway_snet_reconnects_total{side=\"client\"}", 0),
        ("fastway_clients_refused_total", 0),
    ]);
    let up_bytes: u64 = (0..N).map(|i| format!("up {i}").len() as u64).sum();
    let down_bytes = payload_bytes - up_bytes;
    let client_in = 2 * dial + forbidden + up_bytes + headers;
    let client_out = accept + refuse + down_bytes + headers;
    let server_in = 2 * ping + down_bytes + headers;
    let server_out = 2 * ping + len(Command::Connect { conn, remote: 1 }) + up_bytes + headers;
    scraped.expect(&[
        (
            "fastway_bytes_total{side=\"client\",direction=\"in\"}",
            client_in,
        ),
        (
            "fastway_bytes_total{side=\"client\",direction=\"out\"}",
            client_out,
        ),
        (
            "fastway_bytes_total{side=\"server\",direction=\"in\"}",
            server_in,
        ),
        (
            "fastway_bytes_total{side=\"server\",direction=\"out\"}",
            server_out,
        ),
    ]);
    assert!(
        !scraped.has("fastway_server_online{server_id=\"8\"}"),
        "a server that failed auth never held an id"
    );
    let build = format!(
        "fastway_build_info{{version=\"{}\",runtime=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        kind.name()
    );
    scraped.expect(&[(build.as_str(), 1)]);

    // The next scrape is a new snapshot.
    drop(client);
    eventually("client gone", || gw.stats().clients == 0);
    scrape(metrics.local_addr())
        .expect(&[("fastway_peers{side=\"client\"}", 0), ("fastway_vconns", 0)]);
    metrics.stop();
    gw.shutdown();
}

fn the_endpoint_answers_404_elsewhere_and_stops_with_the_gateway(kind: RuntimeKind) {
    let gw = Gw::start(kind, config());
    let metrics = metrics_for(&gw);
    let addr = metrics.local_addr();
    let (status, _) = http(addr, "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, 404);
    let (status, _) = http(addr, "DELETE /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, 405);
    let (status, _) = http(addr, "nonsense\r\n\r\n");
    assert_eq!(status, 400);
    scrape(addr).expect(&[("fastway_peers{side=\"client\"}", 0)]);
    metrics.stop();
    gw.shutdown();
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens on {addr} after stop"
    );
}
