//! Composition root and HTTP server.

use std::fmt;
use std::fs::DirBuilder;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, web};
use anyhow::{Context, bail};
use custodian_core::{Custodian, Ports};
use custodian_crypto::Keyring;
use custodian_http::ApiState;
use custodian_ports::{CredentialStore, StoreBinding, StoreId, UserRepository};
use custodian_store_sql::{Database, LocalCredentialStore, SqlCredentialInventory};

use crate::bootstrap::Bootstrap;
use tracing::Instrument;
use tracing_actix_web::{RequestId, TracingLogger};

use crate::config::CredentialStoreKind;
use crate::stores::{check_binding, local_id, recorded_binding, ssm_id, ssm_store};
use crate::{Config, PepperedTokens};

/// What every command works over: the data directory prepared (mode 0700), the keyring
/// loaded or created, the database migrated, and the core wired to the SQL storage.
pub struct Services {
    pub(crate) config: Config,
    /// The keyring file; `None` when the keyring comes from the configured master key.
    pub(crate) keyring_path: Option<PathBuf>,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) db: Database,
    pub(crate) inventory: SqlCredentialInventory,
    /// The credential store the configuration names.
    pub(crate) configured_store: StoreId,
    applied_migrations: Vec<String>,
    pub(crate) custodian: Custodian,
    /// What `/readyz` reads: the database behind the repositories.
    readiness: Arc<dyn UserRepository>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("config", &self.config)
            .field("keyring", &self.keyring)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Prepare the data directory (mode 0700), connect to and migrate the database, load or
    /// create the keyring (or derive it from the configured master key), and wire the core
    /// with the configuration's settings. Refuses a keyring that cannot open every stored
    /// value, a configuration whose credential store is not the one the database's rows
    /// use, and a database in the middle of a credential-store migration.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let services = Self::connect(config).await?;
        let binding = services.binding().await?;
        check_binding(&binding, &services.configured_store)?;
        Ok(services)
    }

    /// The database's credential-store binding, recorded now if it has none yet.
    pub(crate) async fn binding(&self) -> anyhow::Result<StoreBinding> {
        let local = LocalCredentialStore::new(self.db.clone(), self.keyring.clone(), self.config.tenant_name.clone());
        recorded_binding(
            &self.inventory,
            &local,
            &self.config.tenant_name,
            &self.configured_store,
        )
        .await
    }

    /// [`Services::open`] without the credential-store check: for `store migrate`, whose
    /// work is to make them match.
    pub(crate) async fn connect(config: &Config) -> anyhow::Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
        // A malformed master key stops the start before the database is touched. The crypto
        // error names the rule the key breaks, never the key.
        let from_master_key = config
            .master_key
            .as_ref()
            .map(Keyring::from_master_key)
            .transpose()
            .context("cannot use the configured master key")?;
        let db = Database::connect(secrecy::ExposeSecret::expose_secret(&config.database_url))
            .context("cannot open the database")?;
        let applied_migrations = db.applied_migrations().await.context("cannot migrate the database")?;
        tracing::info!(backend = ?db.backend(), applied = applied_migrations.len(), "database migrated");
        let (keyring, keyring_path) = open_keyring(config, from_master_key, &db).await?;

        let (credential_store, configured_store): (Arc<dyn CredentialStore>, StoreId) = match config.credential_store {
            CredentialStoreKind::Local => (
                Arc::new(LocalCredentialStore::new(
                    db.clone(),
                    keyring.clone(),
                    config.tenant_name.clone(),
                )),
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
        let readiness = repos.users.clone();
        let token_issuer = Arc::new(PepperedTokens::new(keyring.token_hasher()));
        let ports = Ports::new(repos, credential_store, token_issuer);
        let custodian = Custodian::new(ports, config.settings());
        Ok(Self {
            config: config.clone(),
            keyring_path,
            keyring,
            inventory: SqlCredentialInventory::new(db.clone()),
            db,
            configured_store,
            applied_migrations,
            custodian,
            readiness,
        })
    }

    /// The core, for embedding and tests.
    pub fn custodian(&self) -> &Custodian {
        &self.custodian
    }

    /// The versions of the migrations this open applied, in order (empty when the schema
    /// was current).
    pub fn applied_migrations(&self) -> &[String] {
        &self.applied_migrations
    }
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
) -> anyhow::Result<(Arc<Keyring>, Option<PathBuf>)> {
    let path = config.data_dir.join(KEYRING_FILE);
    // Only to ask which key ids the stored values need: its own keyring is not used.
    let unknown = |keyring: &Arc<Keyring>| {
        let store = LocalCredentialStore::new(db.clone(), keyring.clone(), config.tenant_name.clone());
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

/// The keyring file's name in the data directory.
const KEYRING_FILE: &str = "keyring.json";

/// The server, bound and ready to run.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    bootstrap: Option<Bootstrap>,
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Open the [`Services`], create the tenant admin on an empty database, and bind the
    /// listener. Nothing is served until [`run`](Self::run).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let services = Services::open(&config).await?;
        let bootstrap = services
            .custodian
            .bootstrap_first_start()
            .await
            .context("cannot create the tenant admin")?;
        if let Some(b) = &bootstrap {
            tracing::info!(user_id = %b.user.id, email = %b.user.email, "created the tenant admin");
        }

        let listener = TcpListener::bind(&config.bind).with_context(|| format!("cannot listen on {}", config.bind))?;
        let local_addr = listener.local_addr().context("cannot read the listening address")?;
        let state = web::Data::new(ApiState {
            custodian: services.custodian.clone(),
            readiness: services.readiness.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(custodian_http::configure)
                .wrap(from_fn(run_to_completion))
                // Outermost: every request gets its id and span first, and the id is
                // echoed on every answer, errors included.
                .wrap(from_fn(echo_request_id))
                .wrap(TracingLogger::default())
        })
        .listen(listener)
        .with_context(|| format!("cannot serve on {local_addr}"))?
        .run();
        tracing::info!(address = %local_addr, "listening");
        Ok(Self {
            server,
            local_addr,
            bootstrap,
        })
    }

    /// The address the server listens on (the real port when the configuration asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the first start created, once: the token is handed out a single time.
    pub fn take_bootstrap(&mut self) -> Option<Bootstrap> {
        self.bootstrap.take()
    }

    /// Serve until SIGTERM or ctrl-c, then finish the requests in flight.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The name of the header that carries the request id back to the client.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Answer with the request's id (set by [`TracingLogger`]) in `X-Request-Id`: the id of its
/// log span and of its audit events.
async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().copied();
    let mut response = next.call(req).await?;
    if let Some(id) = id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Runs the rest of the request as its own task, so that a client that hangs up does not
/// drop a use case half-way: a database call dropped in flight is what SQLite's blocking
/// connection wrapper (diesel-async) cannot take on a worker's single-threaded runtime, and
/// a use case is better finished (with its audit event) than cut between two writes.
async fn run_to_completion(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let handling = actix_web::rt::spawn(next.call(req).instrument(tracing::Span::current()));
    match handling.await {
        Ok(answer) => answer,
        Err(_) => Err(actix_web::error::ErrorInternalServerError(
            "the request's task was cancelled",
        )),
    }
}
