use custodian_crypto::{CryptoError, Keyring};
use secrecy::{ExposeSecret, SecretString};

use crate::record;

#[test]
fn after_rotate_old_and_new_values_open() {
    let mut keyring = Keyring::generate();
    let old_id = keyring.active_key_id().to_owned();
    let old = keyring.seal(&record(), &SecretString::from("old")).unwrap();
    let new_id = keyring.rotate();
    assert_ne!(new_id, old_id);
    assert_eq!(keyring.active_key_id(), new_id);
    assert_eq!(keyring.key_ids(), vec![old_id.clone(), new_id.clone()]);
    let new = keyring.seal(&record(), &SecretString::from("new")).unwrap();
    assert_eq!(old.key_id, old_id);
    assert_eq!(new.key_id, new_id);
    assert_eq!(keyring.open(&record(), &old).unwrap().expose_secret(), "old");
    assert_eq!(keyring.open(&record(), &new).unwrap().expose_secret(), "new");
}

#[test]
fn rewrap_moves_a_value_to_the_active_key_and_keeps_the_data_ciphertext() {
    let mut keyring = Keyring::generate();
    let old = keyring.seal(&record(), &SecretString::from("value")).unwrap();
    let new_id = keyring.rotate();
    let rewrapped = keyring.rewrap(&record(), &old).unwrap();
    assert_eq!(rewrapped.key_id, new_id);
    assert_eq!(rewrapped.nonce, old.nonce);
    assert_eq!(rewrapped.ciphertext, old.ciphertext);
    assert_ne!(rewrapped.wrapped_key, old.wrapped_key);
    assert_eq!(keyring.open(&record(), &rewrapped).unwrap().expose_secret(), "value");
}

#[test]
fn rewrap_checks_the_record_like_open() {
    let mut keyring = Keyring::generate();
    let old = keyring.seal(&record(), &SecretString::from("value")).unwrap();
    keyring.rotate();
    let other = custodian_crypto::Aad {
        version: 99,
        ..record()
    };
    assert!(matches!(keyring.rewrap(&other, &old), Err(CryptoError::Integrity)));
}

#[test]
fn removing_the_old_key_after_rewrap_leaves_only_unwrapped_values_unreadable() {
    let mut keyring = Keyring::generate();
    let old_id = keyring.active_key_id().to_owned();
    let left_behind = keyring.seal(&record(), &SecretString::from("left")).unwrap();
    let moved = keyring.seal(&record(), &SecretString::from("moved")).unwrap();
    keyring.rotate();
    let moved = keyring.rewrap(&record(), &moved).unwrap();
    keyring.remove_key(&old_id).unwrap();
    assert!(!keyring.key_ids().contains(&old_id));
    assert_eq!(keyring.open(&record(), &moved).unwrap().expose_secret(), "moved");
    assert!(matches!(
        keyring.open(&record(), &left_behind),
        Err(CryptoError::UnknownKey(id)) if id == old_id
    ));
    assert!(matches!(
        keyring.rewrap(&record(), &left_behind),
        Err(CryptoError::UnknownKey(_))
    ));
}

#[test]
fn the_active_key_cannot_be_removed() {
    let mut keyring = Keyring::generate();
    let active = keyring.active_key_id().to_owned();
    let err = keyring.remove_key(&active).unwrap_err();
    assert!(matches!(err, CryptoError::Keyring(_)), "{err:?}");
    assert!(err.to_string().contains(&active));
    assert_eq!(keyring.key_ids(), vec![active]);
}

#[test]
fn removing_an_unknown_key_says_so() {
    let mut keyring = Keyring::generate();
    keyring.rotate();
    assert!(matches!(
        keyring.remove_key("key-nope"),
        Err(CryptoError::UnknownKey(id)) if id == "key-nope"
    ));
    assert_eq!(keyring.key_ids().len(), 2);
}
