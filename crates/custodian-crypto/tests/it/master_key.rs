use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use custodian_crypto::{CryptoError, Keyring};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::record;

const KEY: [u8; 32] = [0x5a; 32];

fn from(encoded: &str) -> Result<Keyring, CryptoError> {
    Keyring::from_master_key(&SecretString::from(encoded))
}

#[test]
fn key_id_is_env_and_the_first_8_hex_of_the_sha256() {
    let keyring = from(&STANDARD.encode(KEY)).unwrap();
    let hex: String = Sha256::digest(KEY)[..4].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(keyring.active_key_id(), format!("env-{hex}"));
    assert_eq!(keyring.key_ids(), vec![format!("env-{hex}")]);
}

#[test]
fn the_same_key_gives_the_same_keyring() {
    let a = from(&STANDARD.encode(KEY)).unwrap();
    let b = from(&format!("  {}\n", URL_SAFE_NO_PAD.encode(KEY))).unwrap();
    assert_eq!(a.active_key_id(), b.active_key_id());
    let sealed = a.seal(&record(), &SecretString::from("value")).unwrap();
    assert_eq!(b.open(&record(), &sealed).unwrap().expose_secret(), "value");
    assert_eq!(a.token_hasher().digest("cus_t"), b.token_hasher().digest("cus_t"));
}

#[test]
fn another_key_gives_another_id_and_pepper() {
    let a = from(&STANDARD.encode(KEY)).unwrap();
    let b = from(&STANDARD.encode([0x5bu8; 32])).unwrap();
    assert_ne!(a.active_key_id(), b.active_key_id());
    assert_ne!(a.token_hasher().digest("cus_t"), b.token_hasher().digest("cus_t"));
    let sealed = a.seal(&record(), &SecretString::from("value")).unwrap();
    assert!(matches!(b.open(&record(), &sealed), Err(CryptoError::UnknownKey(_))));
}

#[test]
fn the_pepper_is_not_the_key_itself() {
    let keyring = from(&STANDARD.encode(KEY)).unwrap();
    let with_key_as_pepper = custodian_crypto::TokenHasher::new(KEY);
    assert_ne!(
        keyring.token_hasher().digest("cus_t"),
        with_key_as_pepper.digest("cus_t")
    );
}

#[test]
fn wrong_lengths_are_rejected_with_a_clear_message() {
    for len in [0usize, 1, 16, 31, 33, 64] {
        let encoded = STANDARD.encode(vec![7u8; len]);
        let message = match from(&encoded) {
            Err(CryptoError::Keyring(message)) => message,
            other => panic!("length {len}: expected a keyring error, got {other:?}"),
        };
        assert!(message.contains("CUSTODIAN_MASTER_KEY"), "{message}");
        assert!(message.contains("exactly 32"), "{message}");
        assert!(message.contains(&format!("decodes to {len} bytes")), "{message}");
        if !encoded.is_empty() {
            assert!(!message.contains(&encoded), "{message}");
        }
    }
}

#[test]
fn non_base64_is_rejected_without_echoing_it() {
    for bad in ["not base64 at all!", "c2VjcmV0LXRoYXQtaXMtbm90LWEta2V5@@", "Zm9v=YmFy"] {
        let message = match from(bad) {
            Err(CryptoError::Keyring(message)) => message,
            other => panic!("{bad:?}: expected a keyring error, got {other:?}"),
        };
        assert!(message.contains("not valid base64"), "{message}");
        assert!(!message.contains(bad), "{message}");
    }
}
