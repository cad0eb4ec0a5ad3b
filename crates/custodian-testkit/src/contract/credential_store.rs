//! The contract of the [`CredentialStore`] port (`custodian-ports`), run against every
//! backend: the in-memory fake, the local encrypted store on SQLite and PostgreSQL, and
//! AWS SSM.
//!
//! Every case starts from a fresh, empty store and uses random team and record ids, so it
//! also holds on a backend shared between cases. The ids name no team row: a store must
//! not require the team to exist elsewhere.

use std::sync::Arc;

use custodian_domain::TeamId;
use custodian_ports::{CredentialKey, CredentialKind, CredentialStore, StoreError};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::Case;

/// Every case of the suite.
pub fn cases() -> Vec<Case<Arc<dyn CredentialStore>>> {
    macro_rules! case {
        ($name:ident) => {
            Case {
                name: stringify!($name),
                run: |store| Box::pin($name(store)),
            }
        };
    }
    vec![
        case!(put_then_get_round_trips),
        case!(get_of_a_missing_record_or_version_is_not_found),
        case!(put_of_an_existing_version_is_already_exists_and_keeps_the_value),
        case!(versions_are_independent),
        case!(delete_version_removes_only_that_version_and_is_idempotent),
        case!(prune_removes_only_versions_older_than_keep),
        case!(delete_all_removes_every_version_and_is_idempotent),
        case!(keys_differing_only_in_team_kind_or_record_are_isolated),
        case!(long_and_multibyte_values_round_trip),
        case!(concurrent_puts_of_one_version_store_exactly_one),
        case!(errors_never_contain_the_value),
        case!(list_stored_pages_through_every_version_with_when_it_was_written),
    ]
}

/// A key no other case or run uses.
fn fresh_key(kind: CredentialKind) -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::new_v4()),
        kind,
        record_id: Uuid::new_v4(),
    }
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value)
}

/// The value stored as `version` of `key`; panics naming the key and version (never the
/// value) when it cannot be read.
async fn read(store: &dyn CredentialStore, key: &CredentialKey, version: i64) -> String {
    match store.get(key, version).await {
        Ok(value) => value.expose_secret().to_owned(),
        Err(e) => panic!("get {key} version {version}: expected a value, got {e:?}"),
    }
}

async fn put(store: &dyn CredentialStore, key: &CredentialKey, version: i64, value: &str) {
    if let Err(e) = store.put(key, version, &secret(value)).await {
        panic!("put {key} version {version}: {e:?}");
    }
}

async fn assert_absent(store: &dyn CredentialStore, key: &CredentialKey, version: i64) {
    match store.get(key, version).await {
        Err(StoreError::NotFound) => {}
        Err(e) => panic!("get {key} version {version}: expected NotFound, got {e:?}"),
        Ok(_) => panic!("get {key} version {version}: expected NotFound, got a value"),
    }
}

/// `put` stores `value` as `version` of `key`; `get` returns it unchanged. The backend
/// names itself.
async fn put_then_get_round_trips(store: Arc<dyn CredentialStore>) {
    assert!(!store.backend().is_empty(), "backend() names the backend");
    let key = fresh_key(CredentialKind::StorageSecret);
    let value = r#"{"access_key_id":"AKIAEXAMPLE","secret_access_key":"wJalr/K7MDENG+bPxRfiCY"}"#;
    put(&*store, &key, 1, value).await;
    assert_eq!(read(&*store, &key, 1).await, value);
    // Reading does not consume the value.
    assert_eq!(read(&*store, &key, 1).await, value);
}

/// `get` answers `NotFound` when the record is absent, and when the record exists but not
/// that version.
async fn get_of_a_missing_record_or_version_is_not_found(store: Arc<dyn CredentialStore>) {
    let key = fresh_key(CredentialKind::StorageSecret);
    assert_absent(&*store, &key, 1).await;
    put(&*store, &key, 1, "one").await;
    assert_absent(&*store, &key, 2).await;
    assert_absent(&*store, &key, 0).await;
}

