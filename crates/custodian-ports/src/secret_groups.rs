//! The secret-group repository: groups, their keys and the version history of each key.
//!
//! Values are not here: version `n` of a key lives in the [`CredentialStore`] under
//! `CredentialKey { team_id, kind: GroupSecret, record_id: key id }`, version `n`. The
//! caller writes values before committing the rows that point at them, and removes them
//! after the rows are gone (this port returns what a delete removed for that purpose).
//!
//! Like every repository port, each write takes the `AuditEvent` that records it and
//! stores both in one transaction; a write that fails records nothing.
//!
//! [`CredentialStore`]: crate::CredentialStore

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditEvent, GroupChanges, GroupName, GroupSecret, GroupSecretId, GroupSecretVersion, KeyFqn, NewGroupKey,
    SecretGroup, SecretGroupId, TeamId, VirtualAccountId,
};

use crate::error::RepoError;
use crate::repositories::{Page, Paged};

/// Which teams a read may see: the caller's teams, or every team (a tenant admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamScope {
    /// Every team of the deployment.
    All,
    /// Only these teams (none: nothing is visible).
    Teams(Vec<TeamId>),
}

impl TeamScope {
    /// Whether a record of `team` is visible in this scope.
    pub fn contains(&self, team: TeamId) -> bool {
        match self {
            TeamScope::All => true,
            TeamScope::Teams(teams) => teams.contains(&team),
        }
    }
}

/// Filters of the group list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    /// Case-insensitive substring of the group's name or of one of its keys.
    pub search: Option<String>,
    /// Exactly this name (a group FQN, parsed).
    pub name: Option<GroupName>,
}

/// Filters of the key list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Only the keys of this group.
    pub secret_group_id: Option<SecretGroupId>,
    /// Only keys named by one of these FQNs (parsed). `Some(vec![])` matches nothing.
    pub fqns: Option<Vec<KeyFqn>>,
}

/// A key with what a reader needs around it: its team (for the credential-store key and the
/// role check), its group's name (for FQNs) and every version, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupKeyDetails {
    pub secret: GroupSecret,
    pub team_id: TeamId,
    pub group_name: GroupName,
    /// Versions 1..=`secret.version` that exist, ascending.
    pub versions: Vec<GroupSecretVersion>,
}

/// What deleting a group removed: the group, and each of its keys with every version, so the
/// caller can remove the values from the credential store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedGroup {
    pub group: SecretGroup,
    /// Ordered by key.
    pub keys: Vec<GroupKeyDetails>,
}

/// Secret groups, their keys and versions, and the reads of key values by virtual accounts.
///
/// Team-scoped calls take a `TeamId`, scoped reads a [`TeamScope`]: a record outside it is
/// `NotFound`, exactly like a record that does not exist. Errors not listed on a method are
/// `Unavailable` (retryable) and `Internal`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SecretGroupRepository: Send + Sync {
    /// Insert `group` with `keys`, each at version 1 (its `first_version`).
    /// `Conflict(DuplicateName)` when a group of that name exists in the tenant (in any team),
    /// or when two of `keys` have the same key; `NotFound` when `group.team_id` is no team.
    async fn create(&self, group: &SecretGroup, keys: &[NewGroupKey], audit: &AuditEvent) -> Result<(), RepoError>;

    /// The group `id` of `team`. `NotFound` when absent or in another team.
    async fn get(&self, team: TeamId, id: SecretGroupId) -> Result<SecretGroup, RepoError>;

    /// The group `id` when it belongs to a team of `scope` (the caller's teams).
    /// `NotFound` when absent or outside the scope.
    async fn get_in(&self, scope: &TeamScope, id: SecretGroupId) -> Result<SecretGroup, RepoError>;

    /// The groups of `scope` matching `filter`, ordered by name, with the total of matches.
    async fn list(&self, scope: &TeamScope, filter: &GroupFilter, page: Page) -> Result<Paged<SecretGroup>, RepoError>;

    /// Every key of the group with its versions, ordered by key.
    /// `NotFound` when the group is absent or in another team.
    async fn keys(&self, team: TeamId, id: SecretGroupId) -> Result<Vec<GroupKeyDetails>, RepoError>;

    /// The keys of each of `groups` (a page of a list), as [`keys`](Self::keys) gives one
    /// group's, by group id. A group without keys has an empty list; a group that is no
    /// longer in its team has no entry. By default one [`keys`](Self::keys) per group; the
    /// SQL repositories read them all at once.
    async fn keys_of_groups(
        &self,
        groups: &[SecretGroup],
    ) -> Result<HashMap<SecretGroupId, Vec<GroupKeyDetails>>, RepoError> {
        let mut keys = HashMap::with_capacity(groups.len());
        for group in groups {
            match self.keys(group.team_id, group.id).await {
                Ok(found) => {
                    keys.insert(group.id, found);
                }
                Err(RepoError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(keys)
    }

    /// Apply an update in one transaction, only while the group's keys are exactly
    /// `changes.expected` (the same ids at the same versions, and no other key): insert
    /// `added` at version 1, insert each of `new_versions` and make it its key's current
    /// version (setting the key's `updated_at/by`), delete `deleted` keys with all their
    /// versions, and set the group's `updated_at/by`.
    /// `NotFound` when the group is absent or in another team; `Conflict(Stale)` when its keys
    /// changed since they were read (nothing is written); `Conflict(DuplicateName)` when two
    /// of `added` have the same key.
    async fn apply(&self, changes: &GroupChanges, audit: &AuditEvent) -> Result<(), RepoError>;

    /// Delete the group, its keys and every version (and their recorded reads).
    /// Returns what was removed. `NotFound` when absent or in another team.
    async fn delete(&self, team: TeamId, id: SecretGroupId, audit: &AuditEvent) -> Result<DeletedGroup, RepoError>;

    /// The key `id` with its versions when its group belongs to a team of `scope`.
    /// `NotFound` when absent or outside the scope.
    async fn get_key(&self, scope: &TeamScope, id: GroupSecretId) -> Result<GroupKeyDetails, RepoError>;

    /// The keys of `scope` matching `filter`, ordered by group name, then key, with the total
    /// of matches. This list takes pages of up to 1000 (`/api/svc/v1/secrets`).
    async fn list_keys(
        &self,
        scope: &TeamScope,
        filter: &KeyFilter,
        page: Page,
    ) -> Result<Paged<GroupKeyDetails>, RepoError>;

    /// Delete one key with every version (and its recorded reads); returns what was removed.
    /// `NotFound` when absent or its group is in another team.
    async fn delete_key(
        &self,
        team: TeamId,
        id: GroupSecretId,
        audit: &AuditEvent,
    ) -> Result<GroupKeyDetails, RepoError>;

    /// Record that virtual account `reader` read a value of key `id` at `at`, with the audit
    /// event of that read. Only the latest read of each account per key is kept.
    /// `NotFound` when the key does not exist.
    async fn record_read(
        &self,
        id: GroupSecretId,
        reader: VirtualAccountId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// For each of `ids`, the number of distinct virtual accounts that read it at or after
    /// `since` (`activeDeploymentsCount` with `since` = now − 24 h). Every id asked for has an
    /// entry; an unknown id counts 0.
    async fn active_readers(
        &self,
        ids: &[GroupSecretId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<GroupSecretId, u64>, RepoError>;
}
