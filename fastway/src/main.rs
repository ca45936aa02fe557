//! The fastway gateway binary: parse the command line, start the gateway on the chosen runtime, then
//! run the process-control loop (pid file, SIGTERM/SIGINT, SIGUSR1 + `fastway.cmd`) of CONFIG.md §4.

use fastway::config;
use fastway::control::{ControlCommand, PidFile, execute};
use fastway::generate::Request;
use fastway::metrics::MetricsServer;
use fastway::serve::{self, RunningGateway, ServeOptions};
use log::{error, info, warn};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    // `--completions <SHELL>` / `--man`: print and exit before any configuration is read.
    if let Some(request) = Request::from_command_line(std::env::args_os()) {
        return match request.write(&mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: cannot write to stdout: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let loaded = config::load_process().unwrap_or_else(|err| err.exit());
    if let Some(mode) = loaded.print_config {
        print!("{}", loaded.render(mode));
        return ExitCode::SUCCESS;
    }
    let settings = loaded.settings;
    fastway::logging::init(settings.log_level, settings.log_format);
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    log::debug!("settings: {settings:#?}");
    // Signals are registered before anything else so an early SIGTERM still shuts down cleanly.
    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGUSR1]) {
        Ok(signals) => signals,
        Err(err) => {
            error!("cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    match fastway::limits::raise_nofile_limit() {
        Ok(limit) => info!("open files limit: {} -> {}", limit.old, limit.new),
        Err(err) => warn!("could not raise the open files limit: {err}"),
    }
    if settings.auth_key.is_empty() {
        warn!(
            "*** ServerAuthKey is empty: ANY program that reaches the server port can register as a game server. Set -ServerAuthKey (or --server-auth-key) in production. ***"
        );
    }
    let running = match serve::start(settings.runtime, ServeOptions::from_settings(&settings)) {
        Ok(running) => running,
        Err(err) => {
            error!("setup listeners failed - {err}");
            return ExitCode::FAILURE;
        }
    };
    info!(
        "fastway {} running on {}: game clients connect to {}, game servers to {}",
        env!("CARGO_PKG_VERSION"),
        running.runtime().name(),
        running.client_addr(),
        running.server_addr()
    );
    let metrics = match settings.metrics_addr {
        Some(addr) => match MetricsServer::for_gateway(addr, &running) {
            Ok(metrics) => {
                info!("setup metrics listener at - {}", metrics.local_addr());
                Some(metrics)
            }
            Err(err) => {
                error!("{err}");
                let _ = running.shutdown();
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let mut pid_file = match PidFile::create(&settings.pid_file) {
        Ok(guard) => guard,
        Err(err) => {
            error!("{err}");
            let _ = running.shutdown();
            return ExitCode::FAILURE;
        }
    };
    let clean = control_loop(&mut signals, &running, &settings.cmd_file);
    // The endpoint goes with the gateway: stop it before the gateway closes its connections.
    if let Some(metrics) = metrics {
        metrics.stop();
    }
    if let Err(err) = pid_file.remove() {
        warn!("could not remove the pid file: {err}");
    }
    match running.shutdown() {
        Ok(()) if clean => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(err) => {
            error!("gateway stopped with an error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for signals until SIGTERM/SIGINT (returns true) or the gateway thread dies (returns false).
fn control_loop(signals: &mut Signals, running: &RunningGateway, cmd_file: &Path) -> bool {
    loop {
        for signal in signals.pending() {
            match signal {
                SIGUSR1 => run_command_file(cmd_file, running),
                _ => {
                    info!("fastway killed");
                    return true;
                }
            }
        }
        if running.is_finished() {
            error!("the gateway stopped unexpectedly");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGUSR1: read the command file and run what it says. Never fatal.
fn run_command_file(cmd_file: &Path, running: &RunningGateway) {
    match std::fs::read(cmd_file) {
        Ok(bytes) => {
            let command = ControlCommand::parse_bytes(&bytes);
            let dir = cmd_file.parent().filter(|p| !p.as_os_str().is_empty());
            execute(&command, running, dir.unwrap_or(Path::new(".")));
        }
        Err(err) => error!("read {} failed: {err}", cmd_file.display()),
    }
}
