//! Where settings come from: the command line, `FASTWAY_*` environment variables, a TOML file given
//! by `--config` (or `FASTWAY_CONFIG`) and the defaults, with the precedence
//! **command line > environment > file > default**.
//!
//! How the layers are merged: the file and the environment are turned into canonical
//! `--long-name=value` arguments and placed *before* the real (rewritten) command line, file first:
//!
//! ```text
//! fastway  <file values>  <environment values>  <command line>
//! ```
//!
//! Every flag is declared with `args_override_self`, so clap keeps the last occurrence and the
//! precedence falls out of the order; defaults apply to flags that none of the three set. The layers
//! know the flags only through the clap definition ([`flags::FlagTable`]), so a flag added to
//! `args.rs` gets its file key (long name and every alias) and its `FASTWAY_*` variable without any
//! code here. Each file and environment value is first checked alone with the flag's own value
//! parser, so a bad one is reported with its file line and key, or its variable, instead of as a
//! command-line error; range checks ([`Settings::from_args`]) report the source of the value too.
//!
//! Environment parsing takes the variables as an iterator (no process-global reads), which keeps the
//! unit tests pure and free of races.

pub mod env;
pub mod file;
pub mod flags;
pub mod print;

#[cfg(test)]
mod tests;

use super::{Args, CliError, PrintMode, Settings, goflags};
use clap::{CommandFactory, FromArgMatches};
use flags::{FlagKind, FlagTable};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nobody set it: the flag's default.
    Default,
    /// A key of the config file.
    File {
        /// The file as given to `--config` / `FASTWAY_CONFIG`.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// 1-based column of the key.
        column: usize,
        /// The key as written (`client-addr` or `ClientAddr`).
        key: String,
    },
    /// An environment variable.
    Env {
        /// Its name (`FASTWAY_CLIENT_ADDR`).
        var: String,
    },
    /// The command line (either spelling).
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File {
                path,
                line,
                column,
                key,
            } => write!(f, "from file {}:{line}:{column} key {key}", path.display()),
            Self::Env { var } => write!(f, "from env {var}"),
            Self::CommandLine => f.write_str("from the command line"),
        }
    }
}

/// One value set by the file or the environment, already checked by the flag's value parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The flag's canonical long name.
    pub long: String,
    /// The value as flag text (`true`, `4096`, `30s`, `:8000`).
    pub value: String,
    /// Where it was written.
    pub origin: Origin,
}

impl Assignment {
    /// The canonical command-line form, `--long=value`.
    fn to_arg(&self) -> OsString {
        OsString::from(format!("--{}={}", self.long, self.value))
    }
}

/// The effective value of one flag, as `--print-config` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveValue {
    /// The flag's long name (the file key).
    pub long: String,
    /// Its `--help` section, used to group the printed file.
    pub heading: Option<String>,
    /// The TOML type to print it as.
    pub kind: FlagKind,
    /// The value as flag text.
    pub value: String,
    /// Which layer set it.
    pub origin: Origin,
    /// Whether it is hidden unless `--print-config=full`.
    pub secret: bool,
}

/// The result of reading every layer.
#[derive(Debug)]
pub struct Loaded {
    /// The checked settings.
    pub settings: Settings,
    /// `--print-config` was given: print [`effective`](Self::effective) instead of running.
    pub print_config: Option<PrintMode>,
    /// Every setting's effective value and origin, in `--help` order.
    pub effective: Vec<EffectiveValue>,
    /// Things worth a warning that are not errors (unknown `FASTWAY_*` variables), for the log.
    pub warnings: Vec<String>,
}

impl Loaded {
    /// The effective configuration as TOML (see [`print::render`]).
    pub fn render(&self, mode: PrintMode) -> String {
        print::render(&self.effective, mode, &self.warnings)
    }
}

/// Reads the command line (program name first), the environment variables `env` and the config file
/// they name, merges them by precedence and checks the result.
pub fn load<I, T, E, K, V>(args: I, env: E) -> Result<Loaded, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
    E: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    let mut cmd = Args::command();
    let cli = goflags::rewrite_args(&cmd, args).map_err(CliError::Args)?;
    // The command line alone first: it may name the config file, and its own errors (and --help)
    // come before any file is read.
    let cli_only = cmd
        .clone()
        .try_get_matches_from(cli.clone())
        .map_err(CliError::Clap)?;
    let table_cmd = cmd.clone();
    let table = FlagTable::new(&table_cmd);
    let env_layer = env::read(&table, env).map_err(CliError::Env)?;
    let config_path = cli_only
        .get_one::<PathBuf>("config")
        .cloned()
        .or(env_layer.config);
    let file_layer = match &config_path {
        Some(path) => file::read(&table_cmd, &table, path).map_err(CliError::File)?,
        None => Vec::new(),
    };

    let mut origins: HashMap<String, Origin> = HashMap::new();
    let mut merged: Vec<OsString> = cli.first().cloned().into_iter().collect();
    for assignment in file_layer.iter().chain(&env_layer.values) {
        merged.push(assignment.to_arg());
        origins.insert(assignment.long.clone(), assignment.origin.clone());
    }
    for arg in cli.iter().skip(1) {
        if let Some(long) = canonical_long(arg) {
            origins.insert(long, Origin::CommandLine);
        }
    }
    merged.extend(cli.into_iter().skip(1));

    let matches = cmd
        .try_get_matches_from_mut(merged)
        .map_err(CliError::Clap)?;
    let parsed =
        Args::from_arg_matches(&matches).map_err(|e| CliError::Clap(e.format(&mut cmd)))?;
    let settings = Settings::from_args(&parsed).map_err(|error| {
        let origin = table
            .get(error.flag())
            .and_then(|flag| origins.get(flag.long))
            .cloned()
            .unwrap_or(Origin::Default);
        CliError::Invalid {
            error,
            origin: Box::new(origin),
        }
    })?;
    let effective = table
        .iter()
        .map(|flag| EffectiveValue {
            long: flag.long.to_owned(),
            heading: flag.arg.get_help_heading().map(str::to_owned),
            kind: flag.kind,
            value: matches
                .get_raw(flag.arg.get_id().as_str())
                .and_then(|mut values| values.next_back())
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default(),
            origin: origins.get(flag.long).cloned().unwrap_or(Origin::Default),
            secret: flag.secret,
        })
        .collect();
    Ok(Loaded {
        settings,
        print_config: parsed.print_config,
        effective,
        warnings: env_layer.warnings,
    })
}

/// The long name of a canonical `--long` / `--long=value` argument (the rewriter's output form).
fn canonical_long(arg: &OsString) -> Option<String> {
    let text = arg.to_string_lossy();
    let body = text.strip_prefix("--")?;
    let name = body.split_once('=').map_or(body, |(name, _)| name);
    Some(name.to_owned())
}
