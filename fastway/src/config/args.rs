//! The command line as clap sees it, after [`rewrite_args`](super::goflags::rewrite_args) has put
//! every flag into the canonical `--kebab-name=value` form.
//!
//! The fields hold raw values with the original's types (Go `int` is `i64`, durations may be
//! negative); [`Settings::from_args`](super::Settings::from_args) checks them. The Go names are the
//! visible aliases, so `--help` documents both spellings and the rewriting pass learns them from here.

use super::goflags::{GoDuration, parse_go_bool, parse_go_duration, parse_go_int};
use super::{LogFormat, LogLevel, PrintMode, RuntimeKind};
use clap::{ArgAction, Parser};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Every flag of the original Go gateway also works in its original spelling, with one or two dashes:
  -ClientAddr=:8000   -ClientAddr :8000   --ClientAddr=:8000   -ReusePort   -ReusePort=false
Booleans take a value only after '=' (1 t T TRUE true True / 0 f F FALSE false False).
Integers: decimal, 0x hex, 0o or leading-0 octal, 0b binary, '_' between digits (1_000).
Durations: Go syntax, a number with a unit ns us µs ms s m h (30s, 1m30s, 500ms, 1.5s); a bare 0 is zero.
Addresses: host:port; ':port' means all interfaces (':8000' is 0.0.0.0:8000); port 0 picks a free port.

snet (-ClientSnetEnable / -ServerSnetEnable): a reconnectable stream under the protocol. Enable it when
clients sit on flaky networks (mobile): a dropped TCP connection is resumed within *SnetWaitTimeout with
no message lost and no vconn closed. Both ends must speak snet (and agree on *SnetEncrypt). It costs a
~50-byte handshake per connection, one copy of every outbound byte into a per-connection rewrite buffer
(*SnetBuffer bytes of memory each, 64 KiB by default), and with encryption RC4 over every byte. RC4 keeps
casual observers out but is not modern cryptography: use TLS in front for real secrecy.

Settings also come from FASTWAY_<FLAG> environment variables (FASTWAY_CLIENT_ADDR, FASTWAY_MAX_PACKET,
...) and a TOML file (--config, keys client-addr or ClientAddr); precedence: command line > environment
> file > default. --print-config shows the result and where each value came from.

Process control: the pid is written to --pid-file; `kill $(cat fastway.pid)` stops the gateway, and
`echo stats > fastway.cmd && kill -USR1 $(cat fastway.pid)` runs a command (write `help` for the list).";

