//! An in-memory [`SecretGroupRepository`]: the fake the core's tests use, and the reference
//! the secret-group contract suite is checked against.
//!
//! Teams and audit events belong to other ports, so the fake is given them: it asks the
//! [`TeamRepository`] whether a team exists, and writes each audit event to the
//! [`AuditRepository`] while it holds its own lock, after every check passed and before it
//! changes anything (if the event cannot be written, nothing changes).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditEvent, GroupChanges, GroupSecret, GroupSecretId, GroupSecretVersion, NewGroupKey, SecretGroup, SecretGroupId,
    TeamId, VirtualAccountId,
};
use custodian_ports::{
    AuditRepository, ConflictKind, DeletedGroup, GroupFilter, GroupKeyDetails, KeyFilter, Page, Paged, RepoError,
    SecretGroupRepository, TeamRepository, TeamScope,
};
use tokio::sync::{Mutex, MutexGuard};

/// Everything the fake stores.
#[derive(Debug, Default)]
struct State {
    groups: HashMap<SecretGroupId, SecretGroup>,
    keys: HashMap<GroupSecretId, GroupSecret>,
    /// Versions of each key, ascending.
    versions: HashMap<GroupSecretId, Vec<GroupSecretVersion>>,
    /// The latest read of each key by each virtual account.
    reads: HashMap<(GroupSecretId, VirtualAccountId), DateTime<Utc>>,
}

impl State {
    fn group_in_team(&self, team: TeamId, id: SecretGroupId) -> Result<&SecretGroup, RepoError> {
        self.groups
            .get(&id)
            .filter(|g| g.team_id == team)
            .ok_or(RepoError::NotFound)
    }

    fn details(&self, key: &GroupSecret) -> Result<GroupKeyDetails, RepoError> {
        let group = self
            .groups
            .get(&key.group_id)
            .ok_or_else(|| RepoError::Internal(format!("key {} has no group", key.id)))?;
        Ok(GroupKeyDetails {
            secret: key.clone(),
            team_id: group.team_id,
            group_name: group.name.clone(),
            versions: self.versions.get(&key.id).cloned().unwrap_or_default(),
        })
    }

    /// The group's keys with their versions, ordered by key.
    fn keys_of(&self, group: SecretGroupId) -> Result<Vec<GroupKeyDetails>, RepoError> {
        let mut keys: Vec<&GroupSecret> = self.keys.values().filter(|k| k.group_id == group).collect();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        keys.into_iter().map(|k| self.details(k)).collect()
    }

    fn insert_key(&mut self, key: &NewGroupKey) {
        self.keys.insert(key.secret.id, key.secret.clone());
        self.versions.insert(key.secret.id, vec![key.first_version.clone()]);
    }

    fn remove_key(&mut self, id: GroupSecretId) {
        self.keys.remove(&id);
        self.versions.remove(&id);
        self.reads.retain(|(key, _), _| *key != id);
    }
}

/// Fails with `Conflict(DuplicateName)` when two of `keys` have the same key.
fn distinct_keys(keys: &[NewGroupKey]) -> Result<(), RepoError> {
    let mut seen = HashSet::new();
    if keys.iter().all(|k| seen.insert(&k.secret.key)) {
        Ok(())
    } else {
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    }
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

/// An honest in-memory implementation of [`SecretGroupRepository`], following each method's
/// documentation.
pub struct MemorySecretGroups {
    state: Mutex<State>,
    teams: Arc<dyn TeamRepository>,
    audit: Arc<dyn AuditRepository>,
}

impl fmt::Debug for MemorySecretGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySecretGroups").finish_non_exhaustive()
    }
}

impl MemorySecretGroups {
    /// An empty store that checks teams with `teams` and writes audit events to `audit`.
    pub fn new(teams: Arc<dyn TeamRepository>, audit: Arc<dyn AuditRepository>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            teams,
            audit,
        }
    }

    async fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().await
    }
}

