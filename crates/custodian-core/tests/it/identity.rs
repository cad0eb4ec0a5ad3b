//! Tokens over the in-memory repositories: issue, authenticate, regenerate with a grace
//! period, revoke.

use chrono::Duration;
use custodian_core::{CoreError, Custodian, NewUserInput, NewVirtualAccountInput, Settings, SubjectCacheSettings};
use custodian_domain::{AuditAction, Outcome, RequestContext, ResourceType, Role};
use custodian_ports::Clock;
use secrecy::{ExposeSecret, SecretString};

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

#[tokio::test]
async fn every_refused_token_is_an_audit_event_without_the_token() {
    let world = World::new(Settings::default()).await;
    let c = &world.custodian;
    let (_, first) = c
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
    let short = c
        .create_personal_token(&ada, &ctx(), "short", Some(world.clock.now() + Duration::minutes(5)))
        .await
        .unwrap();
    c.revoke_personal_token(&ada, &ctx(), first.record.id).await.unwrap();
    world.clock.advance(Duration::minutes(6));
    let before = world.audit.recorded().len();

    let request = RequestContext {
        request_id: Some("req-9".into()),
        client_ip: Some("198.51.100.7".into()),
        user_agent: Some("probe/1".into()),
    };
    let unknown = SecretString::from("cus_not-a-token-we-issued");
    let foreign = SecretString::from("ghp_someone-elses-token");
    for token in [&first.token, &short.token, &unknown, &foreign] {
        assert_eq!(
            c.authenticate_with_context(token, &request).await,
            Err(CoreError::Unauthenticated)
        );
    }

    let events = world.audit.recorded().split_off(before);
    let summary: Vec<(Option<uuid::Uuid>, Option<&str>)> =
        events.iter().map(|e| (e.resource_id, e.detail.as_deref())).collect();
    assert_eq!(
        summary,
        vec![
            (Some(first.record.id.as_uuid()), Some("revoked token")),
            (Some(short.record.id.as_uuid()), Some("expired token")),
            (None, Some("unknown token")),
            (None, Some("not a Custodian token")),
        ]
    );
    for event in &events {
        assert_eq!(event.action, AuditAction::Authenticate);
        assert_eq!(event.outcome, Outcome::Failure);
        assert_eq!(event.resource_type, ResourceType::Token);
        assert_eq!((event.team_id, event.actor_id, event.actor_kind), (None, None, None));
        assert_eq!(event.occurred_at, world.clock.now());
        assert_eq!(event.context, request);
        let shown = format!("{event:?}");
        for token in [&first.token, &short.token, &unknown, &foreign] {
            assert!(!shown.contains(token.expose_secret()), "{shown}");
        }
    }

    // A successful authentication adds no event.
    let fresh = c.create_personal_token(&ada, &ctx(), "fresh", None).await.unwrap();
    let recorded = world.audit.recorded().len();
    assert!(c.authenticate_with_context(&fresh.token, &request).await.is_ok());
    assert_eq!(world.audit.recorded().len(), recorded);
}

/// Guessed tokens cannot grow the audit trail without bound: past the per-minute budget,
/// refusals of unknown tokens are counted, and the count is recorded with the next one
/// recorded; refusals of real tokens (revoked here) are always recorded.
#[tokio::test]
async fn refusals_of_unknown_tokens_are_recorded_up_to_a_budget_then_counted() {
    let settings = Settings {
        unknown_token_events_per_minute: 5,
        ..Settings::default()
    };
    let world = World::new(settings).await;
    let c = &world.custodian;
    let refusals = |world: &World| {
        world
            .audit
            .recorded()
            .into_iter()
            .filter(|e| e.action == AuditAction::Authenticate && e.outcome == Outcome::Failure)
            .collect::<Vec<_>>()
    };
    for i in 0..200 {
        let guess = SecretString::from(format!("cus_guess{i}"));
        assert_eq!(c.authenticate(&guess).await, Err(CoreError::Unauthenticated));
    }
    assert_eq!(refusals(&world).len(), 5, "only the budget is recorded one by one");

    // A real token refused (revoked) is recorded whatever the budget.
    let (_, issued) = c
        .create_user(
            &world.admin,
            &ctx(),
            NewUserInput {
                email: Some("leaver@example.com".into()),
                display_name: None,
                tenant_admin: false,
            },
        )
        .await
        .unwrap();
    c.revoke_personal_token(&c.authenticate(&issued.token).await.unwrap(), &ctx(), issued.record.id)
        .await
        .unwrap();
    assert_eq!(c.authenticate(&issued.token).await, Err(CoreError::Unauthenticated));
    assert_eq!(refusals(&world).len(), 6);

    // The next minute, the first guess is recorded with the count of those not recorded.
    world.clock.advance(Duration::minutes(1));
    let _ = c.authenticate(&SecretString::from("cus_later")).await;
    let recorded = refusals(&world);
    assert_eq!(recorded.len(), 7);
    let detail = recorded.last().and_then(|e| e.detail.clone()).unwrap_or_default();
    assert!(detail.contains("195 earlier refusal(s)"), "{detail}");
}

#[tokio::test]
async fn a_revocation_through_one_server_reaches_another_that_remembers_the_token() {
    let settings = Settings {
        subject_cache: SubjectCacheSettings {
            epoch_check_interval: std::time::Duration::from_millis(50),
            ..SubjectCacheSettings::default()
        },
        ..Settings::default()
    };
    let world = World::new(settings.clone()).await;
    let one = &world.custodian;
    let other = Custodian::new(world.ports.clone(), settings);
    let (_, issued) = one
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
    let ada = other.authenticate(&issued.token).await.unwrap();
    assert!(other.authenticate(&issued.token).await.is_ok(), "remembered");

    one.revoke_personal_token(&ada, &ctx(), issued.record.id).await.unwrap();
    assert_eq!(
        one.authenticate(&issued.token).await,
        Err(CoreError::Unauthenticated),
        "the server that revoked refuses at once"
    );
    // The other server reads the identity epoch again once its interval has passed.
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    assert_eq!(other.authenticate(&issued.token).await, Err(CoreError::Unauthenticated));
}

#[tokio::test]
async fn a_disabled_user_is_refused_at_once_though_their_token_was_remembered() {
    let world = World::new(Settings::default()).await;
    let c = &world.custodian;
    let (user, issued) = c
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
    assert!(c.authenticate(&issued.token).await.is_ok());
    c.update_user(
        &world.admin,
        &ctx(),
        user.id,
        custodian_domain::UserPatchInput {
            disabled: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(c.authenticate(&issued.token).await, Err(CoreError::Unauthenticated));
}
