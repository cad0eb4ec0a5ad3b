//! The sweep of orphaned credential values: values in the credential store that no row
//! points at, left behind by a write whose commit never came (a server killed between
//! storing a new secret's credentials and committing its row) or whose removal failed
//! unrecorded. `custodian gc` runs it, and `serve` runs it periodically.
//!
//! A value is an orphan when rows do not point at it (as the inventory counts references:
//! the version in use of each managed storage secret and vault connection, every version
//! of each secret-group key) and it was written longer ago than a safety window. The
//! window protects the writes in flight, which store a value before the row that points at
//! it commits: it must exceed the longest time between the two, which is a request's.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use custodian_ports::{
    Clock, CredentialInventory, CredentialRef, CredentialStore, MigrationPhase, StoreBinding, StoreId, StoredPage,
};

use crate::CoreError;

/// How many stored versions are listed at a time.
const PAGE_SIZE: u32 = 500;

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Stored versions looked at.
    pub examined: u64,
    /// Orphans removed.
    pub removed: u64,
    /// Orphans whose removal failed (logged by key and version; the next sweep tries again).
    pub failed: u64,
    /// Why nothing was swept, when nothing was.
    pub skipped: Option<String>,
}

/// The sweep of one credential store: the one the deployment's rows use.
pub struct OrphanSweep {
    inventory: Arc<dyn CredentialInventory>,
    store: Arc<dyn CredentialStore>,
    store_id: StoreId,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OrphanSweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrphanSweep")
            .field("store", &self.store_id)
            .finish_non_exhaustive()
    }
}

impl OrphanSweep {
    /// A sweep of `store` (known to the inventory as `store_id`).
    pub fn new(
        inventory: Arc<dyn CredentialInventory>,
        store: Arc<dyn CredentialStore>,
        store_id: StoreId,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inventory,
            store,
            store_id,
            clock,
        }
    }

    /// Remove every value of the store that no row points at and that was written more
    /// than `min_age` ago. Skipped (and said so) unless the database records this store as
    /// the one its rows use, with no migration under way: copies a migration makes are not
    /// pointed at by any row until it switches. Orphans are listed first and removed after,
    /// so removing does not disturb the listing.
    pub async fn run(&self, min_age: Duration) -> Result<SweepReport, CoreError> {
        let binding = self.inventory.binding().await?;
        let settled_here = StoreBinding::settled(self.store_id.clone());
        if binding.as_ref() != Some(&settled_here) {
            let why = match binding {
                Some(StoreBinding {
                    phase: MigrationPhase::Settled,
                    store,
                }) => format!("the rows use the store {store}, not {}", self.store_id),
                Some(_) => "a credential-store migration is under way".to_owned(),
                None => "the database records no credential store yet".to_owned(),
            };
            return Ok(SweepReport {
                skipped: Some(why),
                ..SweepReport::default()
            });
        }
        let cutoff = self.clock.now() - min_age;
        let mut report = SweepReport::default();
        let mut orphans = Vec::new();
        let mut page = None;
        loop {
            let StoredPage { versions, next } = self.store.list_stored(page, PAGE_SIZE).await?;
            report.examined += versions.len() as u64;
            let old: Vec<CredentialRef> = versions
                .iter()
                .filter(|v| v.written_at < cutoff)
                .map(|v| CredentialRef {
                    key: v.key,
                    version: v.version,
                })
                .collect();
            if !old.is_empty() {
                let referenced: HashSet<CredentialRef> = self.inventory.referenced(&old).await?.into_iter().collect();
                orphans.extend(old.into_iter().filter(|r| !referenced.contains(r)));
            }
            match next {
                Some(token) => page = Some(token),
                None => break,
            }
        }
        for orphan in orphans {
            match self.store.delete_version(&orphan.key, orphan.version).await {
                Ok(()) => {
                    tracing::info!(key = %orphan.key, version = orphan.version, "removed a credential value no row points at");
                    report.removed += 1;
                }
                Err(error) => {
                    tracing::warn!(key = %orphan.key, version = orphan.version, %error, "could not remove an orphaned credential value");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
