use super::*;

fn parse(args: &[&str]) -> Result<Settings, CliError> {
    Settings::parse_from(std::iter::once("fastway").chain(args.iter().copied()))
}

fn ok(args: &[&str]) -> Settings {
    match parse(args) {
        Ok(s) => s,
        Err(e) => panic!("{args:?} rejected: {e}"),
    }
}

fn invalid(args: &[&str]) -> String {
    match parse(args) {
        Ok(s) => panic!("{args:?} accepted: {s:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
            e.to_string()
        }
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn defaults() {
    let s = ok(&[]);
    assert_eq!(s.client_addr, "127.0.0.1:8000".parse().expect("addr"));
    assert_eq!(s.server_addr, "127.0.0.1:9000".parse().expect("addr"));
    assert!(!s.reuse_port);
    assert_eq!(s.max_packet, fastway_core::frame::DEFAULT_MAX_PACKET);
    assert_eq!(s.client_max_conn, 16);
    assert_eq!(s.client_buffer_size, 2048);
    assert_eq!(s.server_buffer_size, 65536);
    assert_eq!(s.client_send_queue_frames, 1024);
    assert_eq!(s.server_send_queue_frames, 102_400);
    assert_eq!(s.client_send_queue_bytes, 4 << 20);
    assert_eq!(s.server_send_queue_bytes, 64 << 20);
    assert_eq!(s.client_idle_timeout, Some(secs(30)));
    assert_eq!(s.server_idle_timeout, Some(secs(30)));
    let snet = SnetSettings {
        enable: false,
        encrypt: false,
        buffer: 65536,
        init_timeout: Some(secs(10)),
        wait_timeout: secs(60),
    };
    assert_eq!(s.client_snet, snet);
    assert_eq!(s.server_snet, snet);
    assert_eq!(s.auth_key, "");
    assert_eq!(
        s.mem_pool,
        MemPoolSettings {
            kind: MemPoolKind::Atom,
            factor: 2,
            min_chunk: 64,
            max_chunk: 65536,
            page_size: 1 << 20,
        }
    );
    assert_eq!(s.runtime, RuntimeKind::default_compiled());
    assert_eq!(s.worker_threads, 1);
    assert_eq!(s.max_clients, 100_000);
    assert_eq!(s.log_level, log::LevelFilter::Info);
    assert_eq!(s.pid_file, PathBuf::from("fastway.pid"));
    assert_eq!(s.cmd_file, PathBuf::from("fastway.cmd"));
    assert_eq!(s.metrics_addr, None, "metrics are off by default");
}

#[test]
fn min_max_packet_is_the_dial_frame_length() {
    assert_eq!(
        MIN_MAX_PACKET,
        fastway_core::frame::CommandType::Dial.min_length()
    );
}

#[test]
fn go_and_kebab_spellings_give_the_same_settings() {
    let go = ok(&[
        "-ClientAddr=:8000",
        "-ServerAddr",
        "127.0.0.1:0",
        "--MaxPacket=0x1000",
        "-ReusePort",
        "-ClientMaxConn",
        "0",
        "-ClientIdleTimeout=1m30s",
        "-ServerIdleTimeout",
        "0",
        "-ClientSnetEnable=T",
        "-ServerSnetEncrypt=1",
        "-ServerAuthKey",
        "secret",
        "-ServerSendChanSize=1_000",
        "-MemPoolType=sync",
    ]);
    let kebab = ok(&[
        "--client-addr",
        ":8000",
        "--server-addr=127.0.0.1:0",
        "--max-packet",
        "4096",
        "--reuse-port",
        "--client-max-conn=0",
        "--client-idle-timeout",
        "90s",
        "--server-idle-timeout=0s",
        "--client-snet-enable",
        "--server-snet-encrypt=true",
        "--server-auth-key=secret",
        "--server-send-chan-size",
        "1000",
        "--mem-pool-type",
        "sync",
    ]);
    assert_eq!(go, kebab);
    assert_eq!(go.client_addr, "0.0.0.0:8000".parse().expect("addr"));
    assert_eq!(go.max_packet, 4096);
    assert!(go.reuse_port);
    assert_eq!(go.client_max_conn, 0);
    assert_eq!(go.client_idle_timeout, Some(secs(90)));
    assert_eq!(go.server_idle_timeout, None);
    assert!(go.client_snet.enable && !go.client_snet.encrypt);
    assert!(!go.server_snet.enable && go.server_snet.encrypt);
    assert_eq!(go.auth_key, "secret");
    assert_eq!(go.server_send_queue_frames, 1000);
    assert_eq!(go.mem_pool.kind, MemPoolKind::Sync);
}

#[test]
fn go_bool_values_and_last_flag_wins() {
    for v in ["1", "t", "T", "TRUE", "true", "True"] {
        assert!(ok(&[&format!("-ReusePort={v}")]).reuse_port, "{v}");
    }
    for v in ["0", "f", "F", "FALSE", "false", "False"] {
        assert!(
            !ok(&["-ReusePort", &format!("-ReusePort={v}")]).reuse_port,
            "{v}"
        );
    }
    assert_eq!(
        ok(&["-MaxPacket=100", "--max-packet", "200"]).max_packet,
        200
    );
    let msg = invalid(&["-ReusePort=yes"]);
    assert!(msg.contains("\"yes\" is not a boolean"), "{msg}");
}

#[test]
fn positional_after_a_bool_is_rejected_not_ignored() {
    let msg = invalid(&["-ReusePort", "false", "-MaxPacket=1024"]);
    assert!(msg.contains("-ReusePort=false"), "{msg}");
    invalid(&["stray"]);
}

#[test]
fn unknown_flag_and_bad_values_exit_2() {
    let msg = invalid(&["-NoSuchFlag=1"]);
    assert_eq!(msg, "flag provided but not defined: -NoSuchFlag");
    let msg = invalid(&["-ClientIdleTimeout=30"]);
    assert!(msg.contains("missing unit in duration \"30\""), "{msg}");
    let msg = invalid(&["-MaxPacket=1e6"]);
    assert!(msg.contains("is not an integer"), "{msg}");
    let msg = invalid(&["--log-level=loud"]);
    assert!(msg.contains("loud"), "{msg}");
    let msg = invalid(&["--runtime=go"]);
    assert!(msg.contains("go"), "{msg}");
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        &["-h"][..],
        &["--help"],
        &["-help"],
        &["--version"],
        &["-MaxPacket=5", "-h"],
    ] {
        let err = parse(args).expect_err("help is reported through the error path");
        assert_eq!(err.exit_code(), 0, "{args:?}");
    }
    let help = match parse(&["--help"]) {
        Err(CliError::Clap(e)) => e.render().to_string(),
        other => panic!("unexpected {other:?}"),
    };
    for needle in [
        "--client-addr",
        "ClientAddr",
        "127.0.0.1:8000",
        "30s",
        "--max-clients",
        "RUST_LOG",
    ] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
}

#[test]
fn timeouts_zero_or_negative_disable() {
    let s = ok(&[
        "-ClientIdleTimeout=-5s",
        "-ServerIdleTimeout=0",
        "-ClientSnetInitTimeout",
        "-1s",
        "-ServerSnetInitTimeout=0",
        "-ClientSnetWaitTimeout=-1m",
        "-ServerSnetWaitTimeout=1.5s",
    ]);
    assert_eq!(s.client_idle_timeout, None);
    assert_eq!(s.server_idle_timeout, None);
    assert_eq!(s.client_snet.init_timeout, None);
    assert_eq!(s.server_snet.init_timeout, None);
    assert_eq!(s.client_snet.wait_timeout, Duration::ZERO);
    assert_eq!(s.server_snet.wait_timeout, Duration::from_millis(1500));
}

#[test]
fn range_checks_and_their_messages() {
    assert_eq!(
        invalid(&["-MaxPacket=4"]),
        "invalid -MaxPacket (--max-packet) 4: must be from 9 to 67108864 \
         (bytes; below 9 not even a Dial frame fits)"
    );
    assert_eq!(ok(&["-MaxPacket=9"]).max_packet, 9);
    assert_eq!(ok(&["-MaxPacket=67108864"]).max_packet, 64 << 20);
    invalid(&["-MaxPacket=67108865"]);
    invalid(&["-MaxPacket=-1"]);

    let msg = invalid(&["-ClientMaxConn=-1"]);
    assert!(
        msg.starts_with(
            "invalid -ClientMaxConn (--client-max-conn) -1: must be from 0 to 4294967295"
        ),
        "{msg}"
    );
    invalid(&["-ClientMaxConn=4294967296"]);

    for flag in ["ClientSendChanSize", "ServerSendChanSize"] {
        for v in ["0", "-1"] {
            let msg = invalid(&[&format!("-{flag}={v}")]);
            assert!(msg.contains("must be at least 1"), "{msg}");
            assert!(msg.contains("no synchronous mode"), "{msg}");
        }
    }
    for flag in ["client-max-queue-bytes", "server-max-queue-bytes"] {
        let msg = invalid(&[&format!("--{flag}=0")]);
        assert!(
            msg.starts_with(&format!("invalid --{flag} 0: must be at least 1")),
            "{msg}"
        );
    }
    for flag in ["ClientBufferSize", "ServerBufferSize"] {
        for v in ["0", "-1", "67108865"] {
            invalid(&[&format!("-{flag}={v}")]);
        }
    }
    for flag in ["ClientSnetBuffer", "ServerSnetBuffer"] {
        invalid(&[&format!("-{flag}=-1")]);
        invalid(&[&format!("-{flag}=67108865")]);
    }
    assert_eq!(ok(&["-ClientSnetBuffer=0"]).client_snet.buffer, 0);

    invalid(&["--worker-threads=0"]);
    invalid(&["--worker-threads=1025"]);
    assert_eq!(ok(&["--worker-threads=2"]).worker_threads, 2);
    invalid(&["--max-clients=-1"]);
    assert_eq!(ok(&["--max-clients=0"]).max_clients, 0);
}

#[test]
fn mem_pool_checks() {
    assert_eq!(
        invalid(&["-MemPoolType=slab"]),
        "invalid -MemPoolType (--mem-pool-type) \"slab\": must be sync, atom or chan"
    );
    assert_eq!(ok(&["-MemPoolType=chan"]).mem_pool.kind, MemPoolKind::Chan);
    for factor in ["1", "0", "-2"] {
        let msg = invalid(&[&format!("-MemPoolFactor={factor}")]);
        assert!(
            msg.starts_with(&format!(
                "invalid -MemPoolFactor (--mem-pool-factor) {factor}"
            )),
            "{msg}"
        );
    }
    invalid(&["-MemPoolMinChunk=0"]);
    invalid(&["-MemPoolPageSize=0"]);
    assert_eq!(
        invalid(&["-MemPoolMinChunk=128", "-MemPoolMaxChunk=64"]),
        "invalid -MemPoolMaxChunk (--mem-pool-max-chunk) 64: must be at least \
         -MemPoolMinChunk (--mem-pool-min-chunk) (128)"
    );
}

#[test]
fn listen_address_errors_name_the_flag() {
    let msg = invalid(&["-ClientAddr=8000"]);
    assert!(
        msg.starts_with("invalid -ClientAddr (--client-addr) \"8000\": missing port"),
        "{msg}"
    );
    let msg = invalid(&["--server-addr", ":99999"]);
    assert!(
        msg.starts_with("invalid -ServerAddr (--server-addr) \":99999\": invalid port"),
        "{msg}"
    );
}

#[test]
fn metrics_addr_takes_both_spellings_and_empty_means_off() {
    let addr = |s: &str| Some(s.parse::<SocketAddr>().expect("addr"));
    assert_eq!(
        ok(&["--metrics-addr", "127.0.0.1:0"]).metrics_addr,
        addr("127.0.0.1:0")
    );
    assert_eq!(
        ok(&["-MetricsAddr=:9100"]).metrics_addr,
        addr("0.0.0.0:9100")
    );
    assert_eq!(ok(&["--metrics-addr="]).metrics_addr, None);
    let msg = invalid(&["--metrics-addr", "9100"]);
    assert!(
        msg.starts_with("invalid -MetricsAddr (--metrics-addr) \"9100\": missing port"),
        "{msg}"
    );
}

#[test]
fn runtime_choice() {
    for kind in RuntimeKind::compiled() {
        assert_eq!(ok(&["--runtime", kind.name()]).runtime, kind);
    }
    for kind in [RuntimeKind::Tokio, RuntimeKind::Smol, RuntimeKind::Std] {
        if !kind.is_compiled() {
            let msg = invalid(&["--runtime", kind.name()]);
            assert!(msg.contains("not compiled into this binary"), "{msg}");
        }
    }
    if cfg!(feature = "rt-tokio") {
        assert_eq!(RuntimeKind::default_compiled(), RuntimeKind::Tokio);
    }
}

#[test]
fn log_levels() {
    for (name, level) in [
        ("error", log::LevelFilter::Error),
        ("warn", log::LevelFilter::Warn),
        ("info", log::LevelFilter::Info),
        ("debug", log::LevelFilter::Debug),
        ("trace", log::LevelFilter::Trace),
    ] {
        assert_eq!(ok(&["--log-level", name]).log_level, level);
    }
}

#[test]
fn every_go_flag_of_config_md_is_accepted() {
    let bools = [
        "ReusePort",
        "ClientSnetEnable",
        "ClientSnetEncrypt",
        "ServerSnetEnable",
        "ServerSnetEncrypt",
    ];
    let values = [
        ("MaxPacket", "1024"),
        ("MemPoolType", "atom"),
        ("MemPoolFactor", "2"),
        ("MemPoolMinChunk", "64"),
        ("MemPoolMaxChunk", "65536"),
        ("MemPoolPageSize", "1048576"),
        ("ClientAddr", "127.0.0.1:0"),
        ("ClientMaxConn", "16"),
        ("ClientBufferSize", "2048"),
        ("ClientSendChanSize", "1024"),
        ("ClientIdleTimeout", "30s"),
        ("ClientSnetBuffer", "65536"),
        ("ClientSnetInitTimeout", "10s"),
        ("ClientSnetWaitTimeout", "60s"),
        ("ServerAddr", "127.0.0.1:0"),
        ("ServerAuthKey", "k"),
        ("ServerBufferSize", "65536"),
        ("ServerSendChanSize", "102400"),
        ("ServerIdleTimeout", "30s"),
        ("ServerSnetBuffer", "65536"),
        ("ServerSnetInitTimeout", "10s"),
        ("ServerSnetWaitTimeout", "60s"),
    ];
    for flag in bools {
        ok(&[&format!("-{flag}")]);
        ok(&[&format!("--{flag}=false")]);
    }
    for (flag, value) in values {
        ok(&[&format!("-{flag}"), value]);
        ok(&[&format!("-{flag}={value}")]);
        ok(&[&format!("--{flag}={value}")]);
    }
}