/// `put` of a version that is already stored answers `AlreadyExists` and leaves the stored
/// value unchanged.
async fn put_of_an_existing_version_is_already_exists_and_keeps_the_value(store: Arc<dyn CredentialStore>) {
    let key = fresh_key(CredentialKind::VaultConnection);
    put(&*store, &key, 1, "first").await;
    for attempt in ["second", "first"] {
        match store.put(&key, 1, &secret(attempt)).await {
            Err(StoreError::AlreadyExists) => {}
            other => panic!("second put of {key} version 1: expected AlreadyExists, got {other:?}"),
        }
    }
    assert_eq!(read(&*store, &key, 1).await, "first");
}

/// The versions of one record are stored and read independently, in any order.
async fn versions_are_independent(store: Arc<dyn CredentialStore>) {
    let key = fresh_key(CredentialKind::GroupSecret);
    put(&*store, &key, 2, "two").await;
    put(&*store, &key, 1, "one").await;
    put(&*store, &key, 3, "three").await;
    assert_eq!(read(&*store, &key, 1).await, "one");
    assert_eq!(read(&*store, &key, 2).await, "two");
    assert_eq!(read(&*store, &key, 3).await, "three");
}

/// `delete_version` removes that version only, succeeds when it is already absent (or the
/// record never existed), and the version can then be put again.
async fn delete_version_removes_only_that_version_and_is_idempotent(store: Arc<dyn CredentialStore>) {
    let key = fresh_key(CredentialKind::StorageSecret);
    for version in 1..=3 {
        put(&*store, &key, version, &format!("value {version}")).await;
    }
    store.delete_version(&key, 2).await.expect("delete version 2");
    assert_absent(&*store, &key, 2).await;
    assert_eq!(read(&*store, &key, 1).await, "value 1");
    assert_eq!(read(&*store, &key, 3).await, "value 3");

    store.delete_version(&key, 2).await.expect("delete version 2 again");
    store
        .delete_version(&key, 9)
        .await
        .expect("delete a version never stored");
    let never = fresh_key(CredentialKind::StorageSecret);
    store
        .delete_version(&never, 1)
        .await
        .expect("delete from a record never stored");

    // Undoing a put and retrying it stores the retried value.
    put(&*store, &key, 2, "value 2 again").await;
    assert_eq!(read(&*store, &key, 2).await, "value 2 again");
}

/// `prune(keep)` removes every version older than `keep` and keeps `keep` and newer ones;
/// it succeeds when there is nothing to remove or no record at all, and touches no other
/// record.
async fn prune_removes_only_versions_older_than_keep(store: Arc<dyn CredentialStore>) {
    let key = fresh_key(CredentialKind::StorageSecret);
    let neighbour = fresh_key(CredentialKind::StorageSecret);
    for version in 1..=5 {
        put(&*store, &key, version, &format!("value {version}")).await;
    }
    put(&*store, &neighbour, 1, "neighbour").await;

    store.prune(&key, 3).await.expect("prune keeping 3");
    assert_absent(&*store, &key, 1).await;
    assert_absent(&*store, &key, 2).await;
    for version in 3..=5 {
        assert_eq!(read(&*store, &key, version).await, format!("value {version}"));
    }
    assert_eq!(read(&*store, &neighbour, 1).await, "neighbour");

    store.prune(&key, 3).await.expect("prune again with nothing older");
    store.prune(&key, 1).await.expect("prune keeping the oldest possible");
    for version in 3..=5 {
        assert_eq!(read(&*store, &key, version).await, format!("value {version}"));
    }
    let never = fresh_key(CredentialKind::StorageSecret);
    store.prune(&never, 2).await.expect("prune a record never stored");

    // Every stored version is older than 6: all go.
    store
        .prune(&key, 6)
        .await
        .expect("prune keeping a version beyond the newest");
    for version in 3..=5 {
        assert_absent(&*store, &key, version).await;
    }
    assert_eq!(read(&*store, &neighbour, 1).await, "neighbour");
}