/// fastway: a game gateway that multiplexes game clients onto game servers.
#[derive(Debug, Clone, Parser)]
#[command(name = "fastway", version, after_help = AFTER_HELP, args_override_self = true)]
pub struct Args {
    // ----- Gateway-wide -----
    /// Bind both listeners with SO_REUSEADDR and SO_REUSEPORT, so several fastway processes can share
    /// a port [default: false]
    #[arg(
        long, visible_alias = "ReusePort", help_heading = "Gateway",
        action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
        value_parser = parse_go_bool, default_value = "false", default_missing_value = "true",
        hide_default_value = true
    )]
    pub reuse_port: bool,

    /// Largest accepted frame `Length` in bytes (ConnID + message) on both ports; a bigger frame drops
    /// its connection. Allowed: 9 ..= 67108864 (64 MiB)
    #[arg(long, visible_alias = "MaxPacket", help_heading = "Gateway", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "524288")]
    pub max_packet: i64,

    /// Go slab pool kind of the original: sync, atom or chan. Checked for compatibility, otherwise
    /// ignored: fastway reuses its buffers without a pool
    #[arg(
        long,
        visible_alias = "MemPoolType",
        help_heading = "Gateway",
        value_name = "KIND",
        default_value = "atom"
    )]
    pub mem_pool_type: String,

    /// Growth factor between the original's pool chunk sizes (≥ 2). Checked, otherwise ignored
    #[arg(long, visible_alias = "MemPoolFactor", help_heading = "Gateway", value_name = "N",
        value_parser = parse_go_int, default_value = "2")]
    pub mem_pool_factor: i64,

    /// Smallest pooled chunk of the original, in bytes (≥ 1). Checked, otherwise ignored
    #[arg(long, visible_alias = "MemPoolMinChunk", help_heading = "Gateway", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "64")]
    pub mem_pool_min_chunk: i64,

    /// Largest pooled chunk of the original, in bytes (≥ MemPoolMinChunk). Checked, otherwise ignored
    #[arg(long, visible_alias = "MemPoolMaxChunk", help_heading = "Gateway", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "65536")]
    pub mem_pool_max_chunk: i64,

    /// Bytes per slab class of the original's pool (≥ 1). Checked, otherwise ignored
    #[arg(long, visible_alias = "MemPoolPageSize", help_heading = "Gateway", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "1048576")]
    pub mem_pool_page_size: i64,

    // ----- Client side -----
    /// Listen address for game clients (host:port; ':8000' = all interfaces, port 0 = any free port,
    /// the bound address is logged). The default only accepts local clients; the original's was ':0'
    #[arg(
        long,
        visible_alias = "ClientAddr",
        help_heading = "Client side",
        value_name = "ADDR",
        default_value = "127.0.0.1:8000"
    )]
    pub client_addr: String,

    /// Most virtual connections one client may open by dialing (0 = unlimited)
    #[arg(long, visible_alias = "ClientMaxConn", help_heading = "Client side", value_name = "N",
        value_parser = parse_go_int, default_value = "16")]
    pub client_max_conn: i64,

    /// Read-buffer size per client connection, in bytes (1 ..= 64 MiB)
    #[arg(long, visible_alias = "ClientBufferSize", help_heading = "Client side", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "2048")]
    pub client_buffer_size: i64,

    /// Outbound queue length per client connection, in frames (≥ 1); a client whose queue overflows is
    /// disconnected
    #[arg(long, visible_alias = "ClientSendChanSize", help_heading = "Client side", value_name = "FRAMES",
        value_parser = parse_go_int, default_value = "1024")]
    pub client_send_chan_size: i64,

    /// Outbound queue bound per client connection, in bytes (≥ 1); a client whose queue overflows is
    /// disconnected. 4 MiB by default
    #[arg(long, help_heading = "Client side", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "4194304")]
    pub client_max_queue_bytes: i64,

    /// Longest wait for each complete frame from a client (duration; 0 or negative disables)
    #[arg(long, visible_alias = "ClientIdleTimeout", help_heading = "Client side", value_name = "DURATION",
        value_parser = parse_go_duration, default_value = "30s")]
    pub client_idle_timeout: GoDuration,

    /// Wrap the client listener in snet: clients that lose their TCP connection reconnect and resume
    /// without losing a message or a vconn. Costs a rewrite buffer (-ClientSnetBuffer) per client and
    /// a copy of every byte sent to it; clients must speak snet too [default: false]
    #[arg(
        long, visible_alias = "ClientSnetEnable", help_heading = "Client side",
        action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
        value_parser = parse_go_bool, default_value = "false", default_missing_value = "true",
        hide_default_value = true
    )]
    pub client_snet_enable: bool,

    /// Encrypt snet client streams with RC4 (key from a DH64 exchange); not negotiated, so clients must
    /// be configured alike. Costs one XOR pass over every byte [default: false]
    #[arg(
        long, visible_alias = "ClientSnetEncrypt", help_heading = "Client side",
        action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
        value_parser = parse_go_bool, default_value = "false", default_missing_value = "true",
        hide_default_value = true
    )]
    pub client_snet_encrypt: bool,

    /// snet rewrite buffer per client, in bytes (0 ..= 64 MiB): how much unacknowledged output a
    /// reconnect can resend
    #[arg(long, visible_alias = "ClientSnetBuffer", help_heading = "Client side", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "65536")]
    pub client_snet_buffer: i64,

    /// Longest snet handshake with a client (duration; 0 or negative = no limit)
    #[arg(long, visible_alias = "ClientSnetInitTimeout", help_heading = "Client side",
        value_name = "DURATION", value_parser = parse_go_duration, default_value = "10s")]
    pub client_snet_init_timeout: GoDuration,

    /// How long a client's snet stream waits for a reconnect after its link drops (duration; 0 or
    /// negative = no wait)
    #[arg(long, visible_alias = "ClientSnetWaitTimeout", help_heading = "Client side",
        value_name = "DURATION", value_parser = parse_go_duration, default_value = "60s")]
    pub client_snet_wait_timeout: GoDuration,

    // ----- Server side -----
    /// Listen address for game servers (host:port; ':9000' = all interfaces, port 0 = any free port,
    /// the bound address is logged). The default only accepts local servers; the original's was ':0'
    #[arg(
        long,
        visible_alias = "ServerAddr",
        help_heading = "Server side",
        value_name = "ADDR",
        default_value = "127.0.0.1:9000"
    )]
    pub server_addr: String,

    /// Shared key of the game-server handshake; empty = MD5 over the challenge only
    #[arg(
        long,
        visible_alias = "ServerAuthKey",
        help_heading = "Server side",
        value_name = "KEY",
        default_value = "",
        hide_default_value = true
    )]
    pub server_auth_key: String,

    /// Read-buffer size per server connection, in bytes (1 ..= 64 MiB)
    #[arg(long, visible_alias = "ServerBufferSize", help_heading = "Server side", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "65536")]
    pub server_buffer_size: i64,

    /// Outbound queue length per server connection, in frames (≥ 1; the original's "0 = synchronous
    /// writes" does not exist here: writes are always queued)
    #[arg(long, visible_alias = "ServerSendChanSize", help_heading = "Server side", value_name = "FRAMES",
        value_parser = parse_go_int, default_value = "102400")]
    pub server_send_chan_size: i64,

    /// Outbound queue bound per server connection, in bytes (≥ 1); above it the gateway stops reading
    /// from the clients that feed this server. 64 MiB by default
    #[arg(long, help_heading = "Server side", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "67108864")]
    pub server_max_queue_bytes: i64,

    /// Longest wait for each complete frame from a server (duration; 0 or negative disables)
    #[arg(long, visible_alias = "ServerIdleTimeout", help_heading = "Server side", value_name = "DURATION",
        value_parser = parse_go_duration, default_value = "30s")]
    pub server_idle_timeout: GoDuration,

    /// Wrap the server listener in snet: game servers that lose their TCP connection reconnect and
    /// resume without losing a message or a vconn. Costs a rewrite buffer (-ServerSnetBuffer) per server
    /// and a copy of every byte sent to it; servers must speak snet too [default: false]
    #[arg(
        long, visible_alias = "ServerSnetEnable", help_heading = "Server side",
        action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
        value_parser = parse_go_bool, default_value = "false", default_missing_value = "true",
        hide_default_value = true
    )]
    pub server_snet_enable: bool,

    /// Encrypt snet server streams with RC4 (key from a DH64 exchange); not negotiated, so servers must
    /// be configured alike. Costs one XOR pass over every byte [default: false]
    #[arg(
        long, visible_alias = "ServerSnetEncrypt", help_heading = "Server side",
        action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
        value_parser = parse_go_bool, default_value = "false", default_missing_value = "true",
        hide_default_value = true
    )]
    pub server_snet_encrypt: bool,

    /// snet rewrite buffer per server, in bytes (0 ..= 64 MiB): how much unacknowledged output a
    /// reconnect can resend
    #[arg(long, visible_alias = "ServerSnetBuffer", help_heading = "Server side", value_name = "BYTES",
        value_parser = parse_go_int, default_value = "65536")]
    pub server_snet_buffer: i64,

    /// Longest snet handshake with a server (duration; 0 or negative = no limit)
    #[arg(long, visible_alias = "ServerSnetInitTimeout", help_heading = "Server side",
        value_name = "DURATION", value_parser = parse_go_duration, default_value = "10s")]
    pub server_snet_init_timeout: GoDuration,

    /// How long a server's snet stream waits for a reconnect after its link drops (duration; 0 or
    /// negative = no wait)
    #[arg(long, visible_alias = "ServerSnetWaitTimeout", help_heading = "Server side",
        value_name = "DURATION", value_parser = parse_go_duration, default_value = "60s")]
    pub server_snet_wait_timeout: GoDuration,

    // ----- fastway only -----
    /// Async runtime that drives the sockets (only the runtimes compiled into this binary work:
    /// Cargo features rt-tokio, rt-smol, rt-std)
    #[arg(long, help_heading = "fastway", value_name = "RUNTIME",
        default_value_t = RuntimeKind::default_compiled())]
    pub runtime: RuntimeKind,

    /// Worker threads of the runtime (1 ..= 1024); 1 runs single-threaded, which batched writes best
    /// on small machines
    #[arg(long, help_heading = "fastway", value_name = "N", value_parser = parse_go_int,
        default_value = "1")]
    pub worker_threads: i64,

    /// Most client connections at once over all clients (0 = unlimited); more are closed on accept
    #[arg(long, help_heading = "fastway", value_name = "N", value_parser = parse_go_int,
        default_value = "100000")]
    pub max_clients: i64,

    /// Log line format: `text` (one human-readable line per event) or `json` (one JSON object per
    /// line with timestamp, level, target and message, for log collectors)
    #[arg(long, help_heading = "fastway", value_name = "FORMAT", value_enum,
        default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level; the RUST_LOG environment variable overrides it when set
    #[arg(long, help_heading = "fastway", value_name = "LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Where the process id is written while the gateway runs (not written when running as pid 1)
    #[arg(
        long,
        help_heading = "fastway",
        value_name = "PATH",
        default_value = "fastway.pid"
    )]
    pub pid_file: PathBuf,

    /// Command file read on SIGUSR1 (write `help` into it for the list of commands)
    #[arg(
        long,
        help_heading = "fastway",
        value_name = "PATH",
        default_value = "fastway.cmd"
    )]
    pub cmd_file: PathBuf,

    /// Serve Prometheus metrics on http://ADDR/metrics (host:port; ':9100' = all interfaces, port 0 =
    /// any free port, the bound address is logged). Empty = off (the default). The endpoint has no
    /// authentication: bind it to a private interface
    #[arg(
        long,
        visible_alias = "MetricsAddr",
        help_heading = "fastway",
        value_name = "ADDR",
        default_value = "",
        hide_default_value = true
    )]
    pub metrics_addr: String,

    // ----- Meta flags: where the configuration comes from, not part of it -----
    /// Read settings from this TOML file (keys: the long flag names, `client-addr = ":8000"`, or the
    /// original's names, `ClientAddr = ":8000"`). Precedence: command line > FASTWAY_* environment >
    /// file > default. Also FASTWAY_CONFIG
    #[arg(long, help_heading = "Configuration", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration (after precedence and validation) as TOML usable with
    /// --config, each value annotated with its source, and exit. Secrets (ServerAuthKey) are hidden
    /// unless `--print-config=full`
    #[arg(
        long, help_heading = "Configuration", value_name = "MODE", value_enum,
        num_args = 0..=1, require_equals = true, default_missing_value = "masked"
    )]
    pub print_config: Option<PrintMode>,

    // ----- Packaging -----
    /// `--completions <SHELL>` and `--man` (see [`crate::generate`]).
    #[command(flatten)]
    pub generate: crate::generate::GenerateArgs,
}

/// Long names of the flags that are not settings: they select where settings come from or what the
/// process does, so they get neither a config-file key nor a `FASTWAY_*` variable (`FASTWAY_CONFIG`
/// is read separately) and are not printed by `--print-config`.
pub const META_FLAGS: &[&str] = &[
    "help",
    "version",
    "config",
    "print-config",
    "completions",
    "man",
];

/// Long names of the flags whose values are secrets: `--print-config` hides them unless asked for
/// `full` output, because its output tends to be pasted into tickets and chats.
pub const SECRET_FLAGS: &[&str] = &["server-auth-key"];
