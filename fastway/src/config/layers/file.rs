//! The config file layer: a flat TOML table whose keys are flag names, either the long kebab name
//! (`client-addr = ":8000"`) or any alias, i.e. the original's CamelCase name (`ClientAddr`), so
//! values can be copied from the original's launch scripts. Values use the flags' own syntax:
//! booleans as TOML booleans (or Go strings), integers as TOML integers (or Go strings such as
//! `"0x1000"`), everything else (addresses, durations like `"30s"`) as strings.

use super::flags::{FlagKind, FlagTable};
use super::{Assignment, Origin};
use clap::Command;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::{Spanned, Value};

/// What is wrong in a config file.
#[derive(Debug)]
pub enum FileProblem {
    /// The file cannot be read.
    Read(std::io::Error),
    /// Not valid TOML.
    Syntax(String),
    /// No flag has this name.
    UnknownKey,
    /// A flag that only makes sense on the command line (`config`, `print-config`).
    NotASetting,
    /// The TOML type does not fit the flag.
    WrongType {
        /// What the flag takes.
        expected: &'static str,
        /// What the file has.
        found: &'static str,
    },
    /// The flag's value parser rejected the value.
    BadValue {
        /// The value as flag text.
        value: String,
        /// The parser's message.
        reason: String,
    },
    /// The same flag under two names (`client-addr` and `ClientAddr`).
    Duplicate {
        /// The other key.
        other_key: String,
        /// Its line.
        other_line: usize,
    },
}

/// A config file that cannot be used. `Display` names the file, the line and column, and the key.
#[derive(Debug)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column of the problem, when it has a place.
    pub position: Option<(usize, usize)>,
    /// The key concerned, when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub problem: FileProblem,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config file {}", self.path.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ", line {line}, column {column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key {key:?}")?;
        }
        f.write_str(": ")?;
        match &self.problem {
            FileProblem::Read(err) => write!(f, "cannot read it: {err}"),
            FileProblem::Syntax(message) => write!(f, "invalid TOML: {message}"),
            FileProblem::UnknownKey => f.write_str(
                "unknown key; keys are the long flag names (client-addr) or the original's names \
                 (ClientAddr), see --help",
            ),
            FileProblem::NotASetting => {
                f.write_str("not a setting; this flag works only on the command line")
            }
            FileProblem::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            FileProblem::BadValue { value, reason } => {
                write!(f, "invalid value {value:?}: {reason}")
            }
            FileProblem::Duplicate {
                other_key,
                other_line,
            } => write!(
                f,
                "sets the same flag as key {other_key:?} on line {other_line}; keep one"
            ),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            FileProblem::Read(err) => Some(err),
            _ => None,
        }
    }
}

/// Reads and checks the config file at `path`.
pub fn read(
    cmd: &Command,
    table: &FlagTable<'_>,
    path: &Path,
) -> Result<Vec<Assignment>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|err| FileError {
        path: path.to_owned(),
        position: None,
        key: None,
        problem: FileProblem::Read(err),
    })?;
    parse(cmd, table, path, &text)
}

/// Checks the TOML text of a config file (`path` is only used in messages and origins). The
/// assignments come out in file order.
pub fn parse(
    cmd: &Command,
    table: &FlagTable<'_>,
    path: &Path,
    text: &str,
) -> Result<Vec<Assignment>, FileError> {
    let error = |span: Option<Range<usize>>, key: Option<&str>, problem| FileError {
        path: path.to_owned(),
        position: span.map(|s| line_column(text, s.start)),
        key: key.map(str::to_owned),
        problem,
    };
    let entries: BTreeMap<Spanned<String>, Spanned<Value>> =
        toml::from_str(text).map_err(|err| {
            error(
                err.span(),
                None,
                FileProblem::Syntax(err.message().trim().to_owned()),
            )
        })?;
    let mut entries: Vec<_> = entries.into_iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);

    let mut seen: BTreeMap<&str, (String, usize)> = BTreeMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in &entries {
        let name = key.get_ref().as_str();
        let at = |problem| error(Some(key.span()), Some(name), problem);
        let Some(flag) = table.get(name) else {
            let meta = cmd.get_arguments().any(|a| a.get_long() == Some(name));
            return Err(at(if meta {
                FileProblem::NotASetting
            } else {
                FileProblem::UnknownKey
            }));
        };
        let (line, column) = line_column(text, key.span().start);
        if let Some((other_key, other_line)) = seen.insert(flag.long, (name.to_owned(), line)) {
            return Err(at(FileProblem::Duplicate {
                other_key,
                other_line,
            }));
        }
        let text_value = flag_text(flag.kind, value.get_ref()).map_err(|found| {
            at(FileProblem::WrongType {
                expected: expected(flag.kind),
                found,
            })
        })?;
        flag.check(&text_value).map_err(|reason| {
            error(
                Some(value.span()),
                Some(name),
                FileProblem::BadValue {
                    value: text_value.clone(),
                    reason,
                },
            )
        })?;
        out.push(Assignment {
            long: flag.long.to_owned(),
            value: text_value,
            origin: Origin::File {
                path: path.to_owned(),
                line,
                column,
                key: name.to_owned(),
            },
        });
    }
    Ok(out)
}

/// The flag text of a TOML value, or the name of its TOML type when the flag cannot take it.
fn flag_text(kind: FlagKind, value: &Value) -> Result<String, &'static str> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Boolean(b) if kind == FlagKind::Bool => Ok(b.to_string()),
        Value::Boolean(_) => Err("a boolean"),
        Value::Float(_) => Err("a float"),
        Value::Datetime(_) => Err("a date-time"),
        Value::Array(_) => Err("an array"),
        Value::Table(_) => Err("a table"),
    }
}

/// What a flag of this kind takes, for [`FileProblem::WrongType`].
fn expected(kind: FlagKind) -> &'static str {
    match kind {
        FlagKind::Bool => "a boolean (true or false)",
        FlagKind::Int => "an integer (or a string in Go integer syntax)",
        FlagKind::Text => "a string",
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
pub fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
