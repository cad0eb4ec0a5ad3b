//! Opening a deployment: its data directory, database, keyring and credential store, with
//! the core wired over them. One composition for the server, the operator commands and
//! the Rust services that embed the core.

use std::fmt;
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use custodian_core::{Custodian, OrphanSweep, Ports};
use custodian_crypto::{Keyring, SharedKeyring};
use custodian_ports::{CredentialInventory, CredentialStore, StoreBinding, StoreId, SystemClock};
use custodian_store_sql::{Database, SqlCredentialInventory};

use crate::config::CredentialStoreKind;
use crate::stores::{check_binding, local_id, local_store, recorded_binding, ssm_id, ssm_store};
use crate::{Config, PepperedTokens};

/// Whether the deployment is opened by its owner (a server or an operator command, which
/// set up and migrate what they need) or attached to by an embedding service (which
/// changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Own,
    Attach,
}

/// A deployment opened from its configuration: its database, its keyring, its credential
/// store and the core wired over them.
///
/// **API Boundary:** this is how a Rust service embeds Custodian over a running
/// deployment: [`Deployment::attach`] with the configuration the servers read, then
/// [`Deployment::custodian`] for the use cases (resolving a storage secret's credentials
/// above all).
pub struct Deployment {
    pub(crate) config: Config,
    /// The keyring file; `None` when the keyring comes from the configured master key.
    pub(crate) keyring_path: Option<PathBuf>,
    pub(crate) keyring: SharedKeyring,
    pub(crate) db: Database,
    pub(crate) inventory: SqlCredentialInventory,
    /// The credential store the configuration names.
    pub(crate) configured_store: StoreId,
    /// The credential store the configuration names (the core's).
    credential_store: Arc<dyn CredentialStore>,
    applied_migrations: Vec<String>,
    pub(crate) custodian: Custodian,
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployment")
            .field("config", &self.config)
            .field("keyring", &self.keyring)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Deployment {
    /// What a server and the operator commands do: prepare the data directory (mode 0700),
    /// connect to and migrate the database, load or create the keyring (or derive it from
    /// the configured master key), record the credential store on a database that has none,
    /// and wire the core with the configuration's settings. Refuses a keyring that cannot
    /// open every stored value, a configuration whose credential store is not the one the
    /// database's rows use, and a database in the middle of a credential-store migration.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let deployment = Self::connect(config, Mode::Own).await?;
        let binding = deployment.binding().await?;
        check_binding(&binding, &deployment.configured_store)?;
        Ok(deployment)
    }

    /// What a Rust service embedding the core does: open the deployment a server set up,
    /// from the same configuration, and change nothing of it. The database's schema must
    /// be current (`custodian migrate` brings it there), the keyring file must exist (or
    /// the master key be configured), and the database must record the configured
    /// credential store with no migration under way. The same checks as [`open`](Self::open)
    /// refuse a keyring that cannot open the stored values.
    pub async fn attach(config: &Config) -> anyhow::Result<Self> {
        let deployment = Self::connect(config, Mode::Attach).await?;
        let binding = deployment
            .inventory
            .binding()
            .await
            .context("cannot read the credential-store binding")?
            .context(
                "the database records no credential store: no Custodian server has started on it yet; start one \
                 (it sets the database up) before attaching a service",
            )?;
        check_binding(&binding, &deployment.configured_store)?;
        Ok(deployment)
    }

    /// The database's credential-store binding, recorded now if it has none yet.
    pub(crate) async fn binding(&self) -> anyhow::Result<StoreBinding> {
        let local = local_store(&self.config, &self.db, self.keyring.clone());
        recorded_binding(
            &self.inventory,
            &local,
            &self.config.tenant_name,
            &self.configured_store,
        )
        .await
    }

