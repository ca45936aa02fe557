//! The `fastway` binary as a child process on ephemeral loopback ports: it serves, answers SIGUSR1 +
//! `fastway.cmd`, exits 0 on SIGTERM/SIGINT and removes its pid file, and takes the original's flags.

mod common;

use common::process::{GatewayProcess as Gateway, LOOPBACK};
use common::raw::Raw;
use fastway::config::RuntimeKind;
use fastway_core::frame::Command;
use std::time::Duration;

#[test]
fn original_flag_spelling_serves_and_sigterm_exits_0_removing_the_pid_file() {
    let mut gw = Gateway::spawn(
        "orig",
        &[
            "-ClientAddr=127.0.0.1:0",
            "-ServerAddr",
            "127.0.0.1:0",
            "-ServerAuthKey=k",
            "-ClientMaxConn=4",
            "-ClientIdleTimeout=1m30s",
            "-ReusePort=false",
            "-MemPoolType=sync",
            "-MaxPacket",
            "0x10000",
        ],
        None,
    );
    let client_addr = gw.bound("client");
    let server_addr = gw.bound("server");
    let pid = gw.wait_pid_file("fastway.pid");
    assert_eq!(
        pid,
        gw.child.id().to_string(),
        "pid file holds the decimal pid, no newline"
    );

    let mut server = Raw::server(server_addr, 7, "k");
    gw.wait_for("accept server 7 from");
    let mut client = Raw::connect(client_addr);
    let conn = client.dial(7);
    assert_eq!(server.expect_connect(), (conn, 1));
    client.send_data(conn, b"through the binary");
    server.expect_data(conn, b"through the binary");

    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
    gw.wait_for("fastway killed");
    assert!(!gw.path("fastway.pid").exists(), "pid file removed");
}

#[test]
fn sigusr1_runs_the_command_file_and_sigint_exits_0() {
    let mut gw = Gateway::spawn("cmd", &LOOPBACK, None);
    let client_addr = gw.bound("client");
    gw.wait_pid_file("fastway.pid");
    let mut client = Raw::connect(client_addr);
    client.ping();

    std::fs::write(gw.path("fastway.cmd"), "  stats \n").expect("write cmd");
    gw.signal("USR1");
    let stats = gw.wait_for("stats: clients");
    assert!(stats.contains("clients 1"), "{stats}");
    assert!(stats.contains("rss"), "{stats}");

    std::fs::write(gw.path("fastway.cmd"), "conns").expect("write cmd");
    gw.signal("USR1");
    gw.wait_for("connections to");
    let dump = std::fs::read_to_string(gw.path("fastway.conns")).expect("conns dump");
    assert!(dump.lines().any(|l| l.contains(" client 1 ")), "{dump}");

    std::fs::write(gw.path("fastway.cmd"), "bogus command").expect("write cmd");
    gw.signal("USR1");
    gw.wait_for("unsupported command: bogus command");
    std::fs::write(gw.path("fastway.cmd"), "lookup gc").expect("write cmd");
    gw.signal("USR1");
    gw.wait_for("lookup gc 0: memory");
    std::fs::remove_file(gw.path("fastway.cmd")).expect("remove cmd");
    gw.signal("USR1");
    gw.wait_for("read ");

    client.ping();
    gw.signal("INT");
    assert_eq!(gw.wait_exit().code(), Some(0));
    assert!(!gw.path("fastway.pid").exists());
}

#[test]
fn empty_auth_key_is_warned_about() {
    let mut gw = Gateway::spawn("nokey", &LOOPBACK, None);
    gw.wait_for("ServerAuthKey is empty");
    gw.wait_pid_file("fastway.pid");
    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
}

#[test]
fn every_compiled_runtime_serves_from_the_binary() {
    for kind in RuntimeKind::compiled() {
        let runtime = format!("--runtime={}", kind.name());
        let mut gw = Gateway::spawn(kind.name(), &[LOOPBACK[0], LOOPBACK[1], &runtime], None);
        let client_addr = gw.bound("client");
        let server_addr = gw.bound("server");
        gw.wait_for(&format!("running on {}", kind.name()));
        gw.wait_pid_file("fastway.pid");
        let mut server = Raw::server(server_addr, 3, "");
        gw.wait_for("accept server 3 from");
        let mut client = Raw::connect(client_addr);
        let conn = client.dial(3);
        assert_eq!(server.expect_connect().0, conn);
        client.send_command(Command::Close { conn });
        client.expect_command(Command::Close { conn });
        gw.signal("TERM");
        assert_eq!(gw.wait_exit().code(), Some(0), "{}", kind.name());
    }
}

