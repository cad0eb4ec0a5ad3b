//! Team use cases over mocked ports.

use custodian_domain::Tier;
use custodian_ports::{ConflictKind, RepoError};

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

#[tokio::test]
async fn the_creator_of_a_team_becomes_its_owner_at_the_default_tier() {
    let mut mocks = Mocks::new();
    mocks.settings.default_tier = Tier::Pro;
    mocks
        .teams
        .expect_create()
        .withf(|team, owner, audit| {
            team.tier == Tier::Pro
                && team.name.as_str() == "analytics"
                && owner.team_id == team.id
                && owner.user_id == alice_id()
                && owner.role == Role::Owner
                && audit.team_id == Some(team.id)
                && audit.context.request_id.as_deref() == Some("req-1")
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let team = mocks
        .build()
        .create_team(
            &alice(),
            &ctx(),
            NewTeamInput {
                name: Some("analytics".into()),
                ..NewTeamInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(team.tier, Tier::Pro);
}

#[tokio::test]
async fn only_a_tenant_admin_chooses_a_tier() {
    let input = NewTeamInput {
        name: Some("analytics".into()),
        tier: Some("free".into()),
        ..NewTeamInput::default()
    };
    assert_eq!(
        Mocks::new().build().create_team(&alice(), &ctx(), input.clone()).await,
        Err(CoreError::Forbidden {
            needed: Requirement::TenantAdmin
        })
    );
    let mut mocks = Mocks::new();
    mocks
        .teams
        .expect_create()
        .withf(|team, _, _| team.tier == Tier::Free)
        .times(1)
        .returning(|_, _, _| Ok(()));
    assert_eq!(
        mocks.build().create_team(&root(), &ctx(), input).await.unwrap().tier,
        Tier::Free
    );
}

#[tokio::test]
async fn a_virtual_account_cannot_create_a_team() {
    let result = Mocks::new()
        .build()
        .create_team(
            &account(team_id(), Role::Admin),
            &ctx(),
            NewTeamInput {
                name: Some("x".into()),
                ..NewTeamInput::default()
            },
        )
        .await;
    assert_eq!(
        result,
        Err(CoreError::Forbidden {
            needed: Requirement::User
        })
    );
}

#[tokio::test]
async fn a_team_name_is_checked_and_a_taken_one_conflicts() {
    let result = Mocks::new()
        .build()
        .create_team(&alice(), &ctx(), NewTeamInput::default())
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["name"])));

    let mut mocks = Mocks::new();
    mocks
        .teams
        .expect_create()
        .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::DuplicateName)));
    let result = mocks
        .build()
        .create_team(
            &alice(),
            &ctx(),
            NewTeamInput {
                name: Some("data".into()),
                ..NewTeamInput::default()
            },
        )
        .await;
    assert_eq!(result, Err(CoreError::Conflict(ConflictKind::DuplicateName)));
}

#[tokio::test]
async fn a_tenant_admin_finds_no_team_that_does_not_exist() {
    let mut mocks = Mocks::new();
    mocks.teams.expect_get().returning(|_| Err(RepoError::NotFound));
    assert_eq!(
        mocks
            .build()
            .list_members(&root(), other_team_id(), Page::default())
            .await,
        Err(CoreError::NotFound)
    );
}

#[tokio::test]
async fn a_non_member_cannot_see_a_team() {
    let mut mocks = Mocks::new();
    mocks.stranger(alice_id());
    assert_eq!(
        mocks.build().get_team(&alice(), team_id()).await,
        Err(CoreError::NotFound)
    );
}

#[tokio::test]
async fn setting_a_tier_needs_a_tenant_admin() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Owner);
    let tier = TeamPatchInput {
        tier: Some("enterprise".into()),
        ..TeamPatchInput::default()
    };
    assert_eq!(
        mocks
            .build()
            .update_team(&alice(), &ctx(), team_id(), tier.clone())
            .await,
        Err(CoreError::Forbidden {
            needed: Requirement::TenantAdmin
        })
    );
    let mut mocks = Mocks::new();
    mocks.team(team(Tier::Free));
    mocks
        .teams
        .expect_update()
        .withf(|team, audit| team.tier == Tier::Enterprise && audit.action == AuditAction::Update)
        .times(1)
        .returning(|_, _| Ok(()));
    let (updated, role) = mocks
        .build()
        .update_team(&root(), &ctx(), team_id(), tier)
        .await
        .unwrap();
    assert_eq!(updated.tier, Tier::Enterprise);
    assert_eq!(role, Role::Owner);
}

