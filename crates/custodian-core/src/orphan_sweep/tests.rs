use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_domain::TeamId;
use custodian_ports::{CredentialKey, CredentialKind, RefCursor, RepoError, StoreBackend};
use custodian_testkit::memory_store::MemoryCredentialStore;
use secrecy::SecretString;
use uuid::Uuid;

use super::*;

/// The rows' view: a binding and the references rows hold.
struct Rows {
    binding: Option<StoreBinding>,
    references: Mutex<Vec<CredentialRef>>,
}

#[async_trait]
impl CredentialInventory for Rows {
    async fn binding(&self) -> Result<Option<StoreBinding>, RepoError> {
        Ok(self.binding.clone())
    }

    async fn replace_binding(&self, _: Option<&StoreBinding>, _: &StoreBinding) -> Result<(), RepoError> {
        unreachable!("the sweep never changes the binding")
    }

    async fn references(
        &self,
        _: CredentialKind,
        _: Option<RefCursor>,
        _: u32,
    ) -> Result<Vec<CredentialRef>, RepoError> {
        unreachable!("the sweep asks about candidates only")
    }

    async fn referenced(&self, candidates: &[CredentialRef]) -> Result<Vec<CredentialRef>, RepoError> {
        let references = self.references.lock().expect("not poisoned");
        Ok(candidates.iter().filter(|c| references.contains(c)).copied().collect())
    }
}

struct At(DateTime<Utc>);

impl Clock for At {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn local() -> StoreId {
    StoreId::new(StoreBackend::Local, "default")
}

fn record() -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::now_v7()),
        kind: CredentialKind::StorageSecret,
        record_id: Uuid::now_v7(),
    }
}

/// A store holding, for each of `n` records, versions 1 and 2; rows point at version 2 of
/// every record but the last, which no row points at (a create that never committed).
async fn fixture(n: usize) -> (Arc<MemoryCredentialStore>, Vec<CredentialRef>, CredentialKey) {
    let store = Arc::new(MemoryCredentialStore::default());
    let mut references = Vec::new();
    let mut orphan = record();
    for i in 0..n {
        let key = record();
        for version in [1, 2] {
            store
                .put(&key, version, &SecretString::from(format!("value-{i}-{version}")))
                .await
                .expect("put");
        }
        if i + 1 < n {
            references.push(CredentialRef { key, version: 2 });
        } else {
            orphan = key;
        }
    }
    (store, references, orphan)
}

fn sweep(
    store: &Arc<MemoryCredentialStore>,
    references: Vec<CredentialRef>,
    binding: Option<StoreBinding>,
    now: DateTime<Utc>,
) -> OrphanSweep {
    OrphanSweep::new(
        Arc::new(Rows {
            binding,
            references: Mutex::new(references),
        }),
        store.clone(),
        local(),
        Arc::new(At(now)),
    )
}

#[tokio::test]
async fn old_values_no_row_points_at_are_removed_over_many_pages() {
    // 600 records: more than one page of the listing.
    let (store, references, orphan) = fixture(600).await;
    let later = Utc::now() + Duration::hours(2);
    let report = sweep(&store, references.clone(), Some(StoreBinding::settled(local())), later)
        .run(Duration::hours(1))
        .await
        .expect("sweeps");
    // Version 1 of every record (superseded) and both versions of the orphan go.
    assert_eq!(
        report,
        SweepReport {
            examined: 1200,
            removed: 601,
            failed: 0,
            skipped: None
        }
    );
    assert_eq!(store.len(), 599);
    for reference in &references {
        assert!(store.get(&reference.key, 2).await.is_ok(), "a referenced value stays");
    }
    assert!(store.get(&orphan, 1).await.is_err() && store.get(&orphan, 2).await.is_err());
}

#[tokio::test]
async fn values_within_the_safety_window_stay() {
    let (store, references, orphan) = fixture(3).await;
    let soon = Utc::now() + Duration::minutes(30);
    let report = sweep(&store, references, Some(StoreBinding::settled(local())), soon)
        .run(Duration::hours(1))
        .await
        .expect("sweeps");
    assert_eq!(report.removed, 0);
    assert_eq!(report.examined, 6);
    assert!(
        store.get(&orphan, 2).await.is_ok(),
        "a write in flight is never taken for an orphan"
    );
}

#[tokio::test]
async fn nothing_is_swept_unless_the_rows_use_this_store_with_no_migration() {
    let (store, references, _) = fixture(3).await;
    let later = Utc::now() + Duration::hours(2);
    let elsewhere = StoreBinding::settled(StoreId::new(StoreBackend::AwsSsm, "us-east-1:/custodian/default"));
    let migrating = StoreBinding {
        store: local(),
        phase: MigrationPhase::Copying {
            to: StoreId::new(StoreBackend::AwsSsm, "us-east-1:/custodian/default"),
        },
    };
    for binding in [None, Some(elsewhere), Some(migrating)] {
        let report = sweep(&store, references.clone(), binding.clone(), later)
            .run(Duration::hours(1))
            .await
            .expect("answers");
        assert!(report.skipped.is_some(), "{binding:?}");
        assert_eq!(report.removed, 0);
        assert_eq!(store.len(), 6);
    }
}
