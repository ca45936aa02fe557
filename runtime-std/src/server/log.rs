//! The gateway's log lines about connections, in the same words as every fastway runtime (log
//! scrapers and tests match some of them).

use super::conn::Conn;
use fastway_core::gateway::CloseReason;
use fastway_core::switchboard::SocketCloseReason;

/// One log line per closed socket, naming a registered game server by its id ("server 7 offline"):
/// `info` for routine ends, `warn` for everything the peer did wrong or that went wrong for it.
pub(crate) fn log_close(conn: &Conn, reason: SocketCloseReason) {
    let (side, socket, addr) = (conn.side, conn.id, conn.addr);
    let disconnected = matches!(
        reason,
        SocketCloseReason::Disconnected | SocketCloseReason::Peer(CloseReason::Disconnected)
    );
    match (reason, conn.server_id) {
        // The original's exact text ("server auth failed" for a bad digest), kept for log scrapers.
        (SocketCloseReason::Peer(CloseReason::Auth(err)), _) => {
            log::warn!("error happends when accept server from {addr}: {err}");
        }
        (_, Some(id)) if disconnected => {
            log::info!("server {id} offline ({socket} from {addr} disconnected)");
        }
        (_, None) if disconnected => log::info!("{side} {socket} from {addr} disconnected"),
        (_, Some(id)) if reason.is_routine() => {
            log::info!("server {id} offline ({socket} from {addr} closed): {reason}");
        }
        (_, Some(id)) => log::warn!("server {id} offline (drop {socket} from {addr}): {reason}"),
        _ if reason.is_routine() => log::info!("{side} {socket} from {addr} closed: {reason}"),
        _ => log::warn!("drop {side} {socket} from {addr}: {reason}"),
    }
}
