//! The command line of `fastway-bench` (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Load generator for the fastway gateway: echo game servers, closed-loop clients, a plain TCP relay
/// as the baseline, and an idle-memory mode. All traffic stays on 127.0.0.1; every run ends by
/// itself.
#[derive(Debug, Parser)]
#[command(
    name = "fastway-bench",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Internal helpers (the baseline relay runs as a child process through this).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The load to run.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the baseline relay: accept clients, open one connection per client to a backend (round
    /// robin) and copy bytes both ways untouched. Logs `relay listening at - <addr>` on stderr and
    /// exits when its standard input closes.
    RelayServer(RelayArgs),
}

/// Options of the `relay-server` subcommand.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// Where clients connect.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Backends (echo servers), comma separated; client i goes to backend i mod count.
    #[arg(long, value_delimiter = ',', required = true)]
    pub backend: Vec<SocketAddr>,
    /// Worker threads (1 = a single-threaded runtime, like the gateway's default).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Which gateway runtime(s) to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// The tokio runtime.
    Tokio,
    /// The smol runtime.
    Smol,
    /// The std runtime (one blocking thread, readiness loop, no async runtime).
    Std,
    /// All three, one after the other, in the same run.
    All,
}

/// What to put under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The plain relay first, then fastway; fastway's figures are also shown as ratios of the relay's.
    Both,
    /// fastway only.
    Fastway,
    /// The plain relay only.
    Relay,
}

/// Options of a load (or idle-memory) run.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Gateway runtime to measure.
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Tokio)]
    pub runtime: RuntimeChoice,
    /// fastway, the baseline relay, or both (fastway shown as a ratio of the relay).
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// Echo game servers.
    #[arg(short = 's', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub servers: u32,
    /// Client connections.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Virtual connections each client opens (spread over the servers).
    #[arg(short = 'v', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub vconns: u32,
    /// Payload bytes per message (≥ 8: the first 8 carry the send time).
    #[arg(short = 'b', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=16_777_216))]
    pub size: u32,
    /// Messages in flight per virtual connection (closed loop).
    #[arg(short = 'w', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub inflight: u32,
    /// Measured seconds per run.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Runs per subject; the report shows the median of each figure (runs alternate relay/fastway).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Idle-memory mode: open this many clients with one vconn each, send nothing, and report the
    /// gateway's resident memory per connection.
    #[arg(long, value_name = "N")]
    pub idle: Option<u32>,
    /// Print the results as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No live progress.
    #[arg(short, long)]
    pub quiet: bool,
    /// Target a running gateway instead of starting one: `CLIENT_ADDR,SERVER_ADDR`.
    #[arg(long, value_name = "CLIENT,SERVER", value_parser = parse_target)]
    pub target: Option<Target>,
    /// With `--target`: the gateway's process id, for CPU and memory figures.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Server auth key of the gateway (`--target` only; started gateways use an empty key).
    #[arg(long, default_value = "")]
    pub auth_key: String,
    /// Run the gateway inside this process (`fastway::serve::start`) instead of as a child process.
    /// Its CPU time and memory cannot be told apart from the load's then and are not reported.
    #[arg(long)]
    pub in_process: bool,
    /// Worker threads of the gateway under test (and of the relay).
    #[arg(long, default_value_t = 1)]
    pub worker_threads: usize,
    /// Worker threads of the load side (clients and echo servers, one tokio runtime).
    #[arg(long, default_value_t = 2)]
    pub load_threads: usize,
    /// The `fastway` binary to start (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub gateway_bin: Option<PathBuf>,
}

/// A running gateway's two addresses (`--target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Its client port.
    pub client: SocketAddr,
    /// Its server port.
    pub server: SocketAddr,
}

/// Parses `--target CLIENT_ADDR,SERVER_ADDR`.
fn parse_target(value: &str) -> Result<Target, String> {
    let (client, server) = value
        .split_once(',')
        .ok_or_else(|| "expected CLIENT_ADDR,SERVER_ADDR".to_string())?;
    let parse = |addr: &str| {
        addr.trim()
            .parse::<SocketAddr>()
            .map_err(|err| format!("{addr}: {err}"))
    };
    Ok(Target {
        client: parse(client)?,
        server: parse(server)?,
    })
}
