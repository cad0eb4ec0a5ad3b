use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use custodian_crypto::{CryptoError, Keyring};
use secrecy::{ExposeSecret, SecretString};

use crate::record;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat the file").permissions().mode() & 0o777
}

fn keyring_error(result: Result<(Keyring, bool), CryptoError>) -> String {
    match result {
        Err(CryptoError::Keyring(message)) => message,
        other => panic!("expected a keyring error, got {other:?}"),
    }
}

#[test]
fn load_or_create_creates_the_directory_and_a_0600_file_then_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("keyring.json");
    let (created, was_created) = Keyring::load_or_create(&path).unwrap();
    assert!(was_created);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let sealed = created.seal(&record(), &SecretString::from("value")).unwrap();

    let (loaded, was_created) = Keyring::load_or_create(&path).unwrap();
    assert!(!was_created);
    assert_eq!(loaded.key_ids(), created.key_ids());
    assert_eq!(loaded.active_key_id(), created.active_key_id());
    assert_eq!(loaded.open(&record(), &sealed).unwrap().expose_secret(), "value");
    assert_eq!(
        loaded.token_hasher().digest("cus_x"),
        created.token_hasher().digest("cus_x")
    );
}

#[test]
fn the_file_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let (keyring, _) = Keyring::load_or_create(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["active"], keyring.active_key_id());
    let keys = json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], keyring.active_key_id());
    assert_eq!(base64_len(keys[0]["key"].as_str().unwrap()), 32);
    assert!(keys[0]["created_at"].as_str().unwrap().contains('T'));
    assert_eq!(base64_len(json["token_pepper"].as_str().unwrap()), 32);
}

fn base64_len(encoded: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64 in the file")
        .len()
}

#[test]
fn save_after_rotate_keeps_every_key_and_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let (mut keyring, _) = Keyring::load_or_create(&path).unwrap();
    let old = keyring.seal(&record(), &SecretString::from("old")).unwrap();
    let new_id = keyring.rotate();
    keyring.save(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let (loaded, created) = Keyring::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(loaded.key_ids(), keyring.key_ids());
    assert_eq!(loaded.active_key_id(), new_id);
    assert_eq!(loaded.open(&record(), &old).unwrap().expose_secret(), "old");
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        vec!["keyring.json".to_owned()],
        "no temporary file stays behind"
    );
}

#[test]
fn save_replaces_a_file_without_loosening_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    Keyring::generate().save(&path).unwrap();
    let second = Keyring::generate();
    second.save(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let (loaded, _) = Keyring::load_or_create(&path).unwrap();
    assert_eq!(loaded.key_ids(), second.key_ids());
}

#[test]
fn a_file_readable_by_group_or_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    Keyring::generate().save(&path).unwrap();
    for loose in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(loose)).unwrap();
        let message = keyring_error(Keyring::load_or_create(&path));
        assert!(message.contains(&format!("{loose:04o}")), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Keyring::load_or_create(&path).is_ok());
}

#[test]
fn a_malformed_file_is_refused_without_echoing_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let planted = "cGxhbnRlZC1zZWNyZXQ"; // "planted-secret": 14 bytes
    let good_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let cases = [
        ("not json", format!("{{ \"version\": 1, \"key\": \"{planted}")),
        (
            "wrong type",
            format!(r#"{{"version":"{planted}","active":"a","keys":[],"token_pepper":"x"}}"#),
        ),
        (
            "unknown field",
            format!(
                r#"{{"version":1,"active":"a","keys":[{{"id":"a","key":"{good_key}","created_at":"2026-01-01T00:00:00Z"}}],"token_pepper":"{good_key}","{planted}":1}}"#
            ),
        ),
        (
            "short key",
            format!(
                r#"{{"version":1,"active":"a","keys":[{{"id":"a","key":"{planted}","created_at":"2026-01-01T00:00:00Z"}}],"token_pepper":"{good_key}"}}"#
            ),
        ),
        (
            "bad base64 pepper",
            format!(
                r#"{{"version":1,"active":"a","keys":[{{"id":"a","key":"{good_key}","created_at":"2026-01-01T00:00:00Z"}}],"token_pepper":"{planted}!!"}}"#
            ),
        ),
    ];
    for (name, content) in cases {
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let message = keyring_error(Keyring::load_or_create(&path));
        assert!(!message.contains(planted), "{name}: {message}");
        assert!(!message.contains(good_key), "{name}: {message}");
        assert!(message.contains("keyring"), "{name}: {message}");
    }
}

#[test]
fn an_inconsistent_file_is_refused_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let entry = |id: &str| format!(r#"{{"id":"{id}","key":"{key}","created_at":"2026-01-01T00:00:00Z"}}"#);
    let cases = [
        (
            format!(
                r#"{{"version":2,"active":"a","keys":[{}],"token_pepper":"{key}"}}"#,
                entry("a")
            ),
            "unsupported version 2",
        ),
        (
            format!(r#"{{"version":1,"active":"a","keys":[],"token_pepper":"{key}"}}"#),
            "holds no key",
        ),
        (
            format!(
                r#"{{"version":1,"active":"b","keys":[{}],"token_pepper":"{key}"}}"#,
                entry("a")
            ),
            "active key b is not among its keys",
        ),
        (
            format!(
                r#"{{"version":1,"active":"a","keys":[{},{}],"token_pepper":"{key}"}}"#,
                entry("a"),
                entry("a")
            ),
            "key id a appears twice",
        ),
    ];
    for (content, rule) in cases {
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let message = keyring_error(Keyring::load_or_create(&path));
        assert!(message.contains(rule), "expected {rule:?} in {message:?}");
    }
    // The valid variant of the same file loads.
    fs::write(
        &path,
        format!(
            r#"{{"version":1,"active":"a","keys":[{}],"token_pepper":"{key}"}}"#,
            entry("a")
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let (keyring, created) = Keyring::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(keyring.key_ids(), vec!["a".to_owned()]);
}

#[test]
fn a_directory_in_place_of_the_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    fs::create_dir(&path).unwrap();
    assert!(Keyring::load_or_create(&path).is_err());
}

#[test]
fn concurrent_first_starts_agree_on_one_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let results: Vec<(Keyring, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| Keyring::load_or_create(&path).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    let ids = results[0].0.key_ids();
    assert!(results.iter().all(|(k, _)| k.key_ids() == ids));
}
