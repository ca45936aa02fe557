//! Randomness drawn from the OS *before* the shared lock is taken.
//!
//! The switchboard draws randomness while the caller holds the lock (a server's auth challenge, an
//! snet handshake's keys and challenges). So the accept loop fills a [`PreDrawn`] pool from the OS
//! first (an error there drops only that socket): a plain server's challenge comes out of it before
//! the lock is taken, and on snet ports the pool travels with the connection's reader, which hands it
//! to the switchboard. The pool itself is [`fastway_core::rng::PreDrawn`]; this crate only picks the
//! OS source, `getrandom`'s `SysRng`.

use getrandom::SysRng;

/// OS randomness drawn ahead of time; should the core ask for more, the rest comes straight from the
/// OS.
pub(crate) type PreDrawn = fastway_core::rng::PreDrawn<SysRng>;

/// Bytes drawn for an snet socket: the whole pool.
pub(crate) const SNET_POOL: usize = PreDrawn::CAPACITY;
