//! Moving a deployment's credentials to another credential store (`custodian store
//! migrate --to …`).
//!
//! The database records which store the rows' credentials are in (the [`StoreBinding`]),
//! and a migration moves that binding through three phases, each recorded before its work
//! starts, so a run that is interrupted anywhere is finished by running it again:
//!
//! 1. **Copying** to the target. Every stored credential a row points at (the version in
//!    use of each storage secret and vault connection, every version of each group key)
//!    is read from the bound store and written to the target under the same key and
//!    version. A value the target already holds is compared, not written again: equal, it
//!    counts as present; different (something else left under that name), it is replaced,
//!    since no row reads the target yet. The inventory is then listed again and whatever
//!    appeared meanwhile is copied too, until a listing brings nothing new.
//! 2. **Switching**: one write of the binding makes the target the store every row reads,
//!    and marks the old store as retiring. Until then the rows used the old store, which
//!    still held everything.
//! 3. **Retiring** the old store: every version of every record the rows or the clean-up
//!    queue name is removed from it; then the binding is settled.
//!
//! A migration to the store the rows already use, while copying to another, gives the
//! copy up: the copies are retired instead. Servers check the binding at start and refuse
//! one that does not match their configuration, so none starts half-way; servers started
//! before must be stopped first, as for `keys rotate`.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use custodian_ports::{
    CleanupQueue, CredentialInventory, CredentialKey, CredentialKind, CredentialRef, CredentialStore, MigrationPhase,
    RefCursor, RepoError, StoreBinding, StoreError, StoreId, StoreOpenError, StoreOpener,
};
use secrecy::ExposeSecret;

/// How many references are listed at a time.
const PAGE_SIZE: u32 = 500;
/// How many times the inventory is listed again for references that appeared while
/// copying (a server still running) before the migration gives up.
const MAX_EXTRA_LISTINGS: usize = 5;
/// The clean-up queue is read whole when retiring a store; it holds failures only.
const CLEANUP_QUEUE_LIMIT: u32 = 1_000_000;

/// What a migration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The store the rows use at the end.
    pub store: Option<StoreId>,
    /// Values written to the target.
    pub copied: u64,
    /// Values the target already held, equal to the source's (an earlier, interrupted run).
    pub present: u64,
    /// Values the target held under the same key and version but different; replaced.
    pub replaced: u64,
    /// References whose value the old store did not hold (rows that could not be resolved
    /// before the migration either); copied nowhere.
    pub missing: Vec<CredentialRef>,
    /// Records whose values were removed from the retired store.
    pub retired: u64,
    /// The store retired (migrated away from, or a copy given up), if any.
    pub retired_store: Option<StoreId>,
    /// The store this run gave a copy to up, if it did.
    pub abandoned: Option<StoreId>,
}

/// Why a migration run stopped. The binding stays in the phase it reached; running the
/// migration again continues from there. Messages name records, never values.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the database records no credential store; start the server once to record it")]
    Unbound,
    #[error("cannot read or write the database: {0}")]
    Database(#[from] RepoError),
    #[error("another `custodian store migrate` changed the credential-store binding meanwhile; run it again")]
    Raced,
    #[error("a migration from {from} to {to} is under way; finish it (--to {}) or give it up (--to {}) first", .to.backend, .from.backend)]
    OtherMigration { from: StoreId, to: StoreId },
    #[error("cannot open the credential store {store}: {reason}")]
    Open { store: StoreId, reason: StoreOpenError },
    #[error("{store}: cannot read {key} version {version}: {error}")]
    Read {
        store: StoreId,
        key: CredentialKey,
        version: i64,
        error: StoreError,
    },
    #[error("{store}: cannot write {key} version {version}: {error}")]
    Write {
        store: StoreId,
        key: CredentialKey,
        version: i64,
        error: StoreError,
    },
    #[error("{store}: cannot remove {key}: {error}")]
    Remove {
        store: StoreId,
        key: CredentialKey,
        error: StoreError,
    },
    #[error(
        "{} record(s) point at credentials {store} does not hold ({}); nothing was switched. \
         Delete those records, or run again allowing missing values",
        .missing.len(), first_of(.missing)
    )]
    Missing {
        store: StoreId,
        missing: Vec<CredentialRef>,
    },
    #[error("records kept appearing in {0} while copying: stop every server and run again")]
    StillWritten(StoreId),
    #[error(
        "the recorded credential-store binding is inconsistent (its migration names {0}, the store in use); fix the credential_store_binding row"
    )]
    Inconsistent(StoreId),
}

