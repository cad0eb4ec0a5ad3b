//! Clean-up after a commit and `custodian gc`, over mocked ports.

use custodian_domain::TeamId;
use custodian_ports::{CredentialKind, PendingCleanup, RepoError};
use mockall::Sequence;
use uuid::Uuid;

use super::*;
use crate::test_support::*;

fn key(n: u128) -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::from_u128(n)),
        kind: CredentialKind::StorageSecret,
        record_id: Uuid::from_u128(1000 + n),
    }
}

fn pending(key: CredentialKey, task: CleanupTask) -> PendingCleanup {
    PendingCleanup {
        key,
        task,
        recorded_at: now(),
    }
}

#[tokio::test]
async fn a_successful_task_is_run_against_the_store_then_marked_done() {
    let mut mocks = Mocks::new();
    let mut seq = Sequence::new();
    mocks
        .cleanup
        .expect_pending()
        .withf(|limit| *limit == 50)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(vec![
                pending(key(1), CleanupTask::DeleteAll),
                pending(key(2), CleanupTask::PruneBelow(4)),
            ])
        });
    mocks
        .store
        .expect_delete_all()
        .withf(|k| *k == key(1))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    mocks
        .cleanup
        .expect_done()
        .withf(|k, task| *k == key(1) && *task == CleanupTask::DeleteAll)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks
        .store
        .expect_prune()
        .withf(|k, keep| *k == key(2) && *keep == 4)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks
        .cleanup
        .expect_done()
        .withf(|k, task| *k == key(2) && *task == CleanupTask::PruneBelow(4))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let report = mocks.build().run_cleanup(50).await.unwrap();
    assert_eq!(report, CleanupReport { done: 2, failed: 0 });
}

#[tokio::test]
async fn a_failing_task_stays_pending_and_the_others_still_run() {
    let mut mocks = Mocks::new();
    mocks.cleanup.expect_pending().returning(|_| {
        Ok(vec![
            pending(key(1), CleanupTask::PruneBelow(2)),
            pending(key(2), CleanupTask::DeleteAll),
        ])
    });
    mocks
        .store
        .expect_prune()
        .withf(|k, _| *k == key(1))
        .times(1)
        .returning(|_, _| Err(store_down()));
    mocks
        .store
        .expect_delete_all()
        .withf(|k| *k == key(2))
        .times(1)
        .returning(|_| Ok(()));
    // `done` only for the second key: the first stays pending.
    mocks
        .cleanup
        .expect_done()
        .withf(|k, _| *k == key(2))
        .times(1)
        .returning(|_, _| Ok(()));
    let report = mocks.build().run_cleanup(10).await.unwrap();
    assert_eq!(report, CleanupReport { done: 1, failed: 1 });
}

#[tokio::test]
async fn a_task_that_cannot_be_marked_done_counts_as_failed() {
    let mut mocks = Mocks::new();
    mocks
        .cleanup
        .expect_pending()
        .returning(|_| Ok(vec![pending(key(1), CleanupTask::DeleteAll)]));
    mocks.store.expect_delete_all().times(1).returning(|_| Ok(()));
    mocks
        .cleanup
        .expect_done()
        .times(1)
        .returning(|_, _| Err(RepoError::Unavailable("timeout".into())));
    let report = mocks.build().run_cleanup(10).await.unwrap();
    assert_eq!(report, CleanupReport { done: 0, failed: 1 });
}

#[tokio::test]
async fn an_unreadable_queue_is_an_error_and_touches_no_store() {
    let mut mocks = Mocks::new();
    mocks
        .cleanup
        .expect_pending()
        .returning(|_| Err(RepoError::Unavailable("timeout".into())));
    let result = mocks.build().run_cleanup(10).await;
    assert!(matches!(result, Err(CoreError::Unavailable { .. })), "{result:?}");
}

#[tokio::test]
async fn an_empty_queue_is_an_empty_report() {
    let mut mocks = Mocks::new();
    mocks.cleanup.expect_pending().returning(|_| Ok(Vec::new()));
    assert_eq!(mocks.build().run_cleanup(10).await.unwrap(), CleanupReport::default());
}
