//! Randomness drawn from the OS before the lock is taken: server challenges, and a small pool per
//! snet socket for its handshake (DH64 key pair, challenge).

use getrandom::SysRng;
use rand_core::{TryCryptoRng, TryRng, UnwrapErr};
use std::convert::Infallible;
use std::io;

/// How many bytes an snet socket draws when it is accepted: enough for its handshake (a DH64 key
/// pair, an snet challenge and, on a server port, the gateway's auth challenge) several times over.
pub(crate) const SNET_POOL: usize = 64;

/// Bytes the core may draw, already taken from the OS RNG so that no `getrandom` syscall (and no
/// panic on its failure) happens while the shared lock is held.
///
/// Should the core ever ask for more than was drawn, the rest comes from `UnwrapErr(SysRng)`. An
/// [`empty`](Self::empty) pool allocates nothing; it is what plain-TCP sockets carry (the core
/// draws nothing for them after the accept).
#[derive(Debug, Default)]
pub(crate) struct PreDrawn {
    bytes: Box<[u8]>,
    used: usize,
}

impl PreDrawn {
    /// Draws `len` bytes from the OS now. Fails only if the OS RNG is unavailable.
    pub(crate) fn draw(len: usize) -> io::Result<Self> {
        let mut bytes = vec![0u8; len].into_boxed_slice();
        SysRng
            .try_fill_bytes(&mut bytes)
            .map_err(|err| io::Error::other(format!("OS random number generator failed: {err}")))?;
        Ok(Self { bytes, used: 0 })
    }

    /// A pool with nothing in it (no allocation).
    pub(crate) fn empty() -> Self {
        Self::default()
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
        let left = self.bytes.get(self.used..).unwrap_or_default();
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
            bytes: Box::new([1, 2, 3, 4, 5, 6, 7, 8]),
            used: 0,
        };
        let mut first = [0u8; 6];
        rng.fill_bytes(&mut first);
        assert_eq!(first, [1, 2, 3, 4, 5, 6]);
        let mut more = [0u8; 4];
        rng.fill_bytes(&mut more);
        assert_eq!(&more[..2], &[7, 8]);
    }

    #[test]
    fn draws_as_many_bytes_as_asked_and_an_empty_pool_still_works() {
        let mut pool = PreDrawn::draw(SNET_POOL).expect("OS RNG");
        assert_eq!(pool.bytes.len(), SNET_POOL);
        let _ = pool.next_u64();
        assert_eq!(pool.used, 8);
        let mut empty = PreDrawn::empty();
        let mut word = [0u8; 16];
        empty.fill_bytes(&mut word);
        assert_eq!(empty.used, 0);
    }
}
