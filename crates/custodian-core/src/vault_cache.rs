//! The cache in front of the vault providers for resolution.
//!
//! What a secret's field mappings read from one vault connection is cached under
//! `(connection, revision, references)`: the connection's revision changes with every
//! rotation, so no server (this one or another replica) serves what an old token read, and
//! changed mappings are another key. Rotating, patching or deleting a connection also drops
//! its entries here at once.
//!
//! - **TTL**: values are served for [`VaultCacheSettings::ttl`] after they were read.
//! - **Single flight**: however many callers ask for a key that is not cached, the provider
//!   is called once and every caller gets its answer (`moka`'s `try_get_with`).
//! - **Stale on failure**: when the provider is unavailable or rate limiting, the last
//!   values read are served for up to [`VaultCacheSettings::stale_for`] after they expired.
//! - **Negative cache**: a reference the vault does not have is remembered for
//!   [`VaultCacheSettings::negative_ttl`], so a broken mapping does not hit the provider on
//!   every request.
//! - **Retries and a budget**: a rate-limited or unavailable provider is asked again up to
//!   [`RETRIES`] times, after its `Retry-After` (capped) or a short backoff; every call to a
//!   provider first takes a token from the connection's budget
//!   ([`VaultCacheSettings::requests_per_minute`]), so a busy team stays under its
//!   provider's published limits.
//!
//! Verification never reads the cache: it asks the provider directly.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custodian_domain::{VaultConnectionId, VaultReference};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::Expiry;
use moka::future::Cache;
use secrecy::SecretString;

/// How many times a transient failure is retried within one load.
pub(crate) const RETRIES: u32 = 2;
/// The longest `Retry-After` a load waits for; a longer one is reported to the caller.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// How long a call waits for its connection's budget before it is refused as rate limited.
const MAX_BUDGET_WAIT: Duration = Duration::from_secs(5);
/// The most keys kept (each holds the values of one secret's mappings).
const MAX_ENTRIES: u64 = 100_000;

/// How the cache behaves (the deployment's `vault_cache` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultCacheSettings {
    /// How long values read from a vault are served (default 300 s; zero turns caching off).
    pub ttl: Duration,
    /// How long after that the last values are still served while the provider fails
    /// (default 1 h).
    pub stale_for: Duration,
    /// How long a reference the vault does not have is remembered (default 30 s).
    pub negative_ttl: Duration,
    /// Calls one connection may make to its provider per minute (default 60).
    pub requests_per_minute: u32,
}

impl Default for VaultCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            stale_for: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(30),
            requests_per_minute: 60,
        }
    }
}

/// The key of what one secret's mappings read through one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    connection: VaultConnectionId,
    revision: i64,
    references: Vec<VaultReference>,
}

/// What a load found.
#[derive(Clone)]
enum Found {
    Values(Vec<SecretString>),
    /// A reference the vault does not have (`ReferenceNotFound`).
    Missing(VaultError),
}

/// Values live for the TTL, a miss for the negative TTL.
struct FoundExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<Key, Arc<Found>> for FoundExpiry {
    fn expire_after_create(&self, _key: &Key, value: &Arc<Found>, _created_at: Instant) -> Option<Duration> {
        Some(match **value {
            Found::Values(_) => self.ttl,
            Found::Missing(_) => self.negative_ttl,
        })
    }
}

/// The resolution cache: one per [`Custodian`](crate::Custodian), shared by its clones.
pub(crate) struct VaultCache {
    settings: VaultCacheSettings,
    found: Cache<Key, Arc<Found>>,
    /// The last values read for each key, kept through the stale window.
    last_good: Cache<Key, Vec<SecretString>>,
    budget: DefaultKeyedRateLimiter<VaultConnectionId>,
}

impl fmt::Debug for VaultCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCache")
            .field("settings", &self.settings)
            .field("entries", &self.found.entry_count())
            .finish_non_exhaustive()
    }
}

fn transient(error: &VaultError) -> bool {
    matches!(error, VaultError::Unavailable { .. } | VaultError::RateLimited { .. })
}

