//! Contract of [`SecretGroupRepository`]: one case per rule of its documentation, run on
//! the in-memory fake, SQLite and PostgreSQL alike.
//!
//! A case gets [`GroupStores`]: the repository under test and a [`RepoSet`] over the same
//! store, through which it creates the users and teams a group needs and reads the audit
//! trail. Every case starts from an empty store.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, GroupChanges, GroupName, GroupSecret, GroupSecretId, GroupSecretVersion,
    GroupSecretVersionId, KeyFqn, NewGroupKey, Outcome, RequestContext, ResourceType, SecretGroup, SecretGroupId,
    SecretKey, SubjectId, SubjectKind, TeamId, VirtualAccountId,
};
use custodian_ports::{
    AuditFilter, ConflictKind, GroupFilter, GroupKeyDetails, KeyFilter, Page, RepoError, SecretGroupRepository,
    TeamScope,
};
use uuid::Uuid;

use super::fixtures::{self, ALL, at, fresh};
use crate::{BoxFuture, Case, RepoSet};

/// What a secret-group case runs against: the repository under test, and the other ports
/// over the same store.
#[derive(Clone)]
pub struct GroupStores {
    pub repos: RepoSet,
    pub groups: Arc<dyn SecretGroupRepository>,
}

impl std::fmt::Debug for GroupStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupStores").finish_non_exhaustive()
    }
}

/// Every case of the suite.
pub fn cases() -> Vec<Case<GroupStores>> {
    macro_rules! case {
        ($name:ident) => {
            Case {
                name: stringify!($name),
                run: |stores| -> BoxFuture<()> { Box::pin($name(stores)) },
            }
        };
    }
    vec![
        case!(create_then_get_returns_the_group),
        case!(create_stores_every_key_at_version_1),
        case!(create_records_its_audit_event),
        case!(create_without_keys_is_allowed),
        case!(create_in_a_missing_team_is_not_found_and_writes_nothing),
        case!(create_with_a_name_taken_in_the_tenant_conflicts_and_writes_nothing),
        case!(create_with_a_key_given_twice_conflicts_and_writes_nothing),
        case!(get_absent_or_outside_the_team_or_scope_is_not_found),
        case!(list_orders_by_name_and_keeps_to_the_scope),
        case!(list_search_is_a_case_insensitive_substring),
        case!(list_filters_by_exact_name),
        case!(list_pages_with_the_total_of_matches),
        case!(keys_of_an_absent_group_or_in_another_team_is_not_found),
        case!(keys_of_groups_gives_each_groups_keys_as_keys_does),
        case!(apply_adds_keys_at_version_1),
        case!(apply_adds_a_version_and_keeps_the_history),
        case!(apply_deletes_keys_with_their_versions_and_reads),
        case!(apply_updates_the_group_and_records_its_audit_event),
        case!(apply_after_a_version_moved_is_stale_and_writes_nothing),
        case!(apply_after_a_key_was_added_or_deleted_is_stale),
        case!(apply_adding_a_key_the_group_keeps_conflicts),
        case!(apply_to_an_absent_group_or_in_another_team_is_not_found),
        case!(concurrent_applies_of_one_snapshot_store_exactly_one),
        case!(concurrent_delete_key_and_apply_leave_no_half_update),
        case!(concurrent_delete_and_apply_return_every_key),
        case!(delete_returns_every_key_with_its_versions_and_removes_all),
        case!(delete_frees_the_name),
        case!(delete_absent_or_in_another_team_is_not_found_and_keeps_it),
        case!(get_key_returns_team_group_name_and_versions_within_the_scope),
        case!(list_keys_orders_by_group_then_key_and_keeps_to_the_scope),
        case!(list_keys_filters_by_group_and_by_fqns),
        case!(list_keys_pages_with_the_total_of_matches),
        case!(delete_key_removes_it_with_its_versions_and_reads),
        case!(delete_key_absent_or_in_another_team_is_not_found),
        case!(record_read_of_a_missing_key_is_not_found),
        case!(active_readers_counts_distinct_accounts_since_the_instant),
        case!(record_read_keeps_the_latest_read_of_each_account),
        case!(concurrent_first_reads_by_one_account_all_succeed),
    ]
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn group_name(value: &str) -> GroupName {
    GroupName::parse_at("name", value).expect("a valid group name")
}

fn secret_key(value: &str) -> SecretKey {
    SecretKey::parse_at("key", value).expect("a valid key")
}

/// An audit event of `team` about a secret group; failing writes must not record it.
fn audit(team: TeamId, action: AuditAction, resource_id: Uuid, actor: SubjectId) -> AuditEvent {
    AuditEvent {
        id: AuditEventId::from_uuid(fresh()),
        occurred_at: at(10),
        team_id: Some(team),
        actor_id: Some(actor),
        actor_kind: Some(SubjectKind::User),
        action,
        resource_type: ResourceType::SecretGroup,
        resource_id: Some(resource_id),
        resource_name: None,
        outcome: Outcome::Success,
        detail: None,
        context: RequestContext::default(),
    }
}

/// A team and a user who owns it, created through the repositories.
#[derive(Debug, Clone, Copy)]
struct Owned {
    team: TeamId,
    actor: SubjectId,
}

async fn team(repos: &RepoSet) -> Owned {
    let owned = fixtures::user_and_team(repos).await;
    Owned {
        team: owned.team_id(),
        actor: owned.actor(),
    }
}

fn group(owned: Owned, name: &str) -> SecretGroup {
    SecretGroup {
        id: SecretGroupId::from_uuid(fresh()),
        team_id: owned.team,
        name: group_name(name),
        integration_id: "local".to_owned(),
        created_at: at(2),
        created_by: owned.actor,
        updated_at: at(2),
        updated_by: owned.actor,
    }
}

fn new_key(group: &SecretGroup, key: &str, when: DateTime<Utc>) -> NewGroupKey {
    let secret = GroupSecret {
        id: GroupSecretId::from_uuid(fresh()),
        group_id: group.id,
        key: secret_key(key),
        version: 1,
        created_at: when,
        created_by: group.created_by,
        updated_at: when,
        updated_by: group.created_by,
    };
    let first_version = GroupSecretVersion {
        id: GroupSecretVersionId::from_uuid(fresh()),
        secret_id: secret.id,
        version: 1,
        created_at: when,
    };
    NewGroupKey { secret, first_version }
}

/// Store a group named `name` in `owned.team` with `keys` (each at version 1).
async fn stored(stores: &GroupStores, owned: Owned, name: &str, keys: &[&str]) -> (SecretGroup, Vec<NewGroupKey>) {
    let g = group(owned, name);
    let keys: Vec<NewGroupKey> = keys.iter().map(|k| new_key(&g, k, at(2))).collect();
    let event = audit(owned.team, AuditAction::Create, g.id.as_uuid(), owned.actor);
    stores.groups.create(&g, &keys, &event).await.expect("group created");
    (g, keys)
}

/// The ids of the team's secret-group audit events.
async fn audit_ids(stores: &GroupStores, team: TeamId) -> Vec<AuditEventId> {
    let filter = AuditFilter {
        resource_type: Some(ResourceType::SecretGroup),
        ..AuditFilter::default()
    };
    let events = stores.repos.audit.list(team, &filter, ALL).await.expect("audit list");
    events.items.iter().map(|e| e.id).collect()
}

async fn assert_recorded(stores: &GroupStores, event: &AuditEvent) {
    let team = event.team_id.expect("a team event");
    assert!(
        audit_ids(stores, team).await.contains(&event.id),
        "the audit event of the write is recorded"
    );
}

async fn assert_not_recorded(stores: &GroupStores, event: &AuditEvent) {
    let team = event.team_id.expect("a team event");
    assert!(
        !audit_ids(stores, team).await.contains(&event.id),
        "a failed write records no audit event"
    );
}

fn expect_err<T: std::fmt::Debug>(result: Result<T, RepoError>, expected: &RepoError, what: &str) {
    match result {
        Err(e) => assert_eq!(&e, expected, "{what}"),
        Ok(v) => panic!("{what}: expected {expected:?}, got {v:?}"),
    }
}

const NOT_FOUND: RepoError = RepoError::NotFound;
const STALE: RepoError = RepoError::Conflict(ConflictKind::Stale);
const DUPLICATE: RepoError = RepoError::Conflict(ConflictKind::DuplicateName);

fn keys_named(keys: &[GroupKeyDetails]) -> Vec<&str> {
    keys.iter().map(|k| k.secret.key.as_str()).collect()
}

fn names(groups: &[SecretGroup]) -> Vec<&str> {
    groups.iter().map(|g| g.name.as_str()).collect()
}

fn versions(details: &GroupKeyDetails) -> Vec<i64> {
    details.versions.iter().map(|v| v.version).collect()
}

fn by_key<'a>(keys: &'a [GroupKeyDetails], key: &str) -> &'a GroupKeyDetails {
    keys.iter()
        .find(|k| k.secret.key.as_str() == key)
        .unwrap_or_else(|| panic!("key {key} is stored"))
}

