//! The credential-write protocol that storage secrets and vault connections share: where
//! a record's credentials are kept, and the order between the credential store and the
//! record's row. Credentials are written before the row that points at them is committed
//! and removed again when the commit fails, so no row ever points at credentials that do
//! not exist; a rotation writes the next version and commits against the current one. A
//! new storage secret's first version is written in the row's own transaction instead when
//! the store keeps its values in the repositories' database (the local store).

use custodian_domain::{StorageSecret, VaultConnection};
use custodian_ports::{
    CleanupTask, ConflictKind, CredentialKey, CredentialKind, RepoError, SealedCredential, StoreError,
};
use secrecy::SecretString;

use crate::{CoreError, Custodian};

/// Where a managed secret's credentials are kept.
pub(crate) fn credential_key(secret: &StorageSecret) -> CredentialKey {
    CredentialKey {
        team_id: secret.team_id,
        kind: CredentialKind::StorageSecret,
        record_id: secret.id.as_uuid(),
    }
}

/// Where a vault connection's secret setting is kept.
pub(crate) fn connection_key(connection: &VaultConnection) -> CredentialKey {
    CredentialKey {
        team_id: connection.team_id,
        kind: CredentialKind::VaultConnection,
        record_id: connection.id.as_uuid(),
    }
}

/// How many taken version numbers a rotation steps over before it gives up (409).
pub(crate) const MAX_VERSIONS_SKIPPED: i64 = 5;

/// How many times a change of a record is made again over a change that committed first
/// (last writer wins) before it is answered 409 `stale_write`.
pub(crate) const WRITE_ATTEMPTS: u32 = 12;

/// From this attempt on, a taken next version is taken to be a leftover of a failed
/// rotation and stepped over; before it, to be a concurrent rotation about to commit.
pub(crate) const STEP_OVER_FROM_ATTEMPT: u32 = 6;

/// The wait before `attempt` (1, 2, …): 10, 20, 40, 80, 160 ms, then 160 ms each time,
/// plus up to as much again at random so that racing changes spread out. About half a
/// second passes before a taken version is stepped over: the change that took it has
/// committed by then unless it failed.
fn backoff(attempt: u32) -> std::time::Duration {
    let base = 5u64 << attempt.min(5);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 255;
    std::time::Duration::from_millis(base + jitter)
}

/// One attempt of a change under [`Custodian::last_writer_wins`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt(u32);

impl Attempt {
    /// The first attempt of a change that is not made again.
    pub(crate) const FIRST: Attempt = Attempt(0);

    /// Whether a taken next version is stepped over ([`Custodian::store_next_version`]).
    pub(crate) fn steps_over_taken_versions(self) -> bool {
        self.0 >= STEP_OVER_FROM_ATTEMPT
    }
}

