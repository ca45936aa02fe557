//! The text commands of `fastway.cmd` (CONFIG.md §5), parsed into [`ControlCommand`].
//!
//! Matching is anchored at both ends and exact (case, single spaces), as the original's regular
//! expressions: `help`, `stats`, `conns`, `cpuprof (start|stop)`,
//! `lookup (block|gc|goroutine|heap|threadcreate) ([0-9]{0,4})`. As decided in DESIGN.md §3, the
//! README's spelling without the trailing space and digits (`lookup gc`) is accepted too.
//! Executing a command is the runtime's business; this module only parses and documents them.

use std::fmt;

/// What `cpuprof` should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuProfAction {
    /// `cpuprof start`.
    Start,
    /// `cpuprof stop`.
    Stop,
}

/// The profile kinds of `lookup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupKind {
    /// `lookup block`.
    Block,
    /// `lookup gc`.
    Gc,
    /// `lookup goroutine`.
    Goroutine,
    /// `lookup heap`.
    Heap,
    /// `lookup threadcreate`.
    ThreadCreate,
}

impl LookupKind {
    /// Every kind, in the order of the original's pattern.
    pub const ALL: [LookupKind; 5] = [
        Self::Block,
        Self::Gc,
        Self::Goroutine,
        Self::Heap,
        Self::ThreadCreate,
    ];

    /// The word used in the command.
    pub fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Gc => "gc",
            Self::Goroutine => "goroutine",
            Self::Heap => "heap",
            Self::ThreadCreate => "threadcreate",
        }
    }
}

impl fmt::Display for LookupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One command read from the command file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ControlCommand {
    /// `help`: log every command with its description ([`HELP`]).
    Help,
    /// `stats`: log the gateway's counters and the process's memory use.
    Stats,
    /// `conns`: dump every peer and virtual connection to the file `fastway.conns`.
    Conns,
    /// `cpuprof start|stop`: Go CPU profiling; not supported by fastway, only logged.
    CpuProf(CpuProfAction),
    /// `lookup <kind> [level]`: the original's runtime profiles, mapped to fastway's reports.
    Lookup {
        /// Which profile.
        kind: LookupKind,
        /// The debug level, 0 ..= 9999 (0 when omitted).
        level: u16,
    },
    /// Anything else: the trimmed text, to be logged as `unsupported command: <text>`.
    Unsupported(String),
}

/// The commands and what each does in fastway, one per line; `help` prints this.
pub const HELP: &str = "\
help                                                      list these commands
stats                                                     log the gateway counters and process memory use
conns                                                     write every peer and virtual connection to fastway.conns
cpuprof (start|stop)                                      not supported by fastway (Go CPU profiling); logged only
lookup (gc|heap) [0-9]{0,4}                               log a process memory summary
lookup (block|goroutine|threadcreate) [0-9]{0,4}          log a thread and task summary where the runtime has one, else \"not supported\"";

/// The characters trimmed from both ends of the file: `\n \r \t` and space.
fn is_trimmed(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\t' | ' ')
}

impl ControlCommand {
    /// Parses the contents of the command file: trims `\n \r \t` and spaces from both ends, then
    /// matches the whole remaining text. Never fails: unknown text is [`ControlCommand::Unsupported`].
    pub fn parse(text: &str) -> ControlCommand {
        let text = text.trim_matches(is_trimmed);
        Self::match_trimmed(text).unwrap_or_else(|| Self::Unsupported(text.to_owned()))
    }

    /// [`parse`](Self::parse) for raw file contents; invalid UTF-8 is replaced (and so never matches).
    pub fn parse_bytes(bytes: &[u8]) -> ControlCommand {
        Self::parse(&String::from_utf8_lossy(bytes))
    }

    fn match_trimmed(text: &str) -> Option<ControlCommand> {
        match text {
            "help" => return Some(Self::Help),
            "stats" => return Some(Self::Stats),
            "conns" => return Some(Self::Conns),
            "cpuprof start" => return Some(Self::CpuProf(CpuProfAction::Start)),
            "cpuprof stop" => return Some(Self::CpuProf(CpuProfAction::Stop)),
            _ => {}
        }
        let rest = text.strip_prefix("lookup ")?;
        let (word, level) = match rest.split_once(' ') {
            Some((word, digits)) => (word, parse_level(digits)?),
            None => (rest, 0),
        };
        let kind = LookupKind::ALL.into_iter().find(|k| k.name() == word)?;
        Some(Self::Lookup { kind, level })
    }
}

