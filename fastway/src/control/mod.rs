//! Process control that does not depend on the runtime: the PID file and the text commands of the
//! command file (CONFIG.md §4–§5). Signal handling and running the commands live with the runtime.

pub mod commands;
pub mod pidfile;

pub use commands::{ControlCommand, CpuProfAction, HELP, LookupKind};
pub use pidfile::{PidFile, PidFileError};