/// The changes of one update of `group` (read as `keys`), made at `when` by the group's
/// creator: `bump` gets a new version, `delete` is deleted, `add` is added.
fn changes(
    group: &SecretGroup,
    keys: &[GroupKeyDetails],
    add: &[&str],
    bump: &[&str],
    delete: &[&str],
    when: DateTime<Utc>,
) -> GroupChanges {
    GroupChanges {
        team_id: group.team_id,
        group_id: group.id,
        expected: keys.iter().map(|k| (k.secret.id, k.secret.version)).collect(),
        added: add.iter().map(|k| new_key(group, k, when)).collect(),
        new_versions: bump
            .iter()
            .map(|k| {
                let current = &by_key(keys, k).secret;
                GroupSecretVersion {
                    id: GroupSecretVersionId::from_uuid(fresh()),
                    secret_id: current.id,
                    version: current.version + 1,
                    created_at: when,
                }
            })
            .collect(),
        deleted: delete.iter().map(|k| by_key(keys, k).secret.id).collect(),
        updated_at: when,
        updated_by: group.created_by,
    }
}

async fn keys_of(stores: &GroupStores, group: &SecretGroup) -> Vec<GroupKeyDetails> {
    stores
        .groups
        .keys(group.team_id, group.id)
        .await
        .expect("keys of the group")
}

async fn apply_ok(stores: &GroupStores, change: &GroupChanges) -> AuditEvent {
    let event = audit(
        change.team_id,
        AuditAction::Update,
        change.group_id.as_uuid(),
        change.updated_by,
    );
    stores.groups.apply(change, &event).await.expect("update applied");
    event
}

fn read_event(team: TeamId, key: GroupSecretId, reader: VirtualAccountId) -> AuditEvent {
    AuditEvent {
        actor_kind: Some(SubjectKind::VirtualAccount),
        ..audit(team, AuditAction::ReadValue, key.as_uuid(), reader.into())
    }
}

async fn read(stores: &GroupStores, team: TeamId, key: GroupSecretId, reader: VirtualAccountId, when: DateTime<Utc>) {
    let event = read_event(team, key, reader);
    stores
        .groups
        .record_read(key, reader, when, &event)
        .await
        .expect("read recorded");
}

async fn readers(stores: &GroupStores, ids: &[GroupSecretId], since: DateTime<Utc>) -> HashMap<GroupSecretId, u64> {
    stores.groups.active_readers(ids, since).await.expect("active readers")
}

fn account() -> VirtualAccountId {
    VirtualAccountId::from_uuid(fresh())
}

// ---------------------------------------------------------------------------------------
// create / get
// ---------------------------------------------------------------------------------------

/// `create` stores the group; `get` (team-scoped) and `get_in` (a scope holding its team, or
/// every team) return it unchanged.
async fn create_then_get_returns_the_group(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["DB_URL"]).await;
    assert_eq!(stores.groups.get(owned.team, g.id).await.expect("get"), g);
    let scope = TeamScope::Teams(vec![TeamId::from_uuid(fresh()), owned.team]);
    assert_eq!(stores.groups.get_in(&scope, g.id).await.expect("get_in"), g);
    assert_eq!(
        stores.groups.get_in(&TeamScope::All, g.id).await.expect("get_in all"),
        g
    );
}

/// `create` stores every key at version 1 with its `first_version`; `keys` returns them
/// ordered by key, with the team and the group's name.
async fn create_stores_every_key_at_version_1(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, keys) = stored(&stores, owned, "payments", &["TOKEN", "API_KEY", "DB_URL"]).await;
    let read = keys_of(&stores, &g).await;
    assert_eq!(keys_named(&read), ["API_KEY", "DB_URL", "TOKEN"]);
    for details in &read {
        let made = keys
            .iter()
            .find(|k| k.secret.id == details.secret.id)
            .expect("a created key");
        assert_eq!(details.secret, made.secret);
        assert_eq!(details.versions, vec![made.first_version.clone()]);
        assert_eq!(details.team_id, owned.team);
        assert_eq!(details.group_name, g.name);
    }
}

