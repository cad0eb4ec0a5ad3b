//! AES-256-GCM envelope encryption: the associated data of a record, the sealed value, and
//! the primitive steps (seal, unwrap and wrap a data key, open the data) the keyring uses.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Length of every key (KEK, DEK, pepper): 256 bits.
pub(crate) const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce: 96 bits.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of an AES-GCM tag.
const TAG_LEN: usize = 16;
/// Length of a wrapped data key: wrap nonce, encrypted DEK, tag.
const WRAPPED_KEY_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// Version tag of the associated-data encoding; a new encoding gets a new tag.
const AAD_VERSION: &[u8] = b"custodian-aad-v1";
/// Purpose of the associated data protecting the data ciphertext.
const PURPOSE_DATA: &[u8] = b"data";
/// Purpose of the associated data protecting a wrapped data key.
const PURPOSE_WRAP: &[u8] = b"wrap";

/// The record a sealed value belongs to. It is bound to the ciphertext as associated
/// data: opening with any field different from the one used to seal fails with
/// [`CryptoError::Integrity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aad<'a> {
    /// The deployment's tenant name.
    pub tenant: &'a str,
    /// The team owning the record.
    pub team_id: Uuid,
    /// The kind of record (for example `storage-secret`).
    pub kind: &'a str,
    /// The record's id.
    pub record_id: Uuid,
    /// The version of the record's value.
    pub version: i64,
}

impl Aad<'_> {
    /// Canonical, unambiguous encoding: a version tag, then every variable-length field
    /// prefixed by its 4-byte big-endian length and every fixed-length field at its fixed
    /// size, so no two distinct inputs encode alike.
    fn encode(&self, purpose: &[u8], key_id: Option<&str>) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(64 + self.tenant.len() + self.kind.len() + key_id.map_or(0, str::len) + purpose.len());
        put_bytes(&mut out, AAD_VERSION);
        put_bytes(&mut out, purpose);
        put_bytes(&mut out, self.tenant.as_bytes());
        out.extend_from_slice(self.team_id.as_bytes());
        put_bytes(&mut out, self.kind.as_bytes());
        out.extend_from_slice(self.record_id.as_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        if let Some(key_id) = key_id {
            put_bytes(&mut out, key_id.as_bytes());
        }
        out
    }

    /// Associated data of the data ciphertext (independent of the key, so a re-wrap leaves
    /// the data ciphertext valid).
    fn for_data(&self) -> Vec<u8> {
        self.encode(PURPOSE_DATA, None)
    }

    /// Associated data of a data key wrapped by the key `key_id`.
    fn for_wrap(&self, key_id: &str) -> Vec<u8> {
        self.encode(PURPOSE_WRAP, Some(key_id))
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Field lengths are bounded by what fits in memory; a length beyond u32 is saturated,
    // which cannot make two real inputs collide because such inputs cannot be built.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An encrypted value as it is stored: which key wrapped its data key, the wrapped data
/// key, and the data ciphertext with its nonce. Holds no secret in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// Id of the key-encryption key that wrapped the data key.
    pub key_id: String,
    /// Wrap nonce (12 bytes) followed by AES-256-GCM(KEK, data key) with its tag.
    pub wrapped_key: Vec<u8>,
    /// Nonce of the data ciphertext (12 bytes).
    pub nonce: Vec<u8>,
    /// AES-256-GCM(data key, plaintext) with its tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedValue")
            .field("key_id", &self.key_id)
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("nonce_len", &self.nonce.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Fresh random bytes from the thread-local CSPRNG (seeded from the operating system).
pub(crate) fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::fill(&mut key[..]);
    key
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce[..]);
    nonce
}

fn cipher(key: &[u8; KEY_LEN]) -> Result<Aes256Gcm, CryptoError> {
    // A 32-byte slice is always a valid AES-256 key; the error path cannot be taken.
    Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::Integrity)
}

fn nonce_of(bytes: &[u8]) -> Result<aes_gcm::aead::Nonce<Aes256Gcm>, CryptoError> {
    aes_gcm::aead::Nonce::<Aes256Gcm>::try_from(bytes).map_err(|_| CryptoError::Integrity)
}

