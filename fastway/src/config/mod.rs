//! Command-line configuration: the flags of CONFIG.md §2 (both spellings) plus fastway's own, checked
//! into a plain [`Settings`] value.
//!
//! * [`goflags`]: Go syntax for booleans, integers and durations, and the argument-rewriting pre-pass;
//! * [`args`]: the clap definition of every flag with its default and help;
//! * [`addr`]: Go-style listen addresses;
//! * [`layers`]: the config file, the `FASTWAY_*` environment and `--print-config`, merged with the
//!   command line by precedence (command line > environment > file > default);
//! * this module: [`Settings`], its validation and the typed errors.
//!
//! Decisions on degenerate values (CONFIG.md "Validation"); each rejection exits with status 2:
//! * `MaxPacket` must be 9 ..= 64 MiB: below 9 not even a Dial frame fits, so nothing could be routed;
//! * `ClientMaxConn` must be 0 ..= 2³²−1 (negative refused every dial in the original);
//! * `*SendChanSize` and the `--*-max-queue-bytes` bounds must be ≥ 1: our writers are always queued,
//!   the original's "≤ 0 means synchronous writes" has no equivalent;
//! * `*BufferSize` must be 1 ..= 64 MiB, `*SnetBuffer` 0 ..= 64 MiB (negative crashed the original);
//! * `MemPoolType` must be `sync`, `atom` or `chan`, `MemPoolFactor` ≥ 2, `MemPoolMinChunk` ≥ 1,
//!   `MemPoolMaxChunk` ≥ `MemPoolMinChunk`, `MemPoolPageSize` ≥ 1. The pool values are otherwise ignored:
//!   fastway reuses its buffers without a pool;
//! * idle and snet handshake timeouts of 0 or less mean "no deadline" (Go semantics, accepted); a
//!   negative snet wait timeout acts like 0;
//! * `--worker-threads` must be 1 ..= 1024, `--max-clients` ≥ 0, `--runtime` must be compiled in;
//! * `--metrics-addr` is empty (no endpoint) or a listen address like `ClientAddr`.

pub mod addr;
pub mod args;
pub mod goflags;
pub mod layers;

#[cfg(test)]
mod tests;

use clap::ValueEnum;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use addr::{AddrError, parse_listen_addr};
pub use args::Args;
pub use goflags::ArgError;
pub use layers::env::EnvError;
pub use layers::file::FileError;
pub use layers::{Loaded, Origin, load};

/// Smallest accepted `MaxPacket`: the `Length` of a Dial frame (PROTOCOL.md §3), the largest
/// frame a peer must be able to send.
pub const MIN_MAX_PACKET: u32 = 9;
/// Largest accepted `MaxPacket` and per-connection buffer size: 64 MiB.
pub const MAX_BUFFER: u32 = 64 * 1024 * 1024;
/// Largest accepted `--worker-threads`.
pub const MAX_WORKER_THREADS: usize = 1024;

/// Which async runtime drives the gateway's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum RuntimeKind {
    /// tokio (Cargo feature `rt-tokio`, the default).
    Tokio,
    /// smol / async-io (Cargo feature `rt-smol`).
    Smol,
    /// `std::net` sockets on one blocking thread running a readiness loop, no async runtime (Cargo
    /// feature `rt-std`).
    Std,
}

impl RuntimeKind {
    /// The runtimes compiled into this binary, in order of preference.
    pub fn compiled() -> Vec<RuntimeKind> {
        let mut kinds = Vec::new();
        if cfg!(feature = "rt-tokio") {
            kinds.push(Self::Tokio);
        }
        if cfg!(feature = "rt-smol") {
            kinds.push(Self::Smol);
        }
        if cfg!(feature = "rt-std") {
            kinds.push(Self::Std);
        }
        kinds
    }

    /// The default runtime: tokio if compiled in, else smol, else std.
    pub fn default_compiled() -> RuntimeKind {
        Self::compiled().first().copied().unwrap_or(Self::Tokio)
    }

    /// Whether this runtime is compiled into the binary.
    pub fn is_compiled(self) -> bool {
        Self::compiled().contains(&self)
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::Smol => "smol",
            Self::Std => "std",
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--log-level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also startup, listener and connection events.
    Info,
    /// Also per-connection details.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The matching `log` filter.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            Self::Error => log::LevelFilter::Error,
            Self::Warn => log::LevelFilter::Warn,
            Self::Info => log::LevelFilter::Info,
            Self::Debug => log::LevelFilter::Debug,
            Self::Trace => log::LevelFilter::Trace,
        }
    }
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (env_logger's format): easy to read and grep.
    #[default]
    Text,
    /// One JSON object per line (`ts`, `level`, `target`, `msg`): for log collectors, which then
    /// need no parsing rules.
    Json,
}