/// `create` records its audit event with the group.
async fn create_records_its_audit_event(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let g = group(owned, "payments");
    let event = audit(owned.team, AuditAction::Create, g.id.as_uuid(), owned.actor);
    stores
        .groups
        .create(&g, &[new_key(&g, "K", at(2))], &event)
        .await
        .expect("created");
    assert_recorded(&stores, &event).await;
}

/// A group may be created with no keys.
async fn create_without_keys_is_allowed(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "empty-group", &[]).await;
    assert!(keys_of(&stores, &g).await.is_empty());
    assert_eq!(stores.groups.get(owned.team, g.id).await.expect("get"), g);
}

/// `NotFound` when the team does not exist; nothing is written.
async fn create_in_a_missing_team_is_not_found_and_writes_nothing(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let ghost = Owned {
        team: TeamId::from_uuid(fresh()),
        actor: owned.actor,
    };
    let g = group(ghost, "payments");
    let event = audit(ghost.team, AuditAction::Create, g.id.as_uuid(), owned.actor);
    expect_err(
        stores.groups.create(&g, &[new_key(&g, "K", at(2))], &event).await,
        &NOT_FOUND,
        "create in a team that does not exist",
    );
    expect_err(
        stores.groups.get_in(&TeamScope::All, g.id).await,
        &NOT_FOUND,
        "no group",
    );
    // The name is still free.
    stored(&stores, owned, "payments", &["K"]).await;
}

/// Group names are unique in the tenant, across teams: `Conflict(DuplicateName)`, and
/// nothing of the second group (row, keys, audit event) is written.
async fn create_with_a_name_taken_in_the_tenant_conflicts_and_writes_nothing(stores: GroupStores) {
    let first = team(&stores.repos).await;
    let second = team(&stores.repos).await;
    let (original, _) = stored(&stores, first, "payments", &["K"]).await;
    for owned in [first, second] {
        let g = group(owned, "payments");
        let key = new_key(&g, "OTHER", at(2));
        let event = audit(owned.team, AuditAction::Create, g.id.as_uuid(), owned.actor);
        expect_err(
            stores.groups.create(&g, std::slice::from_ref(&key), &event).await,
            &DUPLICATE,
            "a group name already used in the tenant",
        );
        expect_err(stores.groups.get(owned.team, g.id).await, &NOT_FOUND, "no second group");
        expect_err(
            stores.groups.get_key(&TeamScope::All, key.secret.id).await,
            &NOT_FOUND,
            "no key of the second group",
        );
        assert_not_recorded(&stores, &event).await;
    }
    assert_eq!(keys_named(&keys_of(&stores, &original).await), ["K"]);
}

/// Two keys with the same key in one create: `Conflict(DuplicateName)`, nothing written.
async fn create_with_a_key_given_twice_conflicts_and_writes_nothing(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let g = group(owned, "payments");
    let keys = [new_key(&g, "SAME", at(2)), new_key(&g, "SAME", at(2))];
    let event = audit(owned.team, AuditAction::Create, g.id.as_uuid(), owned.actor);
    expect_err(
        stores.groups.create(&g, &keys, &event).await,
        &DUPLICATE,
        "a key given twice",
    );
    expect_err(stores.groups.get(owned.team, g.id).await, &NOT_FOUND, "no group");
    assert_not_recorded(&stores, &event).await;
    // Keys differing only in case are different keys.
    let g = group(owned, "payments");
    let keys = [new_key(&g, "key", at(2)), new_key(&g, "KEY", at(2))];
    let event = audit(owned.team, AuditAction::Create, g.id.as_uuid(), owned.actor);
    stores
        .groups
        .create(&g, &keys, &event)
        .await
        .expect("case-distinct keys");
    assert_eq!(keys_of(&stores, &g).await.len(), 2);
}

/// `get` is `NotFound` for an absent group or one of another team; `get_in` for an absent
/// group or one outside the scope (an empty scope sees nothing).
async fn get_absent_or_outside_the_team_or_scope_is_not_found(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &[]).await;
    expect_err(stores.groups.get(other.team, g.id).await, &NOT_FOUND, "another team");
    expect_err(
        stores.groups.get(owned.team, SecretGroupId::from_uuid(fresh())).await,
        &NOT_FOUND,
        "absent",
    );
    expect_err(
        stores.groups.get_in(&TeamScope::Teams(vec![other.team]), g.id).await,
        &NOT_FOUND,
        "outside the scope",
    );
    expect_err(
        stores.groups.get_in(&TeamScope::Teams(vec![]), g.id).await,
        &NOT_FOUND,
        "an empty scope",
    );
    expect_err(
        stores
            .groups
            .get_in(&TeamScope::All, SecretGroupId::from_uuid(fresh()))
            .await,
        &NOT_FOUND,
        "absent from every team",
    );
}

// ---------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------

/// `list` returns the groups of the scope's teams only, ordered by name.
async fn list_orders_by_name_and_keeps_to_the_scope(stores: GroupStores) {
    let a = team(&stores.repos).await;
    let b = team(&stores.repos).await;
    let c = team(&stores.repos).await;
    stored(&stores, a, "charlie", &[]).await;
    stored(&stores, a, "alpha", &[]).await;
    stored(&stores, b, "bravo", &[]).await;
    stored(&stores, c, "delta", &[]).await;
    let list = |scope: TeamScope| {
        let groups = stores.groups.clone();
        async move { groups.list(&scope, &GroupFilter::default(), ALL).await.expect("list") }
    };
    let only_a = list(TeamScope::Teams(vec![a.team])).await;
    assert_eq!(names(&only_a.items), ["alpha", "charlie"]);
    assert_eq!(only_a.total, 2);
    let a_and_b = list(TeamScope::Teams(vec![b.team, a.team])).await;
    assert_eq!(names(&a_and_b.items), ["alpha", "bravo", "charlie"]);
    let all = list(TeamScope::All).await;
    assert_eq!(names(&all.items), ["alpha", "bravo", "charlie", "delta"]);
    let none = list(TeamScope::Teams(vec![])).await;
    assert!(none.items.is_empty());
    assert_eq!(none.total, 0);
}

/// `search` keeps groups whose name or one of whose keys contains it, ignoring case, and
/// lists each such group once.
async fn list_search_is_a_case_insensitive_substring(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    for n in ["payments", "old-payroll", "billing", "repay"] {
        stored(&stores, owned, n, &[]).await;
    }
    stored(&stores, owned, "ledger", &["PAYPAL_KEY", "Paystack_Token", "OTHER"]).await;
    stored(&stores, owned, "reports", &["SMTP_PASSWORD"]).await;
    let filter = GroupFilter {
        search: Some("PAY".to_owned()),
        ..GroupFilter::default()
    };
    let found = stores
        .groups
        .list(&TeamScope::Teams(vec![owned.team]), &filter, ALL)
        .await
        .expect("list");
    assert_eq!(names(&found.items), ["ledger", "old-payroll", "payments", "repay"]);
    assert_eq!(found.total, 4);
    let filter = GroupFilter {
        search: Some("zzz".to_owned()),
        ..GroupFilter::default()
    };
    let none = stores.groups.list(&TeamScope::All, &filter, ALL).await.expect("list");
    assert!(none.items.is_empty());
    assert_eq!(none.total, 0);
}