/// `[0-9]{0,4}`: up to four ASCII digits; empty is 0.
fn parse_level(digits: &str) -> Option<u16> {
    if digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0, |n, b| n * 10 + u16::from(b - b'0')))
}

impl fmt::Display for ControlCommand {
    /// The canonical text of the command (what [`ControlCommand::parse`] reads back to the same value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Help => f.write_str("help"),
            Self::Stats => f.write_str("stats"),
            Self::Conns => f.write_str("conns"),
            Self::CpuProf(CpuProfAction::Start) => f.write_str("cpuprof start"),
            Self::CpuProf(CpuProfAction::Stop) => f.write_str("cpuprof stop"),
            Self::Lookup { kind, level } => write!(f, "lookup {kind} {level}"),
            Self::Unsupported(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ControlCommand::*;

    fn lookup(kind: LookupKind, level: u16) -> ControlCommand {
        Lookup { kind, level }
    }

    #[test]
    fn command_table() {
        let table: &[(&str, ControlCommand)] = &[
            ("help", Help),
            ("stats", Stats),
            ("conns", Conns),
            ("cpuprof start", CpuProf(CpuProfAction::Start)),
            ("cpuprof stop", CpuProf(CpuProfAction::Stop)),
            ("lookup gc", lookup(LookupKind::Gc, 0)),
            ("lookup gc 0", lookup(LookupKind::Gc, 0)),
            ("lookup gc 1", lookup(LookupKind::Gc, 1)),
            ("lookup heap 9999", lookup(LookupKind::Heap, 9999)),
            ("lookup block 0012", lookup(LookupKind::Block, 12)),
            ("lookup goroutine 2", lookup(LookupKind::Goroutine, 2)),
            ("lookup threadcreate", lookup(LookupKind::ThreadCreate, 0)),
            // Surrounding `\n \r \t` and spaces are trimmed.
            ("  help\n", Help),
            ("\t\r\nlookup gc 0 \r\n\t ", lookup(LookupKind::Gc, 0)),
            ("stats\n\n", Stats),
        ];
        for (text, want) in table {
            assert_eq!(&ControlCommand::parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn rejected_text_is_unsupported_and_trimmed() {
        for text in [
            "",
            "lookup gc 12345",
            "lookup gc x",
            "lookup gc -1",
            "lookup gc 1 2",
            "lookup  gc 0",
            "lookup gc  0",
            "lookup\tgc 0",
            "lookup",
            "lookup mutex 0",
            "lookup GC 0",
            "Help",
            "help me",
            "helpx",
            "cpuprof",
            "cpuprof restart",
            "cpuprof start now",
            "stats\u{a0}",
            "lookup gc ０",
        ] {
            assert_eq!(
                ControlCommand::parse(&format!(" {text}\n")),
                Unsupported(text.to_owned()),
                "{text:?}"
            );
        }
        // Other whitespace is not trimmed: a vertical tab stays.
        assert_eq!(
            ControlCommand::parse("\x0bhelp"),
            Unsupported("\x0bhelp".to_owned())
        );
    }

    #[test]
    fn bytes_and_round_trip() {
        assert_eq!(ControlCommand::parse_bytes(b"conns\n"), Conns);
        assert!(matches!(
            ControlCommand::parse_bytes(b"help\xff"),
            Unsupported(_)
        ));
        for text in [
            "help",
            "stats",
            "conns",
            "cpuprof start",
            "cpuprof stop",
            "lookup heap 3",
        ] {
            assert_eq!(ControlCommand::parse(text).to_string(), text);
        }
        for kind in LookupKind::ALL {
            let cmd = lookup(kind, 7);
            assert_eq!(ControlCommand::parse(&cmd.to_string()), cmd);
        }
    }

    #[test]
    fn help_lists_every_command() {
        for word in ["help", "stats", "conns", "cpuprof", "start", "stop"] {
            assert!(HELP.contains(word), "{word}");
        }
        for kind in LookupKind::ALL {
            assert!(HELP.contains(kind.name()), "{kind}");
        }
    }
}