    /// [`Deployment::open`] (or [`attach`](Self::attach)) without the credential-store
    /// check: for `store migrate`, whose work is to make them match.
    pub(crate) async fn connect(config: &Config, mode: Mode) -> anyhow::Result<Self> {
        if mode == Mode::Own {
            prepare_data_dir(&config.data_dir)?;
        }
        // A malformed master key stops the start before the database is touched. The crypto
        // error names the rule the key breaks, never the key.
        let from_master_key = match (&config.master_key, config.previous_master_keys.as_slice()) {
            (Some(key), previous) => {
                Some(Keyring::from_master_keys(key, previous).context("cannot use the configured master keys")?)
            }
            (None, []) => None,
            (None, _) => bail!(
                "previous_master_keys (CUSTODIAN_PREVIOUS_MASTER_KEYS) is set but master_key (CUSTODIAN_MASTER_KEY) \
                 is not: previous keys go beside the master key that replaces them"
            ),
        };
        let db = Database::connect_with(
            secrecy::ExposeSecret::expose_secret(&config.database_url),
            config.database_pool_size,
        )
        .context("cannot open the database")?;
        let applied_migrations = match mode {
            Mode::Own => {
                let applied = db.applied_migrations().await.context("cannot migrate the database")?;
                tracing::info!(backend = ?db.backend(), applied = applied.len(), "database migrated");
                applied
            }
            Mode::Attach => {
                let pending = db
                    .pending_migrations()
                    .await
                    .context("cannot read the database's migrations")?;
                if !pending.is_empty() {
                    bail!(
                        "the database's schema is older than this version of Custodian ({} migration(s) pending, \
                         first {}): run `custodian migrate` of this version, or use the version the servers run",
                        pending.len(),
                        pending[0]
                    );
                }
                Vec::new()
            }
        };
        let (keyring, keyring_path) = open_keyring(config, from_master_key, &db, mode).await?;
        let keyring = accept_keys(config, &db, keyring, keyring_path.as_deref(), mode).await?;

        let (credential_store, configured_store): (Arc<dyn CredentialStore>, StoreId) = match config.credential_store {
            CredentialStoreKind::Local => (
                Arc::new(local_store(config, &db, keyring.clone())),
                local_id(&config.tenant_name),
            ),
            CredentialStoreKind::AwsSsm => {
                let store = ssm_store(config).await?;
                let id = ssm_id(&store);
                tracing::info!(
                    store = %id,
                    endpoint_url = config.ssm.endpoint_url.as_deref().unwrap_or("(AWS)"),
                    "credentials are kept in AWS SSM Parameter Store"
                );
                (Arc::new(store), id)
            }
        };
        let repos = custodian_store_sql::repositories(&db);
        let token_issuer = Arc::new(PepperedTokens::new(keyring.current().token_hasher()));
        let mut ports = Ports::new(repos, credential_store.clone(), token_issuer);
        for provider in custodian_vaults::providers(&config.vaults.adapters()?) {
            ports = ports.with_vault_provider(provider);
        }
        let custodian = Custodian::new(ports, config.settings());
        Ok(Self {
            config: config.clone(),
            keyring_path,
            keyring,
            inventory: SqlCredentialInventory::new(db.clone()),
            db,
            configured_store,
            credential_store,
            applied_migrations,
            custodian,
        })
    }

    /// The core over this deployment: every use case.
    pub fn custodian(&self) -> &Custodian {
        &self.custodian
    }

    /// The sweep of the configured credential store for values no row points at.
    pub fn orphan_sweep(&self) -> OrphanSweep {
        OrphanSweep::new(
            Arc::new(self.inventory.clone()),
            self.credential_store.clone(),
            self.configured_store.clone(),
            Arc::new(SystemClock),
        )
    }

    /// Sweep the credential store every `orphan_sweep_interval` (the first time one interval
    /// after the start), in the background, until the handle is aborted; `None` when the
    /// interval is 0. A failed sweep is logged and the next one comes at its time.
    pub fn spawn_orphan_sweeps(&self) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self
            .config
            .orphan_sweep_interval
            .to_std()
            .ok()
            .filter(|i| !i.is_zero())?;
        let min_age = self.config.orphan_min_age;
        let sweep = self.orphan_sweep();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match sweep.run(min_age).await {
                    Ok(report) => tracing::info!(
                        examined = report.examined,
                        removed = report.removed,
                        failed = report.failed,
                        skipped = report.skipped.as_deref().unwrap_or(""),
                        "swept the credential store for values no row points at"
                    ),
                    Err(error) => {
                        tracing::warn!(error = %error.chain(), "the sweep of orphaned credential values failed")
                    }
                }
            }
        }))
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The versions of the migrations this open applied, in order (empty when the schema
    /// was current).
    pub fn applied_migrations(&self) -> &[String] {
        &self.applied_migrations
    }
}

/// Create the data directory (mode 0700), or make an existing one private: it holds the
/// keyring and the SQLite database, which no other local user may read.
fn prepare_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the data directory {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(|| {
            format!(
                "the data directory {} is open to other users (mode {:o}) and cannot be made private; run \
                 `chmod 700 {}`",
                dir.display(),
                mode & 0o777,
                dir.display()
            )
        })?;
        tracing::warn!(
            path = %dir.display(),
            was = format!("{:o}", mode & 0o777),
            "the data directory was open to other users; it is now mode 700"
        );
    }
    Ok(())
}

