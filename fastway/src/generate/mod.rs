//! Shell completions and the man page, generated from the clap definition of the command line
//! ([`Args`]), so packagers ship documentation that always matches the flags of the binary.
//!
//! `fastway --completions <SHELL>` and `fastway --man` print to stdout and exit without starting a
//! gateway. Both flags are *exclusive* (clap refuses them next to any other flag) and are recognised by
//! [`Request::from_command_line`] before the gateway's own configuration is read, so a config file or
//! environment variable can never turn them on or get in their way.
//!
//! The Go-style spellings (`-ClientAddr`) are not completable: shells complete words after `--`, so
//! the completions offer the kebab names and the Go names as `--ClientAddr` (clap's visible aliases).

#[cfg(test)]
mod tests;

use crate::config::{Args, goflags};
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::io::{self, Write};

pub use clap_complete::Shell;

/// The packaging flags, flattened into [`Args`] so `--help`, the man page and the completions list them
/// like every other flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct GenerateArgs {
    /// Print the completion script for SHELL to stdout and exit, e.g.
    /// `fastway --completions bash > /usr/share/bash-completion/completions/fastway`
    #[arg(
        long,
        value_enum,
        value_name = "SHELL",
        exclusive = true,
        help_heading = "Packaging"
    )]
    pub completions: Option<Shell>,

    /// Print the man page (roff) to stdout and exit, e.g. `fastway --man > /usr/share/man/man1/fastway.1`
    #[arg(long, exclusive = true, help_heading = "Packaging")]
    pub man: bool,
}

/// What the packaging flags asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `--completions <SHELL>`: the completion script of that shell.
    Completions(Shell),
    /// `--man`: the man page in roff.
    Man,
}

impl Request {
    /// The request in `generate`, if any.
    pub fn from_args(generate: &GenerateArgs) -> Option<Request> {
        match (generate.completions, generate.man) {
            (Some(shell), _) => Some(Request::Completions(shell)),
            (None, true) => Some(Request::Man),
            (None, false) => None,
        }
    }

    /// Looks for a packaging flag in a full command line (program name first), in any spelling the
    /// gateway accepts (`--man`, `-man`, `--completions=zsh`, `-completions zsh`).
    ///
    /// Returns `None` when there is none *or when the command line does not parse*: the caller then
    /// parses it as a gateway configuration, which reports the error with the usual message and exit
    /// status (for instance `--man --client-addr :1` is refused there because `--man` is exclusive).
    pub fn from_command_line<I, T>(args: I) -> Option<Request>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let cmd = Args::command();
        let args = goflags::rewrite_args(&cmd, args).ok()?;
        let matches = cmd.try_get_matches_from(args).ok()?;
        let generate = GenerateArgs::from_arg_matches(&matches).ok()?;
        Request::from_args(&generate)
    }

    /// Writes what was asked for to `out`.
    pub fn write(self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Request::Completions(shell) => completions(shell, out),
            Request::Man => man_page(out),
        }
    }
}

/// Writes the completion script of `shell` for the `fastway` binary.
pub fn completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Args::command();
    let name = cmd.get_name().to_owned();
    // clap_complete writes straight into `out` and panics on write errors; render into memory first
    // so a closed pipe is an error we return, not a panic.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes the man page (section 1, roff `man` macros): NAME, SYNOPSIS, DESCRIPTION, OPTIONS with
/// every flag and its help, the notes of `--help` (Go spellings, value syntax, snet, process control)
/// and VERSION.
pub fn man_page(out: &mut dyn Write) -> io::Result<()> {
    // The `about` line doubles as the man NAME line, which already starts with the program name.
    let cmd = Args::command().about("game gateway that multiplexes game clients onto game servers");
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .manual("fastway manual")
        .render(&mut page)?;
    out.write_all(escape_non_ascii(&String::from_utf8_lossy(&page)).as_bytes())?;
    out.flush()
}

/// Replaces every non-ASCII character by its roff escape (`≥` → `\[u2265]`): troff reads its input as
/// Latin-1 unless a preprocessor converts it, and the help texts use `≥`, `µ`, `…` and `—`. The escaped
/// page renders the same under groff, mandoc and man-db, whatever their input encoding.
fn escape_non_ascii(page: &str) -> String {
    let mut escaped = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            escaped.push(c);
        } else {
            escaped.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    escaped
}
