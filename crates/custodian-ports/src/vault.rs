use std::time::Duration;

use async_trait::async_trait;
use custodian_domain::{VaultConnectionId, VaultReference, VaultSecret, VaultSettings, VaultType};
use secrecy::SecretString;

/// Everything a provider needs to reach one vault: its settings and its secret.
#[derive(Debug, Clone)]
pub struct VaultAccess {
    pub connection_id: VaultConnectionId,
    /// The connection's secret version: it changes whenever the connection is rotated, so
    /// what was read with an older secret is never taken for what the new one reads (a
    /// cache keys on it, an adapter may key its own revalidation state on it).
    pub revision: i64,
    pub settings: VaultSettings,
    pub secret: VaultSecret,
}

/// What a vault provider can fail with; each names the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("{provider} is unavailable: {message}")]
    Unavailable { provider: VaultType, message: String },
    #[error("{provider} refused the connection's credentials")]
    AuthFailed { provider: VaultType },
    #[error("{provider} has no secret at reference {reference}")]
    ReferenceNotFound { provider: VaultType, reference: String },
    #[error("{provider} is rate limiting requests")]
    RateLimited {
        provider: VaultType,
        retry_after: Option<Duration>,
    },
}

/// Whether a fetch may be answered from what an adapter keeps between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// The adapter may revalidate what it read before (Doppler's `ETag`: an unchanged
    /// config answers `304` and the values read last time are used).
    MayRevalidate,
    /// Read everything from the provider now (a verification): nothing kept is used.
    Fresh,
}

/// A team's external vault (1Password, Doppler, Infisical).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait VaultProvider: Send + Sync {
    fn vault_type(&self) -> VaultType;

    /// Authenticate against the provider with the connection's secret.
    /// `AuthFailed` when refused; `Unavailable`/`RateLimited` on transient failures.
    async fn verify(&self, access: &VaultAccess) -> Result<(), VaultError>;

    /// The values at `references`, in the same order, read in as few provider calls as the
    /// provider allows. `ReferenceNotFound` names the first reference that does not exist.
    async fn fetch(
        &self,
        access: &VaultAccess,
        references: &[VaultReference],
        freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError>;
}
