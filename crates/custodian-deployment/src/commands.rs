//! The operator commands besides `serve` : `migrate`, `bootstrap`, `keys rotate|remove|list`,
//! `gc` and `store migrate`. Each opens the [`Deployment`] of a configuration, does its work and returns what
//! `main` prints.

use std::fmt;
use std::sync::Arc;

use anyhow::{Context, bail};
use custodian_core::{CleanupReport, MigrationReport, StoreMigration, SweepReport};
use custodian_ports::StoreId;
use custodian_store_sql::{KeyRemovalError, LocalCredentialStore, MasterKeyUsage};
use std::os::unix::fs::OpenOptionsExt;

use crate::Config;
use crate::bootstrap::{BootstrapOutcome, bootstrap_admin};
use crate::config::CredentialStoreKind;
use crate::deployment::{Deployment, Mode};
use crate::stores::{ConfiguredStores, local_id, local_store, ssm_id};

/// How many clean-up tasks one `custodian gc` run takes on by default.
pub const GC_DEFAULT_LIMIT: u32 = 10_000;
/// How many times `keys rotate` and `keys remove` re-wrap the values still under an old
/// key (written meanwhile by a server that had not yet learnt of the rotation) before they
/// report what is left.
const REWRAP_PASSES: usize = 5;

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
    /// How many stored values were re-wrapped under it.
    pub rewrapped: u64,
    /// The other keys the database still accepts, with the values still sealed under each
    /// (none once every pass caught up): `custodian keys remove` retires them.
    pub old_keys: Vec<MasterKeyUsage>,
}

impl fmt::Debug for KeyRotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids only, never key material.
        f.debug_struct("KeyRotation")
            .field("active_key", &self.active_key)
            .field("rewrapped", &self.rewrapped)
            .field("old_keys", &self.old_keys)
            .finish()
    }
}

/// Make a new master key the active one and re-wrap every stored value under it, while
/// servers run. Old keys stay accepted (values written under them meanwhile still open);
/// [`remove_keys`] retires them once every server has the new key.
///
/// With a keyring file, a fresh key is added to it (under an exclusive lock, so two
/// rotations never lose a key), and servers reading that file take it up at their next
/// write. With configured master keys, the new key is the configured `master_key`, the old
/// ones are in `previous_master_keys`; the rotation makes it the database's active key.
pub async fn rotate_keys(config: &Config) -> anyhow::Result<KeyRotation> {
    let deployment = Deployment::open(config).await?;
    let store = local_store(config, &deployment.db, deployment.keyring.clone());
    let active_key = match &deployment.keyring_path {
        Some(path) => {
            let _lock = lock_keyring(path)?;
            let mut keyring = (*store.keyring().reload().context("cannot read the keyring file")?).clone();
            let id = keyring.rotate();
            keyring
                .save(path)
                .with_context(|| format!("cannot save the keyring {}", path.display()))?;
            store.keyring().replace(keyring);
            tracing::info!(active_key = %id, path = %path.display(), "added a new key to the keyring file");
            id
        }
        None => {
            let configured = store.keyring().current().active_key_id().to_owned();
            let active = store
                .active_key_id()
                .await
                .context("cannot read the active master key")?;
            if active.as_deref() == Some(configured.as_str()) {
                bail!(
                    "the configured master key {configured} is already the active key: to rotate, configure the \
                     new key as master_key (CUSTODIAN_MASTER_KEY) and the current one in previous_master_keys \
                     (CUSTODIAN_PREVIOUS_MASTER_KEYS), then run this again"
                );
            }
            configured
        }
    };
    store
        .register_keys()
        .await
        .context("cannot record the new key in the database")?;
    store
        .activate(&active_key)
        .await
        .with_context(|| format!("cannot make {active_key} the active key"))?;
    tracing::info!(active_key = %active_key, "new values are sealed under the new key");
    if config.credential_store == CredentialStoreKind::AwsSsm {
        tracing::warn!(
            "the credential store is aws-ssm: its parameters are encrypted by the KMS key, which this command \
             does not rotate; only values still in the database are re-wrapped"
        );
    }
    let rewrapped = rewrap_until_settled(&store).await?;
    let old_keys = store
        .key_usage()
        .await
        .context("cannot read the master keys")?
        .into_iter()
        .filter(|k| !k.active)
        .collect();
    tracing::info!(rewrapped, "key rotation finished");
    Ok(KeyRotation {
        active_key,
        rewrapped,
        old_keys,
    })
}

/// Re-wrap what is not under the active key, pass after pass, until a pass finds nothing
/// (or [`REWRAP_PASSES`] have run). Returns how many values were re-wrapped.
async fn rewrap_until_settled(store: &LocalCredentialStore) -> anyhow::Result<u64> {
    let mut rewrapped = 0;
    for _ in 0..REWRAP_PASSES {
        let more = store
            .rewrap_all()
            .await
            .context("cannot re-wrap the stored credentials; every value still opens, run the command again")?;
        rewrapped += more;
        if more == 0 {
            break;
        }
    }
    Ok(rewrapped)
}

