//! An in-memory [`CleanupQueue`]: the fake the core's tests use, and the reference the
//! clean-up contract suite is checked against.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_ports::{CleanupQueue, CleanupTask, CredentialKey, PendingCleanup, RepoError};

/// One task per key, behind one lock (so a record's merge is atomic).
#[derive(Debug, Default)]
pub struct MemoryCleanupQueue {
    tasks: Mutex<BTreeMap<CredentialKey, (CleanupTask, DateTime<Utc>)>>,
}

impl MemoryCleanupQueue {
    /// How many keys have a pending task.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The task pending for `key`, if any.
    pub fn task(&self, key: &CredentialKey) -> Option<CleanupTask> {
        self.lock().get(key).map(|(task, _)| *task)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<CredentialKey, (CleanupTask, DateTime<Utc>)>> {
        // Every operation changes the map in one step, so a panic elsewhere while the lock
        // was held leaves it consistent.
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CleanupQueue for MemoryCleanupQueue {
    async fn record(&self, key: &CredentialKey, task: CleanupTask, at: DateTime<Utc>) -> Result<(), RepoError> {
        let mut tasks = self.lock();
        let entry = tasks.entry(*key).or_insert((task, at));
        entry.0 = entry.0.merge(task);
        Ok(())
    }

    async fn pending(&self, limit: u32) -> Result<Vec<PendingCleanup>, RepoError> {
        let mut pending: Vec<PendingCleanup> = self
            .lock()
            .iter()
            .map(|(key, (task, recorded_at))| PendingCleanup {
                key: *key,
                task: *task,
                recorded_at: *recorded_at,
            })
            .collect();
        pending.sort_by_key(|p| (p.recorded_at, p.key.team_id, p.key.record_id, p.key.kind.as_str()));
        pending.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(pending)
    }

    async fn done(&self, key: &CredentialKey, task: CleanupTask) -> Result<(), RepoError> {
        let mut tasks = self.lock();
        if tasks.get(key).is_some_and(|(pending, _)| *pending == task) {
            tasks.remove(key);
        }
        Ok(())
    }
}
