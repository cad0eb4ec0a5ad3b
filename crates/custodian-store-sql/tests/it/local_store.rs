//! The local credential store: the CredentialStore contract on SQLite and PostgreSQL,
//! binding of every value to its record and tenant, key rotation, and no plaintext in the
//! database files or a dump.

use std::sync::Arc;

use custodian_crypto::Keyring;
use custodian_domain::TeamId;
use custodian_ports::{CredentialKey, CredentialKind, CredentialStore, StoreError};
use custodian_store_sql::{Database, LocalCredentialStore, test_support};
use custodian_test_db::TestPostgres;
use custodian_testkit::{contract, run_cases};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::support::postgres_skipped;

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

/// After a rotation, `rewrap_all` moves every value to the new key; the old key can then
/// be removed and every value still opens.
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
    keyring.rotate();
    let rotated = store(db.clone(), &keyring);
    rotated
        .put(&records[0], 2, &secret("after-rotation"))
        .await
        .expect("put under the new key");
    assert_eq!(rotated.rewrap_all().await, Ok(3), "only the values under the old key");
    assert_eq!(rotated.rewrap_all().await, Ok(0), "nothing left to re-wrap");
    keyring.remove_key(&old_key).expect("remove the old key");
    let without_old_key = store(db, &keyring);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(read(&without_old_key, record, 1).await, Ok(format!("value-{i}")));
    }
    assert_eq!(
        read(&without_old_key, &records[0], 2).await.as_deref(),
        Ok("after-rotation")
    );
    // The store that still seals under the removed key cannot open the re-wrapped values.
    assert_eq!(read(&before, &records[1], 1).await, Err(StoreError::Integrity));
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
