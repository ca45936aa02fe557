//! The fastway gateway binary.

use fastway::config::Settings;
use fastway::control::PidFile;
use std::process::ExitCode;

fn main() -> ExitCode {
    let settings = Settings::from_env().unwrap_or_else(|err| err.exit());
    fastway::logging::init(settings.log_level);
    log::debug!("settings: {settings:#?}");
    let _pid_file = match PidFile::create(&settings.pid_file) {
        Ok(guard) => guard,
        Err(err) => {
            log::error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("runtime not wired yet");
    ExitCode::SUCCESS
}
