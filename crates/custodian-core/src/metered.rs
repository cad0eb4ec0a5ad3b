//! Every call the core makes to the credential store and to a vault provider, counted by
//! backend or provider, operation and outcome (`custodian_credential_store_calls_total`,
//! `custodian_vault_calls_total`) and timed (`…_duration_seconds`).
//!
//! [`Custodian::new`](crate::Custodian::new) wraps the ports it is given, so whatever
//! adapter a deployment or an embedding service plugs in is measured the same way. The
//! figures go to the `metrics` facade: nothing is recorded until the process installs a
//! recorder (the server's `GET /metrics` does).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use custodian_domain::{VaultReference, VaultType};
use custodian_ports::{
    CredentialKey, CredentialStore, Freshness, SealedCredential, StoreError, StoredPage, VaultAccess, VaultError,
    VaultProvider,
};
use secrecy::SecretString;

/// A credential store whose calls are counted and timed, labelled with its backend.
pub(crate) struct MeteredStore(Arc<dyn CredentialStore>, &'static str);

fn store_outcome<T>(result: &Result<T, StoreError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(StoreError::NotFound) => "not_found",
        Err(StoreError::AlreadyExists) => "already_exists",
        Err(StoreError::Rejected(_)) => "rejected",
        Err(StoreError::Integrity) => "integrity",
        Err(StoreError::Unavailable { .. }) => "unavailable",
        Err(StoreError::Internal(_)) => "internal",
    }
}

impl MeteredStore {
    /// Run `call`, then count and time it as `operation`.
    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let backend = self.1;
        metrics::counter!(
            "custodian_credential_store_calls_total",
            "backend" => backend,
            "operation" => operation,
            "outcome" => store_outcome(&result),
        )
        .increment(1);
        metrics::histogram!(
            "custodian_credential_store_call_duration_seconds",
            "backend" => backend,
            "operation" => operation,
        )
        .record(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl CredentialStore for MeteredStore {
    fn backend(&self) -> &'static str {
        self.1
    }

    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        self.timed("put", self.0.put(key, version, value)).await
    }

    async fn seal_for_commit(
        &self,
        key: &CredentialKey,
        version: i64,
        value: &SecretString,
    ) -> Result<Option<SealedCredential>, StoreError> {
        self.timed("seal_for_commit", self.0.seal_for_commit(key, version, value))
            .await
    }

    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        self.timed("get", self.0.get(key, version)).await
    }

    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        self.timed("delete_version", self.0.delete_version(key, version)).await
    }

    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        self.timed("prune", self.0.prune(key, keep)).await
    }

    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.timed("delete_all", self.0.delete_all(key)).await
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        self.timed("list_stored", self.0.list_stored(page, limit)).await
    }
}

/// A vault provider whose calls are counted and timed, labelled with its type.
pub(crate) struct MeteredVault(Arc<dyn VaultProvider>, VaultType);

impl MeteredVault {
    /// Run `call`, then count and time it as `operation`.
    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, VaultError>>,
    ) -> Result<T, VaultError> {
        let started = Instant::now();
        let result = call.await;
        let provider = self.1.as_str();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(VaultError::Unavailable { .. }) => "unavailable",
            Err(VaultError::AuthFailed { .. }) => "auth_failed",
            Err(VaultError::ReferenceNotFound { .. }) => "reference_not_found",
            Err(VaultError::RateLimited { .. }) => "rate_limited",
        };
        metrics::counter!(
            "custodian_vault_calls_total",
            "provider" => provider,
            "operation" => operation,
            "outcome" => outcome,
        )
        .increment(1);
        metrics::histogram!(
            "custodian_vault_call_duration_seconds",
            "provider" => provider,
            "operation" => operation,
        )
        .record(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl VaultProvider for MeteredVault {
    fn vault_type(&self) -> VaultType {
        self.1
    }

    async fn verify(&self, access: &VaultAccess) -> Result<(), VaultError> {
        self.timed("verify", self.0.verify(access)).await
    }

    async fn fetch(
        &self,
        access: &VaultAccess,
        references: &[VaultReference],
        freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        self.timed("fetch", self.0.fetch(access, references, freshness)).await
    }
}

/// `ports` with the credential store and every vault provider metered.
pub(crate) fn metered(mut ports: custodian_ports::Ports) -> custodian_ports::Ports {
    let backend = ports.credential_store.backend();
    ports.credential_store = Arc::new(MeteredStore(ports.credential_store, backend));
    for (vault_type, provider) in &mut ports.vault_providers {
        *provider = Arc::new(MeteredVault(provider.clone(), *vault_type));
    }
    ports
}
