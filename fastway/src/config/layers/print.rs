//! `--print-config`: the effective configuration as a TOML file that `--config` reads back, one
//! `key = value` line per setting with its origin as a trailing comment, grouped by `--help` section.
//!
//! Secrets ([`SECRET_FLAGS`](super::super::args::SECRET_FLAGS), i.e. ServerAuthKey) are masked by
//! default: printed configurations end up in tickets and chat logs, and an operator who wants to know
//! *whether* and *where* the key is set needs its length and origin, not its bytes. The masked line is
//! commented out, so feeding masked output back does not set a wrong key: the key must come from the
//! environment or the command line then. `--print-config=full` prints the key too.

use super::super::PrintMode;
use super::super::goflags::{parse_go_bool, parse_go_int};
use super::flags::FlagKind;
use super::{EffectiveValue, Origin};
use std::fmt::Write as _;
use toml::Value;

/// Renders `values` as TOML; `warnings` go first, as comments.
pub fn render(values: &[EffectiveValue], mode: PrintMode, warnings: &[String]) -> String {
    let mut out = format!(
        "# fastway {} effective configuration; use it with --config FILE.\n\
         # Precedence: command line > environment (FASTWAY_*) > config file > default.\n",
        env!("CARGO_PKG_VERSION")
    );
    for warning in warnings {
        let _ = writeln!(out, "# warning: {warning}");
    }
    let mut heading: Option<&str> = None;
    for value in values {
        let this = value.heading.as_deref().unwrap_or("Other");
        if heading != Some(this) {
            let _ = write!(out, "\n# --- {this} ---\n");
            heading = Some(this);
        }
        out.push_str(&line(value, mode));
        out.push('\n');
    }
    out
}

/// One `key = value # origin` line (commented out for a masked secret).
fn line(value: &EffectiveValue, mode: PrintMode) -> String {
    let origin = origin_comment(&value.origin);
    if value.secret && mode == PrintMode::Masked && !value.value.is_empty() {
        return format!(
            "# {} = (hidden: {} bytes) # {origin}; --print-config=full shows it",
            value.long,
            value.value.len()
        );
    }
    format!(
        "{} = {} # {origin}",
        value.long,
        toml_value(value.kind, &value.value)
    )
}

/// The TOML literal for a flag value: booleans and integers normalized (`0x10` → `16`), anything
/// else (or anything that does not parse, which validation already excluded) as a quoted string.
fn toml_value(kind: FlagKind, text: &str) -> String {
    let value = match kind {
        FlagKind::Bool => parse_go_bool(text).map(Value::Boolean).ok(),
        FlagKind::Int => parse_go_int(text).map(Value::Integer).ok(),
        FlagKind::Text => None,
    };
    value
        .unwrap_or_else(|| Value::String(text.to_owned()))
        .to_string()
}

/// The origin as a comment (`default`, `from env FASTWAY_X`, ...).
fn origin_comment(origin: &Origin) -> String {
    // A newline in a path would end the comment early and break the file.
    origin.to_string().replace(['\n', '\r'], " ")
}
