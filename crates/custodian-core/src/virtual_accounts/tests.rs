//! Virtual-account use cases over mocked ports.

use custodian_domain::{Name, Role};
use secrecy::ExposeSecret;

use super::*;
use crate::test_support::*;

fn ctx() -> RequestContext {
    RequestContext {
        request_id: Some("req-1".into()),
        client_ip: Some("127.0.0.1".into()),
        user_agent: None,
    }
}

#[tokio::test]
async fn a_virtual_account_is_never_owner_and_gets_its_first_token() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin);
    mocks
        .virtual_accounts
        .expect_create()
        .withf(|account, token, audit| {
            account.role == Role::Operator
                && token.owner == TokenOwner::VirtualAccount(account.id)
                && token.expires_at == account.expires_at
                && audit.resource_type == ResourceType::VirtualAccount
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let custodian = mocks.build();
    let result = custodian
        .create_virtual_account(
            &alice(),
            &ctx(),
            team_id(),
            NewVirtualAccountInput {
                name: Some("worker".into()),
                role: Some("owner".into()),
                expires_at: None,
            },
        )
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["role"])));
    let (account, issued) = custodian
        .create_virtual_account(
            &alice(),
            &ctx(),
            team_id(),
            NewVirtualAccountInput {
                name: Some("worker".into()),
                role: Some("operator".into()),
                expires_at: Some(now() + Duration::days(90)),
            },
        )
        .await
        .unwrap();
    assert_eq!(issued.record.owner, TokenOwner::VirtualAccount(account.id));
    assert!(issued.token.expose_secret().starts_with("cus_"));
}

fn stored_account() -> VirtualAccount {
    VirtualAccount {
        id: account_id(),
        team_id: team_id(),
        name: Name::parse_at("name", "worker").unwrap(),
        role: Role::Operator,
        expires_at: None,
        created_at: now(),
        created_by: alice_id().into(),
    }
}

#[tokio::test]
async fn regenerating_a_token_keeps_the_old_one_for_the_grace_period() {
    for (asked, default, expected) in [(Some(600), 0, 600), (None, 60, 60), (Some(0), 60, 0)] {
        let mut mocks = Mocks::new();
        mocks.settings.token_grace_period = Duration::seconds(default);
        mocks.member(team_id(), alice_id(), Role::Admin);
        mocks
            .virtual_accounts
            .expect_get()
            .returning(|_, _| Ok(stored_account()));
        mocks
            .tokens
            .expect_replace_for_owner()
            .withf(move |owner, revoke_at, replacement, audit| {
                *owner == TokenOwner::VirtualAccount(account_id())
                    && *revoke_at == now() + Duration::seconds(expected)
                    && replacement.owner == *owner
                    && audit.action == AuditAction::RegenerateToken
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let (_, issued) = mocks
            .build()
            .regenerate_virtual_account_token(&alice(), &ctx(), team_id(), account_id(), asked)
            .await
            .unwrap();
        assert_eq!(issued.record.digest, digest_of(issued.token.expose_secret()));
    }
}

#[tokio::test]
async fn a_grace_period_over_the_maximum_is_refused() {
    let mut mocks = Mocks::new();
    mocks.member(team_id(), alice_id(), Role::Admin);
    let result = mocks
        .build()
        .regenerate_virtual_account_token(&alice(), &ctx(), team_id(), account_id(), Some(8 * 24 * 3600))
        .await;
    assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["grace_period_seconds"])));
}

#[tokio::test]
async fn a_virtual_account_of_another_team_is_not_found() {
    let result = Mocks::new()
        .build()
        .delete_virtual_account(&account(other_team_id(), Role::Admin), &ctx(), team_id(), account_id())
        .await;
    assert_eq!(result, Err(CoreError::NotFound));
}
