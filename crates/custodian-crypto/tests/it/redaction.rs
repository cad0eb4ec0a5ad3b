//! No `Debug` output or error message contains key material, a data key or a plaintext.

use std::fs;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use custodian_crypto::{CryptoError, Keyring, TokenHasher};
use secrecy::SecretString;

use crate::record;

/// Every spelling of `bytes` a careless `Debug` might print.
fn spellings(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{bytes:?}");
    let prefix_len = debug.len().min(24);
    vec![
        STANDARD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        hex,
        debug[..prefix_len].to_owned(),
    ]
}

fn assert_absent(output: &str, secret: &[u8], what: &str) {
    for spelling in spellings(secret) {
        assert!(!output.contains(&spelling), "{what} leaks {spelling:?} in {output:?}");
    }
}

const PLANTED_KEY: [u8; 32] = [
    0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc,
    0xfe, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
];

#[test]
fn keyring_debug_shows_key_ids_only() {
    let mut keyring = Keyring::from_master_key(&SecretString::from(STANDARD.encode(PLANTED_KEY))).unwrap();
    keyring.rotate();
    let debug = format!("{keyring:?} {keyring:#?}");
    assert_absent(&debug, &PLANTED_KEY, "Keyring Debug");
    for id in keyring.key_ids() {
        assert!(debug.contains(&id), "{debug}");
    }
}

#[test]
fn keyring_loaded_from_a_file_does_not_debug_its_keys_or_pepper() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let (mut keyring, _) = Keyring::load_or_create(&path).unwrap();
    keyring.rotate();
    keyring.save(&path).unwrap();
    let (loaded, _) = Keyring::load_or_create(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let mut planted: Vec<Vec<u8>> = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| STANDARD.decode(k["key"].as_str().unwrap()).unwrap())
        .collect();
    planted.push(STANDARD.decode(json["token_pepper"].as_str().unwrap()).unwrap());
    assert_eq!(planted.len(), 3);
    let debug = format!("{loaded:?} {loaded:#?} {:?}", loaded.token_hasher());
    for secret in &planted {
        assert_absent(&debug, secret, "loaded Keyring Debug");
    }
}

#[test]
fn sealed_value_debug_shows_key_id_and_lengths_only() {
    let keyring = Keyring::generate();
    let sealed = keyring.seal(&record(), &SecretString::from("hunter2-hunter2")).unwrap();
    let debug = format!("{sealed:?}");
    assert!(debug.contains(&sealed.key_id));
    assert!(debug.contains(&sealed.ciphertext.len().to_string()));
    assert!(!debug.contains("hunter2"));
    for part in [&sealed.wrapped_key, &sealed.nonce, &sealed.ciphertext] {
        assert_absent(&debug, part, "SealedValue Debug");
    }
}

#[test]
fn token_hasher_debug_is_redacted() {
    let hasher = TokenHasher::new(PLANTED_KEY);
    let debug = format!("{hasher:?} {hasher:#?}");
    assert_absent(&debug, &PLANTED_KEY, "TokenHasher Debug");
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn errors_never_hold_the_plaintext_or_key() {
    let keyring = Keyring::from_master_key(&SecretString::from(STANDARD.encode(PLANTED_KEY))).unwrap();
    let sealed = keyring.seal(&record(), &SecretString::from("hunter2-hunter2")).unwrap();
    let mut tampered = sealed.clone();
    tampered.ciphertext[0] ^= 1;
    let errors: Vec<CryptoError> = vec![
        keyring.open(&record(), &tampered).unwrap_err(),
        Keyring::generate().open(&record(), &sealed).unwrap_err(),
        Keyring::from_master_key(&SecretString::from(STANDARD.encode(&PLANTED_KEY[..31]))).unwrap_err(),
    ];
    for error in errors {
        let text = format!("{error} {error:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_absent(&text, &PLANTED_KEY, "CryptoError");
        assert_absent(&text, &PLANTED_KEY[..31], "CryptoError");
    }
}
