//! In-memory fakes of every repository port, over one shared state.
//!
//! [`MemoryRepos`] implements all nine repository ports on a single `Mutex<State>`, so the
//! rules that cross ports hold exactly as in a database: a secret needs its team, a
//! location its secret, a team cannot be deleted while it holds secrets, and every write
//! appends its audit event under the same lock as the change (all or nothing). Each method
//! follows its port's doc comment; the contract suites run against this fake as they do
//! against SQLite and PostgreSQL.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditEvent, Email, LimitKind, LinkedLocation, Location, LocationId, Membership, Name, Role, SecretId,
    SecretStorage, StorageSecret, Team, TeamId, TokenDigest, TokenId, TokenOwner, TokenRecord, User, UserId,
    VaultConnection, VaultConnectionId, VirtualAccount, VirtualAccountId,
};
use custodian_ports::{
    AuditFilter, AuditRepository, ConflictKind, LocationFilter, LocationRepository, MembershipRepository, Page, Paged,
    Ports, RepoError, Repositories, SecretFilter, SecretRepository, TeamRepository, TokenRepository, UserRepository,
    VaultConnectionRepository, VirtualAccountRepository,
};

use crate::memory_cleanup::MemoryCleanupQueue;
use crate::memory_groups::MemorySecretGroups;
use crate::memory_store::MemoryCredentialStore;

/// Everything the fake stores.
#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    teams: HashMap<TeamId, Team>,
    memberships: HashMap<(TeamId, UserId), Membership>,
    virtual_accounts: HashMap<VirtualAccountId, VirtualAccount>,
    tokens: HashMap<TokenId, TokenRecord>,
    secrets: HashMap<SecretId, StorageSecret>,
    locations: HashMap<LocationId, Location>,
    vault_connections: HashMap<VaultConnectionId, VaultConnection>,
    audit: Vec<AuditEvent>,
    /// Moves forward with every change to what a token authenticates as.
    identity_epoch: u64,
}

impl State {
    fn owner_exists(&self, owner: TokenOwner) -> bool {
        match owner {
            TokenOwner::User(id) => self.users.contains_key(&id),
            TokenOwner::VirtualAccount(id) => self.virtual_accounts.contains_key(&id),
        }
    }

    fn owner_count(&self, team: TeamId) -> usize {
        self.memberships
            .values()
            .filter(|m| m.team_id == team && m.role == Role::Owner)
            .count()
    }

    fn secret_in_team(&self, team: TeamId, id: SecretId) -> Option<&StorageSecret> {
        self.secrets.get(&id).filter(|s| s.team_id == team)
    }

    fn location_in_team(&self, team: TeamId, id: LocationId) -> Option<&Location> {
        self.locations.get(&id).filter(|l| l.team_id == team)
    }

    fn connection_in_team(&self, team: TeamId, id: VaultConnectionId) -> Option<&VaultConnection> {
        self.vault_connections.get(&id).filter(|c| c.team_id == team)
    }

    fn insert_token(&mut self, token: &TokenRecord) {
        self.tokens.insert(token.id, token.clone());
    }
}

/// Fails with `LimitExceeded { kind, limit }` when `count` has reached `limit`.
fn check_limit(kind: LimitKind, limit: Option<u32>, count: usize) -> Result<(), RepoError> {
    match limit {
        Some(limit) if count >= usize::try_from(limit).unwrap_or(usize::MAX) => {
            Err(RepoError::LimitExceeded { kind, limit })
        }
        _ => Ok(()),
    }
}

fn conflict(kind: ConflictKind) -> RepoError {
    RepoError::Conflict(kind)
}

/// One page of `items` (already filtered and ordered) with the total.
fn paged<T>(items: Vec<T>, page: Page) -> Paged<T> {
    let total = items.len() as u64;
    let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    Paged {
        items: items.into_iter().skip(offset).take(limit).collect(),
        total,
    }
}

/// An honest in-memory implementation of every repository port, all over one state.
///
/// Cloning gives another handle on the same state.
#[derive(Debug, Clone, Default)]
pub struct MemoryRepos {
    state: Arc<Mutex<State>>,
}