/// `name` keeps only the group of exactly that name (the FQN filter), still within the scope.
async fn list_filters_by_exact_name(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    stored(&stores, owned, "payments", &[]).await;
    stored(&stores, owned, "payments-old", &[]).await;
    stored(&stores, other, "billing", &[]).await;
    let filter = |n: &str| GroupFilter {
        name: Some(group_name(n)),
        ..GroupFilter::default()
    };
    let scope = TeamScope::Teams(vec![owned.team]);
    let found = stores
        .groups
        .list(&scope, &filter("payments"), ALL)
        .await
        .expect("list");
    assert_eq!(names(&found.items), ["payments"]);
    assert_eq!(found.total, 1);
    let outside = stores.groups.list(&scope, &filter("billing"), ALL).await.expect("list");
    assert!(
        outside.items.is_empty(),
        "a group outside the scope is not found by name"
    );
}

/// `limit` and `offset` page the ordered matches; `total` counts every match.
async fn list_pages_with_the_total_of_matches(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    for n in ["group-e", "group-a", "group-d", "group-b", "group-c"] {
        stored(&stores, owned, n, &[]).await;
    }
    let scope = TeamScope::Teams(vec![owned.team]);
    let page = |offset| Page { limit: 2, offset };
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let p = stores
            .groups
            .list(&scope, &GroupFilter::default(), page(offset))
            .await
            .expect("list");
        assert_eq!(p.total, 5);
        seen.extend(p.items.into_iter().map(|g| g.name.as_str().to_owned()));
    }
    assert_eq!(seen, ["group-a", "group-b", "group-c", "group-d", "group-e"]);
    let past = stores
        .groups
        .list(&scope, &GroupFilter::default(), page(10))
        .await
        .expect("list");
    assert!(past.items.is_empty());
    assert_eq!(past.total, 5);
}

/// `keys` is `NotFound` for an absent group or one of another team.
async fn keys_of_an_absent_group_or_in_another_team_is_not_found(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["K"]).await;
    expect_err(stores.groups.keys(other.team, g.id).await, &NOT_FOUND, "another team");
    expect_err(
        stores.groups.keys(owned.team, SecretGroupId::from_uuid(fresh())).await,
        &NOT_FOUND,
        "absent",
    );
}

/// `keys_of_groups` gives each group's keys as `keys` does, an empty list for a group
/// without keys, and no entry for a group that is not in the team it is given with.
async fn keys_of_groups_gives_each_groups_keys_as_keys_does(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    let (payments, _) = stored(&stores, owned, "payments", &["B_KEY", "A_KEY"]).await;
    let (ledger, _) = stored(&stores, other, "ledger", &["ONLY"]).await;
    let (empty, _) = stored(&stores, owned, "empty", &[]).await;
    let change = changes(
        &payments,
        &keys_of(&stores, &payments).await,
        &[],
        &["A_KEY"],
        &[],
        at(50),
    );
    apply_ok(&stores, &change).await;
    let elsewhere = SecretGroup {
        team_id: owned.team,
        ..ledger.clone()
    };
    let absent = SecretGroup {
        id: SecretGroupId::from_uuid(fresh()),
        ..payments.clone()
    };
    let found = stores
        .groups
        .keys_of_groups(&[payments.clone(), ledger.clone(), empty.clone(), absent])
        .await
        .expect("keys of the groups");
    assert_eq!(found.len(), 3, "payments, ledger and empty; not the absent group");
    assert_eq!(found[&payments.id], keys_of(&stores, &payments).await);
    assert_eq!(keys_named(&found[&payments.id]), ["A_KEY", "B_KEY"]);
    assert_eq!(by_key(&found[&payments.id], "A_KEY").versions.len(), 2);
    assert_eq!(found[&ledger.id], keys_of(&stores, &ledger).await);
    assert!(found[&empty.id].is_empty());
    assert!(stores.groups.keys_of_groups(&[]).await.expect("none").is_empty());
    let strays = stores
        .groups
        .keys_of_groups(&[elsewhere])
        .await
        .expect("keys of a group given with another team");
    assert!(strays.is_empty(), "a group is read only in its own team");
}

// ---------------------------------------------------------------------------------------
// apply
// ---------------------------------------------------------------------------------------

/// `added` keys are inserted at version 1 with their first version.
async fn apply_adds_keys_at_version_1(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["OLD"]).await;
    let before = keys_of(&stores, &g).await;
    let change = changes(&g, &before, &["NEW", "ALSO_NEW"], &[], &[], at(50));
    apply_ok(&stores, &change).await;
    let after = keys_of(&stores, &g).await;
    assert_eq!(keys_named(&after), ["ALSO_NEW", "NEW", "OLD"]);
    for made in &change.added {
        let details = by_key(&after, made.secret.key.as_str());
        assert_eq!(details.secret, made.secret);
        assert_eq!(details.versions, vec![made.first_version.clone()]);
    }
    assert_eq!(by_key(&after, "OLD"), by_key(&before, "OLD"), "a kept key is untouched");
}

/// A new version becomes the key's current version (with the update's `updated_at/by`);
/// older versions stay; the key's creation is unchanged.
async fn apply_adds_a_version_and_keeps_the_history(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let editor = team(&stores.repos).await.actor;
    let (g, _) = stored(&stores, owned, "payments", &["K", "OTHER"]).await;
    let first = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &first, &[], &["K"], &[], at(60))).await;
    let second = keys_of(&stores, &g).await;
    let change = GroupChanges {
        updated_by: editor,
        ..changes(&g, &second, &[], &["K"], &[], at(70))
    };
    apply_ok(&stores, &change).await;
    let third = keys_of(&stores, &g).await;
    let k = by_key(&third, "K");
    assert_eq!(k.secret.version, 3);
    assert_eq!(versions(k), [1, 2, 3]);
    assert_eq!(k.versions[2], change.new_versions[0]);
    assert_eq!(k.versions[0], by_key(&first, "K").versions[0]);
    assert_eq!(k.secret.updated_at, at(70));
    assert_eq!(k.secret.updated_by, editor);
    assert_eq!(k.secret.created_at, by_key(&first, "K").secret.created_at);
    assert_eq!(k.secret.created_by, owned.actor);
    assert_eq!(by_key(&third, "OTHER"), by_key(&first, "OTHER"));
}

