//! Compatibility with the Go `flag` package the original gateway used (CONFIG.md §1).
//!
//! Two halves:
//! * value parsers with Go's exact syntax: [`parse_go_bool`] (`strconv.ParseBool`), [`parse_go_int`]
//!   (`strconv.ParseInt(s, 0, 64)`) and [`parse_go_duration`] (`time.ParseDuration`);
//! * [`rewrite_args`], a pre-pass that turns the original's spellings (`-ClientAddr=:8000`,
//!   `-ClientAddr :8000`, `--ClientAddr=:8000`, `-ReusePort`, `-ReusePort=false`) and our kebab-case ones
//!   (`--client-addr :8000`) into one canonical form, `--client-addr=:8000`, that clap then parses.
//!
//! The pre-pass knows which flags take a value by looking at the clap [`Command`] itself, so the flag
//! table lives in one place (`args.rs`).

use clap::{ArgAction, Command};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

#[cfg(test)]
mod tests;

// ---------------------------------------------------------------------------------------------------
// Booleans
// ---------------------------------------------------------------------------------------------------

/// A boolean flag value that Go's `strconv.ParseBool` would not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoolError {
    /// The rejected text.
    pub value: String,
}

impl fmt::Display for BoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a boolean; use one of 1 t T TRUE true True (on) or 0 f F FALSE false False (off)",
            self.value
        )
    }
}

impl std::error::Error for BoolError {}

/// Parses a boolean exactly as Go's `strconv.ParseBool`: `1 t T TRUE true True` are true,
/// `0 f F FALSE false False` are false, anything else (`yes`, `tRuE`, ``) is an error.
pub fn parse_go_bool(s: &str) -> Result<bool, BoolError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(BoolError {
            value: s.to_owned(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------------------------------

/// An integer flag value that Go's `strconv.ParseInt(s, 0, 64)` would not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntError {
    /// Not an integer in any of the accepted notations.
    Syntax(String),
    /// A well-formed integer outside the signed 64-bit range.
    Range(String),
}

impl fmt::Display for IntError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(s) => write!(
                f,
                "{s:?} is not an integer (decimal, 0x hex, 0o or leading-0 octal, 0b binary; `_` may separate digits)"
            ),
            Self::Range(s) => write!(f, "{s:?} is out of the 64-bit integer range"),
        }
    }
}

impl std::error::Error for IntError {}

/// Parses an integer exactly as Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then decimal,
/// `0x`/`0X` hex, `0o`/`0O` octal, `0b`/`0B` binary, or a leading `0` for octal (`010` is 8).
/// Underscores may separate digits (`1_000`, `0x_ff`) but may not lead, trail or double up.
pub fn parse_go_int(s: &str) -> Result<i64, IntError> {
    let syntax = || IntError::Syntax(s.to_owned());
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let bytes = unsigned.as_bytes();
    if bytes.is_empty() {
        return Err(syntax());
    }
    // Base detection of strconv.ParseUint with base 0.
    let (base, digits): (u32, &[u8]) = if bytes[0] == b'0' {
        match bytes.get(1).map(u8::to_ascii_lowercase) {
            Some(b'b') if bytes.len() >= 3 => (2, &bytes[2..]),
            Some(b'o') if bytes.len() >= 3 => (8, &bytes[2..]),
            Some(b'x') if bytes.len() >= 3 => (16, &bytes[2..]),
            _ => (8, &bytes[1..]),
        }
    } else {
        (10, bytes)
    };
    let mut magnitude: u64 = 0;
    let mut saw_underscore = false;
    for &c in digits {
        if c == b'_' {
            saw_underscore = true;
            continue;
        }
        let digit = char::from(c).to_digit(base).ok_or_else(syntax)?;
        magnitude = magnitude
            .checked_mul(u64::from(base))
            .and_then(|m| m.checked_add(u64::from(digit)))
            .ok_or_else(|| IntError::Range(s.to_owned()))?;
    }
    if saw_underscore && !underscores_ok(s) {
        return Err(syntax());
    }
    let limit = 1u64 << 63;
    if negative {
        if magnitude > limit {
            return Err(IntError::Range(s.to_owned()));
        }
        // magnitude ≤ 2^63, so the two's-complement negation fits.
        Ok(0i64.wrapping_sub_unsigned(magnitude))
    } else {
        i64::try_from(magnitude).map_err(|_| IntError::Range(s.to_owned()))
    }
}