/// The keyring of the configuration, and its file (`None` for a master key): the one
/// derived from `master_key` when set, else `<data_dir>/keyring.json`, created when missing. Refuses a
/// master key beside a keyring file (the values and tokens of one would not open under
/// the other), and a keyring that lacks a key stored values are sealed under; a keyring
/// file is not created when stored values already need keys it would lack.
async fn open_keyring(
    config: &Config,
    from_master_key: Option<Keyring>,
    db: &Database,
    mode: Mode,
) -> anyhow::Result<(Arc<Keyring>, Option<PathBuf>)> {
    let path = config.data_dir.join(KEYRING_FILE);
    // Only to ask which key ids the stored values need: its own keyring is not used.
    let unknown = |keyring: &Arc<Keyring>| {
        let store = local_store(config, db, keyring.clone());
        let known = keyring.key_ids();
        async move {
            store
                .unknown_key_ids(&known)
                .await
                .context("cannot read which keys the stored credentials are sealed under")
        }
    };
    let (keyring, path) = match from_master_key {
        Some(keyring) => {
            if path.exists() {
                bail!(
                    "a master key is configured (CUSTODIAN_MASTER_KEY), but the keyring file {} exists: values and \
                     tokens written under the file's keys would not open under the master key. Remove \
                     CUSTODIAN_MASTER_KEY to keep using the keyring file, or start on a new database and data \
                     directory to use the master key",
                    path.display()
                );
            }
            tracing::info!(key_id = %keyring.active_key_id(), "the keyring comes from the configured master key");
            (Arc::new(keyring), None)
        }
        None => {
            if mode == Mode::Attach && !path.exists() {
                bail!(
                    "there is no keyring file {} and no master key is configured: attach with the data_dir (or \
                     CUSTODIAN_MASTER_KEY) of the servers",
                    path.display()
                );
            }
            if !path.exists() {
                // Ask before creating a file whose new key could open none of them: a keyring
                // of one fresh key lacks every key the stored values need.
                let needed = unknown(&Arc::new(Keyring::generate())).await?;
                if !needed.is_empty() {
                    bail!(
                        "the database holds credentials sealed under the key(s) {}, but there is no keyring file \
                         {} and no master key is configured: start with the CUSTODIAN_MASTER_KEY (or restore the \
                         keyring file) they were written with",
                        needed.join(", "),
                        path.display()
                    );
                }
            }
            let (keyring, created) = Keyring::load_or_create(&path)
                .with_context(|| format!("cannot load the keyring {}", path.display()))?;
            if created {
                tracing::info!(path = %path.display(), "created a new keyring");
            }
            (Arc::new(keyring), Some(path))
        }
    };
    let missing = unknown(&keyring).await?;
    // Keys `keys remove` retired hold no value any more: the keyring may still list them.
    if !missing.is_empty() {
        let source = match &path {
            Some(path) => format!("the keyring file {}", path.display()),
            None => "the configured master key (CUSTODIAN_MASTER_KEY)".to_owned(),
        };
        bail!(
            "the database holds credentials sealed under the key(s) {}, which {source} does not have \
             (it has {}): start with the keyring file or CUSTODIAN_MASTER_KEY they were written with",
            missing.join(", "),
            keyring.key_ids().join(", ")
        );
    }
    Ok((keyring, path))
}

/// The keyring as this process shares it with the rotations of others: read again from its
/// file when a key it lacks is needed. An owner records its keys as ones the database
/// accepts (its active key becomes the database's on first use) and checks that it can
/// seal new values. A keyring of configured master keys gets the token pepper sealed in
/// the database, so tokens outlive the key it was first derived from.
async fn accept_keys(
    config: &Config,
    db: &Database,
    keyring: Arc<Keyring>,
    path: Option<&std::path::Path>,
    mode: Mode,
) -> anyhow::Result<SharedKeyring> {
    let shared = match path {
        Some(path) => SharedKeyring::from_file((*keyring).clone(), path),
        None => SharedKeyring::fixed((*keyring).clone()),
    };
    let store = local_store(config, db, shared.clone());
    // A keyring of configured master keys takes its token pepper from the database.
    let sealed_pepper = match path {
        Some(_) => None,
        None => store
            .sealed_pepper()
            .await
            .context("cannot open the token pepper kept in the database")?,
    };
    if mode == Mode::Own {
        if path.is_none() && sealed_pepper.is_none() {
            // Before the keys are recorded: a database from before it recorded them knows
            // only the keys its values are sealed under, one of which the pepper came from.
            let known = store
                .key_usage()
                .await
                .context("cannot read the master keys the database accepts")?;
            let mut configured = (*keyring).clone();
            if let Some(oldest) = configured
                .key_ids()
                .into_iter()
                .find(|id| known.iter().any(|k| k.id == *id))
            {
                configured.derive_pepper_from(&oldest)?;
                shared.replace(configured);
            }
        }
        store
            .register_keys()
            .await
            .context("cannot record the keyring's keys in the database")?;
        store
            .sealing_key_id()
            .await
            .context("this server cannot seal new values")?;
    }
    if path.is_none() {
        let pepper = match (sealed_pepper, mode) {
            (Some(pepper), _) => Some(pepper),
            (None, Mode::Own) => Some(
                store
                    .seal_pepper_once(&shared.current().pepper())
                    .await
                    .context("cannot keep the token pepper in the database")?,
            ),
            (None, Mode::Attach) => None,
        };
        if let Some(pepper) = pepper {
            let mut keyring = (*shared.current()).clone();
            keyring.set_pepper(&pepper)?;
            shared.replace(keyring);
        }
    }
    Ok(shared)
}

/// The keyring file's name in the data directory.
const KEYRING_FILE: &str = "keyring.json";
