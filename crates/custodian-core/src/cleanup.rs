//! Credential-store clean-up after a commit, and `custodian gc`, which retries what failed.
//!
//! Deleting a record commits the row's removal, then removes its credentials; rotating
//! one commits the row at version n+1, then prunes the older versions. The
//! request's answer follows the commit; when the store step fails, it is recorded in the
//! [`CleanupQueue`](custodian_ports::CleanupQueue) and [`Custodian::run_cleanup`] does it
//! later.

use custodian_ports::{CleanupTask, CredentialKey, StoreError};

use crate::{CoreError, Custodian};

/// What one run of [`Custodian::run_cleanup`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Tasks done and removed from the queue.
    pub done: usize,
    /// Tasks that failed again; they stay pending for the next run.
    pub failed: usize,
}

impl Custodian {
    /// Do `task` for `key` in the credential store now that its row is committed. A failure
    /// is logged (by key, never by value) and recorded for `custodian gc`; it never fails
    /// the request, whose change is already committed.
    pub(crate) async fn clean_up_after_commit(&self, key: &CredentialKey, task: CleanupTask) {
        let Err(error) = self.run_task(key, task).await else {
            return;
        };
        let recorded = self.ports.repos.cleanup.record(key, task, self.now()).await;
        match recorded {
            Ok(()) => tracing::warn!(
                %key,
                task = ?task,
                %error,
                "could not clean up stored credentials after a commit; recorded for `custodian gc`"
            ),
            Err(record_error) => tracing::error!(
                %key,
                task = ?task,
                %error,
                %record_error,
                "could not clean up stored credentials after a commit, nor record it for `custodian gc`"
            ),
        }
    }

    /// Retry up to `limit` pending clean-up tasks, oldest first, against the credential
    /// store (the use case behind `custodian gc`; an operator command, so no caller is
    /// checked). A task that succeeds is removed from the queue; one that fails is logged
    /// and stays pending. Both store operations succeed when nothing is left to remove, so
    /// a task done twice (two runs at once, a crash before `done`) does no harm.
    ///
    /// Fails only when the queue cannot be read.
    pub async fn run_cleanup(&self, limit: u32) -> Result<CleanupReport, CoreError> {
        let pending = self.ports.repos.cleanup.pending(limit).await?;
        let mut report = CleanupReport::default();
        for item in pending {
            let (key, task) = (item.key, item.task);
            if let Err(error) = self.run_task(&key, task).await {
                tracing::warn!(%key, task = ?task, recorded_at = %item.recorded_at, %error, "clean-up failed again; it stays pending");
                report.failed += 1;
                continue;
            }
            match self.ports.repos.cleanup.done(&key, task).await {
                Ok(()) => report.done += 1,
                Err(error) => {
                    // The store work is done; the next run repeats it harmlessly.
                    tracing::warn!(%key, task = ?task, %error, "clean-up done but not marked done; it stays pending");
                    report.failed += 1;
                }
            }
        }
        if report.done + report.failed > 0 {
            tracing::info!(done = report.done, failed = report.failed, "credential clean-up run");
        }
        Ok(report)
    }

    async fn run_task(&self, key: &CredentialKey, task: CleanupTask) -> Result<(), StoreError> {
        match task {
            CleanupTask::DeleteAll => self.ports.credential_store.delete_all(key).await,
            CleanupTask::PruneBelow(keep) => self.ports.credential_store.prune(key, keep).await,
        }
    }
}

#[cfg(test)]
mod tests;