/// `--print-config` values: whether secrets are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum PrintMode {
    /// Secret values (ServerAuthKey) are replaced by a comment giving their length and source: the
    /// output is safe to paste into a ticket.
    Masked,
    /// Everything as-is, secrets included: the output recreates the configuration exactly.
    Full,
}

/// The original's slab pool kinds (`MemPoolType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemPoolKind {
    /// `sync`: a `sync.Pool` per size class.
    Sync,
    /// `atom`: lock-free slabs (the default).
    Atom,
    /// `chan`: channel-based slabs.
    Chan,
}

/// The mem-pool flags, checked for compatibility with existing launch scripts and otherwise ignored:
/// fastway reuses its read buffers without a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPoolSettings {
    /// `MemPoolType`.
    pub kind: MemPoolKind,
    /// `MemPoolFactor` (≥ 2).
    pub factor: u32,
    /// `MemPoolMinChunk` in bytes (≥ 1).
    pub min_chunk: usize,
    /// `MemPoolMaxChunk` in bytes (≥ `min_chunk`).
    pub max_chunk: usize,
    /// `MemPoolPageSize` in bytes (≥ 1).
    pub page_size: usize,
}

/// snet settings of one listener (SNET.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnetSettings {
    /// Wrap the listener in snet (`*SnetEnable`).
    pub enable: bool,
    /// RC4 after the DH handshake (`*SnetEncrypt`, snet `EnableCrypt`).
    pub encrypt: bool,
    /// Rewrite-buffer bytes per connection (`*SnetBuffer`, snet `RewriterBufferSize`).
    pub buffer: usize,
    /// Handshake deadline (`*SnetInitTimeout`); `None` = no deadline (flag ≤ 0).
    pub init_timeout: Option<Duration>,
    /// How long a dropped link waits for a reconnect (`*SnetWaitTimeout`); zero = no wait (flag ≤ 0).
    pub wait_timeout: Duration,
}

/// The checked configuration of one gateway process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Client listen address (`ClientAddr`).
    pub client_addr: SocketAddr,
    /// Server listen address (`ServerAddr`).
    pub server_addr: SocketAddr,
    /// SO_REUSEADDR + SO_REUSEPORT on both listeners (`ReusePort`).
    pub reuse_port: bool,
    /// Largest accepted frame `Length`, both ports (`MaxPacket`, 9 ..= 64 MiB).
    pub max_packet: u32,
    /// Most vconns a client may open by dialing; 0 = unlimited (`ClientMaxConn`).
    pub client_max_conn: u32,
    /// Read-buffer bytes per client connection (`ClientBufferSize`).
    pub client_buffer_size: usize,
    /// Read-buffer bytes per server connection (`ServerBufferSize`).
    pub server_buffer_size: usize,
    /// Outbound queue length in frames per client connection (`ClientSendChanSize`, ≥ 1).
    pub client_send_queue_frames: usize,
    /// Outbound queue length in frames per server connection (`ServerSendChanSize`, ≥ 1).
    pub server_send_queue_frames: usize,
    /// Outbound queue bound in bytes per client connection (`--client-max-queue-bytes`, ≥ 1).
    pub client_send_queue_bytes: usize,
    /// Outbound queue bound in bytes per server connection (`--server-max-queue-bytes`, ≥ 1).
    pub server_send_queue_bytes: usize,
    /// Client idle timeout; `None` = disabled (`ClientIdleTimeout` ≤ 0).
    pub client_idle_timeout: Option<Duration>,
    /// Server idle timeout; `None` = disabled (`ServerIdleTimeout` ≤ 0).
    pub server_idle_timeout: Option<Duration>,
    /// snet on the client listener (`ClientSnet*`).
    pub client_snet: SnetSettings,
    /// snet on the server listener (`ServerSnet*`).
    pub server_snet: SnetSettings,
    /// Key of the server handshake (`ServerAuthKey`); empty = MD5 over the challenge only.
    pub auth_key: String,
    /// The mem-pool flags (accepted, checked, ignored).
    pub mem_pool: MemPoolSettings,
    /// The async runtime to run (`--runtime`, compiled in).
    pub runtime: RuntimeKind,
    /// Runtime worker threads (`--worker-threads`, 1 ..= 1024).
    pub worker_threads: usize,
    /// Most client connections at once; 0 = unlimited (`--max-clients`).
    pub max_clients: usize,
    /// Log level (`--log-level`); `RUST_LOG` overrides it when set.
    pub log_level: log::LevelFilter,
    /// Log line format (`--log-format`).
    pub log_format: LogFormat,
    /// PID file path (`--pid-file`).
    pub pid_file: PathBuf,
    /// Command file path (`--cmd-file`).
    pub cmd_file: PathBuf,
    /// Where the Prometheus endpoint listens (`--metrics-addr`); `None` = off (empty flag).
    pub metrics_addr: Option<SocketAddr>,
}

