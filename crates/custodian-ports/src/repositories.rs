//! Repository ports. Every write that a user causes takes the `AuditEvent` that records it;
//! the adapter writes both in one transaction, so there is never a change without its
//! event nor an event without its change.
//!
//! Team-scoped reads take the `TeamId`: a record of another team is `NotFound`, exactly
//! like a record that does not exist.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditEvent, Email, LinkedLocation, Location, LocationId, Membership, Name, ResourceType, Role, SecretId,
    SecretType, StorageSecret, SubjectId, Team, TeamId, TokenDigest, TokenId, TokenOwner, TokenRecord, User, UserId,
    VaultConnection, VaultConnectionId, VirtualAccount, VirtualAccountId,
};

use crate::credential_store::SealedCredential;
use crate::error::RepoError;

/// A page request: `limit` 1–200 and `offset`, already checked by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u64,
}

impl Default for Page {
    fn default() -> Self {
        Self { limit: 50, offset: 0 }
    }
}

/// One page of results and the total number of matching records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Insert `user`, and `first_token` with it when given.
    /// `Conflict(DuplicateEmail)` when the email is taken.
    async fn create(&self, user: &User, first_token: Option<TokenRecord>, audit: &AuditEvent) -> Result<(), RepoError>;
    /// `NotFound` when there is no such user.
    async fn get(&self, id: UserId) -> Result<User, RepoError>;
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepoError>;
    /// Users ordered by email.
    async fn list(&self, page: Page) -> Result<Paged<User>, RepoError>;
    async fn count(&self) -> Result<u64, RepoError>;
    /// Replace display name, tenant-admin flag and `disabled_at`, with `audit`, in one
    /// transaction. `NotFound` when there is no such user.
    async fn update(&self, user: &User, audit: &AuditEvent) -> Result<(), RepoError>;
    /// Delete the user with their tokens and memberships, with `audit`, in one transaction.
    /// `NotFound`; `Conflict(LastOwner)` while they are the only owner of a team (checked
    /// with those teams locked, so a concurrent change of owners cannot slip between).
    async fn delete(&self, id: UserId, audit: &AuditEvent) -> Result<(), RepoError>;
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TeamRepository: Send + Sync {
    /// Insert `team` with its first member `owner` (role `Owner`).
    /// `Conflict(DuplicateName)` when a team has that name.
    async fn create(&self, team: &Team, owner: &Membership, audit: &AuditEvent) -> Result<(), RepoError>;
    /// `NotFound` when there is no such team.
    async fn get(&self, id: TeamId) -> Result<Team, RepoError>;
    /// The team named exactly `name`, if any.
    async fn find_by_name(&self, name: &Name) -> Result<Option<Team>, RepoError>;
    /// Every team, ordered by name.
    async fn list_all(&self, page: Page) -> Result<Paged<Team>, RepoError>;
    /// The teams `user` belongs to with the user's role, ordered by name.
    async fn list_for_user(&self, user: UserId, page: Page) -> Result<Paged<(Team, Role)>, RepoError>;
    /// Replace name, description and tier. `NotFound`; `Conflict(DuplicateName)`.
    async fn update(&self, team: &Team, audit: &AuditEvent) -> Result<(), RepoError>;
    /// Delete the team and its memberships and virtual accounts.
    /// `NotFound`; `Conflict(TeamNotEmpty)` while it holds secrets, locations, vault connections
    /// or secret groups.
    async fn delete(&self, id: TeamId, audit: &AuditEvent) -> Result<(), RepoError>;
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait MembershipRepository: Send + Sync {
    /// Add a member. `member_limit` is the team's tier limit (`None`: unlimited), checked in
    /// the same transaction as the insert: `LimitExceeded(Members)` at the limit;
    /// `Conflict(AlreadyMember)`; `NotFound` when the team or user does not exist.
    async fn add(
        &self,
        membership: &Membership,
        member_limit: Option<u32>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;
    /// The membership of `user` in `team`, if any.
    async fn get(&self, team: TeamId, user: UserId) -> Result<Option<Membership>, RepoError>;
    /// The team's members with their users, ordered by email.
    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<(Membership, User)>, RepoError>;
    /// Every membership of `user`.
    async fn list_for_user(&self, user: UserId) -> Result<Vec<Membership>, RepoError>;
    /// Change a member's role. `NotFound`; `Conflict(LastOwner)` when this would leave no owner.
    async fn update_role(
        &self,
        team: TeamId,
        user: UserId,
        role: Role,
        audit: &AuditEvent,
    ) -> Result<Membership, RepoError>;
    /// Remove a member. `NotFound`; `Conflict(LastOwner)` when this would leave no owner.
    async fn remove(&self, team: TeamId, user: UserId, audit: &AuditEvent) -> Result<(), RepoError>;
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait VirtualAccountRepository: Send + Sync {
    /// Insert `account` with its first token. `Conflict(DuplicateName)` when the team has an
    /// account of that name; `NotFound` when the team does not exist.
    async fn create(&self, account: &VirtualAccount, token: &TokenRecord, audit: &AuditEvent) -> Result<(), RepoError>;
    /// `NotFound` when absent or in another team.
    async fn get(&self, team: TeamId, id: VirtualAccountId) -> Result<VirtualAccount, RepoError>;
    /// By id alone (authentication). `NotFound` when absent.
    async fn get_by_id(&self, id: VirtualAccountId) -> Result<VirtualAccount, RepoError>;
    /// The team's accounts, ordered by name.
    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<VirtualAccount>, RepoError>;
    /// Delete the account and its tokens. `NotFound` when absent or in another team.
    async fn delete(&self, team: TeamId, id: VirtualAccountId, audit: &AuditEvent) -> Result<(), RepoError>;
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TokenRepository: Send + Sync {
    /// Insert a token record. `NotFound` when its owner does not exist.
    async fn create(&self, token: &TokenRecord, audit: &AuditEvent) -> Result<(), RepoError>;
    /// The record with this digest, whatever its state (the caller checks expiry/revocation).
    async fn find_by_digest(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, RepoError>;
    /// `NotFound` when absent.
    async fn get(&self, id: TokenId) -> Result<TokenRecord, RepoError>;
    /// Tokens of `owner`, newest first.
    async fn list_for_owner(&self, owner: TokenOwner) -> Result<Vec<TokenRecord>, RepoError>;
    /// A counter that moves forward whenever what a token authenticates as may have
    /// changed: a token revoked or re-dated or removed, a user or a virtual account changed
    /// or removed. It moves with the change's commit, whichever process made it; a process
    /// that remembers authenticated subjects forgets them when it sees it move. Recording a
    /// use ([`touch`](Self::touch)) does not move it.
    async fn identity_epoch(&self) -> Result<u64, RepoError>;
    /// Record a use. Best effort: `NotFound` when the token is gone.
    async fn touch(&self, id: TokenId, at: DateTime<Utc>) -> Result<(), RepoError>;
    /// Set `revoked_at` (a future instant gives a grace period). `NotFound` when absent.
    async fn revoke(&self, id: TokenId, at: DateTime<Utc>, audit: &AuditEvent) -> Result<(), RepoError>;
    /// Revoke every token of `owner` at `revoke_at` (a grace period when in the future) and
    /// insert `replacement`, in one transaction.
    async fn replace_for_owner(
        &self,
        owner: TokenOwner,
        revoke_at: DateTime<Utc>,
        replacement: &TokenRecord,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;
}

/// Filters of the secret list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretFilter {
    pub secret_type: Option<SecretType>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SecretRepository: Send + Sync {
    /// Insert `secret`. `limit` is the team's storage-secret limit (`None`: unlimited),
    /// checked in the same transaction as the insert, so concurrent creates never exceed it:
    /// `LimitExceeded(StorageSecrets)`; `Conflict(DuplicateName)`; `NotFound` when the team,
    /// or the vault connection of an external secret, does not exist in the team.
    async fn create(&self, secret: &StorageSecret, limit: Option<u32>, audit: &AuditEvent) -> Result<(), RepoError>;
    /// [`SecretRepository::create`] with the secret's credentials, which the credential
    /// store sealed for these repositories' database
    /// ([`CredentialStore::seal_for_commit`](crate::CredentialStore::seal_for_commit)),
    /// written in the same transaction: all three, or nothing. Repositories that do not
    /// share a database with the store that sealed them refuse with `Internal` (the
    /// default: repositories without a credential store beside them).
    async fn create_with_credentials(
        &self,
        _secret: &StorageSecret,
        _limit: Option<u32>,
        _audit: &AuditEvent,
        _credentials: &SealedCredential,
    ) -> Result<(), RepoError> {
        Err(RepoError::Internal(
            "these repositories do not write credentials: store them first (`CredentialStore::put`)".into(),
        ))
    }
    /// `NotFound` when absent or in another team.
    async fn get(&self, team: TeamId, id: SecretId) -> Result<StorageSecret, RepoError>;
    /// The secret with the locations that use it, as
    /// [`LocationRepository::linked_to_secret`] gives them, read together (one query on
    /// the SQL backends, so both come from one snapshot). `NotFound` when absent or in
    /// another team.
    async fn get_with_locations(
        &self,
        team: TeamId,
        id: SecretId,
    ) -> Result<(StorageSecret, Vec<LinkedLocation>), RepoError>;
    /// The team's secrets matching `filter`, ordered by name (unique within a team).
    async fn list(&self, team: TeamId, filter: &SecretFilter, page: Page) -> Result<Paged<StorageSecret>, RepoError>;
    /// Replace every mutable field of the secret (matched by team and id), but only while its
    /// stored `credentials_version` is still `expected_version` (optimistic concurrency).
    /// `NotFound`; `Conflict(Stale)` when the version moved; `Conflict(DuplicateName)`.
    async fn update(&self, secret: &StorageSecret, expected_version: i64, audit: &AuditEvent) -> Result<(), RepoError>;
    /// Delete the secret. `NotFound`; `Conflict(SecretInUse)` while a location uses it.
    /// Returns the deleted record (so the caller can remove its credentials).
    async fn delete(&self, team: TeamId, id: SecretId, audit: &AuditEvent) -> Result<StorageSecret, RepoError>;
    /// Number of secrets in the team.
    async fn count(&self, team: TeamId) -> Result<u64, RepoError>;
}

/// Filters of the location list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationFilter {
    pub secret_id: Option<SecretId>,
    pub location_type: Option<SecretType>,
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait LocationRepository: Send + Sync {
    /// Insert `location`. `Conflict(DuplicateName)`; `NotFound` when its secret does not
    /// exist in the same team.
    async fn create(&self, location: &Location, audit: &AuditEvent) -> Result<(), RepoError>;
    /// `NotFound` when absent or in another team.
    async fn get(&self, team: TeamId, id: LocationId) -> Result<Location, RepoError>;
    /// The team's locations matching `filter`, ordered by name then id.
    async fn list(&self, team: TeamId, filter: &LocationFilter, page: Page) -> Result<Paged<Location>, RepoError>;
    /// The locations using `secret` (type and name only), ordered by name.
    async fn linked_to_secret(&self, team: TeamId, secret: SecretId) -> Result<Vec<LinkedLocation>, RepoError>;
    /// Replace every mutable field. `NotFound`; `Conflict(DuplicateName)`; `NotFound` when
    /// the new secret does not exist in the team.
    async fn update(&self, location: &Location, audit: &AuditEvent) -> Result<(), RepoError>;
    /// `NotFound` when absent or in another team.
    async fn delete(&self, team: TeamId, id: LocationId, audit: &AuditEvent) -> Result<(), RepoError>;
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait VaultConnectionRepository: Send + Sync {
    /// Insert `connection`; `limit` is the team's vault-connection limit, checked in the same
    /// transaction: `LimitExceeded(VaultConnections)`; `Conflict(DuplicateName)`; `NotFound`
    /// when the team does not exist.
    async fn create(
        &self,
        connection: &VaultConnection,
        limit: Option<u32>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;
    /// `NotFound` when absent or in another team.
    async fn get(&self, team: TeamId, id: VaultConnectionId) -> Result<VaultConnection, RepoError>;
    /// The team's connections, ordered by name then id.
    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<VaultConnection>, RepoError>;
    /// Number of secrets that use the connection.
    async fn secret_count(&self, team: TeamId, id: VaultConnectionId) -> Result<u64, RepoError>;
    /// Replace every mutable field while `secret_version` is still `expected_secret_version`.
    /// `NotFound`; `Conflict(Stale)`; `Conflict(DuplicateName)`.
    async fn update(
        &self,
        connection: &VaultConnection,
        expected_secret_version: i64,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;
    /// `NotFound`; `Conflict(VaultConnectionInUse)` while a secret uses it.
    async fn delete(
        &self,
        team: TeamId,
        id: VaultConnectionId,
        audit: &AuditEvent,
    ) -> Result<VaultConnection, RepoError>;
}

/// Filters of the audit list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub resource_type: Option<ResourceType>,
    pub actor_id: Option<SubjectId>,
    /// Inclusive lower bound.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub until: Option<DateTime<Utc>>,
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AuditRepository: Send + Sync {
    /// Record an event that goes with no other write (a verify, a resolve, a failed
    /// authentication).
    async fn record(&self, event: &AuditEvent) -> Result<(), RepoError>;
    /// The team's events matching `filter`, newest first (ties broken by id, descending).
    async fn list(&self, team: TeamId, filter: &AuditFilter, page: Page) -> Result<Paged<AuditEvent>, RepoError>;
    /// The tenant's events, which belong to no team (refused authentications, users
    /// created or changed), matching `filter`, newest first.
    async fn list_tenant(&self, filter: &AuditFilter, page: Page) -> Result<Paged<AuditEvent>, RepoError>;
}
