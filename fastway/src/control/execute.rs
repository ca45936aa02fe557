//! Carrying out a `fastway.cmd` command against a running gateway.

use super::commands::{ControlCommand, CpuProfAction, HELP, LookupKind};
use super::process::ProcessStatus;
use fastway_core::gateway::{GatewayStats, PeerInfo};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// What a command needs to see of the gateway; implemented by the running server handle, and by
/// fakes in tests.
pub trait GatewayView {
    /// The core's counters now.
    fn stats(&self) -> GatewayStats;
    /// Every connection with its vconns.
    fn peers(&self) -> Vec<PeerInfo>;
}

/// Where `conns` writes its dump, relative to the working directory.
pub const CONNS_FILE: &str = "fastway.conns";

/// Runs `command`, logging its result. `dir` is where files (the `conns` dump) are written. Nothing here
/// can stop the gateway: failures are logged.
pub fn execute(command: &ControlCommand, gateway: &dyn GatewayView, dir: &Path) {
    match command {
        ControlCommand::Help => {
            eprintln!("{HELP}");
            log::info!("commands:\n{HELP}");
        }
        ControlCommand::Stats => {
            log::info!("{}", stats_report(&gateway.stats(), ProcessStatus::read()))
        }
        ControlCommand::Conns => {
            let path = dir.join(CONNS_FILE);
            match write_conns(&path, &gateway.peers()) {
                Ok(count) => log::info!("wrote {count} connections to {}", path.display()),
                Err(err) => log::error!("write {} failed: {err}", path.display()),
            }
        }
        ControlCommand::CpuProf(action) => {
            let verb = match action {
                CpuProfAction::Start => "start",
                CpuProfAction::Stop => "stop",
            };
            log::warn!(
                "cpuprof {verb}: not supported (fastway is not a Go program; profile it with `perf record -p <pid>`)"
            );
        }
        ControlCommand::Lookup { kind, level } => lookup(*kind, *level),
        ControlCommand::Unsupported(text) => log::warn!("unsupported command: {text}"),
    }
}

fn lookup(kind: LookupKind, level: u16) {
    let status = ProcessStatus::read();
    match (kind, status) {
        (LookupKind::Gc | LookupKind::Heap, Some(status)) => {
            log::info!("lookup {kind} {level}: memory: {status}")
        }
        (LookupKind::Goroutine | LookupKind::ThreadCreate, Some(status)) => {
            log::info!("lookup {kind} {level}: {} OS threads", status.threads)
        }
        (LookupKind::Block, _) | (_, None) => {
            log::warn!("lookup {kind} {level}: not supported by fastway on this platform")
        }
    }
}

/// The `stats` line: the core's counters and the process's memory.
pub fn stats_report(stats: &GatewayStats, process: Option<ProcessStatus>) -> String {
    let mut report = format!(
        "stats: clients {} servers {} handshaking {} vconns {} | routed {} frames {} bytes | dials accepted {} refused {} | drops: protocol {} queue-full {} timeout {} | auth failures {} | clients refused {}",
        stats.clients,
        stats.servers,
        stats.handshaking,
        stats.vconns,
        stats.frames_routed,
        stats.bytes_routed,
        stats.dials_accepted,
        stats.dials_refused,
        stats.protocol_drops,
        stats.queue_full_drops,
        stats.timeout_drops,
        stats.auth_failures,
        stats.clients_refused,
    );
    if let Some(process) = process {
        let _ = write!(report, " | {process}");
    }
    report
}

/// Writes one line per connection (`#handle side id pending paused vconns…`); returns the count.
pub fn write_conns(path: &Path, peers: &[PeerInfo]) -> io::Result<usize> {
    let mut text = String::from("# peer side id pending_bytes paused vconns\n");
    for peer in peers {
        let id = peer.id.map_or_else(|| "-".to_owned(), |id| id.to_string());
        let vconns: Vec<String> = peer.vconns.iter().map(u32::to_string).collect();
        let _ = writeln!(
            text,
            "{} {} {} {} {} {}",
            peer.peer,
            peer.side,
            id,
            peer.pending_bytes,
            peer.paused,
            vconns.join(",")
        );
    }
    std::fs::write(path, text)?;
    Ok(peers.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastway_core::gateway::{Gateway, GatewayConfig};
    use std::time::Instant;

    struct Fake(Gateway);
    impl GatewayView for Fake {
        fn stats(&self) -> GatewayStats {
            self.0.stats()
        }
        fn peers(&self) -> Vec<PeerInfo> {
            self.0.peers()
        }
    }

    #[test]
    fn stats_report_names_every_counter_and_memory() {
        let stats = GatewayStats {
            clients: 3,
            vconns: 5,
            frames_routed: 7,
            ..GatewayStats::default()
        };
        let report = stats_report(
            &stats,
            Some(ProcessStatus {
                rss_kib: 10,
                ..Default::default()
            }),
        );
        assert!(report.contains("clients 3"), "{report}");
        assert!(report.contains("vconns 5"), "{report}");
        assert!(report.contains("routed 7 frames"), "{report}");
        assert!(report.contains("rss 10 KiB"), "{report}");
    }

    #[test]
    fn conns_writes_one_line_per_connection() {
        let mut gw = Gateway::new(GatewayConfig::default());
        gw.accept_client(Instant::now()).expect("room");
        gw.accept_client(Instant::now()).expect("room");
        let dir = std::env::temp_dir().join(format!("fastway-conns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let fake = Fake(gw);
        execute(&ControlCommand::Conns, &fake, &dir);
        let text = std::fs::read_to_string(dir.join(CONNS_FILE)).expect("dump written");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("#1 client 1 0 false"), "{text}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn unsupported_and_profile_commands_do_not_fail() {
        let fake = Fake(Gateway::new(GatewayConfig::default()));
        for text in [
            "cpuprof start",
            "lookup block 1",
            "lookup gc",
            "lookup goroutine 2",
            "bogus",
            "help",
        ] {
            execute(&ControlCommand::parse(text), &fake, &std::env::temp_dir());
        }
    }
}