/// `delete_all` removes every version of the record, succeeds when nothing is stored, and
/// the record can be written again afterwards.
async fn delete_all_removes_every_version_and_is_idempotent(store: Arc<dyn CredentialStore>) {
    let key = fresh_key(CredentialKind::VaultConnection);
    let neighbour = fresh_key(CredentialKind::VaultConnection);
    for version in 1..=3 {
        put(&*store, &key, version, &format!("value {version}")).await;
    }
    put(&*store, &neighbour, 1, "neighbour").await;

    store.delete_all(&key).await.expect("delete all");
    for version in 1..=3 {
        assert_absent(&*store, &key, version).await;
    }
    assert_eq!(read(&*store, &neighbour, 1).await, "neighbour");

    store.delete_all(&key).await.expect("delete all again");
    let never = fresh_key(CredentialKind::VaultConnection);
    store
        .delete_all(&never)
        .await
        .expect("delete all of a record never stored");

    put(&*store, &key, 1, "reborn").await;
    assert_eq!(read(&*store, &key, 1).await, "reborn");
}

/// Keys that differ only in team, kind or record id are separate records for every
/// operation.
async fn keys_differing_only_in_team_kind_or_record_are_isolated(store: Arc<dyn CredentialStore>) {
    let base = fresh_key(CredentialKind::StorageSecret);
    let mut keys = vec![
        ("base", base),
        (
            "other team",
            CredentialKey {
                team_id: TeamId::from_uuid(Uuid::new_v4()),
                ..base
            },
        ),
        (
            "other record",
            CredentialKey {
                record_id: Uuid::new_v4(),
                ..base
            },
        ),
    ];
    for kind in CredentialKind::ALL.iter().copied().filter(|k| *k != base.kind) {
        keys.push((kind.as_str(), CredentialKey { kind, ..base }));
    }

    for (name, key) in &keys {
        put(&*store, key, 1, &format!("value of {name}")).await;
    }
    for (name, key) in &keys {
        assert_eq!(read(&*store, key, 1).await, format!("value of {name}"), "{name}");
    }

    // Removing the base record in every way leaves each other key's value in place.
    put(&*store, &base, 2, "base 2").await;
    store.delete_version(&base, 1).await.expect("delete version");
    store.prune(&base, 3).await.expect("prune");
    store.delete_all(&base).await.expect("delete all");
    assert_absent(&*store, &base, 1).await;
    for (name, key) in keys.iter().skip(1) {
        assert_eq!(read(&*store, key, 1).await, format!("value of {name}"), "{name}");
    }
}

/// Values of 8192 characters, and values with multi-byte UTF-8, newlines, quotes,
/// backslashes and surrounding whitespace, come back byte for byte.
async fn long_and_multibyte_values_round_trip(store: Arc<dyn CredentialStore>) {
    let key = fresh_key(CredentialKind::GroupSecret);
    let long: String = "abcdefghijklmnopqrstuvwxyz0123456789+/="
        .chars()
        .cycle()
        .take(8192)
        .collect();
    let multibyte: String = "ключ-€-𝄞-ü-日本-".chars().cycle().take(1024).collect();
    let awkward =
        "  -----BEGIN PRIVATE KEY-----\nMIIE\\n\"quoted\"\t'single' {}[]%_;--\r\n-----END PRIVATE KEY-----\n ";
    let values = [long.as_str(), multibyte.as_str(), awkward];
    assert_eq!(long.chars().count(), 8192);
    assert!(
        multibyte.len() > multibyte.chars().count(),
        "multi-byte characters present"
    );

    for (version, value) in (1..).zip(values) {
        put(&*store, &key, version, value).await;
    }
    for (version, value) in (1..).zip(values) {
        let stored = read(&*store, &key, version).await;
        assert!(stored == value, "version {version} did not round-trip exactly");
    }
}

