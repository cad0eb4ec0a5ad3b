//! Users, authentication and personal access tokens, over mocked ports.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Duration;
use custodian_domain::{AuditAction, ResourceType, Role, TokenDigest, VirtualAccount};
use custodian_ports::{ConflictKind, RepoError};
use uuid::Uuid;

use super::*;
use crate::Requirement;
use crate::test_support::*;

fn token_of(owner: TokenOwner, token: &str) -> TokenRecord {
    TokenRecord {
        id: TokenId::from_uuid(Uuid::from_u128(900)),
        owner,
        name: None,
        digest: digest_of(token),
        created_at: now() - Duration::days(1),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    }
}

fn expect_lookup(mocks: &mut Mocks, token: &str, record: Option<TokenRecord>) {
    let digest = digest_of(token);
    mocks
        .tokens
        .expect_find_by_digest()
        .withf(move |d: &TokenDigest| *d == digest)
        .times(1)
        .returning(move |_| Ok(record.clone()));
}

#[tokio::test]
async fn a_usable_user_token_authenticates_its_user_and_is_touched() {
    let mut mocks = Mocks::new();
    expect_lookup(
        &mut mocks,
        "cus_abc",
        Some(token_of(TokenOwner::User(alice_id()), "cus_abc")),
    );
    mocks
        .users
        .expect_get()
        .returning(|id| Ok(user_record(id, "alice@example.com")));
    mocks
        .tokens
        .expect_touch()
        .withf(|id, at| id.as_uuid() == Uuid::from_u128(900) && *at == now())
        .times(1)
        .returning(|_, _| Ok(()));
    let subject = mocks
        .build()
        .authenticate(&SecretString::from("cus_abc"))
        .await
        .unwrap();
    assert_eq!(subject.id(), alice_id().into());
    assert!(!subject.is_tenant_admin());
}

#[tokio::test]
async fn a_failed_touch_does_not_fail_authentication() {
    let mut mocks = Mocks::new();
    expect_lookup(
        &mut mocks,
        "cus_abc",
        Some(token_of(TokenOwner::User(alice_id()), "cus_abc")),
    );
    mocks
        .users
        .expect_get()
        .returning(|id| Ok(user_record(id, "alice@example.com")));
    mocks
        .tokens
        .expect_touch()
        .returning(|_, _| Err(RepoError::Unavailable("timeout".into())));
    assert!(mocks.build().authenticate(&SecretString::from("cus_abc")).await.is_ok());
}

/// `audit.record` expects exactly one refused-authentication event with `detail` and
/// `token` as its resource, carrying neither `presented` nor its digest.
fn expect_refusal(mocks: &mut Mocks, presented: &'static str, detail: &'static str, token: Option<Uuid>) {
    mocks
        .audit
        .expect_record()
        .withf(move |event| {
            let shown = format!("{event:?}");
            let digest = format!("{:?}", digest_of(presented).0);
            event.action == AuditAction::Authenticate
                && event.outcome == Outcome::Failure
                && event.resource_type == ResourceType::Token
                && event.resource_id == token
                && event.resource_name.is_none()
                && event.team_id.is_none()
                && event.actor_id.is_none()
                && event.actor_kind.is_none()
                && event.occurred_at == now()
                && event.detail.as_deref() == Some(detail)
                && event.context.client_ip.as_deref() == Some("203.0.113.9")
                && !shown.contains(presented)
                && !shown.contains(&digest)
        })
        .times(1)
        .returning(|_| Ok(()));
}

fn request() -> RequestContext {
    RequestContext {
        request_id: Some("req-1".into()),
        client_ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8".into()),
    }
}

async fn refused(mocks: Mocks, token: &str) {
    assert_eq!(
        mocks
            .build()
            .authenticate_with_context(&SecretString::from(token), &request())
            .await,
        Err(CoreError::Unauthenticated)
    );
}

#[tokio::test]
async fn unknown_expired_and_revoked_tokens_are_refused_and_audited() {
    let expired = TokenRecord {
        expires_at: Some(now() - Duration::seconds(1)),
        ..token_of(TokenOwner::User(alice_id()), "cus_x")
    };
    let revoked = TokenRecord {
        revoked_at: Some(now()),
        ..token_of(TokenOwner::User(alice_id()), "cus_x")
    };
    let revoked_and_expired = TokenRecord {
        expires_at: Some(now() - Duration::hours(1)),
        ..revoked.clone()
    };
    let token = Some(Uuid::from_u128(900));
    for (record, detail, resource) in [
        (None, "unknown token", None),
        (Some(expired), "expired token", token),
        (Some(revoked), "revoked token", token),
        (Some(revoked_and_expired), "revoked token", token),
    ] {
        let mut mocks = Mocks::new();
        expect_lookup(&mut mocks, "cus_x", record);
        expect_refusal(&mut mocks, "cus_x", detail, resource);
        // No touch and no user lookup expected: the mocks would panic.
        refused(mocks, "cus_x").await;
    }
}

