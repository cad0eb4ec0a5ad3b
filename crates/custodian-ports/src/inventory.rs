//! What the database knows about the credential store as a whole: which store the rows'
//! credentials live in (the *binding*), and every stored credential a row points at (the
//! *inventory*). `custodian store migrate` works from both; every server checks the
//! binding at start.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::credential_store::{CredentialKey, CredentialKind, CredentialStore};
use crate::error::RepoError;

/// One credential store of a deployment: its backend (`local` or `aws-ssm`) and where in
/// it the deployment's values live (`local`: the tenant; `aws-ssm`: `<prefix>/<tenant>`).
/// Two stores with the same backend but another location hold different values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreId {
    pub backend: StoreBackend,
    pub location: String,
}

impl StoreId {
    pub fn new(backend: StoreBackend, location: impl Into<String>) -> Self {
        Self {
            backend,
            location: location.into(),
        }
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.backend, self.location)
    }
}

/// The kinds of credential store a deployment can keep its credentials in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreBackend {
    /// Envelope-encrypted in the deployment's own database (`local`).
    Local,
    /// One SecureString parameter per credential version in AWS SSM Parameter Store
    /// (`aws-ssm`).
    AwsSsm,
}

impl StoreBackend {
    /// Every backend.
    pub const ALL: [StoreBackend; 2] = [StoreBackend::Local, StoreBackend::AwsSsm];

    /// The spelling in the configuration and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreBackend::Local => "local",
            StoreBackend::AwsSsm => "aws-ssm",
        }
    }

    /// The backend spelled `value`, if any.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == value)
    }
}

impl fmt::Display for StoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a [`StoreOpener`] could not open a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreOpenError {
    /// This deployment's configuration does not reach that store (another tenant, another
    /// SSM region or prefix): the message says which setting differs.
    #[error("{0}")]
    Elsewhere(String),
    /// The store could not be set up (its settings are missing or refused, or its service
    /// could not be configured); the message names the cause, never a credential.
    #[error("{0}")]
    Setup(String),
}

/// Opens the credential store a [`StoreId`] names, from the deployment's configuration.
#[async_trait]
pub trait StoreOpener: Send + Sync {
    /// The store `id` names. `Elsewhere` when the configuration reaches another store of
    /// that backend; `Setup` when the store cannot be set up.
    async fn open(&self, id: &StoreId) -> Result<Arc<dyn CredentialStore>, StoreOpenError>;
}

/// Where a `custodian store migrate` run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationPhase {
    /// No migration: the rows' credentials are in the bound store and nowhere else.
    Settled,
    /// Credentials are being copied to `to`; the rows still use the bound store.
    Copying { to: StoreId },
    /// The rows use the bound store; copies left in `from` (the store migrated away from,
    /// or a migration given up) are being removed.
    Retiring { from: StoreId },
}

/// Which store the rows' credentials are in, and what a migration is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreBinding {
    /// The store every row's credentials are read from.
    pub store: StoreId,
    pub phase: MigrationPhase,
}

impl StoreBinding {
    /// A binding to `store` with no migration under way.
    pub fn settled(store: StoreId) -> Self {
        Self {
            store,
            phase: MigrationPhase::Settled,
        }
    }
}

/// One stored credential a row points at: a record and a version of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialRef {
    pub key: CredentialKey,
    pub version: i64,
}

/// Where a page of [`CredentialInventory::references`] starts: after this record and
/// version (records of one kind are ordered by id, then version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefCursor {
    pub record_id: Uuid,
    pub version: i64,
}

/// The database's view of the credential store as a whole. (No mock: the core's tests use
/// a small fake, since a mock cannot take `Option<&StoreBinding>`.)
#[async_trait]
pub trait CredentialInventory: Send + Sync {
    /// The recorded binding; `None` in a database that has never recorded one.
    async fn binding(&self) -> Result<Option<StoreBinding>, RepoError>;

    /// Replace the binding with `next` if it is still `expected` (`None`: no binding is
    /// recorded yet). `Conflict` when it changed meanwhile (another run, another server
    /// claiming it first), and nothing is written. When the bound store changes backend
    /// (the switch of a migration), every secret group's `integration_id` becomes the new
    /// backend's name in the same write: a group's integration is the store its values are in.
    async fn replace_binding(&self, expected: Option<&StoreBinding>, next: &StoreBinding) -> Result<(), RepoError>;

    /// Up to `limit` stored credentials of `kind` that rows point at, across every team,
    /// ordered by record id then version, starting after `after`: the version in use of
    /// each managed storage secret and vault connection, and every version of each
    /// secret-group key.
    async fn references(
        &self,
        kind: CredentialKind,
        after: Option<RefCursor>,
        limit: u32,
    ) -> Result<Vec<CredentialRef>, RepoError>;

    /// Which of `candidates` rows point at (as [`CredentialInventory::references`] counts
    /// them), in any order.
    async fn referenced(&self, candidates: &[CredentialRef]) -> Result<Vec<CredentialRef>, RepoError>;
}