/// `deleted` keys go with every version and every recorded read.
async fn apply_deletes_keys_with_their_versions_and_reads(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["GONE", "STAYS"]).await;
    let before = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &before, &[], &["GONE"], &[], at(20))).await;
    let gone = by_key(&keys_of(&stores, &g).await, "GONE").secret.id;
    read(&stores, owned.team, gone, account(), at(30)).await;
    let now = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &now, &[], &[], &["GONE"], at(40))).await;
    assert_eq!(keys_named(&keys_of(&stores, &g).await), ["STAYS"]);
    expect_err(
        stores.groups.get_key(&TeamScope::All, gone).await,
        &NOT_FOUND,
        "a deleted key",
    );
    assert_eq!(readers(&stores, &[gone], at(0)).await[&gone], 0, "its reads are gone");
    // Deleting every key leaves an empty group.
    let now = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &now, &[], &[], &["STAYS"], at(41))).await;
    assert!(keys_of(&stores, &g).await.is_empty());
    // A key of the same name can come back, as a new key at version 1.
    let now = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &now, &["GONE"], &[], &[], at(42))).await;
    let back = keys_of(&stores, &g).await;
    assert_ne!(by_key(&back, "GONE").secret.id, gone);
    assert_eq!(versions(by_key(&back, "GONE")), [1]);
}

/// `apply` sets the group's `updated_at/by` (keeping its creation) and records its event.
async fn apply_updates_the_group_and_records_its_audit_event(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let editor = team(&stores.repos).await.actor;
    let (g, _) = stored(&stores, owned, "payments", &["K"]).await;
    let before = keys_of(&stores, &g).await;
    let change = GroupChanges {
        updated_by: editor,
        ..changes(&g, &before, &["NEW"], &["K"], &[], at(90))
    };
    let event = apply_ok(&stores, &change).await;
    let after = stores.groups.get(owned.team, g.id).await.expect("get");
    assert_eq!(after.updated_at, at(90));
    assert_eq!(after.updated_by, editor);
    assert_eq!((after.created_at, after.created_by), (g.created_at, g.created_by));
    assert_eq!((after.name, after.integration_id), (g.name, g.integration_id));
    assert_recorded(&stores, &event).await;
}

/// A change built from keys read before another update moved a version is
/// `Conflict(Stale)`, and writes nothing (no version, no key, no deletion, no event).
async fn apply_after_a_version_moved_is_stale_and_writes_nothing(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["K", "DROP"]).await;
    let snapshot = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &snapshot, &[], &["K"], &[], at(20))).await;
    let current = keys_of(&stores, &g).await;

    let late = changes(&g, &snapshot, &["ADDED"], &["K"], &["DROP"], at(30));
    let event = audit(owned.team, AuditAction::Update, g.id.as_uuid(), owned.actor);
    expect_err(stores.groups.apply(&late, &event).await, &STALE, "a stale snapshot");
    assert_eq!(keys_of(&stores, &g).await, current, "nothing changed");
    assert_eq!(
        stores.groups.get(owned.team, g.id).await.expect("get").updated_at,
        at(20)
    );
    assert_not_recorded(&stores, &event).await;
}

/// A change built before a key was added, or before a key was deleted, is `Conflict(Stale)`:
/// the group's keys are no longer exactly the expected ones.
async fn apply_after_a_key_was_added_or_deleted_is_stale(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["A", "B"]).await;

    let snapshot = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &snapshot, &["C"], &[], &[], at(20))).await;
    // Built without C: applying it would leave C in place although the request left it out.
    let late = changes(&g, &snapshot, &[], &["A"], &[], at(30));
    let event = audit(owned.team, AuditAction::Update, g.id.as_uuid(), owned.actor);
    expect_err(
        stores.groups.apply(&late, &event).await,
        &STALE,
        "a key was added since",
    );

    let snapshot = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &snapshot, &[], &[], &["B"], at(40))).await;
    let late = changes(&g, &snapshot, &[], &["A"], &[], at(50));
    expect_err(
        stores.groups.apply(&late, &event).await,
        &STALE,
        "a key was deleted since",
    );
    let late = changes(&g, &snapshot, &[], &[], &["B"], at(50));
    expect_err(
        stores.groups.apply(&late, &event).await,
        &STALE,
        "deleting a key already deleted",
    );
    let now = keys_of(&stores, &g).await;
    assert_eq!(keys_named(&now), ["A", "C"]);
    assert_eq!(versions(by_key(&now, "A")), [1]);
    assert_not_recorded(&stores, &event).await;
}

/// Adding a key the group keeps, or the same key twice: `Conflict(DuplicateName)`, nothing
/// written.
async fn apply_adding_a_key_the_group_keeps_conflicts(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["K"]).await;
    let snapshot = keys_of(&stores, &g).await;
    let event = audit(owned.team, AuditAction::Update, g.id.as_uuid(), owned.actor);
    let clash = changes(&g, &snapshot, &["K"], &[], &[], at(20));
    expect_err(
        stores.groups.apply(&clash, &event).await,
        &DUPLICATE,
        "adding a kept key",
    );
    let twice = changes(&g, &snapshot, &["NEW", "NEW"], &[], &[], at(20));
    expect_err(
        stores.groups.apply(&twice, &event).await,
        &DUPLICATE,
        "adding a key twice",
    );
    assert_eq!(keys_of(&stores, &g).await, snapshot);
    assert_not_recorded(&stores, &event).await;
}

/// `apply` is `NotFound` for an absent group or one of another team.
async fn apply_to_an_absent_group_or_in_another_team_is_not_found(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["K"]).await;
    let snapshot = keys_of(&stores, &g).await;
    let foreign = GroupChanges {
        team_id: other.team,
        ..changes(&g, &snapshot, &[], &["K"], &[], at(20))
    };
    let event = audit(other.team, AuditAction::Update, g.id.as_uuid(), other.actor);
    expect_err(stores.groups.apply(&foreign, &event).await, &NOT_FOUND, "another team");
    let absent = GroupChanges {
        group_id: SecretGroupId::from_uuid(fresh()),
        expected: vec![],
        new_versions: vec![],
        ..changes(&g, &snapshot, &[], &[], &[], at(20))
    };
    expect_err(stores.groups.apply(&absent, &event).await, &NOT_FOUND, "absent");
    assert_eq!(keys_of(&stores, &g).await, snapshot);
    assert_not_recorded(&stores, &event).await;
}

