//! Randomness for server challenges, drawn from the OS *before* the core lock is taken.
//!
//! `Gateway::accept_server` pulls its challenge from an RNG while the caller holds the core lock. Asking
//! the OS there would put a `getrandom` syscall under the lock, and `UnwrapErr(SysRng)` would panic the
//! accept thread if the OS RNG ever failed. So the accept thread fills [`Prefetched`] from
//! [`getrandom::SysRng`] first (handling the error by dropping that one connection) and hands it to the
//! core, which then only copies bytes.

use getrandom::SysRng;
use rand_core::{TryCryptoRng, TryRng, UnwrapErr};
use std::convert::Infallible;

/// Bytes drawn ahead: the challenge needs 8; a few more cover a core that one day draws more.
const PREFETCH: usize = 32;

/// OS randomness drawn ahead of time. If the core asks for more than was drawn, the rest comes straight
/// from the OS (`UnwrapErr(SysRng)`).
#[derive(Debug)]
pub(crate) struct Prefetched {
    bytes: [u8; PREFETCH],
    used: usize,
}

impl Prefetched {
    /// Draws [`PREFETCH`] bytes from the OS.
    pub(crate) fn draw() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; PREFETCH];
        SysRng.try_fill_bytes(&mut bytes)?;
        Ok(Self { bytes, used: 0 })
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
        let available = &self.bytes[self.used..];
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
            bytes: [7; PREFETCH],
            used: 0,
        };
        let mut first = [0u8; 8];
        rng.fill_bytes(&mut first);
        assert_eq!(first, [7; 8]);
        let mut rest = [0u8; PREFETCH];
        rng.fill_bytes(&mut rest);
        assert_eq!(rest[..PREFETCH - 8], [7; PREFETCH - 8]);
        assert_eq!(rng.used, PREFETCH);
    }
}
