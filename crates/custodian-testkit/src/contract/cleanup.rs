//! The contract of the [`CleanupQueue`] port (`custodian-ports`), run against every
//! backend: the in-memory fake, SQLite and PostgreSQL.
//!
//! Every case starts from a fresh, empty queue. Team ids are random and name no team
//! row: the queue must not require the team to exist (it may have been deleted).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use custodian_domain::TeamId;
use custodian_ports::{CleanupQueue, CleanupTask, CredentialKey, CredentialKind, PendingCleanup};
use uuid::Uuid;

use crate::Case;

/// Every case of the suite.
pub fn cases() -> Vec<Case<Arc<dyn CleanupQueue>>> {
    macro_rules! case {
        ($name:ident) => {
            Case {
                name: stringify!($name),
                run: |queue| Box::pin($name(queue)),
            }
        };
    }
    vec![
        case!(an_empty_queue_has_nothing_pending),
        case!(a_recorded_task_is_pending_with_its_key_and_time),
        case!(a_key_of_a_team_that_does_not_exist_is_accepted),
        case!(recording_again_merges_and_delete_all_wins),
        case!(recording_again_merges_and_the_larger_prune_bound_wins),
        case!(recording_again_keeps_the_first_recorded_at),
        case!(pending_is_oldest_first_and_limited),
        case!(pending_breaks_ties_by_team_then_record),
        case!(done_removes_the_task_and_is_idempotent),
        case!(done_with_an_outdated_task_keeps_the_merged_one),
        case!(keys_differing_only_in_team_kind_or_record_are_separate),
        case!(concurrent_records_of_one_key_merge_into_one_task),
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

/// A fixed instant with whole milliseconds (every backend keeps at least those).
fn at(minutes: i64) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2026, 6, 1, 8, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    base + Duration::minutes(minutes) + Duration::milliseconds(123)
}

async fn record(queue: &dyn CleanupQueue, key: &CredentialKey, task: CleanupTask, when: DateTime<Utc>) {
    if let Err(e) = queue.record(key, task, when).await {
        panic!("record {key} {task:?}: {e:?}");
    }
}

async fn pending(queue: &dyn CleanupQueue, limit: u32) -> Vec<PendingCleanup> {
    match queue.pending(limit).await {
        Ok(p) => p,
        Err(e) => panic!("pending({limit}): {e:?}"),
    }
}

async fn done(queue: &dyn CleanupQueue, key: &CredentialKey, task: CleanupTask) {
    if let Err(e) = queue.done(key, task).await {
        panic!("done {key} {task:?}: {e:?}");
    }
}

/// The one pending task of `key`, if any.
async fn task_of(queue: &dyn CleanupQueue, key: &CredentialKey) -> Option<CleanupTask> {
    let all = pending(queue, 1000).await;
    let mut of_key = all.iter().filter(|p| p.key == *key);
    let first = of_key.next().map(|p| p.task);
    assert!(of_key.next().is_none(), "{key} has at most one pending task: {all:?}");
    first
}

/// A fresh queue answers an empty list, whatever the limit.
async fn an_empty_queue_has_nothing_pending(queue: Arc<dyn CleanupQueue>) {
    assert!(pending(queue.as_ref(), 10).await.is_empty());
    assert!(pending(queue.as_ref(), 0).await.is_empty());
}

/// `record` then `pending` gives back the key, the task and the time, exactly; prune
/// bounds use the whole `i64` range a version can have.
async fn a_recorded_task_is_pending_with_its_key_and_time(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let secret = fresh_key(CredentialKind::StorageSecret);
    let connection = fresh_key(CredentialKind::VaultConnection);
    let group = fresh_key(CredentialKind::GroupSecret);
    record(q, &secret, CleanupTask::DeleteAll, at(0)).await;
    record(q, &connection, CleanupTask::PruneBelow(7), at(1)).await;
    record(q, &group, CleanupTask::PruneBelow(i64::MAX), at(2)).await;
    assert_eq!(
        pending(q, 10).await,
        vec![
            PendingCleanup {
                key: secret,
                task: CleanupTask::DeleteAll,
                recorded_at: at(0),
            },
            PendingCleanup {
                key: connection,
                task: CleanupTask::PruneBelow(7),
                recorded_at: at(1),
            },
            PendingCleanup {
                key: group,
                task: CleanupTask::PruneBelow(i64::MAX),
                recorded_at: at(2),
            },
        ]
    );
}

/// The team of the key was deleted (or never existed): the task is still recorded.
async fn a_key_of_a_team_that_does_not_exist_is_accepted(queue: Arc<dyn CleanupQueue>) {
    let key = fresh_key(CredentialKind::VaultConnection);
    record(queue.as_ref(), &key, CleanupTask::DeleteAll, at(0)).await;
    assert_eq!(task_of(queue.as_ref(), &key).await, Some(CleanupTask::DeleteAll));
}

/// A key holds one task: a delete absorbs a prune, whichever came first.
async fn recording_again_merges_and_delete_all_wins(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let pruned_first = fresh_key(CredentialKind::StorageSecret);
    record(q, &pruned_first, CleanupTask::PruneBelow(4), at(0)).await;
    record(q, &pruned_first, CleanupTask::DeleteAll, at(1)).await;
    assert_eq!(task_of(q, &pruned_first).await, Some(CleanupTask::DeleteAll));

    let deleted_first = fresh_key(CredentialKind::StorageSecret);
    record(q, &deleted_first, CleanupTask::DeleteAll, at(0)).await;
    record(q, &deleted_first, CleanupTask::PruneBelow(9), at(1)).await;
    assert_eq!(task_of(q, &deleted_first).await, Some(CleanupTask::DeleteAll));
    record(q, &deleted_first, CleanupTask::DeleteAll, at(2)).await;
    assert_eq!(task_of(q, &deleted_first).await, Some(CleanupTask::DeleteAll));
    assert_eq!(pending(q, 10).await.len(), 2);
}

/// Two prunes of one key keep the larger bound, whichever came first.
async fn recording_again_merges_and_the_larger_prune_bound_wins(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let rising = fresh_key(CredentialKind::VaultConnection);
    record(q, &rising, CleanupTask::PruneBelow(3), at(0)).await;
    record(q, &rising, CleanupTask::PruneBelow(8), at(1)).await;
    assert_eq!(task_of(q, &rising).await, Some(CleanupTask::PruneBelow(8)));

    let falling = fresh_key(CredentialKind::VaultConnection);
    record(q, &falling, CleanupTask::PruneBelow(8), at(0)).await;
    record(q, &falling, CleanupTask::PruneBelow(3), at(1)).await;
    assert_eq!(task_of(q, &falling).await, Some(CleanupTask::PruneBelow(8)));
}

/// A merged task keeps the time it was first recorded: it has waited since then.
async fn recording_again_keeps_the_first_recorded_at(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let key = fresh_key(CredentialKind::StorageSecret);
    record(q, &key, CleanupTask::PruneBelow(2), at(5)).await;
    record(q, &key, CleanupTask::DeleteAll, at(30)).await;
    let all = pending(q, 10).await;
    assert_eq!(
        all,
        vec![PendingCleanup {
            key,
            task: CleanupTask::DeleteAll,
            recorded_at: at(5),
        }]
    );
}

/// `pending(limit)` gives the `limit` oldest tasks, oldest first, whatever the order they
/// were recorded in; a limit of 0 gives none.
async fn pending_is_oldest_first_and_limited(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let keys: Vec<CredentialKey> = (0..4).map(|_| fresh_key(CredentialKind::StorageSecret)).collect();
    record(q, &keys[2], CleanupTask::DeleteAll, at(20)).await;
    record(q, &keys[0], CleanupTask::PruneBelow(2), at(0)).await;
    record(q, &keys[3], CleanupTask::DeleteAll, at(30)).await;
    record(q, &keys[1], CleanupTask::DeleteAll, at(10)).await;
    let oldest: Vec<CredentialKey> = pending(q, 2).await.iter().map(|p| p.key).collect();
    assert_eq!(oldest, vec![keys[0], keys[1]]);
    let all: Vec<CredentialKey> = pending(q, 100).await.iter().map(|p| p.key).collect();
    assert_eq!(all, keys);
    assert!(pending(q, 0).await.is_empty());
}

/// Tasks recorded at the same instant come in team-id order, then record-id order, so
/// every backend answers the same list.
async fn pending_breaks_ties_by_team_then_record(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let team = |n: u128| TeamId::from_uuid(Uuid::from_u128(n << 64));
    let key = |t: u128, r: u128| CredentialKey {
        team_id: team(t),
        kind: CredentialKind::StorageSecret,
        record_id: Uuid::from_u128((r << 96) | 7),
    };
    let expected = vec![key(1, 1), key(1, 2), key(2, 1), key(3, 9)];
    for k in [&expected[3], &expected[1], &expected[2], &expected[0]] {
        record(q, k, CleanupTask::DeleteAll, at(0)).await;
    }
    let keys: Vec<CredentialKey> = pending(q, 10).await.iter().map(|p| p.key).collect();
    assert_eq!(keys, expected);
}

/// `done` removes the key's task; doing it again, or for a key that never had a task,
/// succeeds and changes nothing else.
async fn done_removes_the_task_and_is_idempotent(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let finished = fresh_key(CredentialKind::StorageSecret);
    let other = fresh_key(CredentialKind::StorageSecret);
    record(q, &finished, CleanupTask::PruneBelow(3), at(0)).await;
    record(q, &other, CleanupTask::DeleteAll, at(1)).await;
    done(q, &finished, CleanupTask::PruneBelow(3)).await;
    assert_eq!(task_of(q, &finished).await, None);
    done(q, &finished, CleanupTask::PruneBelow(3)).await;
    done(q, &fresh_key(CredentialKind::VaultConnection), CleanupTask::DeleteAll).await;
    assert_eq!(task_of(q, &other).await, Some(CleanupTask::DeleteAll));
    assert_eq!(pending(q, 10).await.len(), 1);
}

/// A task that grew after it was read (a later rotation's prune, a delete) is not removed
/// by the `done` of the smaller task: that work is still to do.
async fn done_with_an_outdated_task_keeps_the_merged_one(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let key = fresh_key(CredentialKind::StorageSecret);
    record(q, &key, CleanupTask::PruneBelow(3), at(0)).await;
    record(q, &key, CleanupTask::PruneBelow(5), at(1)).await;
    done(q, &key, CleanupTask::PruneBelow(3)).await;
    assert_eq!(task_of(q, &key).await, Some(CleanupTask::PruneBelow(5)));
    record(q, &key, CleanupTask::DeleteAll, at(2)).await;
    done(q, &key, CleanupTask::PruneBelow(5)).await;
    assert_eq!(task_of(q, &key).await, Some(CleanupTask::DeleteAll));
    done(q, &key, CleanupTask::DeleteAll).await;
    assert_eq!(task_of(q, &key).await, None);
}

/// Keys that share all but one part are separate entries: merging and `done` touch only
/// their own key.
async fn keys_differing_only_in_team_kind_or_record_are_separate(queue: Arc<dyn CleanupQueue>) {
    let q = queue.as_ref();
    let base = fresh_key(CredentialKind::StorageSecret);
    let other_team = CredentialKey {
        team_id: TeamId::from_uuid(Uuid::new_v4()),
        ..base
    };
    let other_kind = CredentialKey {
        kind: CredentialKind::VaultConnection,
        ..base
    };
    let other_record = CredentialKey {
        record_id: Uuid::new_v4(),
        ..base
    };
    record(q, &base, CleanupTask::PruneBelow(2), at(0)).await;
    record(q, &other_team, CleanupTask::PruneBelow(4), at(1)).await;
    record(q, &other_kind, CleanupTask::DeleteAll, at(2)).await;
    record(q, &other_record, CleanupTask::PruneBelow(6), at(3)).await;
    assert_eq!(pending(q, 10).await.len(), 4);
    assert_eq!(task_of(q, &base).await, Some(CleanupTask::PruneBelow(2)));
    done(q, &base, CleanupTask::PruneBelow(2)).await;
    assert_eq!(task_of(q, &base).await, None);
    assert_eq!(task_of(q, &other_team).await, Some(CleanupTask::PruneBelow(4)));
    assert_eq!(task_of(q, &other_kind).await, Some(CleanupTask::DeleteAll));
    assert_eq!(task_of(q, &other_record).await, Some(CleanupTask::PruneBelow(6)));
}

/// Many concurrent records of one key (replicas failing to prune at once) leave one task
/// with the largest bound: the merge is atomic.
async fn concurrent_records_of_one_key_merge_into_one_task(queue: Arc<dyn CleanupQueue>) {
    let key = fresh_key(CredentialKind::StorageSecret);
    let writers: Vec<_> = (1..=12_i64)
        .map(|bound| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.record(&key, CleanupTask::PruneBelow(bound), at(bound)).await })
        })
        .collect();
    for outcome in futures::future::join_all(writers).await {
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("a concurrent record failed: {e:?}"),
            Err(e) => panic!("a concurrent record panicked: {e}"),
        }
    }
    let all = pending(queue.as_ref(), 10).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].task, CleanupTask::PruneBelow(12));
}