#[tokio::test]
async fn a_refusal_that_cannot_be_audited_is_still_a_refusal() {
    let mut mocks = Mocks::new();
    expect_lookup(&mut mocks, "cus_x", None);
    mocks
        .audit
        .expect_record()
        .times(1)
        .returning(|_| Err(RepoError::Unavailable("timeout".into())));
    refused(mocks, "cus_x").await;
}

#[tokio::test]
async fn a_database_failure_is_an_error_not_an_audited_refusal() {
    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_find_by_digest()
        .returning(|_| Err(RepoError::Unavailable("timeout".into())));
    // No audit expectation: recording a refusal would panic.
    let result = mocks.build().authenticate(&SecretString::from("cus_x")).await;
    assert!(matches!(result, Err(CoreError::Unavailable { .. })), "{result:?}");
}

#[tokio::test]
async fn a_successful_authentication_is_not_audited() {
    let mut mocks = Mocks::new();
    expect_lookup(
        &mut mocks,
        "cus_abc",
        Some(token_of(TokenOwner::User(alice_id()), "cus_abc")),
    );
    mocks
        .users
        .expect_get()
        .returning(|id| Ok(user_record(id, "alice@example.com")));
    mocks.tokens.expect_touch().returning(|_, _| Ok(()));
    // No audit expectation: the mock would panic on a record.
    assert!(
        mocks
            .build()
            .authenticate_with_context(&SecretString::from("cus_abc"), &request())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_token_in_its_grace_period_still_authenticates() {
    let mut mocks = Mocks::new();
    let record = TokenRecord {
        revoked_at: Some(now() + Duration::minutes(5)),
        ..token_of(TokenOwner::User(alice_id()), "cus_old")
    };
    expect_lookup(&mut mocks, "cus_old", Some(record));
    mocks
        .users
        .expect_get()
        .returning(|id| Ok(user_record(id, "alice@example.com")));
    mocks.tokens.expect_touch().returning(|_, _| Ok(()));
    assert!(mocks.build().authenticate(&SecretString::from("cus_old")).await.is_ok());
}

#[tokio::test]
async fn a_token_without_the_prefix_is_refused_and_audited_without_a_lookup() {
    let mut mocks = Mocks::new();
    expect_refusal(&mut mocks, "Bearer nonsense", "not a Custodian token", None);
    refused(mocks, "Bearer nonsense").await;
}

#[tokio::test]
async fn a_token_of_a_deleted_user_is_refused_and_audited() {
    let mut mocks = Mocks::new();
    expect_lookup(
        &mut mocks,
        "cus_abc",
        Some(token_of(TokenOwner::User(alice_id()), "cus_abc")),
    );
    mocks.users.expect_get().returning(|_| Err(RepoError::NotFound));
    expect_refusal(
        &mut mocks,
        "cus_abc",
        "the token's owner no longer exists",
        Some(Uuid::from_u128(900)),
    );
    refused(mocks, "cus_abc").await;
}

fn virtual_account(expires_at: Option<chrono::DateTime<Utc>>) -> VirtualAccount {
    VirtualAccount {
        id: account_id(),
        team_id: team_id(),
        name: custodian_domain::Name::parse_at("name", "worker").unwrap(),
        role: Role::Operator,
        expires_at,
        created_at: now(),
        created_by: alice_id().into(),
    }
}

#[tokio::test]
async fn a_virtual_account_token_authenticates_the_account_until_it_expires() {
    let mut mocks = Mocks::new();
    expect_lookup(
        &mut mocks,
        "cus_va",
        Some(token_of(TokenOwner::VirtualAccount(account_id()), "cus_va")),
    );
    mocks
        .virtual_accounts
        .expect_get_by_id()
        .returning(|_| Ok(virtual_account(Some(now() + Duration::days(1)))));
    mocks.tokens.expect_touch().returning(|_, _| Ok(()));
    let subject = mocks.build().authenticate(&SecretString::from("cus_va")).await.unwrap();
    assert_eq!(subject, account(team_id(), Role::Operator));

    let mut mocks = Mocks::new();
    expect_lookup(
        &mut mocks,
        "cus_va",
        Some(token_of(TokenOwner::VirtualAccount(account_id()), "cus_va")),
    );
    mocks
        .virtual_accounts
        .expect_get_by_id()
        .returning(|_| Ok(virtual_account(Some(now()))));
    expect_refusal(
        &mut mocks,
        "cus_va",
        "the token's virtual account has expired",
        Some(Uuid::from_u128(900)),
    );
    refused(mocks, "cus_va").await;
}

#[tokio::test]
async fn only_a_tenant_admin_creates_users() {
    for subject in [alice(), account(team_id(), Role::Admin)] {
        let result = Mocks::new()
            .build()
            .create_user(
                &subject,
                &RequestContext::default(),
                NewUserInput {
                    email: Some("bob@example.com".into()),
                    ..NewUserInput::default()
                },
            )
            .await;
        assert_eq!(
            result.unwrap_err(),
            CoreError::Forbidden {
                needed: Requirement::TenantAdmin
            }
        );
    }
}

#[tokio::test]
async fn a_new_user_gets_a_first_token_stored_only_as_its_digest() {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_create()
        .withf(|user, token, audit| {
            let token = token.as_ref().unwrap();
            user.email.as_str() == "bob@example.com"
                && user.display_name.as_str() == "bob"
                && token.owner == TokenOwner::User(user.id)
                && audit.action == AuditAction::Create
                && audit.resource_type == ResourceType::User
                && audit.resource_id == Some(user.id.as_uuid())
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let (user, issued) = mocks
        .build()
        .create_user(
            &root(),
            &RequestContext::default(),
            NewUserInput {
                email: Some("Bob@Example.com".into()),
                ..NewUserInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(user.email.as_str(), "bob@example.com");
    assert!(issued.token.expose_secret().starts_with("cus_"));
    assert_eq!(issued.record.digest, digest_of(issued.token.expose_secret()));
    assert!(!format!("{issued:?}").contains(issued.token.expose_secret()));
}

#[tokio::test]
async fn a_duplicate_email_is_a_conflict_and_a_bad_one_a_validation_error() {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_create()
        .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::DuplicateEmail)));
    let custodian = mocks.build();
    let input = |email: &str| NewUserInput {
        email: Some(email.into()),
        ..NewUserInput::default()
    };
    assert_eq!(
        custodian
            .create_user(&root(), &RequestContext::default(), input("bob@example.com"))
            .await
            .unwrap_err(),
        CoreError::Conflict(ConflictKind::DuplicateEmail)
    );
    match custodian
        .create_user(&root(), &RequestContext::default(), input("not-an-email"))
        .await
    {
        Err(CoreError::Validation(errors)) => assert!(errors.has(&["email"])),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn personal_tokens_belong_to_users_and_are_checked() {
    let custodian = Mocks::new().build();
    let ctx = RequestContext::default();
    assert_eq!(
        custodian
            .create_personal_token(&account(team_id(), Role::Admin), &ctx, "ci-token", None)
            .await
            .unwrap_err(),
        CoreError::Forbidden {
            needed: Requirement::User
        }
    );
    match custodian
        .create_personal_token(&alice(), &ctx, "Bad Name", Some(now() - Duration::days(1)))
        .await
    {
        Err(CoreError::Validation(errors)) => {
            assert!(errors.has(&["name"]));
            assert!(errors.has(&["expirationDate"]));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_personal_token_is_created_for_the_caller() {
    let mut mocks = Mocks::new();
    let expires = now() + Duration::days(30);
    mocks
        .tokens
        .expect_create()
        .withf(move |record, audit| {
            record.owner == TokenOwner::User(alice_id())
                && record.name.as_ref().map(TokenName::as_str) == Some("ci-token")
                && record.expires_at == Some(expires)
                && audit.resource_type == ResourceType::Token
                && audit.actor_id == Some(alice_id().into())
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let issued = mocks
        .build()
        .create_personal_token(&alice(), &RequestContext::default(), "ci-token", Some(expires))
        .await
        .unwrap();
    assert_eq!(issued.record.digest, digest_of(issued.token.expose_secret()));
}

#[tokio::test]
async fn another_users_token_cannot_be_revoked() {
    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_get()
        .returning(|_| Ok(token_of(TokenOwner::User(bob_id()), "cus_bob")));
    let result = mocks
        .build()
        .revoke_personal_token(
            &alice(),
            &RequestContext::default(),
            TokenId::from_uuid(Uuid::from_u128(900)),
        )
        .await;
    assert_eq!(result, Err(CoreError::NotFound));
}

#[tokio::test]
async fn the_caller_revokes_their_own_token_now() {
    let mut mocks = Mocks::new();
    mocks
        .tokens
        .expect_get()
        .returning(|_| Ok(token_of(TokenOwner::User(alice_id()), "cus_a")));
    mocks
        .tokens
        .expect_revoke()
        .withf(|_, at, audit| *at == now() && audit.action == AuditAction::Revoke)
        .times(1)
        .returning(|_, _, _| Ok(()));
    mocks
        .build()
        .revoke_personal_token(
            &alice(),
            &RequestContext::default(),
            TokenId::from_uuid(Uuid::from_u128(900)),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn me_lists_a_virtual_accounts_own_team() {
    let mut mocks = Mocks::new();
    mocks.team(team(custodian_domain::Tier::Pro));
    let me = mocks.build().me(&account(team_id(), Role::Viewer)).await.unwrap();
    assert_eq!(me.teams.len(), 1);
    assert_eq!(me.teams[0].1, Role::Viewer);
}

#[tokio::test]
async fn a_token_accepted_recently_is_answered_from_memory() {
    let mut mocks = Mocks::new();
    expect_lookup(
        &mut mocks,
        "cus_abc",
        Some(token_of(TokenOwner::User(alice_id()), "cus_abc")),
    );
    mocks
        .users
        .expect_get()
        .times(1)
        .returning(|id| Ok(user_record(id, "alice@example.com")));
    mocks.tokens.expect_touch().times(1).returning(|_, _| Ok(()));
    let custodian = mocks.build();
    for _ in 0..3 {
        let subject = custodian.authenticate(&SecretString::from("cus_abc")).await.unwrap();
        assert_eq!(subject.id(), alice_id().into());
    }
}

#[tokio::test]
async fn without_a_subject_cache_every_request_reads_the_token() {
    let mut mocks = Mocks::new();
    mocks.settings.subject_cache.ttl = std::time::Duration::ZERO;
    let record = token_of(TokenOwner::User(alice_id()), "cus_abc");
    mocks
        .tokens
        .expect_find_by_digest()
        .times(2)
        .returning(move |_| Ok(Some(record.clone())));
    mocks
        .users
        .expect_get()
        .times(2)
        .returning(|id| Ok(user_record(id, "alice@example.com")));
    mocks.tokens.expect_touch().returning(|_, _| Ok(()));
    let custodian = mocks.build();
    for _ in 0..2 {
        assert!(custodian.authenticate(&SecretString::from("cus_abc")).await.is_ok());
    }
}

#[tokio::test]
async fn a_use_is_recorded_at_most_once_per_touch_interval() {
    let mut mocks = Mocks::new();
    mocks.settings.subject_cache.ttl = std::time::Duration::ZERO;
    let record = TokenRecord {
        last_used_at: Some(now() - Duration::seconds(30)),
        ..token_of(TokenOwner::User(alice_id()), "cus_abc")
    };
    expect_lookup(&mut mocks, "cus_abc", Some(record));
    mocks
        .users
        .expect_get()
        .returning(|id| Ok(user_record(id, "alice@example.com")));
    mocks.tokens.expect_touch().times(0);
    assert!(mocks.build().authenticate(&SecretString::from("cus_abc")).await.is_ok());
}

#[tokio::test]
async fn an_identity_epoch_that_moved_makes_a_remembered_token_be_read_again() {
    let mut mocks = Mocks::new();
    mocks.settings.subject_cache.epoch_check_interval = std::time::Duration::ZERO;
    let epoch = std::sync::Arc::new(AtomicU64::new(1));
    let seen = epoch.clone();
    mocks
        .tokens
        .expect_identity_epoch()
        .returning(move || Ok(seen.load(Ordering::SeqCst)));
    let record = token_of(TokenOwner::User(alice_id()), "cus_abc");
    let reads = std::sync::Arc::new(AtomicU64::new(0));
    let counted = reads.clone();
    mocks.tokens.expect_find_by_digest().returning(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(Some(record.clone()))
    });
    mocks
        .users
        .expect_get()
        .returning(|id| Ok(user_record(id, "alice@example.com")));
    mocks.tokens.expect_touch().returning(|_, _| Ok(()));
    let custodian = mocks.build();
    let token = SecretString::from("cus_abc");
    custodian.authenticate(&token).await.unwrap();
    custodian.authenticate(&token).await.unwrap();
    assert_eq!(reads.load(Ordering::SeqCst), 1, "remembered while the epoch stands");
    epoch.store(2, Ordering::SeqCst);
    custodian.authenticate(&token).await.unwrap();
    assert_eq!(reads.load(Ordering::SeqCst), 2, "read again once the epoch moved");
}
