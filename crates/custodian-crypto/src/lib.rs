//! Custodian's cryptography: envelope encryption of stored credentials, the master
//! keyring, and bearer-token generation and hashing.
//!
//! - [`Keyring`]: the master keys (key-encryption keys, KEKs) and the token pepper, kept in
//!   `<data_dir>/keyring.json` (mode 0600) or derived from `CUSTODIAN_MASTER_KEY`.
//! - [`Keyring::seal`] / [`Keyring::open`]: AES-256-GCM envelope encryption. Every sealed
//!   value has its own fresh 256-bit data key (DEK); the data is encrypted under the DEK
//!   with the record's [`Aad`] as associated data, and the DEK is wrapped by the active
//!   KEK with the same associated data plus the KEK's id. A ciphertext copied onto another
//!   record, team, tenant, kind or version fails to open.
//! - [`Keyring::rotate`] / [`Keyring::rewrap`]: add a new active KEK and re-wrap data keys
//!   under it without touching the data ciphertext.
//! - [`SharedKeyring`]: the keyring a running server uses, read again from its file when
//!   a key it lacks is needed, so `custodian keys rotate` needs no restart.
//! - [`generate_token`] / [`TokenHasher`]: `cus_` tokens of 256 random bits, stored only as
//!   HMAC-SHA256 under the server's pepper and compared in constant time.
//!
//! Only RustCrypto primitives are used; nothing here is hand-rolled. No key, data key,
//! plaintext or token appears in a `Debug` output or an error message.
//!
//! **Architecture Invariant:** this crate depends on no other Custodian crate; the store
//! adapters and the binary wire it to the ports.

mod envelope;
mod keyring;
mod shared;
mod token;

pub use envelope::{Aad, SealedValue};
pub use keyring::Keyring;
pub use shared::SharedKeyring;
pub use token::{TOKEN_PREFIX, TokenHasher, generate_token};

/// What a cryptographic operation or the keyring file can fail with.
///
/// Messages name the file, the key id or the rule that failed; they never contain key
/// bytes, data keys, plaintexts or tokens.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A sealed value cannot be authenticated: wrong key, moved to another record, tampered
    /// with, or malformed. Also returned if encryption itself refuses its input.
    #[error("sealed value failed its integrity check")]
    Integrity,
    /// The sealed value names a key id that is not in the keyring.
    #[error("key {0} is not in the keyring")]
    UnknownKey(String),
    /// The keyring file, the master key setting or a keyring operation is invalid.
    #[error("keyring error: {0}")]
    Keyring(String),
    /// Reading or writing the keyring file failed.
    #[error("keyring file I/O failed: {0}")]
    Io(#[from] std::io::Error),
}