/// What `keys remove` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRemoval {
    /// The keys retired: the database refuses values sealed under them from now on, and
    /// the keyring file no longer holds them.
    pub removed: Vec<String>,
    /// Values re-wrapped first (written under them since the rotation).
    pub rewrapped: u64,
}

/// Which keys `keys remove` retires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeysToRemove {
    /// These ids.
    Ids(Vec<String>),
    /// Every key but the active one.
    AllInactive,
}

/// Retire old master keys: re-wrap what is still sealed under them, then have the
/// database stop accepting them, which it refuses while any value is sealed under one;
/// then drop them from the keyring file. Refused for the active key. Run it once every
/// server has the active key (servers on this data directory pick it up by themselves);
/// a server still sealing under a removed key has its write refused and done again under
/// the active key, or answered 503 when it lacks that key.
pub async fn remove_keys(config: &Config, which: KeysToRemove) -> anyhow::Result<KeyRemoval> {
    let deployment = Deployment::open(config).await?;
    let store = local_store(config, &deployment.db, deployment.keyring.clone());
    let active = store
        .active_key_id()
        .await
        .context("cannot read the active master key")?
        .context("the database has no active master key")?;
    let ids = match which {
        KeysToRemove::Ids(ids) => ids,
        KeysToRemove::AllInactive => store
            .key_usage()
            .await
            .context("cannot read the master keys")?
            .into_iter()
            .filter(|k| !k.active)
            .map(|k| k.id)
            .collect(),
    };
    if ids.contains(&active) {
        bail!("key {active} is the active key: `custodian keys rotate` makes a new key active first");
    }
    let mut rewrapped = 0;
    let mut removed = Vec::new();
    for id in &ids {
        let mut result = Err(KeyRemovalError::InUse(id.clone()));
        for _ in 0..REWRAP_PASSES {
            rewrapped += rewrap_until_settled(&store).await?;
            result = store.remove_key(id).await;
            if !matches!(result, Err(KeyRemovalError::InUse(_))) {
                break;
            }
        }
        match result {
            Ok(()) => removed.push(id.clone()),
            Err(KeyRemovalError::InUse(_)) => bail!(
                "values are still being sealed under {id} after {REWRAP_PASSES} passes: a server without the \
                 active key {active} is running; give it the keyring file (or configure that master key), then \
                 run this again"
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot remove the key {id}")),
        }
        tracing::info!(key_id = %id, "the database no longer accepts values sealed under this key");
    }
    if let Some(path) = &deployment.keyring_path
        && !removed.is_empty()
    {
        let _lock = lock_keyring(path)?;
        let mut keyring = (*store.keyring().reload().context("cannot read the keyring file")?).clone();
        for id in &removed {
            if keyring.has_key(id) {
                keyring
                    .remove_key(id)
                    .with_context(|| format!("cannot remove {id} from the keyring file"))?;
            }
        }
        keyring
            .save(path)
            .with_context(|| format!("cannot save the keyring {}", path.display()))?;
    }
    Ok(KeyRemoval { removed, rewrapped })
}

/// The master keys the database accepts, with the values sealed under each.
pub async fn list_keys(config: &Config) -> anyhow::Result<Vec<MasterKeyUsage>> {
    let deployment = Deployment::open(config).await?;
    let store = local_store(config, &deployment.db, deployment.keyring.clone());
    store.key_usage().await.context("cannot read the master keys")
}

/// Hold an exclusive lock beside the keyring file while it is changed, so that two
/// commands changing it one after the other never lose a key.
fn lock_keyring(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let lock_path = path.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    Ok(file)
}

/// What `custodian gc` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// The clean-up tasks retried.
    pub cleanup: CleanupReport,
    /// The sweep of values no row points at.
    pub sweep: SweepReport,
}

/// Retry up to `limit` pending credential clean-up tasks, oldest first, then remove the
/// stored values no row points at that are older than `orphan_min_age` (the configured one
/// when `None`; a shorter one only with every server stopped, or writes in flight lose
/// their value).
pub async fn gc(config: &Config, limit: u32, orphan_min_age: Option<std::time::Duration>) -> anyhow::Result<GcReport> {
    let deployment = Deployment::open(config).await?;
    let cleanup = deployment
        .custodian()
        .run_cleanup(limit)
        .await
        .context("cannot read the clean-up queue")?;
    let sweep = deployment
        .orphan_sweep()
        .run(match orphan_min_age {
            Some(age) => chrono::Duration::from_std(age).context("the orphan age is out of range")?,
            None => config.orphan_min_age,
        })
        .await
        .context("cannot sweep the credential store")?;
    Ok(GcReport { cleanup, sweep })
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
