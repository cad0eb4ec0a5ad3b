//! The secret-group contract suite against the in-memory fake, and checks that the suite
//! can fail.
//!
//! The fake takes its teams and its audit trail from the in-memory repositories
//! (`MemoryRepos`); `Directory` below stands in for them where a test needs an audit trail
//! that fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditEvent, GroupChanges, GroupSecretId, Membership, Name, NewGroupKey, Role, SecretGroup, SecretGroupId, Team,
    TeamId, UserId, VirtualAccountId,
};
use custodian_ports::{
    AuditFilter, AuditRepository, DeletedGroup, GroupFilter, GroupKeyDetails, KeyFilter, Page, Paged, RepoError,
    SecretGroupRepository, TeamRepository, TeamScope,
};
use custodian_testkit::contract::secret_groups::{GroupStores, cases};
use custodian_testkit::memory::MemoryRepos;
use custodian_testkit::memory_groups::MemorySecretGroups;
use custodian_testkit::run_cases;

/// Teams and an audit trail that fails every write.
#[derive(Default)]
struct Directory {
    teams: Mutex<HashMap<TeamId, Team>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_in_directory() -> RepoError {
    RepoError::Internal("not kept by the test directory".into())
}

#[async_trait]
impl TeamRepository for Directory {
    async fn create(&self, team: &Team, _: &Membership, _: &AuditEvent) -> Result<(), RepoError> {
        lock(&self.teams).insert(team.id, team.clone());
        Ok(())
    }
    async fn get(&self, id: TeamId) -> Result<Team, RepoError> {
        lock(&self.teams).get(&id).cloned().ok_or(RepoError::NotFound)
    }
    async fn find_by_name(&self, _: &Name) -> Result<Option<Team>, RepoError> {
        Err(not_in_directory())
    }
    async fn list_all(&self, _: Page) -> Result<Paged<Team>, RepoError> {
        Err(not_in_directory())
    }
    async fn list_for_user(&self, _: UserId, _: Page) -> Result<Paged<(Team, Role)>, RepoError> {
        Err(not_in_directory())
    }
    async fn update(&self, _: &Team, _: &AuditEvent) -> Result<(), RepoError> {
        Err(not_in_directory())
    }
    async fn delete(&self, _: TeamId, _: &AuditEvent) -> Result<(), RepoError> {
        Err(not_in_directory())
    }
}

#[async_trait]
impl AuditRepository for Directory {
    async fn record(&self, _: &AuditEvent) -> Result<(), RepoError> {
        Err(RepoError::Unavailable("audit trail down".into()))
    }
    async fn list(&self, _: TeamId, _: &AuditFilter, _: Page) -> Result<Paged<AuditEvent>, RepoError> {
        Err(not_in_directory())
    }
    async fn list_tenant(&self, _: &AuditFilter, _: Page) -> Result<Paged<AuditEvent>, RepoError> {
        Err(not_in_directory())
    }
}

fn memory_stores() -> GroupStores {
    let repos = MemoryRepos::new().repositories();
    let groups = Arc::new(MemorySecretGroups::new(repos.teams.clone(), repos.audit.clone()));
    GroupStores { repos, groups }
}

#[tokio::test]
async fn memory_groups_pass_the_secret_group_contract() {
    run_cases("memory", "secret_groups", &cases(), || async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_groups_pass_the_contract_on_a_multi_threaded_runtime() {
    run_cases("memory", "secret_groups", &cases(), || async { memory_stores() }).await;
}

#[test]
fn the_suite_covers_every_method_of_the_port() {
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "case names are unique: {names:?}");
    for method in [
        "create",
        "get_",
        "list_",
        "keys_",
        "apply",
        "delete_",
        "get_key",
        "list_keys",
        "delete_key",
        "record_read",
        "active_readers",
        "stale",
        "not_found",
        "conflicts",
    ] {
        assert!(names.iter().any(|n| n.contains(method)), "a case checks {method}");
    }
}

/// A fake whose audit trail is down writes nothing at all.
#[tokio::test]
async fn memory_groups_write_nothing_when_the_audit_event_cannot_be_recorded() {
    let directory = Arc::new(Directory::default());
    let groups = MemorySecretGroups::new(directory.clone(), directory.clone());
    let team = sample_team();
    lock(&directory.teams).insert(team.id, team.clone());
    let group = sample_group(team.id);
    let event = sample_event(team.id);
    let outcome = groups.create(&group, &[], &event).await;
    assert!(matches!(outcome, Err(RepoError::Unavailable(_))), "{outcome:?}");
    assert_eq!(groups.get(team.id, group.id).await, Err(RepoError::NotFound));
}

fn sample_team() -> Team {
    Team {
        id: TeamId::from_uuid(uuid::Uuid::now_v7()),
        name: custodian_domain::Name::parse_at("name", "audit-down").expect("a valid name"),
        description: None,
        tier: custodian_domain::Tier::Enterprise,
        created_at: DateTime::from_timestamp(0, 0).expect("the epoch"),
        created_by: UserId::from_uuid(uuid::Uuid::now_v7()).into(),
        updated_at: DateTime::from_timestamp(0, 0).expect("the epoch"),
    }
}

fn sample_group(team: TeamId) -> SecretGroup {
    let actor = UserId::from_uuid(uuid::Uuid::now_v7()).into();
    SecretGroup {
        id: SecretGroupId::from_uuid(uuid::Uuid::now_v7()),
        team_id: team,
        name: custodian_domain::GroupName::parse_at("name", "payments").expect("a valid group name"),
        integration_id: "local".into(),
        created_at: DateTime::from_timestamp(0, 0).expect("the epoch"),
        created_by: actor,
        updated_at: DateTime::from_timestamp(0, 0).expect("the epoch"),
        updated_by: actor,
    }
}

fn sample_event(team: TeamId) -> AuditEvent {
    AuditEvent {
        id: custodian_domain::AuditEventId::from_uuid(uuid::Uuid::now_v7()),
        occurred_at: DateTime::from_timestamp(0, 0).expect("the epoch"),
        team_id: Some(team),
        actor_id: None,
        actor_kind: None,
        action: custodian_domain::AuditAction::Create,
        resource_type: custodian_domain::ResourceType::SecretGroup,
        resource_id: None,
        resource_name: None,
        outcome: custodian_domain::Outcome::Success,
        detail: None,
        context: custodian_domain::RequestContext::default(),
    }
}

/// A repository that skips the optimistic check (it re-reads the keys and applies the
/// change to whatever is there) must fail the suite.
struct IgnoresStaleness(MemorySecretGroups);

#[async_trait]
impl SecretGroupRepository for IgnoresStaleness {
    async fn create(&self, group: &SecretGroup, keys: &[NewGroupKey], audit: &AuditEvent) -> Result<(), RepoError> {
        self.0.create(group, keys, audit).await
    }
    async fn get(&self, team: TeamId, id: SecretGroupId) -> Result<SecretGroup, RepoError> {
        self.0.get(team, id).await
    }
    async fn get_in(&self, scope: &TeamScope, id: SecretGroupId) -> Result<SecretGroup, RepoError> {
        self.0.get_in(scope, id).await
    }
    async fn list(&self, scope: &TeamScope, filter: &GroupFilter, page: Page) -> Result<Paged<SecretGroup>, RepoError> {
        self.0.list(scope, filter, page).await
    }
    async fn keys(&self, team: TeamId, id: SecretGroupId) -> Result<Vec<GroupKeyDetails>, RepoError> {
        self.0.keys(team, id).await
    }
    async fn apply(&self, changes: &GroupChanges, audit: &AuditEvent) -> Result<(), RepoError> {
        // Wrong: takes whatever is stored now as what was expected.
        let now = self.0.keys(changes.team_id, changes.group_id).await?;
        let mut forced = changes.clone();
        forced.expected = now.iter().map(|k| (k.secret.id, k.secret.version)).collect();
        for version in &mut forced.new_versions {
            if let Some(k) = now.iter().find(|k| k.secret.id == version.secret_id) {
                version.version = k.secret.version + 1;
            }
        }
        forced.deleted.retain(|id| now.iter().any(|k| k.secret.id == *id));
        self.0.apply(&forced, audit).await
    }
    async fn delete(&self, team: TeamId, id: SecretGroupId, audit: &AuditEvent) -> Result<DeletedGroup, RepoError> {
        self.0.delete(team, id, audit).await
    }
    async fn get_key(&self, scope: &TeamScope, id: GroupSecretId) -> Result<GroupKeyDetails, RepoError> {
        self.0.get_key(scope, id).await
    }
    async fn list_keys(
        &self,
        scope: &TeamScope,
        filter: &KeyFilter,
        page: Page,
    ) -> Result<Paged<GroupKeyDetails>, RepoError> {
        self.0.list_keys(scope, filter, page).await
    }
    async fn delete_key(
        &self,
        team: TeamId,
        id: GroupSecretId,
        audit: &AuditEvent,
    ) -> Result<GroupKeyDetails, RepoError> {
        self.0.delete_key(team, id, audit).await
    }
    async fn record_read(
        &self,
        id: GroupSecretId,
        reader: VirtualAccountId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.0.record_read(id, reader, at, audit).await
    }
    async fn active_readers(
        &self,
        ids: &[GroupSecretId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<GroupSecretId, u64>, RepoError> {
        self.0.active_readers(ids, since).await
    }
}

#[tokio::test]
async fn a_repository_that_ignores_staleness_fails_the_suite() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "apply_after_a_version_moved_is_stale_and_writes_nothing")
        .expect("the case exists");
    let honest = memory_stores();
    let stores = GroupStores {
        groups: Arc::new(IgnoresStaleness(MemorySecretGroups::new(
            honest.repos.teams.clone(),
            honest.repos.audit.clone(),
        ))),
        ..honest
    };
    let outcome = tokio::spawn((case.run)(stores)).await;
    assert!(
        outcome.is_err(),
        "a repository without the optimistic check must fail this case"
    );
}
