use std::any::Any;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_domain::TeamId;
use secrecy::SecretString;
use uuid::Uuid;

/// What kind of record a stored credential belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialKind {
    /// The credentials of a managed storage secret.
    StorageSecret,
    /// The access token or client secret of a vault connection.
    VaultConnection,
    /// The value of one key of a secret group.
    GroupSecret,
}

impl CredentialKind {
    pub const ALL: &'static [CredentialKind] = &[
        CredentialKind::StorageSecret,
        CredentialKind::VaultConnection,
        CredentialKind::GroupSecret,
    ];

    /// Stable spelling used in storage paths and associated data.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialKind::StorageSecret => "storage-secret",
            CredentialKind::VaultConnection => "vault-connection",
            CredentialKind::GroupSecret => "group-secret",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == value)
    }
}

/// Which record a stored credential belongs to. The tenant is the store's own setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialKey {
    pub team_id: TeamId,
    pub kind: CredentialKind,
    pub record_id: Uuid,
}

impl fmt::Display for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.team_id, self.kind.as_str(), self.record_id)
    }
}

/// One stored version, as [`CredentialStore::list_stored`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredVersion {
    pub key: CredentialKey,
    pub version: i64,
    /// When it was written (its last change, for a store that rewrites in place).
    pub written_at: DateTime<Utc>,
}

/// A page of [`CredentialStore::list_stored`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredPage {
    pub versions: Vec<StoredVersion>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<String>,
}

/// A credential version sealed by a store that keeps its values in the repositories' own
/// database ([`CredentialStore::seal_for_commit`]), for the repositories to write in the
/// transaction of the row that points at it
/// ([`SecretRepository::create_with_credentials`](crate::SecretRepository::create_with_credentials)):
/// one commit instead of the store's and then the row's. What it holds is the store
/// adapter's own (ciphertext and the wrapped data key, never the value); `Debug` shows the
/// key and version only.
pub struct SealedCredential {
    key: CredentialKey,
    version: i64,
    sealed: Box<dyn Any + Send + Sync>,
}

impl SealedCredential {
    /// `version` of `key`, as the store adapter's `sealed` form.
    pub fn new(key: CredentialKey, version: i64, sealed: impl Any + Send + Sync) -> Self {
        Self {
            key,
            version,
            sealed: Box::new(sealed),
        }
    }

    pub fn key(&self) -> &CredentialKey {
        &self.key
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    /// The sealed form, when it is a `T` (the adapter that sealed it reads it back).
    pub fn sealed<T: Any>(&self) -> Option<&T> {
        self.sealed.downcast_ref()
    }
}

impl fmt::Debug for SealedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedCredential")
            .field("key", &self.key)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What a credential store can fail with. Messages never hold a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such record, or no such version of it.
    #[error("credentials not found")]
    NotFound,
    /// That version of the record is already stored.
    #[error("that credential version already exists")]
    AlreadyExists,
    /// The store refuses the value or key before trying (size, name rules); not retryable.
    #[error("the credential store refuses this value: {0}")]
    Rejected(String),
    /// The stored data cannot be decrypted or authenticated (wrong key, moved or tampered).
    #[error("stored credentials failed their integrity check")]
    Integrity,
    /// The store is down, throttling or timed out; retry after `retry_after` if given.
    #[error("credential store unavailable: {message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Anything else.
    #[error("credential store error: {0}")]
    Internal(String),
}

/// Where managed credentials and vault-connection secrets are kept, encrypted.
///
/// A record (`CredentialKey`) has numbered versions 1, 2, 3…; the metadata row names the
/// version in use. Writes of a new version never touch older ones, so a row that is not
/// yet committed never leaves another row pointing at missing data.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// The backend's configuration name: `local` or `aws-ssm`.
    fn backend(&self) -> &'static str;

    /// Store `value` as `version` of `key`.
    /// `AlreadyExists` when that version is already stored; `Rejected` when the value or key
    /// breaks the backend's rules; `Unavailable` on a transient failure.
    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError>;

    /// `value` sealed as `version` of `key` for the repositories to write in the same
    /// transaction as the row that points at it, when this store keeps its values in their
    /// database; `None` (the default) when it is written on its own, with
    /// [`CredentialStore::put`] before the row. Nothing is written here. Errors as `put`'s.
    async fn seal_for_commit(
        &self,
        _key: &CredentialKey,
        _version: i64,
        _value: &SecretString,
    ) -> Result<Option<SealedCredential>, StoreError> {
        Ok(None)
    }

    /// The value stored as `version` of `key`.
    /// `NotFound` when the record or version is absent; `Integrity` when it cannot be decrypted.
    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError>;

    /// Remove `version` of `key` (undoing a put whose row was not committed).
    /// Succeeds when it is already absent.
    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError>;

    /// Remove every version of `key` older than `keep`. Succeeds when there are none.
    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError>;

    /// Remove every version of `key`. Succeeds when nothing is stored.
    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError>;

    /// Up to about `limit` versions of the deployment's tenant stored now, from where
    /// `page` (a previous page's `next`) says, in an order of the store's choosing: what
    /// the sweep of orphaned values goes through. The token is the store's own.
    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError>;
}
