//! The local credential store: the CredentialStore contract on SQLite and PostgreSQL,
//! binding of every value to its record and tenant, key rotation, and no plaintext in the
//! database files or a dump.

use std::sync::Arc;

use custodian_crypto::Keyring;
use custodian_domain::{AuditAction, TeamId};
use custodian_ports::{
    AuditFilter, ConflictKind, CredentialKey, CredentialKind, CredentialStore, RepoError, StoreError,
};
use custodian_store_sql::{Database, KeyRemovalError, LocalCredentialStore, test_support};
use custodian_test_db::TestPostgres;
use custodian_testkit::contract::fixtures::ALL;
use custodian_testkit::contract::secrets::{managed_secret, secret_audit, team};
use custodian_testkit::{contract, run_cases};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::support::{postgres_skipped, repo_set};

const TENANT: &str = "default";

fn store(db: Database, keyring: &Keyring) -> LocalCredentialStore {
    LocalCredentialStore::new(db, Arc::new(keyring.clone()), TENANT)
}

fn key(kind: CredentialKind) -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::now_v7()),
        kind,
        record_id: Uuid::now_v7(),
    }
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value)
}

async fn read(store: &LocalCredentialStore, key: &CredentialKey, version: i64) -> Result<String, StoreError> {
    store.get(key, version).await.map(|v| v.expose_secret().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn contract_on_sqlite() {
    let keyring = Keyring::generate();
    run_cases(
        "sqlite",
        "credential_store",
        &contract::credential_store::cases(),
        || async { Arc::new(store(test_support::sqlite().await, &keyring)) as Arc<dyn CredentialStore> },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn contract_on_postgres() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): credential store contract");
        return;
    }
    let keyring = Keyring::generate();
    run_cases(
        "postgres",
        "credential_store",
        &contract::credential_store::cases(),
        || async {
            let db = test_support::postgres().await.expect("PostgreSQL tests run");
            Arc::new(store(db, &keyring)) as Arc<dyn CredentialStore>
        },
    )
    .await;
}

/// A value copied onto another version, or read by another tenant or keyring, does not open.
async fn values_are_bound_to_their_record_tenant_and_keyring(db: Database) {
    let keyring = Keyring::generate();
    let local = store(db.clone(), &keyring);
    assert_eq!(local.backend(), "local");
    let record = key(CredentialKind::StorageSecret);
    local.put(&record, 1, &secret("first-value")).await.expect("put v1");
    local.put(&record, 2, &secret("second-value")).await.expect("put v2");
    assert_eq!(read(&local, &record, 2).await.as_deref(), Ok("second-value"));

    let other_tenant = LocalCredentialStore::new(db.clone(), Arc::new(keyring.clone()), "another-tenant");
    assert_eq!(read(&other_tenant, &record, 1).await, Err(StoreError::Integrity));
    let other_keyring = store(db.clone(), &Keyring::generate());
    assert_eq!(read(&other_keyring, &record, 1).await, Err(StoreError::Integrity));

    let moved = test_support::execute(
        &db,
        &format!(
            "UPDATE credential_blobs SET \
             wrapped_key = (SELECT wrapped_key FROM credential_blobs WHERE record_id = '{r}' AND version = 1), \
             nonce = (SELECT nonce FROM credential_blobs WHERE record_id = '{r}' AND version = 1), \
             ciphertext = (SELECT ciphertext FROM credential_blobs WHERE record_id = '{r}' AND version = 1) \
             WHERE record_id = '{r}' AND version = 2",
            r = record.record_id
        ),
    )
    .await
    .expect("copy version 1 onto version 2");
    assert_eq!(moved, 1);
    assert_eq!(read(&local, &record, 2).await, Err(StoreError::Integrity));
    assert_eq!(read(&local, &record, 1).await.as_deref(), Ok("first-value"));
    assert_eq!(
        local.put(&record, 0, &secret("x")).await,
        Err(StoreError::Rejected("versions start at 1".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_values_are_bound_to_their_record_tenant_and_keyring() {
    values_are_bound_to_their_record_tenant_and_keyring(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_values_are_bound_to_their_record_tenant_and_keyring() {
    let Some(db) = test_support::postgres().await else {
        return;
    };
    values_are_bound_to_their_record_tenant_and_keyring(db).await;
}

/// A rotation as `keys rotate` and `keys remove` drive it: the database's active key
/// decides what new values are sealed under; a process that lacks it keeps sealing under
/// its own key while the database accepts that one; `rewrap_all` moves every value to the
/// active key; a key is removed only when nothing is sealed under it, and never accepted
/// again; every value still opens with the active key alone.
async fn rewrap_all_moves_every_value_to_the_active_key(db: Database) {
    let mut keyring = Keyring::generate();
    let before = store(db.clone(), &keyring);
    let records: Vec<CredentialKey> = (0..3).map(|_| key(CredentialKind::VaultConnection)).collect();
    for (i, record) in records.iter().enumerate() {
        before
            .put(record, 1, &secret(&format!("value-{i}")))
            .await
            .expect("put");
    }
    let old_key = keyring.active_key_id().to_owned();
    assert_eq!(
        before.active_key_id().await,
        Ok(Some(old_key.clone())),
        "the first write records the key"
    );
    let new_key = keyring.rotate();
    let rotated = store(db.clone(), &keyring);
    rotated.register_keys().await.expect("register");
    assert_eq!(
        rotated.sealing_key_id().await.as_deref(),
        Ok(old_key.as_str()),
        "a registered key is not active until activated"
    );
    rotated.activate(&new_key).await.expect("activate");
    rotated
        .put(&records[0], 2, &secret("after-rotation"))
        .await
        .expect("put under the new key");
    // A process that has not learnt of the new key keeps writing under the old one.
    let lagging = key(CredentialKind::StorageSecret);
    before
        .put(&lagging, 1, &secret("lagging"))
        .await
        .expect("put by a lagging process");
    assert!(matches!(
        rotated.remove_key(&old_key).await,
        Err(KeyRemovalError::InUse(id)) if id == old_key
    ));
    assert_eq!(rotated.rewrap_all().await, Ok(4), "only the values under the old key");
    assert_eq!(rotated.rewrap_all().await, Ok(0), "nothing left to re-wrap");
    assert!(matches!(
        rotated.remove_key(&new_key).await,
        Err(KeyRemovalError::Active(_))
    ));
    rotated
        .remove_key(&old_key)
        .await
        .expect("nothing is sealed under it any more");
    assert!(matches!(
        rotated.remove_key(&old_key).await,
        Err(KeyRemovalError::Unknown(_))
    ));
    assert!(
        matches!(rotated.activate(&old_key).await, Err(StoreError::Rejected(_))),
        "never again"
    );
    let usage = rotated.key_usage().await.expect("usage");
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(
        (usage[0].id.as_str(), usage[0].active, usage[0].values),
        (new_key.as_str(), true, 5)
    );

    // The lagging process can no longer write: it lacks every key the database accepts.
    assert!(matches!(
        before
            .put(&key(CredentialKind::StorageSecret), 1, &secret("refused"))
            .await,
        Err(StoreError::Unavailable { .. })
    ));
    keyring.remove_key(&old_key).expect("remove the old key");
    let without_old_key = store(db.clone(), &keyring);
    // Registering a keyring that still holds a retired key does not bring it back.
    before.register_keys().await.expect("register a stale keyring");
    assert_eq!(without_old_key.key_usage().await.expect("usage").len(), 1);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(read(&without_old_key, record, 1).await, Ok(format!("value-{i}")));
    }
    assert_eq!(
        read(&without_old_key, &records[0], 2).await.as_deref(),
        Ok("after-rotation")
    );
    assert_eq!(read(&without_old_key, &lagging, 1).await.as_deref(), Ok("lagging"));
    // The store that still holds only the removed key cannot open the re-wrapped values.
    assert_eq!(read(&before, &records[1], 1).await, Err(StoreError::Integrity));
}

/// Writers that seal under an old key race the removal of that key: whatever the
/// interleaving, no value ends up sealed under a key the database no longer accepts, so
/// every acknowledged write opens with the active key alone.
async fn removal_racing_writers_leaves_nothing_under_a_removed_key(db: Database) {
    let mut keyring = Keyring::generate();
    let old = store(db.clone(), &keyring);
    old.register_keys().await.expect("register");
    let old_key = keyring.active_key_id().to_owned();
    let new_key = keyring.rotate();
    let rotated = store(db.clone(), &keyring);
    rotated.activate(&new_key).await.expect("activate");

    let mut writers = Vec::new();
    for w in 0..4 {
        let old = old.clone();
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..25 {
                let record = key(CredentialKind::StorageSecret);
                let value = format!("racing-{w}-{i}");
                match old.put(&record, 1, &secret(&value)).await {
                    Ok(()) => acknowledged.push((record, value)),
                    Err(StoreError::Unavailable { .. }) => {}
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
            acknowledged
        }));
    }
    let mut removed = false;
    while !removed {
        rotated.rewrap_all().await.expect("rewrap");
        match rotated.remove_key(&old_key).await {
            Ok(()) => removed = true,
            Err(KeyRemovalError::InUse(_)) => tokio::task::yield_now().await,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    keyring.remove_key(&old_key).expect("remove from the keyring");
    let only_new = store(db, &keyring);
    for (record, value) in &acknowledged {
        assert_eq!(read(&only_new, record, 1).await.as_ref(), Ok(value));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_removal_racing_writers_leaves_nothing_under_a_removed_key() {
    removal_racing_writers_leaves_nothing_under_a_removed_key(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_removal_racing_writers_leaves_nothing_under_a_removed_key() {
    let Some(db) = test_support::postgres().await else {
        return;
    };
    removal_racing_writers_leaves_nothing_under_a_removed_key(db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_rewrap_all_moves_every_value_to_the_active_key() {
    rewrap_all_moves_every_value_to_the_active_key(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_rewrap_all_moves_every_value_to_the_active_key() {
    let Some(db) = test_support::postgres().await else {
        return;
    };
    rewrap_all_moves_every_value_to_the_active_key(db).await;
}

/// A new secret's credentials sealed by the local store are written in the transaction of
/// its row: with the row and its audit event, or (the name taken) none of the three.
/// Sealing alone writes nothing, and the repositories of another database refuse what was
/// sealed for this one, writing nothing.
async fn sealed_credentials_commit_with_their_row_or_not_at_all(db: Database, other: Database) {
    let repos = repo_set(&db);
    let local = store(db.clone(), &Keyring::generate());
    let owned = team(&repos).await;
    let record_of = |secret: &custodian_domain::StorageSecret| CredentialKey {
        team_id: owned.team,
        kind: CredentialKind::StorageSecret,
        record_id: secret.id.as_uuid(),
    };
    let events = async || {
        repos
            .audit
            .list(owned.team, &AuditFilter::default(), ALL)
            .await
            .expect("audit listed")
            .items
    };

    let first = managed_secret(owned, "sealed-with-its-row");
    let event = secret_audit(owned, &first, AuditAction::Create);
    let sealed = local
        .seal_for_commit(&record_of(&first), 1, &secret("first-credentials"))
        .await
        .expect("sealed")
        .expect("the local store seals for the row's transaction");
    assert_eq!(read(&local, &record_of(&first), 1).await, Err(StoreError::NotFound));
    assert_eq!(
        local
            .seal_for_commit(&record_of(&first), 0, &secret("x"))
            .await
            .map(|sealed| sealed.is_some()),
        Err(StoreError::Rejected("versions start at 1".into()))
    );
    repos
        .secrets
        .create_with_credentials(&first, Some(5), &event, &sealed)
        .await
        .expect("created");
    assert_eq!(repos.secrets.get(owned.team, first.id).await, Ok(first.clone()));
    assert_eq!(
        read(&local, &record_of(&first), 1).await.as_deref(),
        Ok("first-credentials")
    );
    assert!(events().await.contains(&event));

    let twin = managed_secret(owned, "sealed-with-its-row");
    let refused = secret_audit(owned, &twin, AuditAction::Create);
    let sealed = local
        .seal_for_commit(&record_of(&twin), 1, &secret("twin-credentials"))
        .await
        .expect("sealed")
        .expect("sealed for the row");
    assert_eq!(
        repos
            .secrets
            .create_with_credentials(&twin, None, &refused, &sealed)
            .await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(read(&local, &record_of(&twin), 1).await, Err(StoreError::NotFound));
    assert!(!events().await.contains(&refused));

    let elsewhere = repo_set(&other);
    let other_team = team(&elsewhere).await;
    let stray = managed_secret(other_team, "sealed-for-another-database");
    let stray_event = secret_audit(other_team, &stray, AuditAction::Create);
    let result = elsewhere
        .secrets
        .create_with_credentials(&stray, None, &stray_event, &sealed)
        .await;
    assert!(matches!(result, Err(RepoError::Internal(_))), "{result:?}");
    assert_eq!(
        elsewhere.secrets.get(other_team.team, stray.id).await,
        Err(RepoError::NotFound)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_sealed_credentials_commit_with_their_row_or_not_at_all() {
    sealed_credentials_commit_with_their_row_or_not_at_all(test_support::sqlite().await, test_support::sqlite().await)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_sealed_credentials_commit_with_their_row_or_not_at_all() {
    let (Some(db), Some(other)) = (test_support::postgres().await, test_support::postgres().await) else {
        return;
    };
    sealed_credentials_commit_with_their_row_or_not_at_all(db, other).await;
}

/// Credentials sealed under a key that `keys remove` took away before the row's transaction
/// ran: the transaction is refused as unavailable (to retry), and writes none of it.
async fn credentials_sealed_under_a_removed_key_are_refused_with_their_row(db: Database) {
    let repos = repo_set(&db);
    let mut keyring = Keyring::generate();
    let old = store(db.clone(), &keyring);
    old.register_keys().await.expect("register");
    let old_key = keyring.active_key_id().to_owned();
    let owned = team(&repos).await;
    let secret_row = managed_secret(owned, "sealed-before-the-removal");
    let event = secret_audit(owned, &secret_row, AuditAction::Create);
    let record = CredentialKey {
        team_id: owned.team,
        kind: CredentialKind::StorageSecret,
        record_id: secret_row.id.as_uuid(),
    };
    let sealed = old
        .seal_for_commit(&record, 1, &secret("sealed-under-the-old-key"))
        .await
        .expect("sealed")
        .expect("sealed for the row");

    let new_key = keyring.rotate();
    let rotated = store(db.clone(), &keyring);
    rotated.activate(&new_key).await.expect("activate");
    rotated.rewrap_all().await.expect("rewrap");
    rotated
        .remove_key(&old_key)
        .await
        .expect("nothing is sealed under the old key yet");

    let result = repos
        .secrets
        .create_with_credentials(&secret_row, None, &event, &sealed)
        .await;
    assert!(matches!(result, Err(RepoError::Unavailable(_))), "{result:?}");
    assert_eq!(
        repos.secrets.get(owned.team, secret_row.id).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(read(&rotated, &record, 1).await, Err(StoreError::NotFound));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_credentials_sealed_under_a_removed_key_are_refused_with_their_row() {
    credentials_sealed_under_a_removed_key_are_refused_with_their_row(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_credentials_sealed_under_a_removed_key_are_refused_with_their_row() {
    let Some(db) = test_support::postgres().await else {
        return;
    };
    credentials_sealed_under_a_removed_key_are_refused_with_their_row(db).await;
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Store a unique canary, and next to it (as the tenant name, which is stored in clear) a
/// unique marker that shows the search itself works.
async fn store_canary(db: Database) -> (String, String) {
    let canary = format!("CANARY-{}", Uuid::new_v4().simple());
    let marker = format!("marker-{}", Uuid::new_v4().simple());
    let local = LocalCredentialStore::new(db, Arc::new(Keyring::generate()), marker.clone());
    let record = key(CredentialKind::StorageSecret);
    local.put(&record, 1, &secret(&canary)).await.expect("put the canary");
    assert_eq!(read(&local, &record, 1).await.as_deref(), Ok(canary.as_str()));
    (canary, marker)
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_file_and_wal_never_hold_the_plaintext() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("custodian.db");
    let db = Database::connect(&format!("sqlite://{}", path.display())).expect("open");
    db.migrate().await.expect("migrate");
    let (canary, marker) = store_canary(db.clone()).await;
    let mut bytes = std::fs::read(&path).expect("read the database file");
    let wal = dir.path().join("custodian.db-wal");
    if wal.exists() {
        bytes.extend(std::fs::read(&wal).expect("read the WAL"));
    }
    assert!(contains(&bytes, &marker), "the search finds what is stored in clear");
    assert!(
        !contains(&bytes, &canary),
        "the plaintext is in the SQLite file or its WAL"
    );
    drop(db);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_dump_never_holds_the_plaintext() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): pg_dump canary");
        return;
    }
    let template = test_support::postgres_template_name();
    let test_db = TestPostgres::start(&template, |url| async move {
        let db = Database::connect(&url)?;
        db.migrate().await?;
        Ok(())
    })
    .await
    .expect("PostgreSQL tests run");
    let db = Database::connect(test_db.url()).expect("open");
    let (canary, marker) = store_canary(db.clone()).await;
    let dump = std::process::Command::new("pg_dump")
        .arg("--data-only")
        .arg(test_db.url())
        .output()
        .expect("run pg_dump");
    assert!(
        dump.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(
        contains(&dump.stdout, &marker),
        "the dump holds what is stored in clear"
    );
    assert!(!contains(&dump.stdout, &canary), "the plaintext is in the dump");
    drop(db);
}