#[async_trait]
impl SecretGroupRepository for MemorySecretGroups {
    async fn create(&self, group: &SecretGroup, keys: &[NewGroupKey], audit: &AuditEvent) -> Result<(), RepoError> {
        let mut state = self.lock().await;
        self.teams.get(group.team_id).await?;
        if state.groups.values().any(|g| g.name == group.name) {
            return Err(RepoError::Conflict(ConflictKind::DuplicateName));
        }
        distinct_keys(keys)?;
        if state.groups.contains_key(&group.id) || keys.iter().any(|k| state.keys.contains_key(&k.secret.id)) {
            return Err(RepoError::Internal("an id is already used".into()));
        }
        self.audit.record(audit).await?;
        state.groups.insert(group.id, group.clone());
        for key in keys {
            state.insert_key(key);
        }
        Ok(())
    }

    async fn get(&self, team: TeamId, id: SecretGroupId) -> Result<SecretGroup, RepoError> {
        self.lock().await.group_in_team(team, id).cloned()
    }

    async fn get_in(&self, scope: &TeamScope, id: SecretGroupId) -> Result<SecretGroup, RepoError> {
        self.lock()
            .await
            .groups
            .get(&id)
            .filter(|g| scope.contains(g.team_id))
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn list(&self, scope: &TeamScope, filter: &GroupFilter, page: Page) -> Result<Paged<SecretGroup>, RepoError> {
        let state = self.lock().await;
        let search = filter.search.as_ref().map(|s| s.to_ascii_lowercase());
        let mut groups: Vec<SecretGroup> = state
            .groups
            .values()
            .filter(|g| scope.contains(g.team_id))
            .filter(|g| filter.name.as_ref().is_none_or(|n| *n == g.name))
            .filter(|g| {
                search.as_ref().is_none_or(|s| {
                    g.name.as_str().to_ascii_lowercase().contains(s.as_str())
                        || state
                            .keys
                            .values()
                            .any(|k| k.group_id == g.id && k.key.as_str().to_ascii_lowercase().contains(s.as_str()))
                })
            })
            .cloned()
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(paged(groups, page))
    }

    async fn keys(&self, team: TeamId, id: SecretGroupId) -> Result<Vec<GroupKeyDetails>, RepoError> {
        let state = self.lock().await;
        state.group_in_team(team, id)?;
        state.keys_of(id)
    }

    async fn apply(&self, changes: &GroupChanges, audit: &AuditEvent) -> Result<(), RepoError> {
        let mut state = self.lock().await;
        state.group_in_team(changes.team_id, changes.group_id)?;
        let stale = Err(RepoError::Conflict(ConflictKind::Stale));

        let stored: HashSet<(GroupSecretId, i64)> = state
            .keys
            .values()
            .filter(|k| k.group_id == changes.group_id)
            .map(|k| (k.id, k.version))
            .collect();
        let expected: HashSet<(GroupSecretId, i64)> = changes.expected.iter().copied().collect();
        if stored != expected || expected.len() != changes.expected.len() {
            return stale;
        }
        let deleted: HashSet<GroupSecretId> = changes.deleted.iter().copied().collect();
        if deleted.iter().any(|id| !stored.iter().any(|(k, _)| k == id)) {
            return stale;
        }
        for version in &changes.new_versions {
            let current = state.keys.get(&version.secret_id).map(|k| k.version);
            if deleted.contains(&version.secret_id) || current.is_none_or(|v| version.version != v + 1) {
                return stale;
            }
        }
        distinct_keys(&changes.added)?;
        let remaining: HashSet<_> = state
            .keys
            .values()
            .filter(|k| k.group_id == changes.group_id && !deleted.contains(&k.id))
            .map(|k| k.key.clone())
            .collect();
        if changes.added.iter().any(|k| remaining.contains(&k.secret.key)) {
            return Err(RepoError::Conflict(ConflictKind::DuplicateName));
        }

        self.audit.record(audit).await?;
        for id in &changes.deleted {
            state.remove_key(*id);
        }
        for key in &changes.added {
            state.insert_key(key);
        }
        for version in &changes.new_versions {
            if let Some(key) = state.keys.get_mut(&version.secret_id) {
                key.version = version.version;
                key.updated_at = changes.updated_at;
                key.updated_by = changes.updated_by;
            }
            state
                .versions
                .entry(version.secret_id)
                .or_default()
                .push(version.clone());
        }
        if let Some(group) = state.groups.get_mut(&changes.group_id) {
            group.updated_at = changes.updated_at;
            group.updated_by = changes.updated_by;
        }
        Ok(())
    }

    async fn delete(&self, team: TeamId, id: SecretGroupId, audit: &AuditEvent) -> Result<DeletedGroup, RepoError> {
        let mut state = self.lock().await;
        let group = state.group_in_team(team, id)?.clone();
        let keys = state.keys_of(id)?;
        self.audit.record(audit).await?;
        for key in &keys {
            state.remove_key(key.secret.id);
        }
        state.groups.remove(&id);
        Ok(DeletedGroup { group, keys })
    }

    async fn get_key(&self, scope: &TeamScope, id: GroupSecretId) -> Result<GroupKeyDetails, RepoError> {
        let state = self.lock().await;
        let key = state.keys.get(&id).ok_or(RepoError::NotFound)?;
        let details = state.details(key)?;
        if scope.contains(details.team_id) {
            Ok(details)
        } else {
            Err(RepoError::NotFound)
        }
    }

    async fn list_keys(
        &self,
        scope: &TeamScope,
        filter: &KeyFilter,
        page: Page,
    ) -> Result<Paged<GroupKeyDetails>, RepoError> {
        let state = self.lock().await;
        let mut keys = Vec::new();
        for key in state.keys.values() {
            let details = state.details(key)?;
            let in_group = filter.secret_group_id.is_none_or(|g| g == key.group_id);
            let named = filter
                .fqns
                .as_ref()
                .is_none_or(|fqns| fqns.iter().any(|f| f.group == details.group_name && f.key == key.key));
            if scope.contains(details.team_id) && in_group && named {
                keys.push(details);
            }
        }
        keys.sort_by(|a, b| {
            (&a.group_name, &a.secret.key, a.secret.id).cmp(&(&b.group_name, &b.secret.key, b.secret.id))
        });
        Ok(paged(keys, page))
    }

    async fn delete_key(
        &self,
        team: TeamId,
        id: GroupSecretId,
        audit: &AuditEvent,
    ) -> Result<GroupKeyDetails, RepoError> {
        let mut state = self.lock().await;
        let key = state.keys.get(&id).ok_or(RepoError::NotFound)?;
        let details = state.details(key)?;
        if details.team_id != team {
            return Err(RepoError::NotFound);
        }
        self.audit.record(audit).await?;
        state.remove_key(id);
        Ok(details)
    }

    async fn record_read(
        &self,
        id: GroupSecretId,
        reader: VirtualAccountId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let mut state = self.lock().await;
        if !state.keys.contains_key(&id) {
            return Err(RepoError::NotFound);
        }
        self.audit.record(audit).await?;
        let latest = state.reads.entry((id, reader)).or_insert(at);
        *latest = (*latest).max(at);
        Ok(())
    }

    async fn active_readers(
        &self,
        ids: &[GroupSecretId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<GroupSecretId, u64>, RepoError> {
        let state = self.lock().await;
        let mut counts: HashMap<GroupSecretId, u64> = ids.iter().map(|id| (*id, 0)).collect();
        for ((key, _), at) in &state.reads {
            if *at >= since
                && let Some(count) = counts.get_mut(key)
            {
                *count += 1;
            }
        }
        Ok(counts)
    }
}