/// A flag value that parses but cannot be used. `Display` names the flag in both spellings.
#[derive(Debug)]
pub enum ConfigError {
    /// An integer flag outside its allowed range.
    OutOfRange {
        /// The flag's name (Go spelling, or kebab for fastway-only flags).
        flag: &'static str,
        /// The given value.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
        /// Why the range is what it is, for the user.
        why: &'static str,
    },
    /// `MemPoolType` other than `sync`, `atom`, `chan`.
    UnknownMemPoolType(String),
    /// `MemPoolMaxChunk` below `MemPoolMinChunk`.
    MemPoolChunks {
        /// `MemPoolMinChunk`.
        min: i64,
        /// `MemPoolMaxChunk`.
        max: i64,
    },
    /// A listen address that cannot be used.
    Addr {
        /// `ClientAddr`, `ServerAddr` or `MetricsAddr`.
        flag: &'static str,
        /// The given text.
        value: String,
        /// What is wrong with it.
        source: AddrError,
    },
    /// `--runtime` names a runtime this binary was built without.
    RuntimeNotCompiled {
        /// The requested runtime.
        requested: RuntimeKind,
        /// The runtimes compiled in (may be empty).
        available: Vec<RuntimeKind>,
    },
}

/// `-GoName (--kebab-name)` for a Go flag name, `--kebab-name` for fastway's own.
fn flag_display(flag: &str) -> String {
    if !flag.starts_with(|c: char| c.is_ascii_uppercase()) {
        return format!("--{flag}");
    }
    let mut kebab = String::new();
    for (i, c) in flag.char_indices() {
        if c.is_ascii_uppercase() && i > 0 {
            kebab.push('-');
        }
        kebab.push(c.to_ascii_lowercase());
    }
    format!("-{flag} (--{kebab})")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange {
                flag,
                value,
                min,
                max,
                why,
            } => {
                let flag = flag_display(flag);
                if *max == i64::MAX {
                    write!(f, "invalid {flag} {value}: must be at least {min} ({why})")
                } else {
                    write!(
                        f,
                        "invalid {flag} {value}: must be from {min} to {max} ({why})"
                    )
                }
            }
            Self::UnknownMemPoolType(kind) => write!(
                f,
                "invalid {} {kind:?}: must be sync, atom or chan",
                flag_display("MemPoolType")
            ),
            Self::MemPoolChunks { min, max } => write!(
                f,
                "invalid {} {max}: must be at least {} ({min})",
                flag_display("MemPoolMaxChunk"),
                flag_display("MemPoolMinChunk")
            ),
            Self::Addr {
                flag,
                value,
                source,
            } => {
                write!(f, "invalid {} {value:?}: {source}", flag_display(flag))
            }
            Self::RuntimeNotCompiled {
                requested,
                available,
            } if available.is_empty() => write!(
                f,
                "--runtime {requested}: this binary was built without any runtime \
                 (enable a Cargo feature: rt-tokio, rt-smol or rt-std)"
            ),
            Self::RuntimeNotCompiled {
                requested,
                available,
            } => {
                let names: Vec<&str> = available.iter().map(|k| k.name()).collect();
                write!(
                    f,
                    "--runtime {requested}: not compiled into this binary (available: {}; rebuild \
                     with Cargo feature rt-{requested} for it)",
                    names.join(", ")
                )
            }
        }
    }
}

