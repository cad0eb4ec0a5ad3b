//! The credential clean-up queue: store work that could not be done right after a commit.
//!
//! Deleting a record commits the row's removal, then removes its credentials; rotating one
//! commits the row at the new version, then prunes the older versions. When that
//! second step fails the request still succeeds, and the step is recorded here for
//! `custodian gc` to retry.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::credential_store::CredentialKey;
use crate::error::RepoError;

/// What is left to do in the credential store for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CleanupTask {
    /// Remove every version (`CredentialStore::delete_all`): the record's row is gone.
    DeleteAll,
    /// Remove every version older than this one (`CredentialStore::prune`): the row points
    /// at this version since a rotation.
    PruneBelow(i64),
}

impl CleanupTask {
    /// The one task that does the work of both `self` and `other`: `DeleteAll` wins over
    /// any prune, and of two prunes the larger bound wins (it removes everything the
    /// smaller one would).
    #[must_use]
    pub fn merge(self, other: CleanupTask) -> CleanupTask {
        match (self, other) {
            (CleanupTask::PruneBelow(a), CleanupTask::PruneBelow(b)) => CleanupTask::PruneBelow(a.max(b)),
            _ => CleanupTask::DeleteAll,
        }
    }
}

/// One task waiting in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingCleanup {
    /// The record whose stored credentials the task is about.
    pub key: CredentialKey,
    /// What is left to do (already merged, when it was recorded more than once).
    pub task: CleanupTask,
    /// When the task was first recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Clean-up tasks of the credential store that failed after their commit, kept until
/// `custodian gc` has done them. At most one task per [`CredentialKey`].
///
/// The key names a team that may no longer exist (a team can be deleted once its records
/// are): adapters must not tie the queue to the team table.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CleanupQueue: Send + Sync {
    /// Record `task` for `key`, first seen at `at`. When `key` already has a task the two
    /// are merged ([`CleanupTask::merge`]) and the first `recorded_at` is kept; the merge
    /// is atomic, so concurrent records of one key lose nothing.
    /// `Unavailable` when the database cannot be reached; `Internal` otherwise.
    async fn record(&self, key: &CredentialKey, task: CleanupTask, at: DateTime<Utc>) -> Result<(), RepoError>;

    /// At most `limit` pending tasks, oldest `recorded_at` first (ties in key order: team,
    /// kind, record id). An empty queue gives an empty list.
    /// `Unavailable` when the database cannot be reached; `Internal` otherwise.
    async fn pending(&self, limit: u32) -> Result<Vec<PendingCleanup>, RepoError>;

    /// Remove the task of `key`, but only while it is still `task`: a task merged into a
    /// bigger one since it was read (a new prune bound, a delete) stays pending. Succeeds
    /// when `key` has no task or another one (idempotent).
    /// `Unavailable` when the database cannot be reached; `Internal` otherwise.
    async fn done(&self, key: &CredentialKey, task: CleanupTask) -> Result<(), RepoError>;
}

#[cfg(test)]
mod tests {
    use super::CleanupTask::{DeleteAll, PruneBelow};

    #[test]
    fn delete_all_wins_and_the_larger_prune_bound_wins() {
        assert_eq!(DeleteAll.merge(PruneBelow(3)), DeleteAll);
        assert_eq!(PruneBelow(3).merge(DeleteAll), DeleteAll);
        assert_eq!(DeleteAll.merge(DeleteAll), DeleteAll);
        assert_eq!(PruneBelow(3).merge(PruneBelow(7)), PruneBelow(7));
        assert_eq!(PruneBelow(7).merge(PruneBelow(3)), PruneBelow(7));
        assert_eq!(PruneBelow(4).merge(PruneBelow(4)), PruneBelow(4));
    }
}
