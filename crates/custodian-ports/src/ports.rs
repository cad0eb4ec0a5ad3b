//! The ports bundled as the core consumes them: every storage adapter's repositories in
//! one [`Repositories`], and those with the credential store, the vault providers and the
//! system ports in one [`Ports`].
//!
//! Each adapter crate has one constructor for the ports it provides (the SQL crate's
//! `repositories(&db)`, the test kit's in-memory `MemoryRepos::repositories()`), and
//! [`Ports::new`] is the one way to put them together, so a new port is added here and in
//! each adapter that provides it, never at the places that wire them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use custodian_domain::VaultType;

use crate::{
    AuditRepository, CleanupQueue, Clock, CredentialStore, IdGenerator, LocationRepository, MembershipRepository,
    SecretGroupRepository, SecretRepository, SystemClock, TeamRepository, TokenIssuer, TokenRepository, UserRepository,
    UuidV7Ids, VaultConnectionRepository, VaultProvider, VirtualAccountRepository,
};

/// One of each repository port, all over the same storage, so a record can be followed
/// across them (a secret needs its team, a location its secret).
#[derive(Clone)]
pub struct Repositories {
    /// Users; the rest are the repositories of their namesakes.
    pub users: Arc<dyn UserRepository>,
    pub teams: Arc<dyn TeamRepository>,
    pub memberships: Arc<dyn MembershipRepository>,
    pub virtual_accounts: Arc<dyn VirtualAccountRepository>,
    pub tokens: Arc<dyn TokenRepository>,
    pub secrets: Arc<dyn SecretRepository>,
    pub locations: Arc<dyn LocationRepository>,
    pub vault_connections: Arc<dyn VaultConnectionRepository>,
    pub secret_groups: Arc<dyn SecretGroupRepository>,
    pub audit: Arc<dyn AuditRepository>,
    /// Credential-store clean-up that failed after its commit, for `custodian gc`.
    pub cleanup: Arc<dyn CleanupQueue>,
}

impl fmt::Debug for Repositories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repositories").finish_non_exhaustive()
    }
}

/// Every adapter the core uses, as trait objects. Build it with [`Ports::new`] and adjust
/// it with the `with_*` methods.
#[derive(Clone)]
pub struct Ports {
    /// The storage of every record.
    pub repos: Repositories,
    /// Where managed credentials and vault-connection secrets are kept.
    pub credential_store: Arc<dyn CredentialStore>,
    /// One provider per vault type the deployment supports.
    pub vault_providers: HashMap<VaultType, Arc<dyn VaultProvider>>,
    /// The time every record and audit event is stamped with.
    pub clock: Arc<dyn Clock>,
    /// Ids of new records.
    pub ids: Arc<dyn IdGenerator>,
    /// Generates bearer tokens and computes their digests.
    pub token_issuer: Arc<dyn TokenIssuer>,
}

impl Ports {
    /// The ports of a deployment: its repositories, its credential store and its token
    /// issuer, on the system clock and time-ordered ids, with no vault provider yet.
    pub fn new(
        repos: Repositories,
        credential_store: Arc<dyn CredentialStore>,
        token_issuer: Arc<dyn TokenIssuer>,
    ) -> Self {
        Self {
            repos,
            credential_store,
            vault_providers: HashMap::new(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            token_issuer,
        }
    }

    /// These ports with `provider` serving its vault type (replacing any other for it).
    #[must_use]
    pub fn with_vault_provider(mut self, provider: Arc<dyn VaultProvider>) -> Self {
        self.vault_providers.insert(provider.vault_type(), provider);
        self
    }

    /// These ports stamping records and events with `clock`'s time.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// These ports naming new records with `ids`.
    #[must_use]
    pub fn with_ids(mut self, ids: Arc<dyn IdGenerator>) -> Self {
        self.ids = ids;
        self
    }
}

impl fmt::Debug for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut vaults: Vec<&str> = self.vault_providers.keys().map(|v| v.as_str()).collect();
        vaults.sort_unstable();
        f.debug_struct("Ports")
            .field("credential_store", &self.credential_store.backend())
            .field("vault_providers", &vaults)
            .finish_non_exhaustive()
    }
}