/// Two updates built from the same keys, applied at once: exactly one is stored, the
/// other is `Conflict(Stale)`.
async fn concurrent_applies_of_one_snapshot_store_exactly_one(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["K"]).await;
    for round in 0..5_i64 {
        let snapshot = keys_of(&stores, &g).await;
        let tasks: Vec<_> = (0..2_i64)
            .map(|i| {
                let stores = stores.clone();
                let change = changes(&g, &snapshot, &[], &["K"], &[], at(100 + round * 10 + i));
                tokio::spawn(async move {
                    let event = audit(
                        change.team_id,
                        AuditAction::Update,
                        change.group_id.as_uuid(),
                        change.updated_by,
                    );
                    stores.groups.apply(&change, &event).await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("the task ran"));
        }
        let stored_count = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(stored_count, 1, "exactly one update is stored: {outcomes:?}");
        assert!(outcomes.iter().any(|o| o == &Err(STALE)), "{outcomes:?}");
        let k = keys_of(&stores, &g).await;
        let expected: Vec<i64> = (1..=round + 2).collect();
        assert_eq!(versions(&k[0]), expected);
    }
}

/// `delete_key` racing an update that gives the key a new version: either the update goes
/// first (and the deleted key is returned with the new version) or the delete does (and the
/// update is `Conflict(Stale)`); never a version of a deleted key, never `NotFound`.
async fn concurrent_delete_key_and_apply_leave_no_half_update(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &[]).await;
    for round in 0..5_i64 {
        let key = format!("K{round}");
        let now = keys_of(&stores, &g).await;
        apply_ok(&stores, &changes(&g, &now, &[&key], &[], &[], at(100 + round))).await;
        let snapshot = keys_of(&stores, &g).await;
        let id = by_key(&snapshot, &key).secret.id;
        let change = changes(&g, &snapshot, &[], &[&key], &[], at(200 + round));
        let updater = {
            let stores = stores.clone();
            tokio::spawn(async move {
                let event = audit(
                    change.team_id,
                    AuditAction::Update,
                    change.group_id.as_uuid(),
                    change.updated_by,
                );
                stores.groups.apply(&change, &event).await
            })
        };
        let deleter = {
            let stores = stores.clone();
            tokio::spawn(async move {
                let event = audit(owned.team, AuditAction::Delete, id.as_uuid(), owned.actor);
                stores.groups.delete_key(owned.team, id, &event).await
            })
        };
        let updated = updater.await.expect("the update ran");
        let removed = deleter.await.expect("the delete ran").expect("the key is deleted");
        match updated {
            Ok(()) => assert_eq!(versions(&removed), [1, 2], "the update went first"),
            Err(e) => {
                assert_eq!(e, STALE, "the delete went first");
                assert_eq!(versions(&removed), [1]);
            }
        }
        assert!(keys_of(&stores, &g).await.is_empty());
    }
}

/// `delete` racing an update that adds a key: either the update goes first (and the delete
/// returns the added key, so its value can be removed) or the delete does (and the update
/// is `NotFound`).
async fn concurrent_delete_and_apply_return_every_key(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    for round in 0..5_i64 {
        let (g, _) = stored(&stores, owned, &format!("group-{round}"), &["OLD"]).await;
        let snapshot = keys_of(&stores, &g).await;
        let change = changes(&g, &snapshot, &["ADDED"], &[], &[], at(100 + round));
        let updater = {
            let stores = stores.clone();
            tokio::spawn(async move {
                let event = audit(
                    change.team_id,
                    AuditAction::Update,
                    change.group_id.as_uuid(),
                    change.updated_by,
                );
                stores.groups.apply(&change, &event).await
            })
        };
        let deleter = {
            let stores = stores.clone();
            let id = g.id;
            tokio::spawn(async move {
                let event = audit(owned.team, AuditAction::Delete, id.as_uuid(), owned.actor);
                stores.groups.delete(owned.team, id, &event).await
            })
        };
        let updated = updater.await.expect("the update ran");
        let deleted = deleter.await.expect("the delete ran").expect("the group is deleted");
        match updated {
            Ok(()) => assert_eq!(keys_named(&deleted.keys), ["ADDED", "OLD"], "the update went first"),
            Err(e) => {
                assert_eq!(e, NOT_FOUND, "the delete went first");
                assert_eq!(keys_named(&deleted.keys), ["OLD"]);
            }
        }
        expect_err(stores.groups.get(owned.team, g.id).await, &NOT_FOUND, "the group");
        let left = stores
            .groups
            .list_keys(&TeamScope::All, &KeyFilter::default(), ALL)
            .await
            .expect("list_keys");
        assert_eq!(left.total, 0, "no key outlives its group");
    }
}

// ---------------------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------------------

/// `delete` removes the group, its keys, their versions and reads, records its event, and
/// returns the group with each key and all its versions.
async fn delete_returns_every_key_with_its_versions_and_removes_all(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["B", "A"]).await;
    let (neighbour, _) = stored(&stores, owned, "billing", &["A"]).await;
    let snapshot = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &snapshot, &[], &["B"], &[], at(20))).await;
    let before = keys_of(&stores, &g).await;
    let b = by_key(&before, "B").secret.id;
    read(&stores, owned.team, b, account(), at(30)).await;

    let event = audit(owned.team, AuditAction::Delete, g.id.as_uuid(), owned.actor);
    let deleted = stores.groups.delete(owned.team, g.id, &event).await.expect("deleted");
    let mut expected_group = g.clone();
    expected_group.updated_at = at(20);
    assert_eq!(deleted.group, expected_group);
    assert_eq!(deleted.keys, before, "every key with every version, ordered by key");
    assert_eq!(versions(by_key(&deleted.keys, "B")), [1, 2]);

    expect_err(stores.groups.get(owned.team, g.id).await, &NOT_FOUND, "the group");
    expect_err(stores.groups.keys(owned.team, g.id).await, &NOT_FOUND, "its keys");
    for key in &before {
        expect_err(
            stores.groups.get_key(&TeamScope::All, key.secret.id).await,
            &NOT_FOUND,
            "a key of the group",
        );
    }
    assert_eq!(readers(&stores, &[b], at(0)).await[&b], 0, "its reads are gone");
    assert_eq!(
        keys_named(&keys_of(&stores, &neighbour).await),
        ["A"],
        "other groups stay"
    );
    assert_recorded(&stores, &event).await;
}

/// Once deleted, the group's name can be used again.
async fn delete_frees_the_name(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["K"]).await;
    let event = audit(owned.team, AuditAction::Delete, g.id.as_uuid(), owned.actor);
    stores.groups.delete(owned.team, g.id, &event).await.expect("deleted");
    let (again, _) = stored(&stores, owned, "payments", &["K"]).await;
    assert_ne!(again.id, g.id);
}

