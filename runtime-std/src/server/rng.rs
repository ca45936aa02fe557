//! Randomness drawn from the OS *before* the core lock is taken.
//!
//! The switchboard draws randomness while the caller holds the core lock: a server's auth challenge
//! when a plain server socket is accepted, and an snet handshake's DH64 key pair and challenges while
//! bytes are fed. Asking the OS there would put a `getrandom` syscall under the lock, and
//! `UnwrapErr(SysRng)` would panic the calling thread if the OS RNG ever failed. So the accept thread
//! fills a [`Prefetched`] pool from [`getrandom::SysRng`] first (handling the error by dropping that
//! one connection): the challenge comes out of it before the lock is taken, and on snet ports the rest
//! travels with the connection's reader, which hands it to the switchboard. The core then only copies
//! bytes.

use getrandom::SysRng;
use rand_core::{TryCryptoRng, TryRng, UnwrapErr};
use std::convert::Infallible;

/// Most bytes a pool holds. One snet handshake needs about 24 (a DH64 key pair, a challenge, and on a
/// server port the gateway's auth challenge); the rest is headroom.
pub(crate) const POOL_SIZE: usize = 64;

/// OS randomness drawn ahead of time. If the core asks for more than was drawn, the rest comes straight
/// from the OS (`UnwrapErr(SysRng)`).
#[derive(Debug)]
pub(crate) struct Prefetched {
    bytes: [u8; POOL_SIZE],
    /// How many bytes at the front of `bytes` were drawn.
    len: usize,
    /// How many of those were handed out.
    used: usize,
}

impl Prefetched {
    /// A pool with nothing drawn: every request goes to the OS. For sockets whose core calls never
    /// draw randomness (plain ports after the accept).
    pub(crate) fn empty() -> Self {
        Self {
            bytes: [0; POOL_SIZE],
            len: 0,
            used: 0,
        }
    }

    /// Draws `len` bytes (at most [`POOL_SIZE`]) from the OS.
    pub(crate) fn draw(len: usize) -> Result<Self, getrandom::Error> {
        let mut pool = Self::empty();
        pool.len = len.min(POOL_SIZE);
        if pool.len > 0 {
            SysRng.try_fill_bytes(&mut pool.bytes[..pool.len])?;
        }
        Ok(pool)
    }
}

impl TryRng for Prefetched {
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
        // Never hand out the same bytes twice.
        self.bytes[self.used..self.used + n].fill(0);
        self.used += n;
        if !tail.is_empty() {
            UnwrapErr(SysRng).try_fill_bytes(tail)?;
        }
        Ok(())
    }
}

/// The bytes come from the OS's cryptographic RNG.
impl TryCryptoRng for Prefetched {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn hands_out_prefetched_bytes_once_then_falls_back_to_the_os() {
        let mut rng = Prefetched {
            bytes: [7; POOL_SIZE],
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
        // Drawn bytes are wiped once handed out; bytes past `len` were never handed out.
        assert_eq!(rng.bytes[..32], [0; 32]);
    }

    #[test]
    fn draw_fills_only_what_was_asked() {
        let rng = Prefetched::draw(8).expect("the OS RNG works in tests");
        assert_eq!(rng.len, 8);
        assert_eq!(rng.bytes[8..], [0; POOL_SIZE - 8]);
        assert_eq!(Prefetched::draw(1000).map(|r| r.len).ok(), Some(POOL_SIZE));
    }
}