impl ConfigError {
    /// The flag the error is about (Go spelling, or kebab for fastway-only flags), to find where
    /// its value came from.
    pub fn flag(&self) -> &str {
        match self {
            Self::OutOfRange { flag, .. } | Self::Addr { flag, .. } => flag,
            Self::UnknownMemPoolType(_) => "MemPoolType",
            Self::MemPoolChunks { .. } => "MemPoolMaxChunk",
            Self::RuntimeNotCompiled { .. } => "runtime",
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Addr { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why the command line was not turned into [`Settings`].
#[derive(Debug)]
pub enum CliError {
    /// Unknown flag, missing value or positional argument (found by the Go-syntax pre-pass).
    Args(ArgError),
    /// clap's verdict: a malformed value, or `--help` / `--version` (which are not failures).
    Clap(clap::Error),
    /// A bad config file: unreadable, not TOML, unknown key or bad value.
    File(FileError),
    /// A bad `FASTWAY_*` environment variable.
    Env(EnvError),
    /// A value that parses but cannot be used.
    Invalid {
        /// What is wrong.
        error: ConfigError,
        /// Where the value came from (file line and key, variable, command line); boxed to keep
        /// the error small.
        origin: Box<Origin>,
    },
}

impl CliError {
    /// The process exit status: 0 for `--help` and `--version`, 2 for everything else (as Go's `flag`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Clap(err) => err.exit_code(),
            Self::Args(_) | Self::File(_) | Self::Env(_) | Self::Invalid { .. } => 2,
        }
    }

    /// Prints the message (help and version to stdout, errors to stderr) and exits with
    /// [`exit_code`](Self::exit_code).
    pub fn exit(&self) -> ! {
        match self {
            Self::Clap(err) => err.exit(),
            Self::Args(_) | Self::File(_) | Self::Env(_) | Self::Invalid { .. } => {
                eprintln!("error: {self}\n\nFor more information, try '--help'.");
                std::process::exit(self.exit_code())
            }
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Args(err) => err.fmt(f),
            Self::Clap(err) => err.fmt(f),
            Self::File(err) => err.fmt(f),
            Self::Env(err) => err.fmt(f),
            Self::Invalid { error, origin } => match **origin {
                // The command line and defaults need no pointer: the flag name says it all.
                Origin::File { .. } | Origin::Env { .. } => write!(f, "{error} ({origin})"),
                Origin::CommandLine | Origin::Default => error.fmt(f),
            },
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Args(err) => Some(err),
            Self::Clap(err) => Some(err),
            Self::File(err) => Some(err),
            Self::Env(err) => Some(err),
            Self::Invalid { error, .. } => Some(error),
        }
    }
}

/// [`load`] with the process's own command line and environment.
pub fn load_process() -> Result<Loaded, CliError> {
    load(std::env::args_os(), std::env::vars_os())
}

/// Checks that `value` lies in `min ..= max` and converts it.
fn in_range<T: TryFrom<i64>>(
    flag: &'static str,
    value: i64,
    min: i64,
    max: i64,
    why: &'static str,
) -> Result<T, ConfigError> {
    let out_of_range = || ConfigError::OutOfRange {
        flag,
        value,
        min,
        max,
        why,
    };
    if !(min..=max).contains(&value) {
        return Err(out_of_range());
    }
    T::try_from(value).map_err(|_| out_of_range())
}

/// `value ≥ min`, converted to `usize`.
fn at_least(
    flag: &'static str,
    value: i64,
    min: i64,
    why: &'static str,
) -> Result<usize, ConfigError> {
    in_range(flag, value, min, i64::MAX, why)
}

fn listen_addr(flag: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    parse_listen_addr(value).map_err(|source| ConfigError::Addr {
        flag,
        value: value.to_owned(),
        source,
    })
}

const BUFFER_WHY: &str = "bytes per connection, at most 64 MiB";
const QUEUE_WHY: &str = "writes are always queued; there is no synchronous mode";

impl Settings {
    /// Parses a full command line (program name first) in either spelling and checks it, with the
    /// config file it names (`--config`) but no environment variables; see [`load`] for all layers.
    pub fn parse_from<I, T>(args: I) -> Result<Settings, CliError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        load(args, std::iter::empty::<(OsString, OsString)>()).map(|loaded| loaded.settings)
    }

    /// Reads the process's own command line, `FASTWAY_*` environment and config file; see [`load`].
    pub fn from_env() -> Result<Settings, CliError> {
        load_process().map(|loaded| loaded.settings)
    }

    /// Checks parsed flags against the rules in the [module documentation](self).
    pub fn from_args(a: &Args) -> Result<Settings, ConfigError> {
        let max_buffer = i64::from(MAX_BUFFER);
        let snet = |enable,
                    encrypt,
                    flag,
                    buffer,
                    init: goflags::GoDuration,
                    wait: goflags::GoDuration| {
            Ok::<_, ConfigError>(SnetSettings {
                enable,
                encrypt,
                buffer: in_range(flag, buffer, 0, max_buffer, BUFFER_WHY)?,
                init_timeout: init.positive(),
                wait_timeout: wait.clamped(),
            })
        };
        let mem_kind = match a.mem_pool_type.as_str() {
            "sync" => MemPoolKind::Sync,
            "atom" => MemPoolKind::Atom,
            "chan" => MemPoolKind::Chan,
            other => return Err(ConfigError::UnknownMemPoolType(other.to_owned())),
        };
        let min_chunk = at_least("MemPoolMinChunk", a.mem_pool_min_chunk, 1, "bytes")?;
        if a.mem_pool_max_chunk < a.mem_pool_min_chunk {
            return Err(ConfigError::MemPoolChunks {
                min: a.mem_pool_min_chunk,
                max: a.mem_pool_max_chunk,
            });
        }
        if !a.runtime.is_compiled() {
            return Err(ConfigError::RuntimeNotCompiled {
                requested: a.runtime,
                available: RuntimeKind::compiled(),
            });
        }
        Ok(Settings {
            client_addr: listen_addr("ClientAddr", &a.client_addr)?,
            server_addr: listen_addr("ServerAddr", &a.server_addr)?,
            reuse_port: a.reuse_port,
            max_packet: in_range(
                "MaxPacket",
                a.max_packet,
                i64::from(MIN_MAX_PACKET),
                max_buffer,
                "bytes; below 9 not even a Dial frame fits",
            )?,
            client_max_conn: in_range(
                "ClientMaxConn",
                a.client_max_conn,
                0,
                i64::from(u32::MAX),
                "vconns per client, 0 = unlimited",
            )?,
            client_buffer_size: in_range(
                "ClientBufferSize",
                a.client_buffer_size,
                1,
                max_buffer,
                BUFFER_WHY,
            )?,
            server_buffer_size: in_range(
                "ServerBufferSize",
                a.server_buffer_size,
                1,
                max_buffer,
                BUFFER_WHY,
            )?,
            client_send_queue_frames: at_least(
                "ClientSendChanSize",
                a.client_send_chan_size,
                1,
                QUEUE_WHY,
            )?,
            server_send_queue_frames: at_least(
                "ServerSendChanSize",
                a.server_send_chan_size,
                1,
                QUEUE_WHY,
            )?,
            client_send_queue_bytes: at_least(
                "client-max-queue-bytes",
                a.client_max_queue_bytes,
                1,
                QUEUE_WHY,
            )?,
            server_send_queue_bytes: at_least(
                "server-max-queue-bytes",
                a.server_max_queue_bytes,
                1,
                QUEUE_WHY,
            )?,
            client_idle_timeout: a.client_idle_timeout.positive(),
            server_idle_timeout: a.server_idle_timeout.positive(),
            client_snet: snet(
                a.client_snet_enable,
                a.client_snet_encrypt,
                "ClientSnetBuffer",
                a.client_snet_buffer,
                a.client_snet_init_timeout,
                a.client_snet_wait_timeout,
            )?,
            server_snet: snet(
                a.server_snet_enable,
                a.server_snet_encrypt,
                "ServerSnetBuffer",
                a.server_snet_buffer,
                a.server_snet_init_timeout,
                a.server_snet_wait_timeout,
            )?,
            auth_key: a.server_auth_key.clone(),
            mem_pool: MemPoolSettings {
                kind: mem_kind,
                factor: in_range(
                    "MemPoolFactor",
                    a.mem_pool_factor,
                    2,
                    i64::from(u32::MAX),
                    "chunk-size growth factor; 1 or less hung or crashed the original",
                )?,
                min_chunk,
                max_chunk: at_least("MemPoolMaxChunk", a.mem_pool_max_chunk, 1, "bytes")?,
                page_size: at_least("MemPoolPageSize", a.mem_pool_page_size, 1, "bytes")?,
            },
            runtime: a.runtime,
            worker_threads: in_range(
                "worker-threads",
                a.worker_threads,
                1,
                MAX_WORKER_THREADS as i64,
                "runtime threads",
            )?,
            max_clients: at_least("max-clients", a.max_clients, 0, "0 = unlimited")?,
            log_level: a.log_level.filter(),
            log_format: a.log_format,
            pid_file: a.pid_file.clone(),
            cmd_file: a.cmd_file.clone(),
            metrics_addr: match a.metrics_addr.as_str() {
                "" => None,
                addr => Some(listen_addr("MetricsAddr", addr)?),
            },
        })
    }
}