/// Go's `underscoreOK`: underscores only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    let mut bytes = s.as_bytes();
    if let Some(b'+' | b'-') = bytes.first() {
        bytes = &bytes[1..];
    }
    // '^' start, '0' digit or base prefix, '_' underscore, '!' anything else.
    let mut saw = b'^';
    let mut hex = false;
    if bytes.len() >= 2
        && bytes[0] == b'0'
        && matches!(bytes[1].to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        hex = bytes[1].eq_ignore_ascii_case(&b'x');
        saw = b'0';
        bytes = &bytes[2..];
    }
    for &c in bytes {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

// ---------------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------------

/// A Go `time.Duration`: signed nanoseconds, as the original's duration flags hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration {
    /// The duration in nanoseconds; negative values are legal in Go.
    pub nanos: i64,
}

impl GoDuration {
    /// The duration if it is strictly positive; `None` for zero and negative durations (the original
    /// treats those as "no deadline").
    pub fn positive(self) -> Option<Duration> {
        u64::try_from(self.nanos)
            .ok()
            .filter(|&n| n > 0)
            .map(Duration::from_nanos)
    }

    /// The duration with negative values clamped to zero.
    pub fn clamped(self) -> Duration {
        self.positive().unwrap_or(Duration::ZERO)
    }
}

/// A duration flag value that Go's `time.ParseDuration` would not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Malformed, or beyond Go's ±292-year range.
    Invalid(String),
    /// A number without a unit (only a bare `0` may omit it).
    MissingUnit(String),
    /// A unit other than `ns us µs ms s m h`.
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole value.
        value: String,
    },
}

const DURATION_HINT: &str =
    "write a number with a unit (ns us µs ms s m h), e.g. 30s, 1m30s, 500ms, 1.5s";

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(s) => write!(f, "invalid duration {s:?}; {DURATION_HINT}"),
            Self::MissingUnit(s) => write!(f, "missing unit in duration {s:?}; {DURATION_HINT}"),
            Self::UnknownUnit { unit, value } => {
                write!(
                    f,
                    "unknown unit {unit:?} in duration {value:?}; {DURATION_HINT}"
                )
            }
        }
    }
}

impl std::error::Error for DurationError {}

/// Nanoseconds per unit, as Go's `unitMap` (both micro signs are accepted, as in Go).
fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => 1,
        b"us" => 1_000,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU.
        [0xC2, 0xB5, b's'] | [0xCE, 0xBC, b's'] => 1_000,
        b"ms" => 1_000_000,
        b"s" => 1_000_000_000,
        b"m" => 60 * 1_000_000_000,
        b"h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a duration exactly as Go's `time.ParseDuration`: an optional sign, then one or more
/// `<decimal><unit>` terms (`1h30m`, `1.5s`, `.5ms`, `-3s`). A bare `0` is zero; any other number
/// without a unit is an error.
pub fn parse_go_duration(s: &str) -> Result<GoDuration, DurationError> {
    let invalid = || DurationError::Invalid(s.to_owned());
    const LIMIT: u64 = 1 << 63;
    let mut rest = s.as_bytes();
    let mut negative = false;
    if let Some(&c @ (b'-' | b'+')) = rest.first() {
        negative = c == b'-';
        rest = &rest[1..];
    }
    if rest == b"0" {
        return Ok(GoDuration { nanos: 0 });
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !(rest[0] == b'.' || rest[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let int_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &rest[..int_len] {
            if whole > LIMIT / 10 {
                return Err(invalid());
            }
            whole = whole * 10 + u64::from(c - b'0');
            if whole > LIMIT {
                return Err(invalid());
            }
        }
        rest = &rest[int_len..];
        // Fraction: digits past the point that would overflow are ignored, as in Go.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if rest.first() == Some(&b'.') {
            rest = &rest[1..];
            frac_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &rest[..frac_len] {
                if overflow || frac > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = frac * 10 + u64::from(c - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = next;
                scale *= 10.0;
            }
            rest = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        // Unit: everything up to the next digit or point.
        let unit_len = rest
            .iter()
            .take_while(|&&c| c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(s.to_owned()));
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(per_unit) = unit_nanos(unit) else {
            return Err(DurationError::UnknownUnit {
                unit: String::from_utf8_lossy(unit).into_owned(),
                value: s.to_owned(),
            });
        };
        if whole > LIMIT / per_unit {
            return Err(invalid());
        }
        let mut term = whole * per_unit;
        if frac > 0 {
            // Go computes this in float64 too; truncation is intended.
            let frac_nanos = (frac as f64 * (per_unit as f64 / scale)) as u64;
            term += frac_nanos;
            if term > LIMIT {
                return Err(invalid());
            }
        }
        total += term;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    let nanos = if negative {
        0i64.wrapping_sub_unsigned(total)
    } else {
        i64::try_from(total).map_err(|_| invalid())?
    };
    Ok(GoDuration { nanos })
}

// ---------------------------------------------------------------------------------------------------
// Argument rewriting
// ---------------------------------------------------------------------------------------------------

/// A command line that cannot be parsed: found by the rewriting pre-pass, before clap sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// A flag name that no flag has (Go: `flag provided but not defined`).
    UnknownFlag(String),
    /// A flag that takes a value was the last argument.
    MissingValue(String),
    /// `---x`, `-=x` and similar.
    BadSyntax(String),
    /// A word that is not a flag. The original stopped parsing there and silently ignored every later
    /// flag; we refuse the whole command line instead.
    Positional {
        /// The offending argument.
        arg: String,
        /// The boolean flag written right before it without `=`, if any (`-ReusePort false`).
        after_bool: Option<String>,
    },
    /// An argument that is not valid UTF-8 where a flag was expected.
    NotUnicode(String),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownFlag(flag) => write!(f, "flag provided but not defined: {flag}"),
            Self::MissingValue(flag) => write!(f, "flag needs an argument: {flag}"),
            Self::BadSyntax(arg) => write!(f, "bad flag syntax: {arg}"),
            Self::Positional {
                arg,
                after_bool: Some(flag),
            } => write!(
                f,
                "unexpected argument {arg:?} after {flag}: a boolean flag takes its value only after '=' \
                 (write {flag}={arg}); fastway accepts no positional arguments"
            ),
            Self::Positional {
                arg,
                after_bool: None,
            } => write!(
                f,
                "unexpected argument {arg:?}: fastway accepts no positional arguments \
                 (the original gateway silently ignored every flag after one)"
            ),
            Self::NotUnicode(arg) => write!(f, "argument {arg:?} is not valid UTF-8"),
        }
    }
}

impl std::error::Error for ArgError {}

/// How the pre-pass treats a flag name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Optional value, only after `=` (Go booleans).
    Bool,
    /// Needs a value: after `=` or as the next argument.
    Value,
    /// No value (help, version).
    Bare,
}

