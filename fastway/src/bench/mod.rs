//! `fastway-bench`, the load tool: what a game gateway is for — forwarding many small messages with
//! little delay and little memory — measured against a plain TCP relay on the same machine in the same
//! run. BENCHMARKS.md has the method and the commands.
//!
//! * [`cli`]: the command line;
//! * [`load`]: closed-loop clients speaking the raw protocol;
//! * [`echo`]: echo game servers (behind fastway: authenticated; behind the relay: listening);
//! * [`relay`]: the baseline relay (runs as `fastway-bench relay-server`);
//! * [`child`]: the gateway or relay under test as a child process;
//! * [`run`]: one measured run, the idle-memory mode, and the whole session;
//! * [`measure`]: `/proc` CPU time and memory, latency histogram;
//! * [`report`]: the table and the JSON.

pub mod child;
pub mod cli;
pub mod echo;
pub mod load;
pub mod measure;
pub mod relay;
pub mod report;
pub mod run;
mod wire;

use clap::Parser;
use std::fmt;
use std::io;
use std::process::ExitCode;

/// Why a benchmark could not run.
#[derive(Debug)]
pub enum BenchError {
    /// An IO step failed (what, why).
    Io(String, io::Error),
    /// The setup was impossible (missing binary, child did not start, bad combination of options).
    Setup(String),
    /// Clients failed during a run.
    Load(String),
    /// Reading `/proc` failed.
    Proc(measure::ProcError),
}

impl BenchError {
    pub(crate) fn io(what: &str, err: io::Error) -> Self {
        BenchError::Io(what.to_string(), err)
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Io(what, err) => write!(f, "{what}: {err}"),
            BenchError::Setup(what) => write!(f, "setup: {what}"),
            BenchError::Load(what) => write!(f, "load: {what}"),
            BenchError::Proc(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<measure::ProcError> for BenchError {
    fn from(err: measure::ProcError) -> Self {
        BenchError::Proc(err)
    }
}

/// The `fastway-bench` entry point: parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        Some(cli::Command::RelayServer(args)) => relay::main(&args),
        None => match run::session(&cli.load) {
            Ok(report) => {
                let table = report::table(&report);
                if cli.load.json {
                    eprint!("{table}");
                    println!("{}", report::json(&report));
                } else {
                    print!("{table}");
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("fastway-bench: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
