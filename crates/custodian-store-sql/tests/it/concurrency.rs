//! Tier limits hold under concurrent writers, on both backends.

use custodian_domain::{AuditAction, LimitKind, ResourceType, Role};
use custodian_ports::RepoError;
use custodian_store_sql::{Database, test_support};
use custodian_testkit::contract::fixtures::{audit, membership, user, user_and_team};

use crate::support::{postgres_skipped, repo_set};

const WRITERS: usize = 20;

/// 20 concurrent adds into a team of one owner with member limit `limit` leave exactly
/// `limit` members: `limit - 1` adds succeed, the others are `LimitExceeded`.
async fn concurrent_adds_stop_at_the_limit(db: Database, limit: u32) {
    let repos = repo_set(&db);
    let owned = user_and_team(&repos).await;
    let mut candidates = Vec::new();
    for _ in 0..WRITERS {
        candidates.push(user(&repos).await);
    }
    let adds = candidates.into_iter().map(|candidate| {
        let repos = repos.clone();
        let owned = owned.clone();
        tokio::spawn(async move {
            let event = audit(
                Some(owned.team_id()),
                AuditAction::Create,
                ResourceType::Member,
                candidate.id.as_uuid(),
                owned.actor(),
            );
            repos
                .memberships
                .add(
                    &membership(owned.team_id(), candidate.id, Role::Viewer),
                    Some(limit),
                    &event,
                )
                .await
        })
    });
    let outcomes = futures::future::join_all(adds).await;
    let mut added = 0;
    for outcome in outcomes {
        match outcome.expect("the add task") {
            Ok(()) => added += 1,
            Err(RepoError::LimitExceeded {
                kind: LimitKind::Members,
                limit: l,
            }) => assert_eq!(l, limit),
            Err(other) => panic!("unexpected outcome of a concurrent add: {other:?}"),
        }
    }
    let expected = usize::try_from(limit).expect("small") - 1;
    assert_eq!(added, expected, "limit {limit}");
    let members = repos
        .memberships
        .list(owned.team_id(), custodian_testkit::contract::fixtures::ALL)
        .await;
    assert_eq!(members.expect("list").total, u64::from(limit));
}

const LIMITS: [u32; 4] = [1, 2, 5, 12];

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_member_limit_holds_under_concurrent_adds() {
    for limit in LIMITS {
        concurrent_adds_stop_at_the_limit(test_support::sqlite().await, limit).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_member_limit_holds_under_concurrent_adds() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): member limit under concurrent adds");
        return;
    }
    for limit in LIMITS {
        concurrent_adds_stop_at_the_limit(test_support::postgres().await.expect("PostgreSQL tests run"), limit).await;
    }
}
