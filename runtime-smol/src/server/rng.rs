//! Randomness drawn from the OS *before* the shared lock is taken.
//!
//! The switchboard draws randomness while the caller holds the lock: a server's auth challenge when a
//! plain server socket is accepted, and an snet handshake's DH64 key pair and challenges (plus, on an
//! snet server port, the gateway's auth challenge) while bytes are fed. Asking the OS there would put a
//! `getrandom` syscall under the lock, and `UnwrapErr(SysRng)` would panic the task if the OS RNG ever
//! failed. So the accept loop fills a [`PreDrawn`] pool first (an error there drops only that socket):
//! a plain server's challenge comes out of it before the lock is taken, and on snet ports the pool
//! travels with the connection's reader, which hands it to the switchboard. The core then only copies
//! bytes.

use getrandom::SysRng;
use rand_core::{TryCryptoRng, TryRng, UnwrapErr};
use std::convert::Infallible;

/// Bytes drawn for an snet socket. One handshake needs about 24 (a DH64 key pair, a challenge, and on
/// a server port the gateway's auth challenge); the rest is headroom.
pub(crate) const SNET_POOL: usize = 64;

/// OS randomness drawn ahead of time. Should the core ask for more than was drawn, the rest comes
/// straight from the OS (`UnwrapErr(SysRng)`).
#[derive(Debug)]
pub(crate) struct PreDrawn {
    bytes: [u8; SNET_POOL],
    /// How many bytes at the front of `bytes` were drawn.
    len: usize,
    /// How many of those were handed out.
    used: usize,
}

impl PreDrawn {
    /// A pool with nothing drawn: every request goes to the OS. For sockets whose core calls never
    /// draw randomness (plain ports after the accept).
    pub(crate) fn empty() -> Self {
        Self {
            bytes: [0; SNET_POOL],
            len: 0,
            used: 0,
        }
    }

    /// Draws `len` bytes (at most [`SNET_POOL`]) from the OS now.
    pub(crate) fn draw(len: usize) -> Result<Self, getrandom::Error> {
        let mut pool = Self::empty();
        pool.len = len.min(SNET_POOL);
        if pool.len > 0 {
            SysRng.try_fill_bytes(&mut pool.bytes[..pool.len])?;
        }
        Ok(pool)
    }
}

impl TryRng for PreDrawn {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let available = &self.bytes[self.used..self.len];
        let n = available.len().min(dst.len());
        let (head, tail) = dst.split_at_mut(n);
        head.copy_from_slice(&available[..n]);
        // Never hand out the same bytes twice, nor keep them around.
        self.bytes[self.used..self.used + n].fill(0);
        self.used += n;
        if !tail.is_empty() {
            UnwrapErr(SysRng).try_fill_bytes(tail)?;
        }
        Ok(())
    }
}

/// The bytes come from the OS's cryptographic RNG.
impl TryCryptoRng for PreDrawn {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_core::Rng;

    #[test]
    fn hands_out_the_drawn_bytes_once_then_falls_back_to_the_os() {
        let mut rng = PreDrawn {
            bytes: [7; SNET_POOL],
            len: 32,
            used: 0,
        };
        let mut first = [0u8; 8];
        rng.fill_bytes(&mut first);
        assert_eq!(first, [7; 8]);
        let mut rest = [0u8; 32];
        rng.fill_bytes(&mut rest);
        assert_eq!(rest[..24], [7; 24]);
        assert_eq!(rng.used, 32);
        assert_eq!(rng.bytes[..32], [0; 32], "handed-out bytes are wiped");
        let mut more = [0u8; 8];
        rng.fill_bytes(&mut more);
        assert_eq!(rng.used, 32, "the OS served the rest");
    }

    #[test]
    fn draw_fills_at_most_the_pool() {
        let rng = PreDrawn::draw(8).unwrap();
        assert_eq!(rng.len, 8);
        assert_eq!(rng.bytes[8..], [0; SNET_POOL - 8]);
        assert_eq!(PreDrawn::draw(1000).unwrap().len, SNET_POOL);
        assert_eq!(PreDrawn::draw(0).unwrap().len, 0);
    }
}