/// The first of `missing`, for the error message.
fn first_of(missing: &[CredentialRef]) -> String {
    missing
        .first()
        .map_or_else(String::new, |r| format!("first: {} version {}", r.key, r.version))
}

/// Moves the deployment's credentials between stores.
pub struct StoreMigration {
    inventory: Arc<dyn CredentialInventory>,
    cleanup: Arc<dyn CleanupQueue>,
    opener: Arc<dyn StoreOpener>,
    /// Switch even when some rows point at values the old store does not hold.
    pub allow_missing: bool,
}

impl fmt::Debug for StoreMigration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreMigration")
            .field("allow_missing", &self.allow_missing)
            .finish_non_exhaustive()
    }
}

/// How one reference was carried over.
enum Carried {
    Copied,
    Present,
    Replaced,
    Missing,
}

impl StoreMigration {
    pub fn new(
        inventory: Arc<dyn CredentialInventory>,
        cleanup: Arc<dyn CleanupQueue>,
        opener: Arc<dyn StoreOpener>,
    ) -> Self {
        Self {
            inventory,
            cleanup,
            opener,
            allow_missing: false,
        }
    }

    /// Bring the deployment to `target`: start, continue or give up a migration as the
    /// recorded binding says, until the binding is settled on `target`.
    pub async fn run(&self, target: &StoreId) -> Result<MigrationReport, MigrationError> {
        let mut report = MigrationReport::default();
        let mut binding = self.inventory.binding().await?.ok_or(MigrationError::Unbound)?;
        loop {
            // Copying a store onto itself, or retiring the store in use, would destroy the
            // values every row reads.
            if let MigrationPhase::Copying { to: other } | MigrationPhase::Retiring { from: other } = &binding.phase
                && *other == binding.store
            {
                return Err(MigrationError::Inconsistent(other.clone()));
            }
            let next = match &binding.phase {
                MigrationPhase::Settled if binding.store == *target => {
                    report.store = Some(binding.store.clone());
                    return Ok(report);
                }
                MigrationPhase::Settled => {
                    // Both stores must be reachable by this configuration before the
                    // migration is recorded, or servers would refuse to start for nothing.
                    self.open(&binding.store).await?;
                    self.open(target).await?;
                    StoreBinding {
                        store: binding.store.clone(),
                        phase: MigrationPhase::Copying { to: target.clone() },
                    }
                }
                MigrationPhase::Copying { to } if to == target => {
                    self.copy(&binding.store, to, &mut report).await?;
                    tracing::info!(from = %binding.store, to = %to, "copied every credential; switching the rows to the new store");
                    StoreBinding {
                        store: to.clone(),
                        phase: MigrationPhase::Retiring {
                            from: binding.store.clone(),
                        },
                    }
                }
                MigrationPhase::Copying { to } if binding.store == *target => {
                    tracing::info!(store = %to, "giving up the migration; removing the copies made so far");
                    report.abandoned = Some(to.clone());
                    StoreBinding {
                        store: binding.store.clone(),
                        phase: MigrationPhase::Retiring { from: to.clone() },
                    }
                }
                MigrationPhase::Copying { to } => {
                    return Err(MigrationError::OtherMigration {
                        from: binding.store.clone(),
                        to: to.clone(),
                    });
                }
                MigrationPhase::Retiring { from } => {
                    report.retired += self.retire(from).await?;
                    report.retired_store = Some(from.clone());
                    StoreBinding::settled(binding.store.clone())
                }
            };
            self.inventory
                .replace_binding(Some(&binding), &next)
                .await
                .map_err(|e| match e {
                    RepoError::Conflict(_) => MigrationError::Raced,
                    other => MigrationError::Database(other),
                })?;
            binding = next;
        }
    }

    async fn open(&self, id: &StoreId) -> Result<Arc<dyn CredentialStore>, MigrationError> {
        self.opener.open(id).await.map_err(|reason| MigrationError::Open {
            store: id.clone(),
            reason,
        })
    }