impl VaultCache {
    pub(crate) fn new(settings: VaultCacheSettings) -> Self {
        let found = Cache::builder()
            .max_capacity(MAX_ENTRIES)
            .expire_after(FoundExpiry {
                ttl: settings.ttl,
                negative_ttl: settings.negative_ttl,
            })
            .support_invalidation_closures()
            .build();
        let last_good = Cache::builder()
            .max_capacity(MAX_ENTRIES)
            .time_to_live(settings.ttl + settings.stale_for)
            .support_invalidation_closures()
            .build();
        let per_minute = NonZeroU32::new(settings.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            settings,
            found,
            last_good,
            budget: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }

    /// The values at `references` through `access`'s connection: from the cache, or read
    /// once from `provider` for every caller waiting on the same key.
    pub(crate) async fn fetch(
        &self,
        provider: &Arc<dyn VaultProvider>,
        access: &VaultAccess,
        references: &[VaultReference],
    ) -> Result<Vec<SecretString>, VaultError> {
        let key = Key {
            connection: access.connection_id,
            revision: access.revision,
            references: references.to_vec(),
        };
        if self.settings.ttl.is_zero() {
            return self.call(provider, access, references, Freshness::Fresh).await;
        }
        // A miss is a lookup that ran the load itself; callers that waited on another's
        // load, or found the values kept, are hits.
        let missed = std::sync::atomic::AtomicBool::new(false);
        let loaded = self
            .found
            .try_get_with(key.clone(), async {
                missed.store(true, std::sync::atomic::Ordering::Relaxed);
                self.load(&key, provider, access, references).await
            })
            .await;
        let outcome = if missed.into_inner() { "miss" } else { "hit" };
        metrics::counter!("custodian_vault_cache_total", "outcome" => outcome).increment(1);
        match loaded {
            Ok(found) => match &*found {
                Found::Values(values) => Ok(values.clone()),
                Found::Missing(error) => Err(error.clone()),
            },
            Err(error) if transient(&error) => match self.last_good.get(&key).await {
                Some(last) => {
                    metrics::counter!("custodian_vault_cache_total", "outcome" => "stale").increment(1);
                    tracing::warn!(
                        connection = %access.connection_id,
                        provider = %provider.vault_type(),
                        %error,
                        "the vault is failing; serving the values read last"
                    );
                    Ok(last)
                }
                None => Err((*error).clone()),
            },
            Err(error) => Err((*error).clone()),
        }
    }

    /// One load of `key`: the provider's answer, retried on transient failures.
    async fn load(
        &self,
        key: &Key,
        provider: &Arc<dyn VaultProvider>,
        access: &VaultAccess,
        references: &[VaultReference],
    ) -> Result<Arc<Found>, VaultError> {
        match self.call(provider, access, references, Freshness::MayRevalidate).await {
            Ok(values) => {
                self.last_good.insert(key.clone(), values.clone()).await;
                Ok(Arc::new(Found::Values(values)))
            }
            Err(missing @ VaultError::ReferenceNotFound { .. }) => Ok(Arc::new(Found::Missing(missing))),
            Err(other) => Err(other),
        }
    }

    /// Ask the provider, within the connection's budget, retrying transient failures.
    async fn call(
        &self,
        provider: &Arc<dyn VaultProvider>,
        access: &VaultAccess,
        references: &[VaultReference],
        freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        let mut attempt = 0;
        loop {
            self.take_budget(provider, access.connection_id).await?;
            match provider.fetch(access, references, freshness).await {
                Err(error) if transient(&error) && attempt < RETRIES => {
                    attempt += 1;
                    let wait = match &error {
                        VaultError::RateLimited {
                            retry_after: Some(after),
                            ..
                        } if *after > MAX_RETRY_WAIT => return Err(error),
                        VaultError::RateLimited {
                            retry_after: Some(after),
                            ..
                        } => *after,
                        _ => Duration::from_millis(200 << attempt),
                    };
                    tracing::debug!(provider = %provider.vault_type(), %error, ?wait, attempt, "retrying a vault call");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Wait for a token of `connection`'s budget; past [`MAX_BUDGET_WAIT`], refuse as rate
    /// limited (by Custodian, to keep the team under the provider's limits).
    async fn take_budget(
        &self,
        provider: &Arc<dyn VaultProvider>,
        connection: VaultConnectionId,
    ) -> Result<(), VaultError> {
        match tokio::time::timeout(MAX_BUDGET_WAIT, self.budget.until_key_ready(&connection)).await {
            Ok(()) => Ok(()),
            Err(_) => Err(VaultError::RateLimited {
                provider: provider.vault_type(),
                retry_after: Some(MAX_BUDGET_WAIT),
            }),
        }
    }

    /// Drop everything cached for `connection` (rotated, changed, deleted, or a secret's
    /// mappings to it changed).
    pub(crate) fn invalidate(&self, connection: VaultConnectionId) {
        let drop_found = self
            .found
            .invalidate_entries_if(move |key, _| key.connection == connection);
        let drop_last = self
            .last_good
            .invalidate_entries_if(move |key, _| key.connection == connection);
        if let Err(error) = drop_found.and(drop_last) {
            // Only when closures were not enabled at build time: a bug, and entries still
            // expire on their own.
            tracing::error!(%connection, %error, "could not drop a vault connection's cached values");
        }
    }
}

#[cfg(test)]
mod tests;
