//! Taking a freshly accepted socket: socket options, randomness, the core's registration, the poll
//! registration.

use super::conn::{Conn, Settings};
use super::event_loop::token;
use super::rng::{PreDrawn, SNET_POOL};
use fastway_core::auth::{CHALLENGE_LEN, Challenge};
use fastway_core::gateway::{AcceptError, Side};
use fastway_core::switchboard::Switchboard;
use mio::net::TcpStream;
use mio::{Interest, Registry};
use std::net::SocketAddr;
use std::time::Instant;

/// Registers `stream` with the core and the poll; returns the connection to keep, or `None` if it
/// was refused (client limit) or could not be set up (both logged; dropping the stream closes it).
pub(crate) fn open(
    core: &mut Switchboard,
    registry: &Registry,
    settings: &Settings,
    mut stream: TcpStream,
    addr: SocketAddr,
    side: Side,
) -> Option<Conn> {
    if let Err(err) = stream.set_nodelay(true) {
        log::warn!("cannot set TCP_NODELAY on {side} from {addr}: {err}");
    }
    let mut pool = draw_randomness(settings, side, addr)?;
    let challenge = match (settings.is_snet(side), side) {
        (false, Side::Server) => Challenge::random(&mut pool),
        // Ignored by the switchboard: clients have none, and on snet ports it draws its own later.
        _ => Challenge([0; CHALLENGE_LEN]),
    };
    let now = Instant::now();
    let id = match core.accept_with_challenge(side, now, challenge) {
        Ok(id) => id,
        Err(AcceptError::TooManyClients { max }) => {
            log::warn!("refuse client from {addr}: client limit of {max} connections reached");
            return None;
        }
    };
    let interest = Interest::READABLE | Interest::WRITABLE;
    if let Err(err) = registry.register(&mut stream, token(id), interest) {
        log::error!("cannot watch {side} {id} from {addr}: {err}");
        // The core forgets it; its Close finds no connection and does nothing.
        core.handle_closed(id, now);
        return None;
    }
    log::debug!("{side} {id} connected from {addr}");
    Some(Conn::new(id, side, addr, stream, pool))
}

/// The randomness the core will want for this socket: an snet port's handshake draws from the pool
/// the connection carries; a plain server port's auth challenge is taken out of it at once.
fn draw_randomness(settings: &Settings, side: Side, addr: SocketAddr) -> Option<PreDrawn> {
    let wanted = match (settings.is_snet(side), side) {
        (true, _) => SNET_POOL,
        (false, Side::Server) => CHALLENGE_LEN,
        (false, Side::Client) => 0,
    };
    match PreDrawn::draw(wanted) {
        Ok(pool) => Some(pool),
        Err(err) => {
            match side {
                Side::Server => log::error!(
                    "error happends when accept server from {addr}: OS random source failed: {err}"
                ),
                Side::Client => {
                    log::error!("refuse client from {addr}: OS random source failed: {err}");
                }
            }
            None
        }
    }
}
