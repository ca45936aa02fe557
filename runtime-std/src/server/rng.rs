//! Randomness drawn from the OS when a socket is accepted, before the core is asked to take it.
//!
//! The switchboard draws randomness inside its calls (a server's auth challenge, an snet handshake's
//! keys and challenges), where a failing OS source could only panic. So the loop fills a [`PreDrawn`]
//! pool from the OS first (an error there drops only that socket): a plain server's challenge comes
//! out of it at once, and on snet ports the pool stays with the connection, which hands it to the
//! switchboard with the bytes it reads. The pool itself is [`fastway_core::rng::PreDrawn`]; this crate only picks the
//! OS source, `getrandom`'s `SysRng`.

use getrandom::SysRng;

/// OS randomness drawn ahead of time; should the core ask for more, the rest comes straight from the
/// OS.
pub(crate) type PreDrawn = fastway_core::rng::PreDrawn<SysRng>;

/// Bytes drawn for an snet socket: the whole pool.
pub(crate) const SNET_POOL: usize = PreDrawn::CAPACITY;
