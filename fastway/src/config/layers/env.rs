//! The environment layer: `FASTWAY_<FLAG>` for every setting (`FASTWAY_CLIENT_ADDR`,
//! `FASTWAY_MAX_PACKET`, ...) plus `FASTWAY_CONFIG` for the config file path.

use super::flags::{ENV_PREFIX, FlagTable};
use super::{Assignment, Origin};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The variable naming the config file (like `--config`).
pub const CONFIG_VAR: &str = "FASTWAY_CONFIG";

/// A `FASTWAY_*` variable that cannot be used. `Display` names the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvError {
    /// The value is not valid UTF-8.
    NotUnicode {
        /// The variable.
        var: String,
    },
    /// The flag's value parser rejected the value.
    BadValue {
        /// The variable.
        var: String,
        /// The value as set.
        value: String,
        /// The parser's message.
        reason: String,
    },
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUnicode { var } => {
                write!(f, "environment variable {var}: value is not valid UTF-8")
            }
            Self::BadValue { var, value, reason } => {
                write!(f, "environment variable {var}={value:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for EnvError {}

/// What the environment contributes.
#[derive(Debug, Default)]
pub struct EnvLayer {
    /// Settings, in flag definition order.
    pub values: Vec<Assignment>,
    /// `FASTWAY_CONFIG`, if set and not empty.
    pub config: Option<PathBuf>,
    /// One message per `FASTWAY_*` variable that is not a setting (probably a typo).
    pub warnings: Vec<String>,
}

/// Reads the `FASTWAY_*` variables out of `vars` (pass `std::env::vars_os()` for the process's own);
/// other variables are ignored.
pub fn read<E, K, V>(table: &FlagTable<'_>, vars: E) -> Result<EnvLayer, EnvError>
where
    E: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    let mut ours: HashMap<String, OsString> = HashMap::new();
    for (key, value) in vars {
        let (key, value) = (key.into(), value.into());
        if let Some(key) = key.to_str().filter(|k| k.starts_with(ENV_PREFIX)) {
            ours.insert(key.to_owned(), value);
        }
    }
    let mut layer = EnvLayer {
        config: ours
            .remove(CONFIG_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        ..EnvLayer::default()
    };
    for flag in table.iter() {
        let Some(raw) = ours.remove(&flag.env_var) else {
            continue;
        };
        let var = flag.env_var.clone();
        let value = raw
            .into_string()
            .map_err(|_| EnvError::NotUnicode { var: var.clone() })?;
        flag.check(&value).map_err(|reason| EnvError::BadValue {
            var: var.clone(),
            value: value.clone(),
            reason,
        })?;
        layer.values.push(Assignment {
            long: flag.long.to_owned(),
            value,
            origin: Origin::Env { var },
        });
    }
    let mut unknown: Vec<String> = ours.into_keys().collect();
    unknown.sort();
    layer.warnings = unknown
        .into_iter()
        .map(|var| {
            format!(
                "environment variable {var} is not a fastway setting and was ignored \
                 (settings are FASTWAY_ + a long flag name in SCREAMING_SNAKE_CASE, e.g. FASTWAY_CLIENT_ADDR)"
            )
        })
        .collect();
    Ok(layer)
}
