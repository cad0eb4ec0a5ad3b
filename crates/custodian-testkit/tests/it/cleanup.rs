use std::sync::Arc;

use chrono::{DateTime, Utc};
use custodian_domain::TeamId;
use custodian_ports::{CleanupQueue, CleanupTask, CredentialKey, CredentialKind, PendingCleanup, RepoError};
use custodian_testkit::contract::cleanup::cases;
use custodian_testkit::memory_cleanup::MemoryCleanupQueue;
use custodian_testkit::run_cases;
use uuid::Uuid;

#[tokio::test]
async fn memory_queue_passes_the_cleanup_contract() {
    run_cases("memory", "cleanup", &cases(), || async {
        Arc::new(MemoryCleanupQueue::default()) as Arc<dyn CleanupQueue>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_queue_passes_the_contract_on_a_multi_threaded_runtime() {
    run_cases("memory", "cleanup", &cases(), || async {
        Arc::new(MemoryCleanupQueue::default()) as Arc<dyn CleanupQueue>
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
        "empty",
        "does_not_exist",
        "delete_all_wins",
        "larger_prune_bound",
        "first_recorded_at",
        "oldest_first",
        "ties",
        "done",
        "outdated",
        "separate",
        "concurrent",
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
async fn memory_queue_counts_and_shows_what_it_holds() {
    let queue = MemoryCleanupQueue::default();
    assert!(queue.is_empty());
    let (a, b) = (key(), key());
    queue.record(&a, CleanupTask::PruneBelow(2), Utc::now()).await.unwrap();
    queue.record(&b, CleanupTask::DeleteAll, Utc::now()).await.unwrap();
    queue.record(&a, CleanupTask::PruneBelow(5), Utc::now()).await.unwrap();
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.task(&a), Some(CleanupTask::PruneBelow(5)));
    queue.done(&a, CleanupTask::PruneBelow(5)).await.unwrap();
    assert_eq!(queue.task(&a), None);
    assert_eq!(queue.len(), 1);
}

/// A queue that forgets the merge rule must fail the suite: the suite can fail.
#[derive(Debug, Default)]
struct LastWriteWins(MemoryCleanupQueue);

#[async_trait::async_trait]
impl CleanupQueue for LastWriteWins {
    async fn record(&self, key: &CredentialKey, task: CleanupTask, at: DateTime<Utc>) -> Result<(), RepoError> {
        // Wrong: replaces the pending task instead of merging with it.
        let pending = self.0.task(key);
        if let Some(pending) = pending {
            self.0.done(key, pending).await?;
        }
        self.0.record(key, task, at).await
    }
    async fn pending(&self, limit: u32) -> Result<Vec<PendingCleanup>, RepoError> {
        self.0.pending(limit).await
    }
    async fn done(&self, key: &CredentialKey, task: CleanupTask) -> Result<(), RepoError> {
        self.0.done(key, task).await
    }
}

/// A queue whose `done` ignores which task was done must fail the suite too.
#[derive(Debug, Default)]
struct DoneRemovesAnything(MemoryCleanupQueue);

#[async_trait::async_trait]
impl CleanupQueue for DoneRemovesAnything {
    async fn record(&self, key: &CredentialKey, task: CleanupTask, at: DateTime<Utc>) -> Result<(), RepoError> {
        self.0.record(key, task, at).await
    }
    async fn pending(&self, limit: u32) -> Result<Vec<PendingCleanup>, RepoError> {
        self.0.pending(limit).await
    }
    async fn done(&self, key: &CredentialKey, _: CleanupTask) -> Result<(), RepoError> {
        // Wrong: drops whatever is pending, even a task that grew since it was read.
        match self.0.task(key) {
            Some(pending) => self.0.done(key, pending).await,
            None => Ok(()),
        }
    }
}

async fn fails(case_name: &str, queue: Arc<dyn CleanupQueue>) -> bool {
    let case = cases()
        .into_iter()
        .find(|c| c.name == case_name)
        .expect("the case exists");
    tokio::spawn((case.run)(queue)).await.is_err()
}

#[tokio::test]
async fn a_queue_that_replaces_instead_of_merging_fails_the_suite() {
    for case in [
        "recording_again_merges_and_delete_all_wins",
        "recording_again_merges_and_the_larger_prune_bound_wins",
        "recording_again_keeps_the_first_recorded_at",
    ] {
        assert!(
            fails(case, Arc::new(LastWriteWins::default())).await,
            "{case} catches a last-write-wins queue"
        );
    }
}

#[tokio::test]
async fn a_queue_whose_done_ignores_the_task_fails_the_suite() {
    assert!(
        fails(
            "done_with_an_outdated_task_keeps_the_merged_one",
            Arc::new(DoneRemovesAnything::default())
        )
        .await
    );
}