/// Encrypt `plaintext` under a fresh data key and wrap that key with `kek` (id `key_id`).
pub(crate) fn seal(
    kek: &[u8; KEY_LEN],
    key_id: &str,
    aad: &Aad<'_>,
    plaintext: &SecretString,
) -> Result<SealedValue, CryptoError> {
    let dek = random_key();
    let nonce = random_nonce();
    let data_aad = aad.for_data();
    let ciphertext = cipher(&dek)?
        .encrypt(
            &nonce_of(&nonce)?,
            Payload {
                msg: plaintext.expose_secret().as_bytes(),
                aad: &data_aad,
            },
        )
        .map_err(|_| CryptoError::Integrity)?;
    let wrapped_key = wrap_dek(kek, key_id, aad, &dek)?;
    Ok(SealedValue {
        key_id: key_id.to_owned(),
        wrapped_key,
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

/// Wrap `dek` with `kek` (id `key_id`): a fresh wrap nonce followed by the encrypted key.
pub(crate) fn wrap_dek(
    kek: &[u8; KEY_LEN],
    key_id: &str,
    aad: &Aad<'_>,
    dek: &[u8; KEY_LEN],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = random_nonce();
    let wrap_aad = aad.for_wrap(key_id);
    let encrypted = cipher(kek)?
        .encrypt(
            &nonce_of(&nonce)?,
            Payload {
                msg: dek,
                aad: &wrap_aad,
            },
        )
        .map_err(|_| CryptoError::Integrity)?;
    let mut wrapped = Vec::with_capacity(WRAPPED_KEY_LEN);
    wrapped.extend_from_slice(&nonce);
    wrapped.extend_from_slice(&encrypted);
    Ok(wrapped)
}

/// Recover the data key of `sealed` with `kek`, which must be the key named by
/// `sealed.key_id`.
pub(crate) fn unwrap_dek(
    kek: &[u8; KEY_LEN],
    aad: &Aad<'_>,
    sealed: &SealedValue,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    if sealed.wrapped_key.len() != WRAPPED_KEY_LEN {
        return Err(CryptoError::Integrity);
    }
    let (nonce, encrypted) = sealed.wrapped_key.split_at(NONCE_LEN);
    let wrap_aad = aad.for_wrap(&sealed.key_id);
    let decrypted = Zeroizing::new(
        cipher(kek)?
            .decrypt(
                &nonce_of(nonce)?,
                Payload {
                    msg: encrypted,
                    aad: &wrap_aad,
                },
            )
            .map_err(|_| CryptoError::Integrity)?,
    );
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    if decrypted.len() != KEY_LEN {
        return Err(CryptoError::Integrity);
    }
    dek.copy_from_slice(&decrypted);
    Ok(dek)
}

/// Decrypt the data of `sealed` with its data key.
pub(crate) fn open_data(dek: &[u8; KEY_LEN], aad: &Aad<'_>, sealed: &SealedValue) -> Result<SecretString, CryptoError> {
    if sealed.nonce.len() != NONCE_LEN {
        return Err(CryptoError::Integrity);
    }
    let data_aad = aad.for_data();
    let plaintext = Zeroizing::new(
        cipher(dek)?
            .decrypt(
                &nonce_of(&sealed.nonce)?,
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &data_aad,
                },
            )
            .map_err(|_| CryptoError::Integrity)?,
    );
    let text = std::str::from_utf8(&plaintext).map_err(|_| CryptoError::Integrity)?;
    // Copy into an allocation of exactly the right size, so turning it into the boxed
    // secret does not reallocate and leave an unzeroed copy behind.
    let mut owned = String::with_capacity(text.len());
    owned.push_str(text);
    Ok(SecretString::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad() -> Aad<'static> {
        Aad {
            tenant: "default",
            team_id: Uuid::from_u128(1),
            kind: "storage-secret",
            record_id: Uuid::from_u128(2),
            version: 1,
        }
    }

    #[test]
    fn encoding_separates_fields_that_would_concatenate_alike() {
        let a = Aad {
            tenant: "ab",
            kind: "c",
            ..aad()
        };
        let b = Aad {
            tenant: "a",
            kind: "bc",
            ..aad()
        };
        assert_ne!(a.for_data(), b.for_data());
    }

    #[test]
    fn data_and_wrap_encodings_differ_and_wrap_binds_the_key_id() {
        let a = aad();
        assert_ne!(a.for_data(), a.for_wrap(""));
        assert_ne!(a.for_wrap("k1"), a.for_wrap("k2"));
    }

    #[test]
    fn seal_then_open_with_the_same_kek() {
        let kek = random_key();
        let sealed = seal(&kek, "k1", &aad(), &SecretString::from("value")).unwrap();
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert_eq!(sealed.wrapped_key.len(), WRAPPED_KEY_LEN);
        assert_eq!(sealed.ciphertext.len(), "value".len() + TAG_LEN);
        let dek = unwrap_dek(&kek, &aad(), &sealed).unwrap();
        let opened = open_data(&dek, &aad(), &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "value");
    }

    #[test]
    fn unwrap_with_another_kek_fails() {
        let sealed = seal(&random_key(), "k1", &aad(), &SecretString::from("value")).unwrap();
        assert!(matches!(
            unwrap_dek(&random_key(), &aad(), &sealed),
            Err(CryptoError::Integrity)
        ));
    }

    #[test]
    fn truncated_parts_fail_with_integrity() {
        let kek = random_key();
        let sealed = seal(&kek, "k1", &aad(), &SecretString::from("value")).unwrap();
        let mut short_wrap = sealed.clone();
        short_wrap.wrapped_key.pop();
        assert!(matches!(
            unwrap_dek(&kek, &aad(), &short_wrap),
            Err(CryptoError::Integrity)
        ));
        let dek = unwrap_dek(&kek, &aad(), &sealed).unwrap();
        let mut short_nonce = sealed.clone();
        short_nonce.nonce.pop();
        assert!(matches!(
            open_data(&dek, &aad(), &short_nonce),
            Err(CryptoError::Integrity)
        ));
        let mut no_tag = sealed;
        no_tag.ciphertext.truncate(3);
        assert!(matches!(open_data(&dek, &aad(), &no_tag), Err(CryptoError::Integrity)));
    }

    #[test]
    fn each_seal_uses_a_fresh_data_key_and_nonce() {
        let kek = random_key();
        let value = SecretString::from("same");
        let a = seal(&kek, "k1", &aad(), &value).unwrap();
        let b = seal(&kek, "k1", &aad(), &value).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        let dek_a = unwrap_dek(&kek, &aad(), &a).unwrap();
        let dek_b = unwrap_dek(&kek, &aad(), &b).unwrap();
        assert_ne!(*dek_a, *dek_b);
    }
}
