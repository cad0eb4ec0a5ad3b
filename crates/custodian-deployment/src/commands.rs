//! The operator commands besides `serve` : `migrate`, `bootstrap`, `keys rotate`,
//! `gc` and `store migrate`. Each opens the [`Deployment`] of a configuration, does its work and returns what
//! `main` prints.

use std::fmt;
use std::sync::Arc;

use anyhow::{Context, bail};
use custodian_core::{CleanupReport, MigrationReport, StoreMigration};
use custodian_ports::StoreId;

use crate::Config;
use crate::bootstrap::{BootstrapOutcome, bootstrap_admin};
use crate::config::CredentialStoreKind;
use crate::deployment::{Deployment, Mode};
use crate::stores::{ConfiguredStores, local_id, local_store, ssm_id};

/// How many clean-up tasks one `custodian gc` run takes on by default.
pub const GC_DEFAULT_LIMIT: u32 = 10_000;
/// How many extra passes `keys rotate` makes for values written under an old key while it
/// ran (by a server that was not stopped) before it gives up removing the old keys.
const REWRAP_PASSES: usize = 3;

/// Run the pending migrations; the version of each one applied, in order. Works whatever
/// the credential-store binding says (it touches no credential).
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<String>> {
    let deployment = Deployment::connect(config, Mode::Own).await?;
    Ok(deployment.applied_migrations().to_vec())
}

/// Create the tenant admin `email` with a personal access token, owner of the team `team`
/// (created with `tier`, or joined when the name is taken). Works on a database that has
/// users; a taken email is an error and writes nothing.
pub async fn bootstrap(
    config: &Config,
    email: &str,
    team: &str,
    tier: Option<&str>,
) -> anyhow::Result<BootstrapOutcome> {
    let deployment = Deployment::open(config).await?;
    let outcome = bootstrap_admin(deployment.custodian(), email, team, tier).await?;
    tracing::info!(user_id = %outcome.user.id, team_id = %outcome.team.id, "created a tenant admin");
    Ok(outcome)
}

/// What `keys rotate` did.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// The id of the new active key.
    pub active_key: String,
    /// How many stored credential values were re-wrapped under it.
    pub rewrapped: u64,
    /// The old keys removed from the keyring once nothing used them any more.
    pub removed_keys: Vec<String>,
    /// The old keys kept because values under them remained (a server wrote some while
    /// the rotation ran); run `keys rotate` again with the servers stopped.
    pub kept_keys: Vec<String>,
}

impl fmt::Debug for KeyRotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids only, never key material.
        f.debug_struct("KeyRotation")
            .field("active_key", &self.active_key)
            .field("rewrapped", &self.rewrapped)
            .field("removed_keys", &self.removed_keys)
            .field("kept_keys", &self.kept_keys)
            .finish()
    }
}