/// `delete` is `NotFound` for an absent group or one of another team, and then keeps it.
async fn delete_absent_or_in_another_team_is_not_found_and_keeps_it(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["K"]).await;
    let event = audit(other.team, AuditAction::Delete, g.id.as_uuid(), other.actor);
    expect_err(
        stores.groups.delete(other.team, g.id, &event).await,
        &NOT_FOUND,
        "another team",
    );
    expect_err(
        stores
            .groups
            .delete(owned.team, SecretGroupId::from_uuid(fresh()), &event)
            .await,
        &NOT_FOUND,
        "absent",
    );
    assert_eq!(stores.groups.get(owned.team, g.id).await.expect("still there"), g);
    assert_eq!(keys_of(&stores, &g).await.len(), 1);
    assert_not_recorded(&stores, &event).await;
}

// ---------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------

/// `get_key` returns the key with its team, its group's name and its versions, when its
/// group is in the scope; else `NotFound`.
async fn get_key_returns_team_group_name_and_versions_within_the_scope(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    let (g, keys) = stored(&stores, owned, "payments", &["K"]).await;
    let snapshot = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &snapshot, &[], &["K"], &[], at(20))).await;
    let id = keys[0].secret.id;
    let details = stores
        .groups
        .get_key(&TeamScope::Teams(vec![owned.team]), id)
        .await
        .expect("get_key");
    assert_eq!(details.team_id, owned.team);
    assert_eq!(details.group_name, g.name);
    assert_eq!(details.secret.version, 2);
    assert_eq!(versions(&details), [1, 2]);
    assert_eq!(details, keys_of(&stores, &g).await[0]);
    assert_eq!(stores.groups.get_key(&TeamScope::All, id).await.expect("all"), details);
    expect_err(
        stores.groups.get_key(&TeamScope::Teams(vec![other.team]), id).await,
        &NOT_FOUND,
        "outside the scope",
    );
    expect_err(
        stores
            .groups
            .get_key(&TeamScope::All, GroupSecretId::from_uuid(fresh()))
            .await,
        &NOT_FOUND,
        "absent",
    );
}

/// `list_keys` returns the keys of the scope's groups, ordered by group name then key.
async fn list_keys_orders_by_group_then_key_and_keeps_to_the_scope(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    stored(&stores, owned, "zulu", &["A"]).await;
    stored(&stores, owned, "alpha", &["Z", "B"]).await;
    stored(&stores, other, "mike", &["M"]).await;
    let scope = TeamScope::Teams(vec![owned.team]);
    let listed = stores
        .groups
        .list_keys(&scope, &KeyFilter::default(), ALL)
        .await
        .expect("list_keys");
    let seen: Vec<(&str, &str)> = listed
        .items
        .iter()
        .map(|k| (k.group_name.as_str(), k.secret.key.as_str()))
        .collect();
    assert_eq!(seen, [("alpha", "B"), ("alpha", "Z"), ("zulu", "A")]);
    assert_eq!(listed.total, 3);
    assert!(
        listed
            .items
            .iter()
            .all(|k| k.team_id == owned.team && k.versions.len() == 1)
    );
    let all = stores
        .groups
        .list_keys(&TeamScope::All, &KeyFilter::default(), ALL)
        .await
        .expect("list_keys");
    assert_eq!(all.total, 4);
    let none = stores
        .groups
        .list_keys(&TeamScope::Teams(vec![]), &KeyFilter::default(), ALL)
        .await
        .expect("list_keys");
    assert_eq!((none.items.len(), none.total), (0, 0));
}

/// `secret_group_id` keeps one group's keys; `fqns` keeps the keys they name (a name of
/// another team's group, or of no key, matches nothing); `Some(vec![])` matches nothing.
async fn list_keys_filters_by_group_and_by_fqns(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    let (payments, _) = stored(&stores, owned, "payments", &["DB_URL", "TOKEN"]).await;
    stored(&stores, owned, "billing", &["DB_URL"]).await;
    stored(&stores, other, "secret-stuff", &["DB_URL"]).await;
    let scope = TeamScope::Teams(vec![owned.team]);
    let list = |filter: KeyFilter| {
        let groups = stores.groups.clone();
        let scope = scope.clone();
        async move { groups.list_keys(&scope, &filter, ALL).await.expect("list_keys") }
    };
    let by_group = list(KeyFilter {
        secret_group_id: Some(payments.id),
        ..KeyFilter::default()
    })
    .await;
    assert_eq!(keys_named(&by_group.items), ["DB_URL", "TOKEN"]);
    assert!(by_group.items.iter().all(|k| k.secret.group_id == payments.id));

    let fqn = |g: &str, k: &str| KeyFqn {
        group: group_name(g),
        key: secret_key(k),
    };
    let by_fqn = list(KeyFilter {
        fqns: Some(vec![
            fqn("payments", "TOKEN"),
            fqn("billing", "DB_URL"),
            fqn("secret-stuff", "DB_URL"),
            fqn("payments", "MISSING"),
        ]),
        ..KeyFilter::default()
    })
    .await;
    let seen: Vec<(&str, &str)> = by_fqn
        .items
        .iter()
        .map(|k| (k.group_name.as_str(), k.secret.key.as_str()))
        .collect();
    assert_eq!(seen, [("billing", "DB_URL"), ("payments", "TOKEN")]);
    assert_eq!(by_fqn.total, 2);

    let both = list(KeyFilter {
        secret_group_id: Some(payments.id),
        fqns: Some(vec![fqn("billing", "DB_URL"), fqn("payments", "DB_URL")]),
    })
    .await;
    assert_eq!(keys_named(&both.items), ["DB_URL"]);
    assert_eq!(both.items[0].group_name.as_str(), "payments");

    let nothing = list(KeyFilter {
        fqns: Some(vec![]),
        ..KeyFilter::default()
    })
    .await;
    assert_eq!((nothing.items.len(), nothing.total), (0, 0));
}

/// `limit` and `offset` page the ordered keys; `total` counts every match.
async fn list_keys_pages_with_the_total_of_matches(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    stored(&stores, owned, "payments", &["E", "A", "D", "B", "C"]).await;
    let scope = TeamScope::Teams(vec![owned.team]);
    let mut seen = Vec::new();
    for offset in [0, 2, 4, 6] {
        let page = stores
            .groups
            .list_keys(&scope, &KeyFilter::default(), Page { limit: 2, offset })
            .await
            .expect("list_keys");
        assert_eq!(page.total, 5);
        seen.extend(page.items.iter().map(|k| k.secret.key.as_str().to_owned()));
    }
    assert_eq!(seen, ["A", "B", "C", "D", "E"]);
}

