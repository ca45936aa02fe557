//! The configurable flags as the file and environment layers see them, read from the clap
//! definition so that every flag added to `args.rs` gets a file key and a variable automatically.

use super::super::args::{META_FLAGS, SECRET_FLAGS};
use super::super::goflags::parse_go_int;
use clap::builder::ValueParser;
use clap::{Arg, ArgAction, Command};
use std::collections::HashMap;
use std::error::Error as _;

/// Prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "FASTWAY_";

/// How a flag's value is written in TOML (and so which TOML types a config file may use for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// A Go boolean: TOML `true`/`false`, or a string in Go syntax.
    Bool,
    /// A Go integer: a TOML integer, or a string in Go syntax (`"0x1000"`).
    Int,
    /// Anything else (addresses, durations, names, paths): a TOML string; an integer is accepted
    /// and turned into its decimal text (so `client-idle-timeout = 0` works like `-ClientIdleTimeout 0`).
    Text,
}

/// One configurable flag.
#[derive(Debug)]
pub struct Flag<'a> {
    /// The clap argument (for its value parser and help heading).
    pub arg: &'a Arg,
    /// The canonical long (kebab) name, which is also the file key `--print-config` writes.
    pub long: &'a str,
    /// The TOML type of its values.
    pub kind: FlagKind,
    /// `FASTWAY_<LONG_IN_SCREAMING_SNAKE>`.
    pub env_var: String,
    /// Whether `--print-config` hides it by default.
    pub secret: bool,
}

impl Flag<'_> {
    /// Checks one value with the flag's own clap value parser, so a file or environment value is
    /// judged exactly as the same text on the command line. The error is the parser's message.
    ///
    /// clap offers no public "parse one value" call, so the value goes through a one-argument
    /// command holding a copy of the flag.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let single = Command::new("check")
            .no_binary_name(true)
            .disable_help_flag(true)
            .disable_version_flag(true)
            .arg(self.arg.clone());
        match single.try_get_matches_from([format!("--{}={value}", self.long)]) {
            Ok(_) => Ok(()),
            Err(err) => Err(match err.source() {
                Some(source) => source.to_string(),
                None => self.possible_values_hint(value),
            }),
        }
    }

    /// The message for a value outside a fixed set (clap keeps the list in the argument).
    fn possible_values_hint(&self, value: &str) -> String {
        let names: Vec<String> = self
            .arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_owned())
            .collect();
        if names.is_empty() {
            format!("invalid value {value:?}")
        } else {
            format!("{value:?} is not one of {}", names.join(", "))
        }
    }
}

/// Every configurable flag of a clap command, found by any of its names.
#[derive(Debug)]
pub struct FlagTable<'a> {
    flags: Vec<Flag<'a>>,
    by_name: HashMap<&'a str, usize>,
}

impl<'a> FlagTable<'a> {
    /// Collects the flags of `cmd`, skipping [`META_FLAGS`] and arguments without a long name.
    pub fn new(cmd: &'a Command) -> FlagTable<'a> {
        let int_type = ValueParser::new(parse_go_int).type_id();
        let mut flags = Vec::new();
        let mut by_name = HashMap::new();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if META_FLAGS.contains(&long) {
                continue;
            }
            let bool_like = arg.get_num_args().is_some_and(|n| n.min_values() == 0)
                && matches!(arg.get_action(), ArgAction::Set);
            let kind = if bool_like {
                FlagKind::Bool
            } else if arg.get_value_parser().type_id() == int_type {
                FlagKind::Int
            } else {
                FlagKind::Text
            };
            let index = flags.len();
            by_name.insert(long, index);
            for alias in arg.get_all_aliases().unwrap_or_default() {
                by_name.insert(alias, index);
            }
            flags.push(Flag {
                arg,
                long,
                kind,
                env_var: env_var_name(long),
                secret: SECRET_FLAGS.contains(&long),
            });
        }
        FlagTable { flags, by_name }
    }

    /// The flag called `name` (long name or any alias: `client-addr` or `ClientAddr`).
    pub fn get(&self, name: &str) -> Option<&Flag<'a>> {
        self.by_name.get(name).map(|&i| &self.flags[i])
    }

    /// All flags in definition order.
    pub fn iter(&self) -> impl Iterator<Item = &Flag<'a>> {
        self.flags.iter()
    }
}

/// `FASTWAY_` + the long name in SCREAMING_SNAKE_CASE (`client-addr` → `FASTWAY_CLIENT_ADDR`).
pub fn env_var_name(long: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        long.replace('-', "_").to_ascii_uppercase()
    )
}