    /// Copy every reference from `from` to `to`, listing the inventory again until nothing
    /// new appears.
    async fn copy(
        &self,
        from_id: &StoreId,
        to_id: &StoreId,
        report: &mut MigrationReport,
    ) -> Result<(), MigrationError> {
        let from = self.open(from_id).await?;
        let to = self.open(to_id).await?;
        let mut seen: HashSet<CredentialRef> = HashSet::new();
        let mut missing = Vec::new();
        for listing in 0..=MAX_EXTRA_LISTINGS {
            let mut new = 0_u64;
            for reference in self.all_references().await? {
                if !seen.insert(reference) {
                    continue;
                }
                new += 1;
                match self
                    .carry(&reference, (from_id, from.as_ref()), (to_id, to.as_ref()))
                    .await?
                {
                    Carried::Copied => report.copied += 1,
                    Carried::Present => report.present += 1,
                    Carried::Replaced => report.replaced += 1,
                    Carried::Missing => missing.push(reference),
                }
            }
            if new == 0 {
                if !missing.is_empty() && !self.allow_missing {
                    return Err(MigrationError::Missing {
                        store: from_id.clone(),
                        missing,
                    });
                }
                report.missing = missing;
                return Ok(());
            }
            if listing > 0 {
                tracing::warn!(new, "records appeared while copying; is a server still running?");
            }
        }
        Err(MigrationError::StillWritten(from_id.clone()))
    }

    /// Every reference of every kind, in a stable order.
    async fn all_references(&self) -> Result<Vec<CredentialRef>, MigrationError> {
        let mut all = Vec::new();
        for kind in CredentialKind::ALL.iter().copied() {
            let mut after = None;
            loop {
                let page = self.inventory.references(kind, after, PAGE_SIZE).await?;
                let Some(last) = page.last() else { break };
                after = Some(RefCursor {
                    record_id: last.key.record_id,
                    version: last.version,
                });
                let full = page.len() == PAGE_SIZE as usize;
                all.extend(page);
                if !full {
                    break;
                }
            }
        }
        Ok(all)
    }

    async fn carry(
        &self,
        reference: &CredentialRef,
        (from_id, from): (&StoreId, &dyn CredentialStore),
        (to_id, to): (&StoreId, &dyn CredentialStore),
    ) -> Result<Carried, MigrationError> {
        let (key, version) = (&reference.key, reference.version);
        let read = |store: &StoreId, error| MigrationError::Read {
            store: store.clone(),
            key: *key,
            version,
            error,
        };
        let write = |error| MigrationError::Write {
            store: to_id.clone(),
            key: *key,
            version,
            error,
        };
        let held = match to.get(key, version).await {
            Ok(value) => Some(Some(value)),
            Err(StoreError::NotFound) => None,
            // Something that is not a value of ours (another key, a plain parameter): no row
            // reads the target yet, so it is replaced like a different value.
            Err(StoreError::Integrity) => Some(None),
            Err(error) => return Err(read(to_id, error)),
        };
        let value = match from.get(key, version).await {
            Ok(value) => value,
            Err(StoreError::NotFound) => {
                // The old store is the one rows read until the switch and has lost nothing
                // to an earlier run, so whatever the target holds here is not this value.
                tracing::warn!(%key, version, store = %from_id, "a record points at credentials its store does not hold");
                return Ok(Carried::Missing);
            }
            Err(error) => return Err(read(from_id, error)),
        };
        match held {
            Some(Some(held)) if held.expose_secret() == value.expose_secret() => Ok(Carried::Present),
            Some(_) => {
                // No row reads the target yet: what it holds under this name is left over
                // from something else.
                tracing::warn!(%key, version, store = %to_id, "replacing a different value left under this record's name");
                to.delete_version(key, version).await.map_err(write)?;
                to.put(key, version, &value).await.map_err(write)?;
                Ok(Carried::Replaced)
            }
            None => {
                to.put(key, version, &value).await.map_err(write)?;
                Ok(Carried::Copied)
            }
        }
    }

    /// Remove from `store_id` every version of every record the rows or the clean-up queue
    /// name. Returns how many records were cleared.
    async fn retire(&self, store_id: &StoreId) -> Result<u64, MigrationError> {
        let store = self.open(store_id).await?;
        let mut keys: Vec<CredentialKey> = self.all_references().await?.into_iter().map(|r| r.key).collect();
        keys.extend(
            self.cleanup
                .pending(CLEANUP_QUEUE_LIMIT)
                .await?
                .into_iter()
                .map(|p| p.key),
        );
        keys.sort_unstable();
        keys.dedup();
        for key in &keys {
            store.delete_all(key).await.map_err(|error| MigrationError::Remove {
                store: store_id.clone(),
                key: *key,
                error,
            })?;
        }
        Ok(keys.len() as u64)
    }
}

#[cfg(test)]
mod tests;
