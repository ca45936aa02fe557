//! Randomness drawn ahead of time, for runtimes that must not ask the OS while holding a lock.
//!
//! The gateway draws randomness inside calls the runtimes make under their shared lock: a server's
//! auth challenge when a plain server socket is accepted, an snet handshake's DH64 key pair and
//! challenges (plus, on an snet server port, the gateway's auth challenge) while bytes are fed. Asking
//! the OS there would put a syscall under the lock, and a failing OS RNG would panic there. So a
//! runtime fills a [`PreDrawn`] pool *before* taking the lock (an error then drops only that socket)
//! and hands the pool to the core, which then only copies bytes.
//!
//! The core does no IO: the OS source is the type parameter `R` (the runtimes pass `getrandom`'s
//! `SysRng`), a fallible [`TryRng`] that the pool both fills from and falls back to.

use rand_core::{TryCryptoRng, TryRng};
use std::convert::Infallible;
use std::fmt;

/// Size of the pool's buffer.
const POOL: usize = 64;

/// A pool of up to [`CAPACITY`](Self::CAPACITY) bytes drawn from the source `R` ahead of time,
/// handed out once each (and wiped as they go).
///
/// Should the core ask for more than was drawn, the rest comes straight from a fresh `R` and a failure
/// there panics (as `rand_core::UnwrapErr` does): size the pool so that this does not happen under a
/// lock. One snet handshake needs about 24 bytes.
pub struct PreDrawn<R> {
    bytes: [u8; POOL],
    /// How many bytes at the front of `bytes` were drawn.
    len: usize,
    /// How many of those were handed out.
    used: usize,
    /// Where bytes past the pool come from.
    source: R,
}

impl<R: TryRng + Default> PreDrawn<R> {
    /// The most bytes a pool holds: one snet handshake's needs several times over.
    pub const CAPACITY: usize = POOL;

    /// A pool with nothing drawn: every request goes to the source. For sockets whose core calls never
    /// draw randomness (plain ports after the accept).
    pub fn empty() -> Self {
        Self {
            bytes: [0; POOL],
            len: 0,
            used: 0,
            source: R::default(),
        }
    }

    /// Draws `len` bytes (at most [`CAPACITY`](Self::CAPACITY)) from the source now. Fails only if the
    /// source does.
    pub fn draw(len: usize) -> Result<Self, R::Error> {
        let mut pool = Self::empty();
        pool.len = len.min(Self::CAPACITY);
        if pool.len > 0 {
            pool.source.try_fill_bytes(&mut pool.bytes[..pool.len])?;
        }
        Ok(pool)
    }
}

impl<R: TryRng + Default> Default for PreDrawn<R> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<R> PreDrawn<R> {
    /// How many drawn bytes are left to hand out.
    pub fn remaining(&self) -> usize {
        self.len - self.used
    }
}

/// Shows the counts, never the bytes.
impl<R> fmt::Debug for PreDrawn<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreDrawn")
            .field("len", &self.len)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl<R: TryRng> TryRng for PreDrawn<R> {
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
        if !tail.is_empty()
            && let Err(error) = self.source.try_fill_bytes(tail)
        {
            panic!("the random number source failed: {error}");
        }
        Ok(())
    }
}

/// Cryptographically secure when the source is.
impl<R: TryCryptoRng> TryCryptoRng for PreDrawn<R> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    /// Counts the bytes asked of it; every byte is 9.
    #[derive(Default)]
    struct Nines;

    impl TryRng for Nines {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(0x0909_0909)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(0x0909_0909_0909_0909)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(9);
            Ok(())
        }
    }

    #[test]
    fn hands_out_the_drawn_bytes_once_then_falls_back_to_the_source() {
        let mut rng = PreDrawn::<Nines> {
            bytes: [7; POOL],
            len: 32,
            used: 0,
            source: Nines,
        };
        let mut first = [0u8; 8];
        rng.fill_bytes(&mut first);
        assert_eq!(first, [7; 8]);
        let mut rest = [0u8; 32];
        rng.fill_bytes(&mut rest);
        assert_eq!(rest[..24], [7; 24]);
        assert_eq!(rest[24..], [9; 8], "the source served the rest");
        assert_eq!(rng.remaining(), 0);
        assert_eq!(rng.bytes[..32], [0; 32], "handed-out bytes are wiped");
        assert_eq!(rng.next_u64(), 0x0909_0909_0909_0909);
    }

    #[test]
    fn draw_fills_at_most_the_pool() {
        let Ok(rng) = PreDrawn::<Nines>::draw(8);
        assert_eq!((rng.len, rng.remaining()), (8, 8));
        assert_eq!(rng.bytes[..8], [9; 8]);
        assert_eq!(rng.bytes[8..], [0; POOL - 8]);
        let Ok(full) = PreDrawn::<Nines>::draw(1000);
        assert_eq!(full.remaining(), PreDrawn::<Nines>::CAPACITY);
        let Ok(none) = PreDrawn::<Nines>::draw(0);
        assert_eq!(none.remaining(), 0);
        assert!(!format!("{none:?}").contains('9'));
    }
}
