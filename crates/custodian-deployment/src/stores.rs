//! Which credential store the deployment's credentials are in, as the database records it
//! (the *binding*), against which store the configuration names; and opening either store
//! for `custodian store migrate`.

use std::sync::Arc;

use anyhow::{Context, bail};
use async_trait::async_trait;
use custodian_crypto::SharedKeyring;
use custodian_ports::{
    ConflictKind, CredentialInventory, CredentialStore, MigrationPhase, RepoError, StoreBackend, StoreBinding, StoreId,
    StoreOpenError, StoreOpener,
};
use custodian_store_sql::{Database, LocalCredentialStore};
use custodian_store_ssm::{SsmCredentialStore, SsmSettings};
use tokio::sync::OnceCell;

use crate::Config;

/// The `local` credential store of the configuration's tenant, over `db`, sealing with
/// `keyring`.
pub(crate) fn local_store(config: &Config, db: &Database, keyring: impl Into<SharedKeyring>) -> LocalCredentialStore {
    LocalCredentialStore::new(db.clone(), keyring, config.tenant_name.clone())
}

/// The `local` store of `tenant`.
pub(crate) fn local_id(tenant: &str) -> StoreId {
    StoreId::new(StoreBackend::Local, tenant)
}

/// The `aws-ssm` store `store` reaches.
pub(crate) fn ssm_id(store: &SsmCredentialStore) -> StoreId {
    StoreId::new(StoreBackend::AwsSsm, store.location())
}

/// The recorded binding. A database that has none yet records one now: the `local` store
/// when it holds values of this tenant (a deployment from before the database recorded
/// its store), the `configured` store otherwise.
pub(crate) async fn recorded_binding(
    inventory: &dyn CredentialInventory,
    local: &LocalCredentialStore,
    tenant: &str,
    configured: &StoreId,
) -> anyhow::Result<StoreBinding> {
    if let Some(binding) = inventory
        .binding()
        .await
        .context("cannot read the credential-store binding")?
    {
        return Ok(binding);
    }
    let holds_local = local
        .holds_values()
        .await
        .context("cannot check the local credential store")?;
    let store = if holds_local {
        local_id(tenant)
    } else {
        configured.clone()
    };
    let binding = StoreBinding::settled(store);
    match inventory.replace_binding(None, &binding).await {
        Ok(()) => {
            tracing::info!(store = %binding.store, "recorded the credential store in the database");
            Ok(binding)
        }
        // Another server recorded it first: theirs stands.
        Err(RepoError::Conflict(ConflictKind::Stale)) => inventory
            .binding()
            .await
            .context("cannot read the credential-store binding")?
            .context("the credential-store binding vanished while it was recorded"),
        Err(error) => Err(error).context("cannot record the credential-store binding"),
    }
}

/// Refuse to serve (or run a command) over a store other than the one the rows use, or in
/// the middle of a migration.
pub(crate) fn check_binding(binding: &StoreBinding, configured: &StoreId) -> anyhow::Result<()> {
    let store = &binding.store;
    match &binding.phase {
        MigrationPhase::Copying { to } => bail!(
            "a credential-store migration from {store} to {to} was interrupted; finish it with \
             `custodian store migrate --to {}`, or give it up with `custodian store migrate --to {}`",
            to.backend,
            store.backend
        ),
        _ if store != configured => bail!(
            "the database's credentials are in {store}, but the configuration names {configured}; \
             move them with `custodian store migrate --to {}` (servers stopped), or configure {store}",
            configured.backend
        ),
        MigrationPhase::Retiring { from } => {
            tracing::warn!(
                retired = %from,
                "credentials of a finished migration remain in the retired store; run \
                 `custodian store migrate --to {}` to remove them",
                store.backend
            );
            Ok(())
        }
        MigrationPhase::Settled => Ok(()),
    }
}

/// Opens either store from the configuration, for `custodian store migrate`. The SSM
/// store is set up once (loading the AWS configuration and credential chain) however
/// often a migration opens it.
pub(crate) struct ConfiguredStores {
    config: Config,
    db: Database,
    keyring: SharedKeyring,
    ssm: OnceCell<Arc<SsmCredentialStore>>,
}

impl ConfiguredStores {
    pub(crate) fn new(config: Config, db: Database, keyring: SharedKeyring) -> Self {
        Self {
            config,
            db,
            keyring,
            ssm: OnceCell::new(),
        }
    }

    /// The store the `[ssm]` settings configure.
    pub(crate) async fn ssm(&self) -> anyhow::Result<Arc<SsmCredentialStore>> {
        self.ssm
            .get_or_try_init(|| async { ssm_store(&self.config).await.map(Arc::new) })
            .await
            .cloned()
    }
}

#[async_trait]
impl StoreOpener for ConfiguredStores {
    async fn open(&self, id: &StoreId) -> Result<Arc<dyn CredentialStore>, StoreOpenError> {
        let tenant = &self.config.tenant_name;
        match id.backend {
            StoreBackend::Local => {
                if id.location != *tenant {
                    return Err(StoreOpenError::Elsewhere(format!(
                        "its values belong to the tenant {}, the configuration's tenant_name is {tenant}",
                        id.location
                    )));
                }
                Ok(Arc::new(local_store(&self.config, &self.db, self.keyring.clone())))
            }
            StoreBackend::AwsSsm => {
                let store = self.ssm().await.map_err(|e| StoreOpenError::Setup(format!("{e:#}")))?;
                let reached = store.location();
                if reached != id.location {
                    return Err(StoreOpenError::Elsewhere(format!(
                        "the configuration's [ssm] region, prefix and tenant_name reach {reached}, not {}",
                        id.location
                    )));
                }
                Ok(store)
            }
        }
    }
}

/// The `aws-ssm` store of the configuration: its `[ssm]` settings, the tenant as the level
/// under the prefix, AWS credentials (and the region when unset) from the SDK's chain. A
/// prefix or tenant SSM would refuse, or no region at all, stops the start here.
pub(crate) async fn ssm_store(config: &Config) -> anyhow::Result<SsmCredentialStore> {
    let ssm = &config.ssm;
    let settings = SsmSettings {
        region: ssm.region.clone(),
        endpoint_url: ssm.endpoint_url.clone(),
        prefix: ssm.prefix.clone(),
        kms_key_id: ssm.kms_key_id.clone(),
        ..SsmSettings::new(config.tenant_name.clone())
    };
    SsmCredentialStore::connect(settings)
        .await
        .context("cannot set up the aws-ssm credential store")
}
