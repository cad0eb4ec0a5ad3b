//! Member use cases over mocked ports.

use custodian_domain::{LimitKind, Tier};
use custodian_ports::ConflictKind;

use super::*;
use crate::Requirement;
use crate::test_support::*;

fn ctx() -> RequestContext {
    RequestContext {
        request_id: Some("req-1".into()),
        client_ip: Some("127.0.0.1".into()),
        user_agent: None,
    }
}

fn role(role: &str) -> RoleChangeInput {
    RoleChangeInput {
        role: Some(role.into()),
    }
}

fn add(email: &str, role: &str) -> AddMemberInput {
    AddMemberInput {
        email: Some(email.into()),
        user_id: None,
        role: Some(role.into()),
    }
}

#[tokio::test]
async fn adding_a_member_passes_the_tiers_member_limit() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin).team(team(Tier::Free));
    mocks
        .users
        .expect_find_by_email()
        .returning(|_| Ok(Some(user_record(bob_id(), "bob@example.com"))));
    mocks
        .memberships
        .expect_add()
        .withf(|m, limit, audit| {
            m.user_id == bob_id()
                && m.role == Role::Operator
                && *limit == Some(1)
                && audit.resource_type == ResourceType::Member
        })
        .times(1)
        .returning(|_, _, _| {
            Err(RepoError::LimitExceeded {
                kind: LimitKind::Members,
                limit: 1,
            })
        });
    assert_eq!(
        mocks
            .build()
            .add_member(&alice(), &ctx(), team_id(), add("bob@example.com", "operator"))
            .await,
        Err(CoreError::LimitExceeded {
            kind: LimitKind::Members,
            limit: 1
        })
    );
}

#[tokio::test]
async fn an_enterprise_team_has_no_member_limit() {
    let mut mocks = Mocks::new();
    mocks
        .member(team_id(), alice_id(), Role::Admin)
        .team(team(Tier::Enterprise));
    mocks
        .users
        .expect_get()
        .returning(|id| Ok(user_record(id, "bob@example.com")));
    mocks
        .memberships
        .expect_add()
        .withf(|_, limit, _| limit.is_none())
        .times(1)
        .returning(|_, _, _| Ok(()));
    let input = AddMemberInput {
        email: None,
        user_id: Some(bob_id().to_string()),
        role: Some("viewer".into()),
    };
    let membership = mocks
        .build()
        .add_member(&alice(), &ctx(), team_id(), input)
        .await
        .unwrap();
    assert_eq!(membership.user_id, bob_id());
}

#[tokio::test]
async fn granting_owner_needs_an_owner() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin);
    assert_eq!(
        mocks
            .build()
            .add_member(&alice(), &ctx(), team_id(), add("bob@example.com", "owner"))
            .await,
        Err(CoreError::Forbidden {
            needed: Requirement::Role(Role::Owner)
        })
    );
}

#[tokio::test]
async fn an_unknown_user_is_a_validation_error_on_the_field_that_named_them() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Owner);
    mocks.users.expect_find_by_email().returning(|_| Ok(None));
    let result = mocks
        .build()
        .add_member(&alice(), &ctx(), team_id(), add("ghost@example.com", "viewer"))
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["email"])));
}

#[tokio::test]
async fn an_operator_cannot_manage_members() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Operator);
    assert_eq!(
        mocks
            .build()
            .add_member(&alice(), &ctx(), team_id(), add("bob@example.com", "viewer"))
            .await,
        Err(CoreError::Forbidden {
            needed: Requirement::Role(Role::Admin)
        })
    );
}

#[tokio::test]
async fn demoting_or_removing_an_owner_needs_an_owner() {
    let mut mocks = Mocks::new();
    mocks
        .member(team_id(), alice_id(), Role::Admin)
        .member(team_id(), bob_id(), Role::Owner);
    let custodian = mocks.build();
    let needed = Err(CoreError::Forbidden {
        needed: Requirement::Role(Role::Owner),
    });
    assert_eq!(
        custodian
            .change_member_role(&alice(), &ctx(), team_id(), bob_id(), role("viewer"))
            .await
            .map(|_| ()),
        needed
    );
    assert_eq!(
        custodian.remove_member(&alice(), &ctx(), team_id(), bob_id()).await,
        needed
    );
}

#[tokio::test]
async fn the_last_owner_conflict_passes_through() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Owner);
    mocks
        .memberships
        .expect_update_role()
        .returning(|_, _, _, _| Err(RepoError::Conflict(ConflictKind::LastOwner)));
    mocks
        .memberships
        .expect_remove()
        .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::LastOwner)));
    let custodian = mocks.build();
    assert_eq!(
        custodian
            .change_member_role(&alice(), &ctx(), team_id(), alice_id(), role("admin"))
            .await,
        Err(CoreError::Conflict(ConflictKind::LastOwner))
    );
    assert_eq!(
        custodian.remove_member(&alice(), &ctx(), team_id(), alice_id()).await,
        Err(CoreError::Conflict(ConflictKind::LastOwner))
    );
}

#[tokio::test]
async fn a_viewer_reads_one_member_with_their_user() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Viewer);
    mocks.member(team_id(), bob_id(), Role::Admin);
    mocks
        .users
        .expect_get()
        .withf(|id| *id == bob_id())
        .returning(|id| Ok(user_record(id, "bob@example.com")));
    let (membership, user) = mocks.build().get_member(&alice(), team_id(), bob_id()).await.unwrap();
    assert_eq!(membership.role, Role::Admin);
    assert_eq!(user.email.as_str(), "bob@example.com");
}

#[tokio::test]
async fn a_member_is_not_found_outside_the_team_or_for_a_stranger() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Viewer);
    mocks.stranger(bob_id());
    let custodian = mocks.build();
    let not_a_member = custodian.get_member(&alice(), team_id(), bob_id()).await;
    assert_eq!(not_a_member, Err(CoreError::NotFound));
    let other_team = custodian
        .get_member(&account(other_team_id(), Role::Admin), team_id(), alice_id())
        .await;
    assert_eq!(other_team, Err(CoreError::NotFound));
}
