//! Composition root and HTTP server.

use std::collections::HashMap;
use std::fmt;
use std::fs::DirBuilder;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use custodian_core::{Custodian, Ports, Settings};
use custodian_crypto::Keyring;
use custodian_http::ApiState;
use custodian_ports::{Clock, IdGenerator, SystemClock, TokenIssuer, UserRepository, UuidV7Ids};
use custodian_store_sql::{
    Database, LocalCredentialStore, SqlAuditRepository, SqlCleanupQueue, SqlLocationRepository,
    SqlMembershipRepository, SqlSecretRepository, SqlTeamRepository, SqlTokenRepository, SqlUserRepository,
    SqlVaultConnectionRepository, SqlVirtualAccountRepository,
};

use crate::bootstrap::{Bootstrap, BootstrapPorts, bootstrap_if_empty};
use crate::{Config, PepperedTokens};

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
    /// Prepare the data directory (mode 0700), load or create the keyring, connect to and
    /// migrate the database, wire the core, create the tenant admin on an empty database,
    /// and bind the listener. Nothing is served until [`run`](Self::run).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
        let keyring_path = config.data_dir.join("keyring.json");
        let (keyring, created) = Keyring::load_or_create(&keyring_path)
            .with_context(|| format!("cannot load the keyring {}", keyring_path.display()))?;
        if created {
            tracing::info!(path = %keyring_path.display(), "created a new keyring");
        }
        let keyring = Arc::new(keyring);

        let db = Database::connect(&config.database_url).context("cannot open the database")?;
        db.migrate().await.context("cannot migrate the database")?;
        tracing::info!(backend = ?db.backend(), "database migrated");

        let users: Arc<dyn UserRepository> = Arc::new(SqlUserRepository::new(db.clone()));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdGenerator> = Arc::new(UuidV7Ids);
        let token_issuer: Arc<dyn TokenIssuer> = Arc::new(PepperedTokens::new(keyring.token_hasher()));
        let ports = Ports {
            users: users.clone(),
            teams: Arc::new(SqlTeamRepository::new(db.clone())),
            memberships: Arc::new(SqlMembershipRepository::new(db.clone())),
            virtual_accounts: Arc::new(SqlVirtualAccountRepository::new(db.clone())),
            tokens: Arc::new(SqlTokenRepository::new(db.clone())),
            secrets: Arc::new(SqlSecretRepository::new(db.clone())),
            locations: Arc::new(SqlLocationRepository::new(db.clone())),
            vault_connections: Arc::new(SqlVaultConnectionRepository::new(db.clone())),
            audit: Arc::new(SqlAuditRepository::new(db.clone())),
            credential_store: Arc::new(LocalCredentialStore::new(
                db.clone(),
                keyring.clone(),
                config.tenant_name.clone(),
            )),
            cleanup: Arc::new(SqlCleanupQueue::new(db.clone())),
            vault_providers: HashMap::new(),
            clock: clock.clone(),
            ids: ids.clone(),
            token_issuer: token_issuer.clone(),
        };
        let custodian = Custodian::new(
            ports,
            Settings {
                tenant_name: config.tenant_name.clone(),
                ..Settings::default()
            },
        );

        let bootstrap = bootstrap_if_empty(
            BootstrapPorts {
                users: users.as_ref(),
                issuer: token_issuer.as_ref(),
                ids: ids.as_ref(),
                clock: clock.as_ref(),
            },
            &custodian,
        )
        .await
        .context("cannot create the tenant admin")?;
        if let Some(b) = &bootstrap {
            tracing::info!(user_id = %b.user.id, email = %b.user.email, "created the tenant admin");
        }

        let listener = TcpListener::bind(&config.bind).with_context(|| format!("cannot listen on {}", config.bind))?;
        let local_addr = listener.local_addr().context("cannot read the listening address")?;
        let state = web::Data::new(ApiState {
            custodian,
            readiness: users,
        });
        let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(custodian_http::configure))
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
