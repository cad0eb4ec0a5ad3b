//! Bearer tokens: generation and their HMAC-SHA256 digest under the server's pepper.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The prefix of every token, so scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "cus_";

/// Random bytes in a token: 256 bits.
const TOKEN_RANDOM_BYTES: usize = 32;

/// A fresh bearer token: `cus_` followed by the unpadded base64url encoding of 32 random
/// bytes from the operating-system-seeded CSPRNG (47 characters in all).
pub fn generate_token() -> SecretString {
    let mut random = Zeroizing::new([0u8; TOKEN_RANDOM_BYTES]);
    rand::fill(&mut random[..]);
    let encoded_len = base64::encoded_len(TOKEN_RANDOM_BYTES, false).unwrap_or(64);
    // Sized exactly, so neither the push nor the conversion into the secret reallocates
    // and leaves a copy behind.
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + encoded_len);
    token.push_str(TOKEN_PREFIX);
    URL_SAFE_NO_PAD.encode_string(&random[..], &mut token);
    SecretString::from(token)
}

/// Computes and checks token digests: HMAC-SHA256 keyed with the server's pepper. A
/// database leak alone does not let anyone test guesses of a token offline.
#[derive(Clone)]
pub struct TokenHasher {
    mac: Hmac<Sha256>,
}

impl TokenHasher {
    /// A hasher keyed with `pepper` (32 bytes from the keyring).
    pub fn new(pepper: [u8; 32]) -> Self {
        // HMAC pads a key shorter than the hash's block (64 bytes) with zeros; padding it
        // here gives the same MAC and keeps the constructor infallible.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..pepper.len()].copy_from_slice(&pepper);
        let mac = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
        Self { mac }
    }

    /// The digest `token` is stored and looked up by; equal tokens give equal digests.
    pub fn digest(&self, token: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `token` has the digest `expected`, compared in constant time.
    pub fn verify(&self, token: &str, expected: &[u8; 32]) -> bool {
        self.digest(token).ct_eq(expected).into()
    }
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHasher { pepper: [redacted] }")
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn token_has_the_prefix_and_exact_length() {
        let token = generate_token();
        let token = token.expose_secret();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 43);
        let decoded = URL_SAFE_NO_PAD.decode(&token[TOKEN_PREFIX.len()..]).unwrap();
        assert_eq!(decoded.len(), 32);
    }

    #[test]
    fn digest_matches_a_known_hmac_sha256_vector() {
        // RFC 4231 test case 2 uses a 4-byte key; HMAC zero-pads keys to the block size,
        // so the same key padded with zeros to 32 bytes gives the same MAC.
        let mut pepper = [0u8; 32];
        pepper[..4].copy_from_slice(b"Jefe");
        let digest = TokenHasher::new(pepper).digest("what do ya want for nothing?");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn verify_rejects_another_digest() {
        let hasher = TokenHasher::new([7u8; 32]);
        let digest = hasher.digest("cus_abc");
        assert!(hasher.verify("cus_abc", &digest));
        assert!(!hasher.verify("cus_abd", &digest));
        let mut flipped = digest;
        flipped[31] ^= 1;
        assert!(!hasher.verify("cus_abc", &flipped));
    }
}
