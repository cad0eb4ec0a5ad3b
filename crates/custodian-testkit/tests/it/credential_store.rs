use std::sync::Arc;

use custodian_domain::TeamId;
use custodian_ports::{CredentialKey, CredentialKind, CredentialStore, StoreError, StoredPage};
use custodian_testkit::contract::credential_store::cases;
use custodian_testkit::memory_store::MemoryCredentialStore;
use custodian_testkit::run_cases;
use secrecy::SecretString;
use uuid::Uuid;

#[tokio::test]
async fn memory_store_passes_the_credential_store_contract() {
    run_cases("memory", "credential_store", &cases(), || async {
        Arc::new(MemoryCredentialStore::default()) as Arc<dyn CredentialStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_contract_on_a_multi_threaded_runtime() {
    run_cases("memory", "credential_store", &cases(), || async {
        Arc::new(MemoryCredentialStore::default()) as Arc<dyn CredentialStore>
    })
    .await;
}

#[test]
fn the_suite_covers_every_rule_once() {
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "case names are unique: {names:?}");
    for rule in [
        "round_trip",
        "not_found",
        "already_exists",
        "delete_version",
        "prune",
        "delete_all",
        "isolated",
    ] {
        assert!(names.iter().any(|n| n.contains(rule)), "a case checks {rule}");
    }
}

fn key() -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::new_v4()),
        kind: CredentialKind::StorageSecret,
        record_id: Uuid::new_v4(),
    }
}

#[tokio::test]
async fn memory_store_names_itself_and_counts_what_it_holds() {
    let store = MemoryCredentialStore::default();
    assert_eq!(store.backend(), "memory");
    assert!(store.is_empty());
    let key = key();
    store.put(&key, 1, &SecretString::from("a")).await.unwrap();
    store.put(&key, 2, &SecretString::from("b")).await.unwrap();
    assert_eq!(store.len(), 2);
    store.prune(&key, 2).await.unwrap();
    assert_eq!(store.len(), 1);
    store.delete_version(&key, 2).await.unwrap();
    assert!(store.is_empty());
}

#[tokio::test]
async fn memory_store_debug_never_shows_a_value() {
    let store = MemoryCredentialStore::default();
    let canary = format!("canary-{}", Uuid::new_v4());
    store
        .put(&key(), 1, &SecretString::from(canary.as_str()))
        .await
        .unwrap();
    let shown = format!("{store:?} {store:#?}");
    assert!(!shown.contains(&canary));
    assert!(shown.contains("stored_versions: 1"), "{shown}");
}

/// A store that breaks one rule must fail the suite: the suite can fail.
#[derive(Debug, Default)]
struct OverwritingStore(MemoryCredentialStore);

#[async_trait::async_trait]
impl CredentialStore for OverwritingStore {
    fn backend(&self) -> &'static str {
        "overwriting"
    }
    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        // Wrong: silently replaces an existing version instead of answering AlreadyExists.
        self.0.delete_version(key, version).await?;
        self.0.put(key, version, value).await
    }
    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        self.0.get(key, version).await
    }
    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        self.0.delete_version(key, version).await
    }
    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        self.0.prune(key, keep).await
    }
    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.0.delete_all(key).await
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        self.0.list_stored(page, limit).await
    }
}

#[tokio::test]
async fn a_store_that_overwrites_versions_fails_the_suite() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "put_of_an_existing_version_is_already_exists_and_keeps_the_value")
        .expect("the case exists");
    let outcome = tokio::spawn((case.run)(
        Arc::new(OverwritingStore::default()) as Arc<dyn CredentialStore>
    ))
    .await;
    assert!(outcome.is_err(), "the overwriting store must fail this case");
}