/// Add a new active key to the keyring, re-wrap every stored credential under it, then
/// drop the old keys. The keyring file holds the old keys until every value is
/// re-wrapped, so a failure at any step leaves every value readable; running it again
/// finishes the work. Servers load the keyring at start: stop them while it runs.
///
/// Refused when the keyring comes from the configured master key: there is no file to add
/// a key to, and re-wrapping needs the old and the new key configured together.
pub async fn rotate_keys(config: &Config) -> anyhow::Result<KeyRotation> {
    if config.master_key.is_some() {
        bail!(
            "the keyring comes from the configured master key (CUSTODIAN_MASTER_KEY): there is no keyring \
             file to add a key to, and rotating a configured master key is not supported yet"
        );
    }
    let deployment = Deployment::open(config).await?;
    let keyring_path = deployment
        .keyring_path
        .clone()
        .context("the keyring has no file to add a key to")?;
    match config.credential_store {
        CredentialStoreKind::Local => {}
        // The keyring still wraps whatever the database holds (values written before the
        // switch); the parameters in SSM are encrypted by KMS and untouched by this.
        CredentialStoreKind::AwsSsm => tracing::warn!(
            "the credential store is aws-ssm: its parameters are encrypted by the KMS key, which this \
             command does not rotate; only values still in the database are re-wrapped"
        ),
    }
    let mut keyring = (*deployment.keyring).clone();
    let old_keys = keyring.key_ids();
    let active_key = keyring.rotate();
    keyring
        .save(&keyring_path)
        .with_context(|| format!("cannot save the keyring {}", keyring_path.display()))?;
    tracing::info!(active_key = %active_key, "added a new active key to the keyring");

    let keyring = Arc::new(keyring);
    let store = local_store(config, &deployment.db, keyring.clone());
    let mut rewrapped = store
        .rewrap_all()
        .await
        .context("cannot re-wrap the stored credentials; the old keys stay in the keyring")?;
    let mut settled = false;
    for _ in 0..REWRAP_PASSES {
        let more = store
            .rewrap_all()
            .await
            .context("cannot re-wrap the stored credentials; the old keys stay in the keyring")?;
        rewrapped += more;
        if more == 0 {
            settled = true;
            break;
        }
    }
    if !settled {
        tracing::warn!("values are still being written under an old key; the old keys stay in the keyring");
        return Ok(KeyRotation {
            active_key,
            rewrapped,
            removed_keys: Vec::new(),
            kept_keys: old_keys,
        });
    }
    let mut keyring = (*keyring).clone();
    for id in &old_keys {
        keyring
            .remove_key(id)
            .with_context(|| format!("cannot remove the old key {id}"))?;
    }
    keyring
        .save(&keyring_path)
        .with_context(|| format!("cannot save the keyring {}", keyring_path.display()))?;
    tracing::info!(rewrapped, removed = old_keys.len(), "key rotation finished");
    Ok(KeyRotation {
        active_key,
        rewrapped,
        removed_keys: old_keys,
        kept_keys: Vec::new(),
    })
}

/// Retry up to `limit` pending credential clean-up tasks, oldest first.
pub async fn gc(config: &Config, limit: u32) -> anyhow::Result<CleanupReport> {
    let deployment = Deployment::open(config).await?;
    let report = deployment
        .custodian()
        .run_cleanup(limit)
        .await
        .context("cannot read the clean-up queue")?;
    Ok(report)
}

/// Move every stored credential to the `to` store (`custodian store migrate --to …`), as
/// [`StoreMigration`] describes: copy, switch the rows, remove them from the old store.
/// Starts, continues or gives up a migration as the database records it, so an
/// interrupted run is finished by running it again. With `allow_missing`, rows pointing at
/// values the old store does not hold do not stop the switch. Stop the servers first.
pub async fn migrate_store(
    config: &Config,
    to: CredentialStoreKind,
    allow_missing: bool,
) -> anyhow::Result<MigrationReport> {
    let deployment = Deployment::connect(config, Mode::Own).await?;
    deployment.binding().await?;
    let opener = ConfiguredStores::new(config.clone(), deployment.db.clone(), deployment.keyring.clone());
    let target: StoreId = match to {
        CredentialStoreKind::Local => local_id(&config.tenant_name),
        CredentialStoreKind::AwsSsm => ssm_id(&*opener.ssm().await?),
    };
    let mut migration = StoreMigration::new(
        Arc::new(deployment.inventory.clone()),
        Arc::new(custodian_store_sql::SqlCleanupQueue::new(deployment.db.clone())),
        Arc::new(opener),
    );
    migration.allow_missing = allow_missing;
    let report = migration
        .run(&target)
        .await
        .context("the credential-store migration stopped; run the same command again to continue where it stopped")?;
    tracing::info!(
        store = %target,
        copied = report.copied,
        present = report.present,
        replaced = report.replaced,
        missing = report.missing.len(),
        retired = report.retired,
        "the credential store migration is done"
    );
    Ok(report)
}