/// `delete_key` removes the key with every version and read, records its event, returns
/// what it removed, and leaves the other keys alone.
async fn delete_key_removes_it_with_its_versions_and_reads(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (g, _) = stored(&stores, owned, "payments", &["GONE", "STAYS"]).await;
    let snapshot = keys_of(&stores, &g).await;
    apply_ok(&stores, &changes(&g, &snapshot, &[], &["GONE"], &[], at(20))).await;
    let before = keys_of(&stores, &g).await;
    let gone = by_key(&before, "GONE").clone();
    read(&stores, owned.team, gone.secret.id, account(), at(30)).await;

    let event = audit(owned.team, AuditAction::Delete, gone.secret.id.as_uuid(), owned.actor);
    let removed = stores
        .groups
        .delete_key(owned.team, gone.secret.id, &event)
        .await
        .expect("deleted");
    assert_eq!(removed, gone);
    assert_eq!(versions(&removed), [1, 2]);
    let after = keys_of(&stores, &g).await;
    assert_eq!(keys_named(&after), ["STAYS"]);
    assert_eq!(by_key(&after, "STAYS"), by_key(&before, "STAYS"));
    expect_err(
        stores.groups.get_key(&TeamScope::All, gone.secret.id).await,
        &NOT_FOUND,
        "the deleted key",
    );
    assert_eq!(readers(&stores, &[gone.secret.id], at(0)).await[&gone.secret.id], 0);
    assert_recorded(&stores, &event).await;
}

/// `delete_key` is `NotFound` for an absent key or one of another team's group, and then
/// keeps it.
async fn delete_key_absent_or_in_another_team_is_not_found(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let other = team(&stores.repos).await;
    let (g, keys) = stored(&stores, owned, "payments", &["K"]).await;
    let id = keys[0].secret.id;
    let event = audit(other.team, AuditAction::Delete, id.as_uuid(), other.actor);
    expect_err(
        stores.groups.delete_key(other.team, id, &event).await,
        &NOT_FOUND,
        "another team",
    );
    expect_err(
        stores
            .groups
            .delete_key(owned.team, GroupSecretId::from_uuid(fresh()), &event)
            .await,
        &NOT_FOUND,
        "absent",
    );
    assert_eq!(keys_named(&keys_of(&stores, &g).await), ["K"]);
    assert_not_recorded(&stores, &event).await;
}

// ---------------------------------------------------------------------------------------
// reads
// ---------------------------------------------------------------------------------------

/// `record_read` of a key that does not exist is `NotFound` and records nothing.
async fn record_read_of_a_missing_key_is_not_found(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let id = GroupSecretId::from_uuid(fresh());
    let reader = account();
    let event = read_event(owned.team, id, reader);
    expect_err(
        stores.groups.record_read(id, reader, at(10), &event).await,
        &NOT_FOUND,
        "a missing key",
    );
    assert_eq!(readers(&stores, &[id], at(0)).await[&id], 0);
    assert_not_recorded(&stores, &event).await;
}

/// `active_readers` counts, per key, the distinct accounts whose latest read is at or after
/// `since`; every id asked for has an entry (0 when never read or unknown). Each read
/// records its audit event.
async fn active_readers_counts_distinct_accounts_since_the_instant(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (_, keys) = stored(&stores, owned, "payments", &["A", "B", "C"]).await;
    let (a, b, c) = (keys[0].secret.id, keys[1].secret.id, keys[2].secret.id);
    let (first, second, old) = (account(), account(), account());
    read(&stores, owned.team, a, first, at(100)).await;
    read(&stores, owned.team, a, first, at(110)).await;
    read(&stores, owned.team, a, second, at(100)).await;
    read(&stores, owned.team, a, old, at(10)).await;
    read(&stores, owned.team, b, first, at(99)).await;
    let unknown = GroupSecretId::from_uuid(fresh());
    let counts = readers(&stores, &[a, b, c, unknown], at(100)).await;
    assert_eq!(counts.len(), 4);
    assert_eq!(
        counts[&a], 2,
        "two accounts read A since the instant, one of them twice"
    );
    assert_eq!(counts[&b], 0, "a read before the instant does not count");
    assert_eq!(counts[&c], 0);
    assert_eq!(counts[&unknown], 0);
    let earlier = readers(&stores, &[a, b], at(0)).await;
    assert_eq!((earlier[&a], earlier[&b]), (3, 1));
    let only_b = readers(&stores, &[b], at(0)).await;
    assert_eq!(only_b.len(), 1, "only the ids asked for");
    assert!(readers(&stores, &[], at(0)).await.is_empty());

    let reader = account();
    let event = read_event(owned.team, c, reader);
    stores
        .groups
        .record_read(c, reader, at(120), &event)
        .await
        .expect("read recorded");
    assert_recorded(&stores, &event).await;
}

/// Only the latest read of an account counts: a read recorded late with an older instant
/// does not hide a newer one.
async fn record_read_keeps_the_latest_read_of_each_account(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (_, keys) = stored(&stores, owned, "payments", &["K"]).await;
    let id = keys[0].secret.id;
    let reader = account();
    read(&stores, owned.team, id, reader, at(200)).await;
    read(&stores, owned.team, id, reader, at(50)).await;
    assert_eq!(readers(&stores, &[id], at(150)).await[&id], 1);
    assert_eq!(readers(&stores, &[id], at(0)).await[&id], 1, "one account counts once");
    assert_eq!(readers(&stores, &[id], at(201)).await[&id], 0);
}

/// The first reads of a key by one account, recorded at the same time, all succeed and
/// count once.
async fn concurrent_first_reads_by_one_account_all_succeed(stores: GroupStores) {
    let owned = team(&stores.repos).await;
    let (_, keys) = stored(&stores, owned, "payments", &["K"]).await;
    let id = keys[0].secret.id;
    for round in 0..5_i64 {
        let reader = account();
        let tasks: Vec<_> = (0..3_i64)
            .map(|i| {
                let stores = stores.clone();
                tokio::spawn(async move {
                    let event = read_event(owned.team, id, reader);
                    stores
                        .groups
                        .record_read(id, reader, at(1000 + round * 10 + i), &event)
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("the read ran"), Ok(()));
        }
        let counted = readers(&stores, &[id], at(1000 + round * 10 + 2)).await[&id];
        assert_eq!(counted, 1, "the latest of the concurrent reads is kept");
    }
    assert_eq!(readers(&stores, &[id], at(0)).await[&id], 5);
}
