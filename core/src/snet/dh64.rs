//! DH64: the 64-bit Diffie–Hellman exchange snet uses to agree on its key (SNET.md §2).
//!
//! `p = 2^64 − 59`, `g = 5`. The arithmetic is exact (a `u128` product reduced mod `p`), so it agrees
//! with the original's double-and-add `mulmod` for every valid input. DH64 is far too small to be secure
//! against a determined attacker; it is kept for wire compatibility.

use rand_core::Rng;
use std::fmt;

/// The modulus: the largest prime below 2^64.
pub const P: u64 = 0xFFFF_FFFF_FFFF_FFC5;
/// The generator.
pub const G: u64 = 5;

/// Why a DH64 computation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dh64Error {
    /// A private key of 0 (the original panics with "zero private key").
    ZeroPrivateKey,
    /// A public key that is 0 modulo `p` (the original panics with "zero public key").
    ZeroPublicKey,
}

impl fmt::Display for Dh64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroPrivateKey => f.write_str("DH64 private key is zero"),
            Self::ZeroPublicKey => f.write_str("DH64 public key is zero"),
        }
    }
}

impl std::error::Error for Dh64Error {}

fn mul_mod(a: u64, b: u64) -> u64 {
    // Both operands are below p, so the product fits in u128 and the remainder in u64.
    ((u128::from(a) * u128::from(b)) % u128::from(P)) as u64
}

/// `base^exponent mod p`. Errors when `base ≡ 0 (mod p)` or `exponent == 0`.
pub fn pow_mod(base: u64, exponent: u64) -> Result<u64, Dh64Error> {
    if exponent == 0 {
        return Err(Dh64Error::ZeroPrivateKey);
    }
    let mut base = base % P;
    if base == 0 {
        return Err(Dh64Error::ZeroPublicKey);
    }
    let mut exponent = exponent;
    let mut result = 1u64;
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = mul_mod(result, base);
        }
        base = mul_mod(base, base);
        exponent >>= 1;
    }
    Ok(result)
}

/// `g^private mod p`.
pub fn public_key(private: u64) -> Result<u64, Dh64Error> {
    pow_mod(G, private)
}

/// `peer_public^private mod p`: the shared secret.
pub fn secret(private: u64, peer_public: u64) -> Result<u64, Dh64Error> {
    if private == 0 {
        return Err(Dh64Error::ZeroPrivateKey);
    }
    pow_mod(peer_public, private)
}

/// A DH64 key pair.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyPair {
    private: u64,
    public: u64,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &format_args!("{:#018x}", self.public))
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Draws 64 random bits as the private key (never 0). Pass a cryptographically secure RNG.
    pub fn generate(rng: &mut impl Rng) -> Self {
        loop {
            if let Ok(pair) = Self::from_private(rng.next_u64()) {
                return pair;
            }
        }
    }

    /// The key pair of a given private key (tests, reproducing recorded handshakes).
    pub fn from_private(private: u64) -> Result<Self, Dh64Error> {
        Ok(Self {
            private,
            public: public_key(private)?,
        })
    }

    /// The public key, sent to the peer.
    pub fn public(&self) -> u64 {
        self.public
    }

    /// The shared secret with a peer's public key; errors on a zero public key.
    pub fn secret(&self, peer_public: u64) -> Result<u64, Dh64Error> {
        secret(self.private, peer_public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: [(u64, u64, u64); 6] = [
        (0xDF49574448E59D97, 0x41A73AF1ACD90000, 0xA69BDCD2956CDB5D),
        (0x494D3957F0366D4B, 0xB782DAC88ED90000, 0xA69BDCD2956CDB5D),
        (0x97CA4ACFCBB59A9E, 0x2F43044D98980000, 0x4B998650A86E3FC9),
        (0xF93A741051C67EA1, 0x128CDBE2D4B30000, 0x4B998650A86E3FC9),
        (0xBBAA00641F118C95, 0x39174111C3980000, 0x8F6FCA983A814916),
        (0xA5E2B5B49E2C939F, 0x2E2F2B11962D0000, 0x8F6FCA983A814916),
    ];

    #[test]
    fn snet_s11_dh64_table_public_keys_and_shared_secrets() {
        for pair in TABLE.chunks(2) {
            let (pub_a, priv_a, secret_ab) = pair[0];
            let (pub_b, priv_b, _) = pair[1];
            assert_eq!(public_key(priv_a), Ok(pub_a));
            assert_eq!(public_key(priv_b), Ok(pub_b));
            assert_eq!(secret(priv_a, pub_b), Ok(secret_ab));
            assert_eq!(secret(priv_b, pub_a), Ok(secret_ab));
        }
    }

    #[test]
    fn snet_s11_dh64_small_cases() {
        assert_eq!(public_key(1), Ok(5));
        assert_eq!(public_key(2), Ok(0x19));
        assert_eq!(public_key(3), Ok(0x7D));
        assert_eq!(public_key(P - 1), Ok(1));
        assert_eq!(public_key(u64::MAX), Ok(0x77B351F6BAA62E4E));
    }

    #[test]
    fn snet_s2_zero_keys_are_errors_not_panics() {
        assert_eq!(public_key(0), Err(Dh64Error::ZeroPrivateKey));
        assert_eq!(secret(7, 0), Err(Dh64Error::ZeroPublicKey));
        assert_eq!(secret(7, P), Err(Dh64Error::ZeroPublicKey));
        assert_eq!(secret(0, 5), Err(Dh64Error::ZeroPrivateKey));
    }

    #[test]
    fn snet_s2_public_keys_above_p_are_reduced() {
        // p + 5 ≡ 5, so the secret equals 5^private = the public key.
        assert_eq!(secret(12345, P.wrapping_add(5)), public_key(12345));
        assert_eq!(secret(12345, u64::MAX), secret(12345, u64::MAX - P));
    }
}