#[test]
fn rust_log_overrides_the_log_level_flag() {
    let args = [LOOPBACK[0], LOOPBACK[1], "--log-level=debug"];
    let mut gw = Gateway::spawn("rustlog", &args, Some("warn"));
    gw.wait_pid_file("fastway.pid");
    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
    while let Ok(line) = gw.lines.recv_timeout(Duration::from_millis(200)) {
        gw.log.push(line);
    }
    assert!(
        !gw.log.iter().any(|l| l.contains("settings:")),
        "{:?}",
        gw.log
    );
    assert!(
        !gw.log.iter().any(|l| l.contains("setup client listener")),
        "{:?}",
        gw.log
    );
}

#[test]
fn unwritable_pid_file_exits_1() {
    let args = [
        LOOPBACK[0],
        LOOPBACK[1],
        "--pid-file",
        "missing-dir/fastway.pid",
    ];
    let mut gw = Gateway::spawn("nopid", &args, None);
    assert_eq!(gw.wait_exit().code(), Some(1));
    gw.wait_for("cannot write pid file");
}

#[test]
fn a_port_in_use_exits_1_with_a_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("-ClientAddr={}", taken.local_addr().expect("addr"));
    let mut gw = Gateway::spawn("inuse", &[&addr, LOOPBACK[1]], None);
    assert_eq!(gw.wait_exit().code(), Some(1));
    gw.wait_for("setup listeners failed");
}

#[test]
fn the_open_files_limit_is_raised_and_logged_at_start() {
    let mut gw = Gateway::spawn("nofile", &LOOPBACK, None);
    let line = gw.wait_for("open files limit: ");
    let (old, new) = line
        .rsplit("open files limit: ")
        .next()
        .and_then(|rest| rest.split_once(" -> "))
        .expect("old -> new");
    let old: u64 = old.trim().parse().expect("old limit");
    let new: u64 = new.trim().parse().expect("new limit");
    assert!(new >= old, "{line}");
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", gw.child.id())).expect("limits");
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("Max open files line");
    assert_eq!(soft, new.to_string(), "{limits}");
    gw.wait_pid_file("fastway.pid");
    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
}

#[test]
fn repeated_auth_failures_from_one_address_are_logged_with_the_address() {
    for kind in RuntimeKind::compiled() {
        let runtime = format!("--runtime={}", kind.name());
        let name = format!("authfail-{}", kind.name());
        let args = [LOOPBACK[0], LOOPBACK[1], "-ServerAuthKey=right", &runtime];
        let mut gw = Gateway::spawn(&name, &args, None);
        let server_addr = gw.bound("server");
        gw.wait_pid_file("fastway.pid");
        for _ in 0..5 {
            let mut wrong = Raw::server(server_addr, 9, "wrong");
            wrong.expect_closed();
        }
        gw.wait_for("error happends when accept server from 127.0.0.1:");
        let line = gw.wait_for("5 server auth failures from 127.0.0.1 in the last 60 s");
        assert!(line.contains("WARN"), "{line}");
        let mut good = Raw::server(server_addr, 9, "right");
        good.ping();
        gw.signal("TERM");
        assert_eq!(gw.wait_exit().code(), Some(0), "{}", kind.name());
    }
}

