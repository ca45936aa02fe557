//! Process control that does not depend on the runtime: the PID file and the text commands of the
//! command file (CONFIG.md §4–§5), and carrying the commands out against a running gateway.

pub mod commands;
pub mod execute;
pub mod pidfile;
pub mod process;

pub use commands::{ControlCommand, CpuProfAction, HELP, LookupKind};
pub use execute::{CONNS_FILE, GatewayView, execute};
pub use pidfile::{PidFile, PidFileError};
pub use process::ProcessStatus;
