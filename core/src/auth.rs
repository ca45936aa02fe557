//! Server authentication (PROTOCOL.md §5), both sides.
//!
//! Right after a game server connects, the gateway sends an 8-byte random challenge; the server answers
//! with `MD5(challenge ‖ key)` followed by its id (u32 LE). Nothing is acknowledged: a wrong answer only
//! makes the gateway close the socket. Framing starts with the byte after the answer.

use md5::{Digest, Md5};
use rand_core::Rng;
use std::fmt;
use std::time::Duration;

/// Size of the challenge the gateway sends.
pub const CHALLENGE_LEN: usize = 8;
/// Size of the server's answer: a 16-byte MD5 digest and a 4-byte server id.
pub const RESPONSE_LEN: usize = 20;
/// The whole exchange must finish within this time (PROTOCOL.md §5).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The 8 opaque random bytes the gateway sends first.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Challenge(pub [u8; CHALLENGE_LEN]);

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Challenge(..)")
    }
}

impl Challenge {
    /// Draws a fresh challenge. The gateway passes a cryptographically secure RNG (the OS's) here.
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut bytes = [0u8; CHALLENGE_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }
}

/// `MD5(challenge ‖ key)`: the proof that a server knows the shared key.
pub fn digest(challenge: &Challenge, key: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(challenge.0);
    md5.update(key);
    md5.finalize().into()
}

/// The 20 bytes a server answers a challenge with (the server side of the handshake).
pub fn server_response(challenge: &Challenge, key: &[u8], server_id: u32) -> [u8; RESPONSE_LEN] {
    let mut response = [0u8; RESPONSE_LEN];
    response[..16].copy_from_slice(&digest(challenge, key));
    response[16..].copy_from_slice(&server_id.to_le_bytes());
    response
}

/// Why the gateway rejected a server's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// The digest does not match: the server does not know the key.
    BadDigest,
    /// The answer did not arrive within [`HANDSHAKE_TIMEOUT`].
    Timeout,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first message is the original's log text (PROTOCOL.md §5), kept so log scrapers still match.
        match self {
            Self::BadDigest => f.write_str("server auth failed"),
            Self::Timeout => f.write_str("server auth timed out"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Checks a server's 20-byte answer (the gateway side). Returns the server id it claimed.
///
/// The digest is compared in constant time so that response timing reveals nothing about the key.
pub fn verify_response(
    challenge: &Challenge,
    key: &[u8],
    response: &[u8; RESPONSE_LEN],
) -> Result<u32, AuthError> {
    let expected = digest(challenge, key);
    if !constant_time_eq(&expected, &response[..16]) {
        return Err(AuthError::BadDigest);
    }
    Ok(u32::from_le_bytes([
        response[16],
        response[17],
        response[18],
        response[19],
    ]))
}

/// Compares two byte strings without an early exit, so the time taken does not depend on where they
/// differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: Challenge = Challenge([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);

    fn hex16(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
        }
        out
    }

    #[test]
    fn protocol_s5_example_digest_with_key_123() {
        assert_eq!(
            digest(&CHALLENGE, b"123"),
            hex16("c7b4392119f9102d58848435696a6679")
        );
        let response = server_response(&CHALLENGE, b"123", 123);
        assert_eq!(&response[16..], &[0x7b, 0, 0, 0]);
    }

    #[test]
    fn protocol_s5_example_digest_with_empty_key() {
        assert_eq!(
            digest(&CHALLENGE, b""),
            hex16("dd254cdc958e53abaa67da9f797125f5")
        );
    }

    #[test]
    fn gateway_accepts_a_correct_answer_and_learns_the_server_id() {
        for id in [0, 7, 123, u32::MAX] {
            let response = server_response(&CHALLENGE, b"key", id);
            assert_eq!(verify_response(&CHALLENGE, b"key", &response), Ok(id));
        }
    }

    #[test]
    fn gateway_rejects_a_wrong_key() {
        let response = server_response(&CHALLENGE, b"bad", 123);
        assert_eq!(
            verify_response(&CHALLENGE, b"123", &response),
            Err(AuthError::BadDigest)
        );
    }

    #[test]
    fn gateway_rejects_an_answer_to_another_challenge() {
        let other = Challenge([0; 8]);
        let response = server_response(&other, b"123", 123);
        assert_eq!(
            verify_response(&CHALLENGE, b"123", &response),
            Err(AuthError::BadDigest)
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"xbc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn auth_failure_message_matches_the_original_log_text() {
        assert_eq!(AuthError::BadDigest.to_string(), "server auth failed");
    }
}
