//! Logging setup: `env_logger` at the `--log-level` (overridden by `RUST_LOG` when it is set), in the
//! `--log-format`:
//!
//! * `text`: env_logger's human-readable line, `[2026-01-01T00:00:00Z INFO  target] message`;
//! * `json`: one JSON object per line, `{"ts":"…","level":"INFO","target":"…","msg":"…"}`, so a log
//!   collector needs no parsing rules. Strings are escaped by `serde_json`, so a message with quotes,
//!   newlines or control bytes (a peer's text, a path) still yields exactly one valid line.
//!
//! Either way each event is one line, and the gateway's lines carry the peer address and the ids
//! involved in the message itself (`accept server 7 from 127.0.0.1:50000`), so both formats hold
//! the same facts.

use crate::config::LogFormat;
use std::io::Write;

/// Installs the global logger. `level` is the default for every module; `RUST_LOG` directives (e.g.
/// `warn` or `fastway=trace`), when set, take precedence. Calling it twice keeps the first logger.
pub fn init(level: log::LevelFilter, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level)
        .parse_env(env_logger::Env::default());
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = json_line(&buf.timestamp_micros().to_string(), record);
            writeln!(buf, "{line}")
        });
    }
    let _ = builder.try_init();
}

/// One log record as a single-line JSON object.
pub fn json_line(timestamp: &str, record: &log::Record<'_>) -> String {
    serde_json::json!({
        "ts": timestamp,
        "level": record.level().as_str(),
        "target": record.target(),
        "msg": record.args().to_string(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::json_line;

    #[test]
    fn json_line_escapes_anything_into_one_parseable_line() {
        let args = format_args!("peer said \"hi\"\nthen {}\u{1}", '\\');
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Warn)
            .target("fastway::test")
            .build();
        let line = json_line("2026-01-01T00:00:00.000000Z", &record);
        assert!(!line.contains('\n'), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["msg"], "peer said \"hi\"\nthen \\\u{1}");
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["target"], "fastway::test");
        assert_eq!(value["ts"], "2026-01-01T00:00:00.000000Z");
    }
}
