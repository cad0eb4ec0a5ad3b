//! Contract of [`AuditRepository`](custodian_ports::AuditRepository).

use custodian_domain::{AuditAction, AuditEvent, AuditEventId, Outcome, ResourceType, SubjectId, SubjectKind, TeamId};
use custodian_ports::{AuditFilter, Page, RepoError};
use uuid::Uuid;

use super::fixtures::{ALL, at, audit, cases, fresh};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        record_then_list_returns_the_whole_event,
        list_is_team_scoped,
        list_is_newest_first_with_ties_by_id_descending,
        list_filters_by_resource_type,
        list_filters_by_actor,
        list_since_is_inclusive_and_until_exclusive,
        list_pages_with_the_total_of_matches,
    ]
}

/// An event of `team` at `at(secs)`.
fn event_at(team: TeamId, secs: i64, resource_type: ResourceType, actor: SubjectId) -> AuditEvent {
    AuditEvent {
        occurred_at: at(secs),
        ..audit(Some(team), AuditAction::Update, resource_type, Uuid::now_v7(), actor)
    }
}

async fn record_all(repos: &RepoSet, events: &[AuditEvent]) {
    for event in events {
        repos.audit.record(event).await.expect("record");
    }
}

async fn listed_ids(repos: &RepoSet, team: TeamId, filter: &AuditFilter) -> Vec<AuditEventId> {
    repos
        .audit
        .list(team, filter, ALL)
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Every field of a recorded event comes back; optional ones may be absent.
async fn record_then_list_returns_the_whole_event(repos: RepoSet) {
    let team: TeamId = fresh();
    let full = audit(
        Some(team),
        AuditAction::Verify,
        ResourceType::StorageSecret,
        Uuid::now_v7(),
        fresh(),
    );
    let sparse = AuditEvent {
        id: fresh(),
        occurred_at: at(5),
        team_id: Some(team),
        actor_id: None,
        actor_kind: None,
        action: AuditAction::Authenticate,
        resource_type: ResourceType::Session,
        resource_id: None,
        resource_name: None,
        outcome: Outcome::Denied,
        detail: None,
        context: Default::default(),
    };
    let account_actor = AuditEvent {
        actor_kind: Some(SubjectKind::VirtualAccount),
        resource_name: Some("backups".to_owned()),
        occurred_at: at(3),
        outcome: Outcome::Failure,
        ..audit(
            Some(team),
            AuditAction::Resolve,
            ResourceType::Location,
            Uuid::now_v7(),
            fresh(),
        )
    };
    record_all(&repos, &[full.clone(), sparse.clone(), account_actor.clone()]).await;
    let listed = repos
        .audit
        .list(team, &AuditFilter::default(), ALL)
        .await
        .expect("list");
    assert_eq!(listed.items, [full, sparse, account_actor]);
    assert_eq!(listed.total, 3);
}

/// Only the team's events are listed.
async fn list_is_team_scoped(repos: RepoSet) {
    let (team, other): (TeamId, TeamId) = (fresh(), fresh());
    let actor: SubjectId = fresh();
    let mine = event_at(team, 1, ResourceType::Team, actor);
    let theirs = event_at(other, 2, ResourceType::Team, actor);
    let nobodys = AuditEvent {
        team_id: None,
        ..event_at(team, 3, ResourceType::User, actor)
    };
    record_all(&repos, &[mine.clone(), theirs.clone(), nobodys]).await;
    assert_eq!(listed_ids(&repos, team, &AuditFilter::default()).await, [mine.id]);
    assert_eq!(listed_ids(&repos, other, &AuditFilter::default()).await, [theirs.id]);
}

/// Newest first; events of the same instant by id, descending.
async fn list_is_newest_first_with_ties_by_id_descending(repos: RepoSet) {
    let team: TeamId = fresh();
    let actor: SubjectId = fresh();
    let oldest = event_at(team, 1, ResourceType::Team, actor);
    let newest = event_at(team, 9, ResourceType::Team, actor);
    let mut tied: Vec<AuditEvent> = (0..3).map(|_| event_at(team, 5, ResourceType::Team, actor)).collect();
    record_all(
        &repos,
        &[
            tied[1].clone(),
            oldest.clone(),
            newest.clone(),
            tied[0].clone(),
            tied[2].clone(),
        ],
    )
    .await;
    tied.sort_by_key(|e| std::cmp::Reverse(e.id));
    let mut expected = vec![newest.id];
    expected.extend(tied.iter().map(|e| e.id));
    expected.push(oldest.id);
    assert_eq!(listed_ids(&repos, team, &AuditFilter::default()).await, expected);
}

/// `resource_type` keeps the events about that kind of resource.
async fn list_filters_by_resource_type(repos: RepoSet) {
    let team: TeamId = fresh();
    let actor: SubjectId = fresh();
    let secret = event_at(team, 1, ResourceType::StorageSecret, actor);
    let location = event_at(team, 2, ResourceType::Location, actor);
    let other_secret = event_at(team, 3, ResourceType::StorageSecret, actor);
    record_all(&repos, &[secret.clone(), location.clone(), other_secret.clone()]).await;
    let filter = AuditFilter {
        resource_type: Some(ResourceType::StorageSecret),
        ..AuditFilter::default()
    };
    assert_eq!(listed_ids(&repos, team, &filter).await, [other_secret.id, secret.id]);
    let filter = AuditFilter {
        resource_type: Some(ResourceType::VaultConnection),
        ..AuditFilter::default()
    };
    assert!(listed_ids(&repos, team, &filter).await.is_empty());
}

/// `actor_id` keeps the events of that subject.
async fn list_filters_by_actor(repos: RepoSet) {
    let team: TeamId = fresh();
    let (alice, bob): (SubjectId, SubjectId) = (fresh(), fresh());
    let by_alice = event_at(team, 1, ResourceType::Team, alice);
    let by_bob = event_at(team, 2, ResourceType::Team, bob);
    record_all(&repos, &[by_alice.clone(), by_bob.clone()]).await;
    let filter = AuditFilter {
        actor_id: Some(alice),
        ..AuditFilter::default()
    };
    assert_eq!(listed_ids(&repos, team, &filter).await, [by_alice.id]);
}

/// `since` is an inclusive lower bound, `until` an exclusive upper bound.
async fn list_since_is_inclusive_and_until_exclusive(repos: RepoSet) {
    let team: TeamId = fresh();
    let actor: SubjectId = fresh();
    let events: Vec<AuditEvent> = [10, 20, 30, 40]
        .into_iter()
        .map(|s| event_at(team, s, ResourceType::Team, actor))
        .collect();
    record_all(&repos, &events).await;
    let filter = AuditFilter {
        since: Some(at(20)),
        until: Some(at(40)),
        ..AuditFilter::default()
    };
    assert_eq!(listed_ids(&repos, team, &filter).await, [events[2].id, events[1].id]);
    let since_only = AuditFilter {
        since: Some(at(30)),
        ..AuditFilter::default()
    };
    assert_eq!(
        listed_ids(&repos, team, &since_only).await,
        [events[3].id, events[2].id]
    );
    let until_only = AuditFilter {
        until: Some(at(10)),
        ..AuditFilter::default()
    };
    assert!(listed_ids(&repos, team, &until_only).await.is_empty());
}

/// A page holds `limit` matches from `offset`; the total counts every match.
async fn list_pages_with_the_total_of_matches(repos: RepoSet) {
    let team: TeamId = fresh();
    let actor: SubjectId = fresh();
    let events: Vec<AuditEvent> = (1..=5)
        .map(|s| event_at(team, s, ResourceType::Member, actor))
        .collect();
    record_all(&repos, &events).await;
    record_all(&repos, &[event_at(team, 6, ResourceType::Team, actor)]).await;
    let filter = AuditFilter {
        resource_type: Some(ResourceType::Member),
        ..AuditFilter::default()
    };
    let page = repos
        .audit
        .list(team, &filter, Page { limit: 2, offset: 1 })
        .await
        .expect("list");
    let ids: Vec<AuditEventId> = page.items.iter().map(|e| e.id).collect();
    assert_eq!(ids, [events[3].id, events[2].id]);
    assert_eq!(page.total, 5);
    let beyond = repos
        .audit
        .list(team, &filter, Page { limit: 2, offset: 9 })
        .await
        .map(|p| (p.items.len(), p.total));
    assert_eq!(beyond, Ok::<_, RepoError>((0, 5)));
}