/// The binary's snet flags: an encrypted snet client port routes to a plain server port, and a client
/// whose link is cut by a proxy reconnects and loses nothing (SNET.md through the command line).
#[cfg(feature = "rt-std")]
#[test]
fn snet_flags_serve_reconnecting_encrypted_clients_on_every_runtime() {
    use common::proxy::FaultyProxy;
    use fastway_core::snet::SnetConfig;
    use fastway_std::{Endpoint, EndpointOptions};

    for kind in RuntimeKind::compiled() {
        let runtime = format!("--runtime={}", kind.name());
        let args = [
            LOOPBACK[0],
            LOOPBACK[1],
            &runtime,
            "-ClientSnetEnable",
            "-ClientSnetEncrypt=true",
            "-ClientSnetWaitTimeout=30s",
            "-ClientSnetBuffer=1048576",
        ];
        let mut gw = Gateway::spawn(&format!("snet-{}", kind.name()), &args, None);
        let client_addr = gw.bound("client");
        let server_addr = gw.bound("server");
        gw.wait_pid_file("fastway.pid");
        let proxy = FaultyProxy::start(client_addr);

        let server = Endpoint::connect_server(server_addr, 5, b"", EndpointOptions::default())
            .expect("server connects");
        gw.wait_for("accept server 5 from");
        let snet = SnetConfig {
            enable_crypt: true,
            rewriter_buffer_size: 1 << 20,
            handshake_timeout: Duration::from_secs(5),
            reconn_wait_timeout: Duration::from_secs(30),
        };
        let options = EndpointOptions {
            snet: Some(snet),
            ..EndpointOptions::default()
        };
        let client = Endpoint::connect_client(proxy.addr, options).expect("snet client connects");
        let vconn = client.dial(5).expect("dial through snet");
        let mut incoming = server.accept().expect("server accepts");
        let mut vconn = vconn;
        for round in 0..3u32 {
            for i in 0..50u32 {
                vconn
                    .send((round * 1000 + i).to_le_bytes().to_vec())
                    .expect("send");
            }
            for i in 0..50u32 {
                let msg = incoming.recv().expect("server receives");
                assert_eq!(
                    msg.as_ref(),
                    (round * 1000 + i).to_le_bytes(),
                    "{}",
                    kind.name()
                );
                incoming.send(msg).expect("echo");
            }
            for i in 0..50u32 {
                let msg = vconn.recv().expect("client receives");
                assert_eq!(
                    msg.as_ref(),
                    (round * 1000 + i).to_le_bytes(),
                    "{}",
                    kind.name()
                );
            }
            proxy.cut_all();
        }
        assert!(
            proxy.accepted.load(std::sync::atomic::Ordering::Relaxed) >= 2,
            "reconnected"
        );
        vconn.close();
        drop(client);
        gw.signal("TERM");
        assert_eq!(gw.wait_exit().code(), Some(0), "{}", kind.name());
    }
}

#[test]
fn metrics_addr_logs_the_bound_address_and_answers_a_scrape() {
    let args = [LOOPBACK[0], LOOPBACK[1], "--metrics-addr", "127.0.0.1:0"];
    let mut gw = Gateway::spawn("metrics", &args, None);
    let metrics = gw.bound("metrics");
    let client_addr = gw.bound("client");
    gw.wait_pid_file("fastway.pid");
    let mut client = Raw::connect(client_addr);
    client.ping();
    let scraped = common::scrape::scrape(metrics);
    scraped.expect(&[
        ("fastway_peers{side=\"client\"}", 1),
        ("fastway_frames_total{side=\"client\",direction=\"in\"}", 1),
        ("fastway_frames_total{side=\"client\",direction=\"out\"}", 1),
    ]);
    let runtime = RuntimeKind::default_compiled().name();
    assert!(
        scraped.body.contains(&format!("runtime=\"{runtime}\"")),
        "{}",
        scraped.body
    );
    gw.signal("TERM");
    assert_eq!(gw.wait_exit().code(), Some(0));
    assert!(
        std::net::TcpStream::connect(metrics).is_err(),
        "the endpoint is gone with the process"
    );
}

#[test]
fn metrics_addr_in_use_exits_1_and_a_bad_one_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("-MetricsAddr={}", taken.local_addr().expect("addr"));
    let mut gw = Gateway::spawn("metrics-inuse", &[LOOPBACK[0], LOOPBACK[1], &addr], None);
    assert_eq!(gw.wait_exit().code(), Some(1));
    gw.wait_for("cannot listen for metrics on");
    let mut gw = Gateway::spawn("metrics-bad", &["--metrics-addr=9100"], None);
    assert_eq!(gw.wait_exit().code(), Some(2));
    gw.wait_for("invalid -MetricsAddr (--metrics-addr) \"9100\": missing port");
}
