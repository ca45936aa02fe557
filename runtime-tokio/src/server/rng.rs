//! Randomness for server challenges, drawn from the OS before the lock is taken.

use getrandom::SysRng;
use rand_core::{TryCryptoRng, TryRng, UnwrapErr};
use std::convert::Infallible;
use std::io;

/// Bytes the core may draw, already taken from the OS RNG so that no `getrandom` syscall (and no
/// panic on its failure) happens while the shared lock is held.
///
/// The core draws one 8-byte challenge per server; should it ever ask for more than was drawn, the
/// rest comes from `UnwrapErr(SysRng)`.
#[derive(Debug)]
pub(crate) struct PreDrawn {
    bytes: [u8; 8],
    used: usize,
}

impl PreDrawn {
    /// Draws from the OS now. Fails only if the OS RNG is unavailable.
    pub(crate) fn draw() -> io::Result<Self> {
        let mut bytes = [0u8; 8];
        SysRng
            .try_fill_bytes(&mut bytes)
            .map_err(|err| io::Error::other(format!("OS random number generator failed: {err}")))?;
        Ok(Self { bytes, used: 0 })
    }
}

impl TryRng for PreDrawn {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut word = [0u8; 4];
        self.try_fill_bytes(&mut word)?;
        Ok(u32::from_le_bytes(word))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut word = [0u8; 8];
        self.try_fill_bytes(&mut word)?;
        Ok(u64::from_le_bytes(word))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let left = &self.bytes[self.used..];
        let n = left.len().min(dst.len());
        dst[..n].copy_from_slice(&left[..n]);
        self.used += n;
        if n < dst.len() {
            UnwrapErr(SysRng).try_fill_bytes(&mut dst[n..])?;
        }
        Ok(())
    }
}

impl TryCryptoRng for PreDrawn {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn hands_out_the_drawn_bytes_then_falls_back_to_the_os() {
        let mut rng = PreDrawn {
            bytes: [1, 2, 3, 4, 5, 6, 7, 8],
            used: 0,
        };
        let mut first = [0u8; 6];
        rng.fill_bytes(&mut first);
        assert_eq!(first, [1, 2, 3, 4, 5, 6]);
        let mut more = [0u8; 4];
        rng.fill_bytes(&mut more);
        assert_eq!(&more[..2], &[7, 8]);
    }
}