impl MemoryRepos {
    /// A fresh, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// One of each repository port, all over this store (secret groups and the clean-up
    /// queue in memory beside it).
    pub fn repositories(&self) -> Repositories {
        let teams: Arc<dyn TeamRepository> = Arc::new(self.clone());
        let audit: Arc<dyn AuditRepository> = Arc::new(self.clone());
        Repositories {
            users: Arc::new(self.clone()),
            memberships: Arc::new(self.clone()),
            virtual_accounts: Arc::new(self.clone()),
            tokens: Arc::new(self.clone()),
            secrets: Arc::new(self.clone()),
            locations: Arc::new(self.clone()),
            vault_connections: Arc::new(self.clone()),
            secret_groups: Arc::new(MemorySecretGroups::new(teams.clone(), audit.clone())),
            audit,
            teams,
            cleanup: Arc::new(MemoryCleanupQueue::default()),
        }
    }

    /// The ports of a deployment over this store: its repositories, an in-memory
    /// credential store and the test token issuer.
    pub fn ports(&self) -> Ports {
        Ports::new(
            self.repositories(),
            Arc::new(MemoryCredentialStore::default()),
            crate::tokens::token_issuer(),
        )
    }

    /// The state, even after a panic in another test thread (the state stays consistent:
    /// every write checks all its rules before it changes anything).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl UserRepository for MemoryRepos {
    async fn create(&self, user: &User, first_token: Option<TokenRecord>, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if s.users.values().any(|u| u.email == user.email) {
            return Err(conflict(ConflictKind::DuplicateEmail));
        }
        s.users.insert(user.id, user.clone());
        if let Some(token) = first_token {
            s.insert_token(&token);
        }
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn get(&self, id: UserId) -> Result<User, RepoError> {
        self.lock().users.get(&id).cloned().ok_or(RepoError::NotFound)
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        Ok(self.lock().users.values().find(|u| &u.email == email).cloned())
    }

    async fn list(&self, page: Page) -> Result<Paged<User>, RepoError> {
        let mut users: Vec<User> = self.lock().users.values().cloned().collect();
        users.sort_by(|a, b| a.email.cmp(&b.email).then(a.id.cmp(&b.id)));
        Ok(paged(users, page))
    }

    async fn count(&self) -> Result<u64, RepoError> {
        Ok(self.lock().users.len() as u64)
    }

    async fn update(&self, user: &User, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        s.identity_epoch += 1;
        let stored = s.users.get_mut(&user.id).ok_or(RepoError::NotFound)?;
        stored.display_name = user.display_name.clone();
        stored.tenant_admin = user.tenant_admin;
        stored.disabled_at = user.disabled_at;
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn delete(&self, id: UserId, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        s.identity_epoch += 1;
        if !s.users.contains_key(&id) {
            return Err(RepoError::NotFound);
        }
        let sole_owner = s.memberships.values().any(|m| {
            m.user_id == id
                && m.role == Role::Owner
                && !s
                    .memberships
                    .values()
                    .any(|o| o.team_id == m.team_id && o.role == Role::Owner && o.user_id != id)
        });
        if sole_owner {
            return Err(conflict(ConflictKind::LastOwner));
        }
        s.users.remove(&id);
        s.memberships.retain(|_, m| m.user_id != id);
        s.tokens.retain(|_, t| t.owner != TokenOwner::User(id));
        s.audit.push(audit.clone());
        Ok(())
    }
}

#[async_trait]
impl TeamRepository for MemoryRepos {
    async fn create(&self, team: &Team, owner: &Membership, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if !s.users.contains_key(&owner.user_id) {
            return Err(RepoError::NotFound);
        }
        if s.teams.values().any(|t| t.name == team.name) {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        s.teams.insert(team.id, team.clone());
        let membership = Membership {
            team_id: team.id,
            role: Role::Owner,
            ..owner.clone()
        };
        s.memberships.insert((team.id, owner.user_id), membership);
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn get(&self, id: TeamId) -> Result<Team, RepoError> {
        self.lock().teams.get(&id).cloned().ok_or(RepoError::NotFound)
    }

    async fn find_by_name(&self, name: &Name) -> Result<Option<Team>, RepoError> {
        Ok(self.lock().teams.values().find(|t| t.name == *name).cloned())
    }

    async fn list_all(&self, page: Page) -> Result<Paged<Team>, RepoError> {
        let mut teams: Vec<Team> = self.lock().teams.values().cloned().collect();
        teams.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(paged(teams, page))
    }

    async fn list_for_user(&self, user: UserId, page: Page) -> Result<Paged<(Team, Role)>, RepoError> {
        let s = self.lock();
        let mut teams: Vec<(Team, Role)> = s
            .memberships
            .values()
            .filter(|m| m.user_id == user)
            .filter_map(|m| s.teams.get(&m.team_id).map(|t| (t.clone(), m.role)))
            .collect();
        teams.sort_by(|(a, _), (b, _)| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(paged(teams, page))
    }

    async fn update(&self, team: &Team, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if !s.teams.contains_key(&team.id) {
            return Err(RepoError::NotFound);
        }
        if s.teams.values().any(|t| t.id != team.id && t.name == team.name) {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        if s.teams.get(&team.id).is_some_and(|stored| stored.tier != team.tier) {
            // Servers remember tiers as they remember subjects.
            s.identity_epoch += 1;
        }
        if let Some(stored) = s.teams.get_mut(&team.id) {
            stored.name = team.name.clone();
            stored.description = team.description.clone();
            stored.tier = team.tier;
            stored.updated_at = team.updated_at;
        }
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn delete(&self, id: TeamId, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        s.identity_epoch += 1;
        if !s.teams.contains_key(&id) {
            return Err(RepoError::NotFound);
        }
        let holds_something = s.secrets.values().any(|x| x.team_id == id)
            || s.locations.values().any(|x| x.team_id == id)
            || s.vault_connections.values().any(|x| x.team_id == id);
        if holds_something {
            return Err(conflict(ConflictKind::TeamNotEmpty));
        }
        s.teams.remove(&id);
        s.memberships.retain(|(team, _), _| *team != id);
        let accounts: Vec<VirtualAccountId> = s
            .virtual_accounts
            .values()
            .filter(|a| a.team_id == id)
            .map(|a| a.id)
            .collect();
        for account in &accounts {
            s.virtual_accounts.remove(account);
        }
        s.tokens
            .retain(|_, t| !matches!(t.owner, TokenOwner::VirtualAccount(a) if accounts.contains(&a)));
        s.audit.push(audit.clone());
        Ok(())
    }
}

#[async_trait]
impl MembershipRepository for MemoryRepos {
    async fn add(
        &self,
        membership: &Membership,
        member_limit: Option<u32>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let mut s = self.lock();
        if !s.teams.contains_key(&membership.team_id) || !s.users.contains_key(&membership.user_id) {
            return Err(RepoError::NotFound);
        }
        if s.memberships.contains_key(&(membership.team_id, membership.user_id)) {
            return Err(conflict(ConflictKind::AlreadyMember));
        }
        let members = s.memberships.keys().filter(|(t, _)| *t == membership.team_id).count();
        check_limit(LimitKind::Members, member_limit, members)?;
        s.memberships
            .insert((membership.team_id, membership.user_id), membership.clone());
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn get(&self, team: TeamId, user: UserId) -> Result<Option<Membership>, RepoError> {
        Ok(self.lock().memberships.get(&(team, user)).cloned())
    }

    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<(Membership, User)>, RepoError> {
        let s = self.lock();
        let mut members: Vec<(Membership, User)> = s
            .memberships
            .values()
            .filter(|m| m.team_id == team)
            .filter_map(|m| s.users.get(&m.user_id).map(|u| (m.clone(), u.clone())))
            .collect();
        members.sort_by(|(_, a), (_, b)| a.email.cmp(&b.email).then(a.id.cmp(&b.id)));
        Ok(paged(members, page))
    }

    async fn list_for_user(&self, user: UserId) -> Result<Vec<Membership>, RepoError> {
        let mut memberships: Vec<Membership> = self
            .lock()
            .memberships
            .values()
            .filter(|m| m.user_id == user)
            .cloned()
            .collect();
        memberships.sort_by_key(|m| m.team_id);
        Ok(memberships)
    }

    async fn update_role(
        &self,
        team: TeamId,
        user: UserId,
        role: Role,
        audit: &AuditEvent,
    ) -> Result<Membership, RepoError> {
        let mut s = self.lock();
        let current = s.memberships.get(&(team, user)).ok_or(RepoError::NotFound)?.role;
        if current == Role::Owner && role != Role::Owner && s.owner_count(team) <= 1 {
            return Err(conflict(ConflictKind::LastOwner));
        }
        let updated = s.memberships.get_mut(&(team, user)).map(|m| {
            m.role = role;
            m.clone()
        });
        let updated = updated.ok_or(RepoError::NotFound)?;
        s.audit.push(audit.clone());
        Ok(updated)
    }

    async fn remove(&self, team: TeamId, user: UserId, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        let current = s.memberships.get(&(team, user)).ok_or(RepoError::NotFound)?.role;
        if current == Role::Owner && s.owner_count(team) <= 1 {
            return Err(conflict(ConflictKind::LastOwner));
        }
        s.memberships.remove(&(team, user));
        s.audit.push(audit.clone());
        Ok(())
    }
}

#[async_trait]
impl VirtualAccountRepository for MemoryRepos {
    async fn create(&self, account: &VirtualAccount, token: &TokenRecord, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if !s.teams.contains_key(&account.team_id) {
            return Err(RepoError::NotFound);
        }
        if s.virtual_accounts
            .values()
            .any(|a| a.team_id == account.team_id && a.name == account.name)
        {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        s.virtual_accounts.insert(account.id, account.clone());
        s.insert_token(token);
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn get(&self, team: TeamId, id: VirtualAccountId) -> Result<VirtualAccount, RepoError> {
        self.lock()
            .virtual_accounts
            .get(&id)
            .filter(|a| a.team_id == team)
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn get_by_id(&self, id: VirtualAccountId) -> Result<VirtualAccount, RepoError> {
        self.lock()
            .virtual_accounts
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<VirtualAccount>, RepoError> {
        let mut accounts: Vec<VirtualAccount> = self
            .lock()
            .virtual_accounts
            .values()
            .filter(|a| a.team_id == team)
            .cloned()
            .collect();
        accounts.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(paged(accounts, page))
    }

    async fn delete(&self, team: TeamId, id: VirtualAccountId, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        s.identity_epoch += 1;
        if s.virtual_accounts.get(&id).is_none_or(|a| a.team_id != team) {
            return Err(RepoError::NotFound);
        }
        s.virtual_accounts.remove(&id);
        s.tokens.retain(|_, t| t.owner != TokenOwner::VirtualAccount(id));
        s.audit.push(audit.clone());
        Ok(())
    }
}

#[async_trait]
impl TokenRepository for MemoryRepos {
    async fn create(&self, token: &TokenRecord, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if !s.owner_exists(token.owner) {
            return Err(RepoError::NotFound);
        }
        s.insert_token(token);
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn find_by_digest(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, RepoError> {
        Ok(self.lock().tokens.values().find(|t| &t.digest == digest).cloned())
    }

    async fn get(&self, id: TokenId) -> Result<TokenRecord, RepoError> {
        self.lock().tokens.get(&id).cloned().ok_or(RepoError::NotFound)
    }

    async fn list_for_owner(&self, owner: TokenOwner) -> Result<Vec<TokenRecord>, RepoError> {
        let mut tokens: Vec<TokenRecord> = self
            .lock()
            .tokens
            .values()
            .filter(|t| t.owner == owner)
            .cloned()
            .collect();
        tokens.sort_by_key(|t| Reverse((t.created_at, t.id)));
        Ok(tokens)
    }

    async fn identity_epoch(&self) -> Result<u64, RepoError> {
        Ok(self.lock().identity_epoch)
    }

    async fn touch(&self, id: TokenId, at: DateTime<Utc>) -> Result<(), RepoError> {
        let mut s = self.lock();
        let token = s.tokens.get_mut(&id).ok_or(RepoError::NotFound)?;
        token.last_used_at = Some(at);
        Ok(())
    }

    async fn revoke(&self, id: TokenId, at: DateTime<Utc>, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        s.identity_epoch += 1;
        let token = s.tokens.get_mut(&id).ok_or(RepoError::NotFound)?;
        token.revoked_at = Some(at);
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn replace_for_owner(
        &self,
        owner: TokenOwner,
        revoke_at: DateTime<Utc>,
        replacement: &TokenRecord,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let mut s = self.lock();
        s.identity_epoch += 1;
        if !s.owner_exists(owner) || !s.owner_exists(replacement.owner) {
            return Err(RepoError::NotFound);
        }
        for token in s.tokens.values_mut().filter(|t| t.owner == owner) {
            // A token already revoked earlier stays revoked at that earlier instant.
            if token.revoked_at.is_none_or(|r| r > revoke_at) {
                token.revoked_at = Some(revoke_at);
            }
        }
        s.insert_token(replacement);
        s.audit.push(audit.clone());
        Ok(())
    }
}

#[async_trait]
impl SecretRepository for MemoryRepos {
    async fn create(&self, secret: &StorageSecret, limit: Option<u32>, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if !s.teams.contains_key(&secret.team_id) {
            return Err(RepoError::NotFound);
        }
        if let SecretStorage::External {
            vault_connection_id, ..
        } = &secret.storage
            && s.connection_in_team(secret.team_id, *vault_connection_id).is_none()
        {
            return Err(RepoError::NotFound);
        }
        let count = s.secrets.values().filter(|x| x.team_id == secret.team_id).count();
        check_limit(LimitKind::StorageSecrets, limit, count)?;
        if s.secrets
            .values()
            .any(|x| x.team_id == secret.team_id && x.name == secret.name)
        {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        s.secrets.insert(secret.id, secret.clone());
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn get(&self, team: TeamId, id: SecretId) -> Result<StorageSecret, RepoError> {
        self.lock().secret_in_team(team, id).cloned().ok_or(RepoError::NotFound)
    }

    async fn get_with_locations(
        &self,
        team: TeamId,
        id: SecretId,
    ) -> Result<(StorageSecret, Vec<LinkedLocation>), RepoError> {
        let secret = SecretRepository::get(self, team, id).await?;
        let linked = LocationRepository::linked_to_secret(self, team, id).await?;
        Ok((secret, linked))
    }

    async fn list(&self, team: TeamId, filter: &SecretFilter, page: Page) -> Result<Paged<StorageSecret>, RepoError> {
        // ASCII letters only, as the SQL backends fold case.
        let search = filter.search.as_deref().map(str::to_ascii_lowercase);
        let mut secrets: Vec<StorageSecret> = self
            .lock()
            .secrets
            .values()
            .filter(|x| x.team_id == team)
            .filter(|x| filter.secret_type.is_none_or(|t| x.secret_type == t))
            .filter(|x| {
                search
                    .as_deref()
                    .is_none_or(|q| x.name.as_str().to_ascii_lowercase().contains(q))
            })
            .cloned()
            .collect();
        secrets.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(paged(secrets, page))
    }

    async fn update(&self, secret: &StorageSecret, expected_version: i64, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        let stored = s.secret_in_team(secret.team_id, secret.id).ok_or(RepoError::NotFound)?;
        if stored.credentials_version != expected_version {
            return Err(conflict(ConflictKind::Stale));
        }
        if s.secrets
            .values()
            .any(|x| x.id != secret.id && x.team_id == secret.team_id && x.name == secret.name)
        {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        if let Some(stored) = s.secrets.get_mut(&secret.id) {
            stored.name = secret.name.clone();
            stored.description = secret.description.clone();
            stored.secret_type = secret.secret_type;
            stored.auth_method = secret.auth_method;
            // The storage mode and the vault connection never change; the mappings may.
            if let (
                SecretStorage::External { field_mappings, .. },
                SecretStorage::External {
                    field_mappings: new_mappings,
                    ..
                },
            ) = (&mut stored.storage, &secret.storage)
            {
                *field_mappings = new_mappings.clone();
            }
            stored.credentials_version = secret.credentials_version;
            stored.credentials_updated_at = secret.credentials_updated_at;
            stored.updated_at = secret.updated_at;
            stored.updated_by = secret.updated_by;
        }
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn delete(&self, team: TeamId, id: SecretId, audit: &AuditEvent) -> Result<StorageSecret, RepoError> {
        let mut s = self.lock();
        if s.secret_in_team(team, id).is_none() {
            return Err(RepoError::NotFound);
        }
        if s.locations.values().any(|l| l.secret_id == id) {
            return Err(conflict(ConflictKind::SecretInUse));
        }
        let deleted = s.secrets.remove(&id).ok_or(RepoError::NotFound)?;
        s.audit.push(audit.clone());
        Ok(deleted)
    }

    async fn count(&self, team: TeamId) -> Result<u64, RepoError> {
        Ok(self.lock().secrets.values().filter(|x| x.team_id == team).count() as u64)
    }
}

#[async_trait]
impl LocationRepository for MemoryRepos {
    async fn create(&self, location: &Location, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if s.secret_in_team(location.team_id, location.secret_id).is_none() {
            return Err(RepoError::NotFound);
        }
        if s.locations
            .values()
            .any(|l| l.team_id == location.team_id && l.name == location.name)
        {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        s.locations.insert(location.id, location.clone());
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn get(&self, team: TeamId, id: LocationId) -> Result<Location, RepoError> {
        self.lock()
            .location_in_team(team, id)
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn list(&self, team: TeamId, filter: &LocationFilter, page: Page) -> Result<Paged<Location>, RepoError> {
        let mut locations: Vec<Location> = self
            .lock()
            .locations
            .values()
            .filter(|l| l.team_id == team)
            .filter(|l| filter.secret_id.is_none_or(|id| l.secret_id == id))
            .filter(|l| filter.location_type.is_none_or(|t| l.location_type == t))
            .cloned()
            .collect();
        locations.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(paged(locations, page))
    }

    async fn linked_to_secret(&self, team: TeamId, secret: SecretId) -> Result<Vec<LinkedLocation>, RepoError> {
        let mut linked: Vec<(String, LocationId, LinkedLocation)> = self
            .lock()
            .locations
            .values()
            .filter(|l| l.team_id == team && l.secret_id == secret)
            .map(|l| {
                let item = LinkedLocation {
                    id: l.id,
                    name: l.name.as_str().to_owned(),
                    location_type: l.location_type,
                };
                (item.name.clone(), l.id, item)
            })
            .collect();
        linked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        Ok(linked.into_iter().map(|(_, _, item)| item).collect())
    }

    async fn update(&self, location: &Location, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if s.location_in_team(location.team_id, location.id).is_none() {
            return Err(RepoError::NotFound);
        }
        if s.secret_in_team(location.team_id, location.secret_id).is_none() {
            return Err(RepoError::NotFound);
        }
        if s.locations
            .values()
            .any(|l| l.id != location.id && l.team_id == location.team_id && l.name == location.name)
        {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        if let Some(stored) = s.locations.get_mut(&location.id) {
            stored.name = location.name.clone();
            stored.description = location.description.clone();
            stored.location_type = location.location_type;
            stored.bucket_name = location.bucket_name.clone();
            stored.region = location.region.clone();
            stored.endpoint_url = location.endpoint_url.clone();
            stored.secret_id = location.secret_id;
            stored.updated_at = location.updated_at;
            stored.updated_by = location.updated_by;
        }
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn delete(&self, team: TeamId, id: LocationId, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut s = self.lock();
        if s.location_in_team(team, id).is_none() {
            return Err(RepoError::NotFound);
        }
        s.locations.remove(&id);
        s.audit.push(audit.clone());
        Ok(())
    }
}

#[async_trait]
impl VaultConnectionRepository for MemoryRepos {
    async fn create(
        &self,
        connection: &VaultConnection,
        limit: Option<u32>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let mut s = self.lock();
        if !s.teams.contains_key(&connection.team_id) {
            return Err(RepoError::NotFound);
        }
        let count = s
            .vault_connections
            .values()
            .filter(|c| c.team_id == connection.team_id)
            .count();
        check_limit(LimitKind::VaultConnections, limit, count)?;
        if s.vault_connections
            .values()
            .any(|c| c.team_id == connection.team_id && c.name == connection.name)
        {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        s.vault_connections.insert(connection.id, connection.clone());
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn get(&self, team: TeamId, id: VaultConnectionId) -> Result<VaultConnection, RepoError> {
        self.lock()
            .connection_in_team(team, id)
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<VaultConnection>, RepoError> {
        let mut connections: Vec<VaultConnection> = self
            .lock()
            .vault_connections
            .values()
            .filter(|c| c.team_id == team)
            .cloned()
            .collect();
        connections.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(paged(connections, page))
    }

    async fn secret_count(&self, team: TeamId, id: VaultConnectionId) -> Result<u64, RepoError> {
        let count = self
            .lock()
            .secrets
            .values()
            .filter(|x| x.team_id == team && uses_connection(x, id))
            .count();
        Ok(count as u64)
    }

    async fn update(
        &self,
        connection: &VaultConnection,
        expected_secret_version: i64,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let mut s = self.lock();
        let stored = s
            .connection_in_team(connection.team_id, connection.id)
            .ok_or(RepoError::NotFound)?;
        if stored.secret_version != expected_secret_version {
            return Err(conflict(ConflictKind::Stale));
        }
        if s.vault_connections
            .values()
            .any(|c| c.id != connection.id && c.team_id == connection.team_id && c.name == connection.name)
        {
            return Err(conflict(ConflictKind::DuplicateName));
        }
        if let Some(stored) = s.vault_connections.get_mut(&connection.id) {
            stored.name = connection.name.clone();
            stored.description = connection.description.clone();
            stored.settings = connection.settings.clone();
            stored.secret_version = connection.secret_version;
            stored.last_verified_at = connection.last_verified_at;
            stored.updated_at = connection.updated_at;
            stored.updated_by = connection.updated_by;
        }
        s.audit.push(audit.clone());
        Ok(())
    }

    async fn delete(
        &self,
        team: TeamId,
        id: VaultConnectionId,
        audit: &AuditEvent,
    ) -> Result<VaultConnection, RepoError> {
        let mut s = self.lock();
        if s.connection_in_team(team, id).is_none() {
            return Err(RepoError::NotFound);
        }
        if s.secrets.values().any(|x| uses_connection(x, id)) {
            return Err(conflict(ConflictKind::VaultConnectionInUse));
        }
        let deleted = s.vault_connections.remove(&id).ok_or(RepoError::NotFound)?;
        s.audit.push(audit.clone());
        Ok(deleted)
    }
}

fn uses_connection(secret: &StorageSecret, id: VaultConnectionId) -> bool {
    matches!(&secret.storage, SecretStorage::External { vault_connection_id, .. } if *vault_connection_id == id)
}

#[async_trait]
impl AuditRepository for MemoryRepos {
    async fn record(&self, event: &AuditEvent) -> Result<(), RepoError> {
        self.lock().audit.push(event.clone());
        Ok(())
    }

    async fn list(&self, team: TeamId, filter: &AuditFilter, page: Page) -> Result<Paged<AuditEvent>, RepoError> {
        self.list_scoped(Some(team), filter, page)
    }

    async fn list_tenant(&self, filter: &AuditFilter, page: Page) -> Result<Paged<AuditEvent>, RepoError> {
        self.list_scoped(None, filter, page)
    }
}

impl MemoryRepos {
    /// The events of `team` (`None`: the tenant's, which belong to no team).
    fn list_scoped(
        &self,
        team: Option<TeamId>,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Paged<AuditEvent>, RepoError> {
        let mut events: Vec<AuditEvent> = self
            .lock()
            .audit
            .iter()
            .filter(|e| e.team_id == team)
            .filter(|e| filter.resource_type.is_none_or(|r| e.resource_type == r))
            .filter(|e| filter.actor_id.is_none_or(|a| e.actor_id == Some(a)))
            .filter(|e| filter.since.is_none_or(|t| e.occurred_at >= t))
            .filter(|e| filter.until.is_none_or(|t| e.occurred_at < t))
            .cloned()
            .collect();
        events.sort_by_key(|e| Reverse((e.occurred_at, e.id)));
        Ok(paged(events, page))
    }
}
