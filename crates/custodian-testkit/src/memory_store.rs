//! An in-memory [`CredentialStore`]: the fake the core's tests use, and the reference the
//! credential-store contract suite is checked against.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_ports::{CredentialKey, CredentialStore, StoreError, StoredPage, StoredVersion};
use secrecy::SecretString;

/// Each record's versions: the value and when it was written.
type Values = BTreeMap<CredentialKey, BTreeMap<i64, (SecretString, DateTime<Utc>)>>;

/// Every version of every record, in memory, behind one lock (so a put is atomic: two
/// concurrent puts of one version store exactly one value). Backend name `memory`.
///
/// `Debug` shows how many values it holds, never a value.
#[derive(Default)]
pub struct MemoryCredentialStore {
    values: Mutex<Values>,
}

impl MemoryCredentialStore {
    /// How many versions are stored, over all records.
    pub fn len(&self) -> usize {
        self.lock().values().map(BTreeMap::len).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Values> {
        // No operation leaves the map half-updated, so a panic elsewhere while the lock was
        // held does not make the data unusable.
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCredentialStore")
            .field("stored_versions", &self.len())
            .finish()
    }
}

#[async_trait]
impl CredentialStore for MemoryCredentialStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        let mut values = self.lock();
        let versions = values.entry(*key).or_default();
        if versions.contains_key(&version) {
            return Err(StoreError::AlreadyExists);
        }
        versions.insert(version, (value.clone(), Utc::now()));
        Ok(())
    }

    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        self.lock()
            .get(key)
            .and_then(|versions| versions.get(&version))
            .map(|(value, _)| value.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        let mut values = self.lock();
        if let Some(versions) = values.get_mut(key) {
            versions.remove(&version);
            if versions.is_empty() {
                values.remove(key);
            }
        }
        Ok(())
    }

    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        let mut values = self.lock();
        if let Some(versions) = values.get_mut(key) {
            versions.retain(|version, _| *version >= keep);
            if versions.is_empty() {
                values.remove(key);
            }
        }
        Ok(())
    }

    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        // The token is how many versions came before.
        let skip: usize = match page {
            None => 0,
            Some(token) => token
                .parse()
                .map_err(|_| StoreError::Rejected("not a page token of this store".into()))?,
        };
        let all: Vec<StoredVersion> = self
            .lock()
            .iter()
            .flat_map(|(key, versions)| {
                versions.iter().map(|(version, (_, written_at))| StoredVersion {
                    key: *key,
                    version: *version,
                    written_at: *written_at,
                })
            })
            .collect();
        let end = skip.saturating_add(limit.max(1) as usize).min(all.len());
        let versions = all.get(skip..end).unwrap_or_default().to_vec();
        let next = (end < all.len()).then(|| end.to_string());
        Ok(StoredPage { versions, next })
    }
}
