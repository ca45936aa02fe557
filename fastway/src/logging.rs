//! Logging setup: `env_logger` at the `--log-level`, overridden by `RUST_LOG` when it is set.

/// Installs the global logger. `level` is the default for every module; `RUST_LOG` directives (e.g.
/// `warn` or `fastway=trace`), when set, take precedence. Calling it twice keeps the first logger.
pub fn init(level: log::LevelFilter) {
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .parse_env(env_logger::Env::default())
        .try_init();
}