#[tokio::test]
async fn a_rename_with_a_tier_change_is_one_write_or_none() {
    let patch = TeamPatchInput {
        name: Some("renamed".into()),
        tier: Some("pro".into()),
        ..TeamPatchInput::default()
    };
    // The team's owner may rename it but not choose its tier: nothing is written (the
    // mocks expect no update).
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Owner).team(team(Tier::Free));
    assert_eq!(
        mocks
            .build()
            .update_team(&alice(), &ctx(), team_id(), patch.clone())
            .await,
        Err(CoreError::Forbidden {
            needed: Requirement::TenantAdmin
        })
    );
    // A stranger learns nothing about the team.
    let mut mocks = Mocks::new();
    mocks.stranger(alice_id());
    assert_eq!(
        mocks
            .build()
            .update_team(&alice(), &ctx(), team_id(), patch.clone())
            .await,
        Err(CoreError::NotFound)
    );
    // A bad tier and a bad name are reported together, before anything is written.
    let bad = TeamPatchInput {
        name: Some(String::new()),
        tier: Some("gold".into()),
        ..TeamPatchInput::default()
    };
    let mut mocks = Mocks::new();
    mocks.team(team(Tier::Free));
    let result = mocks.build().update_team(&root(), &ctx(), team_id(), bad).await;
    assert!(
        matches!(&result, Err(CoreError::Validation(e)) if e.has(&["name"]) && e.has(&["tier"])),
        "{result:?}"
    );
    // A tenant admin's rename and tier change: one write, one audit event.
    let mut mocks = Mocks::new();
    mocks.team(team(Tier::Free));
    mocks
        .teams
        .expect_update()
        .withf(|team, audit| {
            team.name.as_str() == "renamed"
                && team.tier == Tier::Pro
                && audit.action == AuditAction::Update
                && audit.resource_name.as_deref() == Some("renamed")
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let (updated, _) = mocks
        .build()
        .update_team(&root(), &ctx(), team_id(), patch)
        .await
        .unwrap();
    assert_eq!((updated.name.as_str(), updated.tier), ("renamed", Tier::Pro));
}

#[tokio::test]
async fn only_an_owner_deletes_a_team() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin);
    assert_eq!(
        mocks.build().delete_team(&alice(), &ctx(), team_id()).await,
        Err(CoreError::Forbidden {
            needed: Requirement::Role(Role::Owner)
        })
    );
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Owner).team(team(Tier::Free));
    mocks
        .teams
        .expect_delete()
        .returning(|_, _| Err(RepoError::Conflict(ConflictKind::TeamNotEmpty)));
    assert_eq!(
        mocks.build().delete_team(&alice(), &ctx(), team_id()).await,
        Err(CoreError::Conflict(ConflictKind::TeamNotEmpty))
    );
}

#[tokio::test]
async fn an_admin_renames_a_team_and_a_viewer_cannot() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Viewer);
    let patch = TeamPatchInput {
        name: Some("renamed".into()),
        description: Some(None),
        ..TeamPatchInput::default()
    };
    assert_eq!(
        mocks
            .build()
            .update_team(&alice(), &ctx(), team_id(), patch.clone())
            .await,
        Err(CoreError::Forbidden {
            needed: Requirement::Role(Role::Admin)
        })
    );
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin).team(team(Tier::Free));
    mocks
        .teams
        .expect_update()
        .withf(|team, _| team.name.as_str() == "renamed" && team.description.is_none())
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .build()
        .update_team(&alice(), &ctx(), team_id(), patch)
        .await
        .unwrap();
}
