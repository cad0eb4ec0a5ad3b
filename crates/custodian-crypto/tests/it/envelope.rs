use custodian_crypto::{Aad, CryptoError, Keyring};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::record;

#[test]
fn sealed_value_opens_for_its_own_record() {
    let keyring = Keyring::generate();
    let value = SecretString::from("{\"access_key_id\":\"AKIA\",\"secret_access_key\":\"s3cr3t\"}");
    let sealed = keyring.seal(&record(), &value).unwrap();
    assert_eq!(sealed.key_id, keyring.active_key_id());
    assert!(!sealed.ciphertext.windows(6).any(|w| w == b"s3cr3t"));
    let opened = keyring.open(&record(), &sealed).unwrap();
    assert_eq!(opened.expose_secret(), value.expose_secret());
}

#[test]
fn empty_long_and_multibyte_values_round_trip() {
    let keyring = Keyring::generate();
    let long: String = "é€𝄞a".repeat(4096);
    for value in ["", "x", long.as_str()] {
        let sealed = keyring.seal(&record(), &SecretString::from(value)).unwrap();
        assert_eq!(keyring.open(&record(), &sealed).unwrap().expose_secret(), value);
    }
}

#[test]
fn opening_for_any_other_record_fails_with_integrity() {
    let keyring = Keyring::generate();
    let sealed = keyring.seal(&record(), &SecretString::from("value")).unwrap();
    let others: [(&str, Aad<'_>); 5] = [
        (
            "record id",
            Aad {
                record_id: Uuid::from_u128(0x2223),
                ..record()
            },
        ),
        (
            "team",
            Aad {
                team_id: Uuid::from_u128(0x1112),
                ..record()
            },
        ),
        ("version", Aad { version: 4, ..record() }),
        (
            "kind",
            Aad {
                kind: "vault-connection",
                ..record()
            },
        ),
        (
            "tenant",
            Aad {
                tenant: "other",
                ..record()
            },
        ),
    ];
    for (field, other) in others {
        let result = keyring.open(&other, &sealed);
        assert!(
            matches!(result, Err(CryptoError::Integrity)),
            "another {field} must not open"
        );
    }
}

/// Picks one byte field of a sealed value.
type PartOf = fn(&mut custodian_crypto::SealedValue) -> &mut Vec<u8>;

#[test]
fn a_flipped_bit_anywhere_fails_with_integrity() {
    let keyring = Keyring::generate();
    let sealed = keyring.seal(&record(), &SecretString::from("value")).unwrap();
    let parts: [(&str, PartOf); 3] = [
        ("ciphertext", |s| &mut s.ciphertext),
        ("nonce", |s| &mut s.nonce),
        ("wrapped key", |s| &mut s.wrapped_key),
    ];
    for (name, part) in parts {
        let len = part(&mut sealed.clone()).len();
        for byte in [0, len / 2, len - 1] {
            for bit in [0u8, 7] {
                let mut tampered = sealed.clone();
                part(&mut tampered)[byte] ^= 1 << bit;
                let result = keyring.open(&record(), &tampered);
                assert!(
                    matches!(result, Err(CryptoError::Integrity)),
                    "flipping bit {bit} of byte {byte} of the {name} must fail"
                );
            }
        }
    }
}

#[test]
fn a_ciphertext_moved_onto_another_sealed_value_fails() {
    let keyring = Keyring::generate();
    let a = keyring.seal(&record(), &SecretString::from("aaaa")).unwrap();
    let b = keyring.seal(&record(), &SecretString::from("bbbb")).unwrap();
    let mut swapped = a.clone();
    swapped.ciphertext = b.ciphertext.clone();
    swapped.nonce = b.nonce.clone();
    assert!(matches!(keyring.open(&record(), &swapped), Err(CryptoError::Integrity)));
}

#[test]
fn another_keyring_cannot_open_even_with_the_same_key_id() {
    let keyring = Keyring::generate();
    let sealed = keyring.seal(&record(), &SecretString::from("value")).unwrap();
    let stranger = Keyring::generate();
    let mut relabelled = sealed.clone();
    relabelled.key_id = stranger.active_key_id().to_owned();
    assert!(matches!(
        stranger.open(&record(), &relabelled),
        Err(CryptoError::Integrity)
    ));
    assert!(matches!(
        stranger.open(&record(), &sealed),
        Err(CryptoError::UnknownKey(id)) if id == keyring.active_key_id()
    ));
}

#[test]
fn relabelling_the_key_id_within_one_keyring_fails() {
    let mut keyring = Keyring::generate();
    let first = keyring.active_key_id().to_owned();
    let sealed = keyring.seal(&record(), &SecretString::from("value")).unwrap();
    let second = keyring.rotate();
    let mut relabelled = sealed;
    relabelled.key_id = second;
    assert_ne!(relabelled.key_id, first);
    assert!(matches!(
        keyring.open(&record(), &relabelled),
        Err(CryptoError::Integrity)
    ));
}
