//! Tokens over the in-memory repositories: issue, authenticate, regenerate with a grace
//! period, revoke.

use chrono::Duration;
use custodian_core::{CoreError, NewUserInput, NewVirtualAccountInput, Settings};
use custodian_domain::Role;

use crate::support::{World, ctx};

#[tokio::test]
async fn a_regenerated_token_replaces_the_old_one_after_the_grace_period() {
    let world = World::new(Settings::default()).await;
    let team = world.team("data", "pro").await;
    let c = &world.custodian;
    let (account, old) = c
        .create_virtual_account(
            &world.admin,
            &ctx(),
            team.id,
            NewVirtualAccountInput {
                name: Some("worker".into()),
                role: Some("operator".into()),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let (_, new) = c
        .regenerate_virtual_account_token(&world.admin, &ctx(), team.id, account.id, Some(300))
        .await
        .unwrap();
    assert!(
        c.authenticate(&old.token).await.is_ok(),
        "the old token works during the grace period"
    );
    assert!(c.authenticate(&new.token).await.is_ok());

    world.clock.advance(Duration::seconds(301));
    assert_eq!(c.authenticate(&old.token).await, Err(CoreError::Unauthenticated));
    let subject = c.authenticate(&new.token).await.unwrap();
    assert_eq!(c.me(&subject).await.unwrap().teams[0].1, Role::Operator);
}

#[tokio::test]
async fn a_new_users_first_token_works_until_revoked() {
    let world = World::new(Settings::default()).await;
    let c = &world.custodian;
    let (user, first) = c
        .create_user(
            &world.admin,
            &ctx(),
            NewUserInput {
                email: Some("ada@example.com".into()),
                ..NewUserInput::default()
            },
        )
        .await
        .unwrap();
    let ada = c.authenticate(&first.token).await.unwrap();
    assert_eq!(ada.id(), user.id.into());
    assert!(c.me(&ada).await.unwrap().teams.is_empty());

    let second = c.create_personal_token(&ada, &ctx(), "laptop", None).await.unwrap();
    assert_eq!(c.list_personal_tokens(&ada).await.unwrap().len(), 2);
    c.revoke_personal_token(&ada, &ctx(), first.record.id).await.unwrap();
    assert_eq!(c.authenticate(&first.token).await, Err(CoreError::Unauthenticated));
    assert!(c.authenticate(&second.token).await.is_ok());
}