/// Every accepted flag name (long name, aliases, short letter) → (canonical long name, kind).
fn flag_table(cmd: &Command) -> HashMap<String, (String, Kind)> {
    let mut cmd = cmd.clone();
    cmd.build(); // adds the generated --help / --version arguments
    let mut table = HashMap::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
        let kind = match arg.get_num_args() {
            Some(range) if takes_value && range.min_values() == 0 => Kind::Bool,
            _ if takes_value => Kind::Value,
            _ => Kind::Bare,
        };
        let mut names: Vec<String> = vec![long.to_owned()];
        names.extend(
            arg.get_all_aliases()
                .unwrap_or_default()
                .into_iter()
                .map(str::to_owned),
        );
        names.extend(arg.get_short().map(String::from));
        for name in names {
            table.insert(name, (long.to_owned(), kind));
        }
    }
    table
}

/// Rewrites a command line (program name first) into the canonical `--kebab-name=value` form clap
/// parses, accepting every spelling of CONFIG.md §1 and our kebab-case names, with one or two dashes.
///
/// A value-taking flag without `=` consumes the next argument whatever it looks like (as Go does, so
/// `-ClientIdleTimeout -3s` works); a boolean flag takes a value only after `=`. `--` ends the flags and
/// anything after it, like any other non-flag word, is an [`ArgError::Positional`].
pub fn rewrite_args<I, T>(cmd: &Command, args: I) -> Result<Vec<OsString>, ArgError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let table = flag_table(cmd);
    let mut args = args.into_iter().map(Into::into);
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    let mut last_bare_bool: Option<String> = None;
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(ArgError::NotUnicode(arg.to_string_lossy().into_owned()));
        };
        if text == "--" {
            return match args.next() {
                None => Ok(out),
                Some(extra) => Err(ArgError::Positional {
                    arg: extra.to_string_lossy().into_owned(),
                    after_bool: None,
                }),
            };
        }
        let body = text.strip_prefix("--").or_else(|| text.strip_prefix('-'));
        let Some(body) = body.filter(|b| !b.is_empty()) else {
            return Err(ArgError::Positional {
                arg: text.to_owned(),
                after_bool: last_bare_bool.take(),
            });
        };
        if body.starts_with(['-', '=']) {
            return Err(ArgError::BadSyntax(text.to_owned()));
        }
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let dashes = &text[..text.len() - body.len()];
        let Some((long, kind)) = table.get(name) else {
            return Err(ArgError::UnknownFlag(format!("{dashes}{name}")));
        };
        last_bare_bool = None;
        let mut canonical = OsString::from(format!("--{long}"));
        match (kind, value) {
            (Kind::Bare, _) => {}
            (Kind::Bool, None) => last_bare_bool = Some(format!("{dashes}{name}")),
            (Kind::Bool | Kind::Value, Some(value)) => canonical.push(format!("={value}")),
            (Kind::Value, None) => {
                let value = args
                    .next()
                    .ok_or_else(|| ArgError::MissingValue(format!("{dashes}{name}")))?;
                canonical.push("=");
                canonical.push(value);
            }
        }
        out.push(canonical);
    }
    Ok(out)
}