/// Concurrent puts of one version: exactly one succeeds, every other answers
/// `AlreadyExists`, and the stored value is the winner's.
async fn concurrent_puts_of_one_version_store_exactly_one(store: Arc<dyn CredentialStore>) {
    let key = fresh_key(CredentialKind::StorageSecret);
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { (i, store.put(&key, 1, &secret(&format!("writer {i}"))).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for writer in writers {
        let (i, outcome) = writer.await.expect("writer task");
        match outcome {
            Ok(()) => winners.push(i),
            Err(StoreError::AlreadyExists) => {}
            Err(e) => panic!("writer {i}: expected Ok or AlreadyExists, got {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer succeeds: {winners:?}");
    assert_eq!(read(&*store, &key, 1).await, format!("writer {}", winners[0]));
}

/// Neither the `Display` nor the `Debug` of an error from any operation on a record holds
/// the record's value.
async fn errors_never_contain_the_value(store: Arc<dyn CredentialStore>) {
    let canary = format!("canary-{}", Uuid::new_v4().simple());
    let key = fresh_key(CredentialKind::VaultConnection);
    put(&*store, &key, 1, &canary).await;

    let mut errors = Vec::new();
    if let Err(e) = store.put(&key, 1, &secret(&canary)).await {
        errors.push(e);
    }
    if let Err(e) = store.get(&key, 2).await {
        errors.push(e);
    }
    store.delete_all(&key).await.expect("delete all");
    if let Err(e) = store.get(&key, 1).await {
        errors.push(e);
    }
    assert_eq!(errors.len(), 3, "each of the three calls fails");
    for error in errors {
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains(&canary) && !shown.contains(canary.trim_start_matches("canary-")),
            "an error shows the stored value (variant {})",
            variant(&error)
        );
    }
}

fn variant(error: &StoreError) -> &'static str {
    match error {
        StoreError::NotFound => "NotFound",
        StoreError::AlreadyExists => "AlreadyExists",
        StoreError::Rejected(_) => "Rejected",
        StoreError::Integrity => "Integrity",
        StoreError::Unavailable { .. } => "Unavailable",
        StoreError::Internal(_) => "Internal",
    }
}

/// `list_stored`, paged by a small limit, reports every stored version once, with the
/// time it was written; a removed version is no longer reported.
async fn list_stored_pages_through_every_version_with_when_it_was_written(store: Arc<dyn CredentialStore>) {
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let keys = [
        fresh_key(CredentialKind::StorageSecret),
        fresh_key(CredentialKind::VaultConnection),
        fresh_key(CredentialKind::GroupSecret),
    ];
    let mut written = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        for version in 1..=(i as i64 + 2) {
            put(&*store, key, version, &format!("listed-{i}-{version}")).await;
            written.push((*key, version));
        }
    }
    let after = chrono::Utc::now() + chrono::Duration::seconds(5);
    let listed = list_all(&*store).await;
    for (key, version) in &written {
        let found: Vec<_> = listed
            .iter()
            .filter(|v| v.key == *key && v.version == *version)
            .collect();
        assert_eq!(found.len(), 1, "{key} version {version} is listed exactly once");
        assert!(
            found[0].written_at >= before && found[0].written_at <= after,
            "{key} version {version} was written at {}, not between {before} and {after}",
            found[0].written_at
        );
    }
    store.delete_version(&keys[2], 1).await.expect("delete a version");
    let listed = list_all(&*store).await;
    assert!(
        !listed.iter().any(|v| v.key == keys[2] && v.version == 1),
        "a removed version is not listed"
    );
    assert!(listed.iter().any(|v| v.key == keys[2] && v.version == 2));
}

/// Every page of `list_stored`, two versions at a time.
async fn list_all(store: &dyn CredentialStore) -> Vec<custodian_ports::StoredVersion> {
    let mut all = Vec::new();
    let mut page = None;
    loop {
        let listed = store.list_stored(page, 2).await.expect("list_stored");
        all.extend(listed.versions);
        match listed.next {
            Some(token) => page = Some(token),
            None => return all,
        }
    }
}
