//! The session key, the RC4 pair and the MD5 proofs (SNET.md §3).
//!
//! Each side builds two RC4 instances from the same 8-byte key: one for what it sends and one for what it
//! receives, so both directions use the same keystream, consumed independently. The server's send
//! keystream starts by encrypting the connection ID in the handshake (8 bytes, always, even when
//! encryption is off), so server→client application bytes start at keystream offset 8; client→server
//! application bytes start at offset 0. The ciphers are never rewound, not even across reconnects.

use md5::{Digest, Md5};
use rc4::{KeyInit, Rc4, StreamCipher};
use std::fmt;

/// The 8-byte session key: the DH64 secret, little-endian. RC4 key and MD5 proof key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key(pub [u8; 8]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// The key of a DH64 shared secret.
    pub fn from_secret(secret: u64) -> Self {
        Self(secret.to_le_bytes())
    }
}

/// `MD5(data ‖ Key)`: a challenge proof (`data` = the 8-byte challenge) or the reconnect request digest
/// (`data` = ConnID ‖ Write ‖ Read).
pub fn proof(data: &[u8], key: &Key) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(data);
    md5.update(key.0);
    md5.finalize().into()
}

/// One RC4 keystream.
pub(crate) struct Keystream(Rc4);

impl Keystream {
    pub(crate) fn new(key: &Key) -> Self {
        // An 8-byte key is always inside RC4's 1..=256 range, so this cannot fail; the fallback keeps the
        // code free of panics anyway.
        match Rc4::new_from_slice(&key.0) {
            Ok(rc4) => Self(rc4),
            Err(_) => unreachable_key(),
        }
    }

    /// XORs `data` with the next `data.len()` keystream bytes.
    pub(crate) fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

#[cold]
fn unreachable_key() -> ! {
    unreachable!("an 8-byte RC4 key is always valid")
}

/// A side's two keystreams and its `EnableCrypt` setting.
pub(crate) struct Crypto {
    enabled: bool,
    send: Keystream,
    recv: Keystream,
}

impl Crypto {
    pub(crate) fn new(key: &Key, enabled: bool) -> Self {
        Self {
            enabled,
            send: Keystream::new(key),
            recv: Keystream::new(key),
        }
    }

    /// Encrypts the connection ID with the send keystream (server, handshake; always applied).
    pub(crate) fn encrypt_conn_id(&mut self, conn_id: u64) -> [u8; 8] {
        let mut bytes = conn_id.to_le_bytes();
        self.send.apply(&mut bytes);
        bytes
    }

    /// Decrypts the connection ID with the receive keystream (client, handshake; always applied).
    pub(crate) fn decrypt_conn_id(&mut self, mut bytes: [u8; 8]) -> u64 {
        self.recv.apply(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    /// Encrypts outbound application bytes in place (no-op without `EnableCrypt`).
    pub(crate) fn encrypt(&mut self, data: &mut [u8]) {
        if self.enabled {
            self.send.apply(data);
        }
    }

    /// Decrypts inbound application bytes in place (no-op without `EnableCrypt`).
    pub(crate) fn decrypt(&mut self, data: &mut [u8]) {
        if self.enabled {
            self.recv.apply(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snet_s11_rc4_key_plaintext_vector() {
        let mut ks = Keystream(Rc4::new_from_slice(b"Key").expect("valid key"));
        let mut data = *b"Plaintext";
        ks.apply(&mut data);
        assert_eq!(data, [0xbb, 0xf3, 0x16, 0xe8, 0xd9, 0x40, 0xaf, 0x0a, 0xd3]);
    }

    #[test]
    fn snet_s3_both_directions_share_one_keystream_consumed_independently() {
        let key = Key::from_secret(0xFFB4BB2B23C1B12E);
        let mut server = Crypto::new(&key, true);
        let mut client = Crypto::new(&key, true);
        let enc = server.encrypt_conn_id(42);
        assert_eq!(client.decrypt_conn_id(enc), 42);
        let mut s2c = *b"downstream";
        server.encrypt(&mut s2c);
        let mut c2s = *b"upstream";
        client.encrypt(&mut c2s);
        client.decrypt(&mut s2c);
        server.decrypt(&mut c2s);
        assert_eq!(&s2c, b"downstream");
        assert_eq!(&c2s, b"upstream");
    }

    #[test]
    fn snet_s3_disabled_crypt_sends_application_bytes_in_clear_but_still_hides_conn_id() {
        let key = Key::from_secret(0xFFB4BB2B23C1B12E);
        let mut server = Crypto::new(&key, false);
        assert_eq!(
            server.encrypt_conn_id(1),
            [0xf3, 0x87, 0x6c, 0x3a, 0x22, 0x9f, 0x85, 0x83]
        );
        let mut data = *b"hello";
        server.encrypt(&mut data);
        assert_eq!(&data, b"hello");
    }
}