impl Custodian {
    /// Make a change of one record (read, decide, write against the version read) until it
    /// commits: when another change committed first (`Conflict(Stale)`), it is made again
    /// over what that one left, after a short backoff. Clients without a precondition never
    /// see their change refused for a race, and `credentials_version` counts the rotations
    /// that committed: each commits version n+1 over version n. 409 `stale_write` only after
    /// [`WRITE_ATTEMPTS`] lost races in a row.
    pub(crate) async fn last_writer_wins<T, Change>(
        &self,
        mut change: impl FnMut(Attempt) -> Change,
    ) -> Result<T, CoreError>
    where
        Change: Future<Output = Result<T, CoreError>>,
    {
        let mut attempt = 0;
        loop {
            match change(Attempt(attempt)).await {
                Err(CoreError::Conflict(ConflictKind::Stale)) if attempt + 1 < WRITE_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// The order for a new credential version: store `value` (the request's `field`) as
    /// `version` of `key`, then run `commit` (the row that points at it, with its audit
    /// event). When the commit fails, the version is removed again, so no row ever points
    /// at missing credentials. A value the store refuses is a validation error at `field`.
    pub(crate) async fn store_then_commit<T, Commit>(
        &self,
        key: &CredentialKey,
        version: i64,
        (value, field): (&SecretString, &[&str]),
        commit: impl FnOnce() -> Commit,
    ) -> Result<T, CoreError>
    where
        Commit: Future<Output = Result<T, RepoError>>,
    {
        self.ports
            .credential_store
            .put(key, version, value)
            .await
            .map_err(|e| CoreError::from_store_write(e, field))?;
        self.commit_or_discard(key, version, commit()).await
    }

    /// `value` (the request's `field`) sealed as `version` of `key` for the row's own
    /// transaction, when the store keeps its values in the repositories' database; `None`
    /// when it must be stored first ([`Self::store_then_commit`]). A value the store refuses
    /// is a validation error at `field`.
    pub(crate) async fn seal_for_commit(
        &self,
        key: &CredentialKey,
        version: i64,
        (value, field): (&SecretString, &[&str]),
    ) -> Result<Option<SealedCredential>, CoreError> {
        self.ports
            .credential_store
            .seal_for_commit(key, version, value)
            .await
            .map_err(|e| CoreError::from_store_write(e, field))
    }

    /// Store `value` as the next version of a record whose row is at `current`, and answer
    /// the version written: `current + 1`. When that number is taken, it is most likely by
    /// a concurrent rotation about to commit: `Conflict(Stale)`, so that
    /// [`Custodian::last_writer_wins`] reads the row again once it has. From a later
    /// `attempt` on, it is taken to be a version a failed rotation could not remove (which
    /// would block every rotation until `custodian gc`) and stepped over; a version left
    /// over is pruned with the rest once a rotation commits.
    pub(crate) async fn store_next_version(
        &self,
        key: &CredentialKey,
        current: i64,
        (value, field): (&SecretString, &[&str]),
        attempt: Attempt,
    ) -> Result<i64, CoreError> {
        let mut version = current + 1;
        loop {
            match self.ports.credential_store.put(key, version, value).await {
                Ok(()) => return Ok(version),
                Err(StoreError::AlreadyExists) if !attempt.steps_over_taken_versions() => {
                    return Err(CoreError::Conflict(ConflictKind::Stale));
                }
                Err(StoreError::AlreadyExists) if version < current + MAX_VERSIONS_SKIPPED => {
                    tracing::warn!(%key, version, "a credential version no row points at is in the way; writing the next one");
                    version += 1;
                }
                Err(error) => return Err(CoreError::from_store_write(error, field)),
            }
        }
    }

    /// Run `commit` for a version already stored; when it fails, remove the version again.
    pub(crate) async fn commit_or_discard<T>(
        &self,
        key: &CredentialKey,
        version: i64,
        commit: impl Future<Output = Result<T, RepoError>>,
    ) -> Result<T, CoreError> {
        match commit.await {
            Ok(committed) => Ok(committed),
            Err(error) => {
                self.discard_version(key, version).await;
                Err(error.into())
            }
        }
    }

    /// Remove a credential version whose row was not committed. When that fails too:
    /// version 1 belongs to a record whose row never existed, so every stored version of it
    /// is an orphan and `DeleteAll` is queued for `custodian gc`; a later version (a
    /// rotation that did not commit) stays in the store, logged by key and version, until
    /// the record's next rotation steps over it and prunes it ([`Self::store_next_version`]).
    async fn discard_version(&self, key: &CredentialKey, version: i64) {
        let Err(error) = self.ports.credential_store.delete_version(key, version).await else {
            return;
        };
        if version == 1 {
            match self
                .ports
                .repos
                .cleanup
                .record(key, CleanupTask::DeleteAll, self.now())
                .await
            {
                Ok(()) => tracing::warn!(
                    %key,
                    version,
                    %error,
                    "could not remove the credentials of a record that was not created; recorded for `custodian gc`"
                ),
                Err(record_error) => tracing::error!(
                    %key,
                    version,
                    %error,
                    %record_error,
                    "could not remove the credentials of a record that was not created, nor record it for `custodian gc`"
                ),
            }
        } else {
            tracing::error!(%key, version, %error, "could not remove an uncommitted credential version; the next rotation prunes it");
        }
    }
}
