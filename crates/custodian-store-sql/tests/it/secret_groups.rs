//! The secret-group contract suite on SQLite and PostgreSQL, and what secret groups change
//! for the other repositories of this crate.

use std::sync::Arc;

use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, GroupName, Outcome, RequestContext, ResourceType, SecretGroup, SubjectKind,
    TeamId,
};
use custodian_ports::{ConflictKind, GroupFilter, Page, RepoError, TeamScope};
use custodian_store_sql::{Database, SqlSecretGroupRepository, test_support};
use custodian_testkit::contract::fixtures::{at, fresh, user_and_team};
use custodian_testkit::contract::secret_groups::{GroupStores, cases};
use custodian_testkit::run_cases;

use crate::support::{postgres_skipped, repo_set};

fn stores(db: &Database) -> GroupStores {
    GroupStores {
        repos: repo_set(db),
        groups: Arc::new(SqlSecretGroupRepository::new(db.clone())),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_passes_the_secret_group_contract() {
    run_cases("sqlite", "secret_groups", &cases(), || async {
        stores(&test_support::sqlite().await)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_passes_the_secret_group_contract() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): contract secret_groups");
        return;
    }
    run_cases("postgres", "secret_groups", &cases(), || async {
        stores(&test_support::postgres().await.expect("PostgreSQL tests run"))
    })
    .await;
}

fn event(team: TeamId, action: AuditAction, resource_type: ResourceType) -> AuditEvent {
    AuditEvent {
        id: fresh::<AuditEventId>(),
        occurred_at: at(5),
        team_id: Some(team),
        actor_id: None,
        actor_kind: Some(SubjectKind::User),
        action,
        resource_type,
        resource_id: None,
        resource_name: None,
        outcome: Outcome::Success,
        detail: None,
        context: RequestContext::default(),
    }
}

/// A team that holds a secret group cannot be deleted (`Conflict(TeamNotEmpty)`): the
/// group's values would be left in the credential store. Once the group is gone, it can.
async fn a_team_with_secret_groups_is_not_empty(db: Database) {
    let stores = stores(&db);
    let owned = user_and_team(&stores.repos).await;
    let (team, owner) = (owned.team, owned.owner.id);
    let group = SecretGroup {
        id: fresh(),
        team_id: team.id,
        name: GroupName::parse_at("name", "payments").expect("a valid group name"),
        integration_id: "local".into(),
        created_at: at(2),
        created_by: owner.into(),
        updated_at: at(2),
        updated_by: owner.into(),
    };
    let created = event(team.id, AuditAction::Create, ResourceType::SecretGroup);
    stores
        .groups
        .create(&group, &[], &created)
        .await
        .expect("group created");

    let outcome = stores
        .repos
        .teams
        .delete(team.id, &event(team.id, AuditAction::Delete, ResourceType::Team))
        .await;
    assert_eq!(outcome, Err(RepoError::Conflict(ConflictKind::TeamNotEmpty)));
    assert_eq!(stores.groups.get(team.id, group.id).await.expect("still there"), group);

    let deleted = event(team.id, AuditAction::Delete, ResourceType::SecretGroup);
    stores
        .groups
        .delete(team.id, group.id, &deleted)
        .await
        .expect("group deleted");
    stores
        .repos
        .teams
        .delete(team.id, &event(team.id, AuditAction::Delete, ResourceType::Team))
        .await
        .expect("an empty team is deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_team_with_secret_groups_is_not_empty() {
    a_team_with_secret_groups_is_not_empty(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_team_with_secret_groups_is_not_empty() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): a_team_with_secret_groups_is_not_empty");
        return;
    }
    a_team_with_secret_groups_is_not_empty(test_support::postgres().await.expect("PostgreSQL tests run")).await;
}

/// The names of the team's groups that `search` finds, in name order.
async fn found(stores: &GroupStores, team: TeamId, search: &str) -> Vec<String> {
    let filter = GroupFilter {
        search: Some(search.to_owned()),
        ..GroupFilter::default()
    };
    let page = Page { limit: 100, offset: 0 };
    let found = stores
        .groups
        .list(&TeamScope::Teams(vec![team]), &filter, page)
        .await
        .expect("list");
    found.items.iter().map(|g| g.name.as_str().to_owned()).collect()
}

/// A search folds ASCII letters, in the search as in the names, and nothing else: mixed case
/// finds the same groups on every backend, a character whose Unicode lower case is an ASCII
/// letter (the Kelvin sign) does not stand for that letter, and wildcards are characters.
async fn a_group_search_folds_case_alike_on_every_backend(db: Database) {
    let stores = stores(&db);
    let owned = user_and_team(&stores.repos).await;
    let (team, owner) = (owned.team, owned.owner.id);
    for name in ["payments", "kafka-ingest", "old-payroll"] {
        let group = SecretGroup {
            id: fresh(),
            team_id: team.id,
            name: GroupName::parse_at("name", name).expect("a valid group name"),
            integration_id: "local".into(),
            created_at: at(2),
            created_by: owner.into(),
            updated_at: at(2),
            updated_by: owner.into(),
        };
        let created = event(team.id, AuditAction::Create, ResourceType::SecretGroup);
        stores
            .groups
            .create(&group, &[], &created)
            .await
            .expect("group created");
    }
    assert_eq!(found(&stores, team.id, "PaY").await, ["old-payroll", "payments"]);
    assert_eq!(found(&stores, team.id, "KAFKA-In").await, ["kafka-ingest"]);
    assert!(found(&stores, team.id, "\u{212A}afka").await.is_empty());
    assert!(found(&stores, team.id, "pay_").await.is_empty());
    assert!(found(&stores, team.id, "%").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_group_search_folds_case_alike_on_every_backend() {
    a_group_search_folds_case_alike_on_every_backend(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_group_search_folds_case_alike_on_every_backend() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): a_group_search_folds_case_alike_on_every_backend");
        return;
    }
    a_group_search_folds_case_alike_on_every_backend(test_support::postgres().await.expect("PostgreSQL tests run"))
        .await;
}
