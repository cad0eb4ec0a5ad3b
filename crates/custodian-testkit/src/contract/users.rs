//! Contract of [`UserRepository`](custodian_ports::UserRepository).

use custodian_domain::{AuditAction, ResourceType, TokenOwner, UserId};
use custodian_ports::{ConflictKind, Page, RepoError};

use super::fixtures::{ALL, audit, cases, email, fresh, new_token, new_user, user};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        create_then_get_returns_the_user,
        create_with_a_first_token_stores_it,
        create_with_a_taken_email_is_duplicate_email_and_writes_nothing,
        get_absent_is_not_found,
        find_by_email_finds_the_user_or_none,
        list_orders_by_email_and_pages_with_the_total,
        count_counts_every_user,
        update_replaces_name_admin_and_disabled_and_nothing_else,
        delete_refuses_the_only_owner_and_takes_tokens_and_memberships,
    ]
}

/// `create` stores every field; `get` gives it back.
async fn create_then_get_returns_the_user(repos: RepoSet) {
    let mut alice = new_user("alice@example.com");
    alice.tenant_admin = true;
    let event = audit(
        None,
        AuditAction::Create,
        ResourceType::User,
        alice.id.as_uuid(),
        alice.id.into(),
    );
    repos.users.create(&alice, None, &event).await.expect("create");
    assert_eq!(repos.users.get(alice.id).await.expect("get"), alice);
}

/// The first token is stored in the same write.
async fn create_with_a_first_token_stores_it(repos: RepoSet) {
    let bob = new_user("bob@example.com");
    let token = new_token(TokenOwner::User(bob.id), 5);
    let event = audit(
        None,
        AuditAction::Create,
        ResourceType::User,
        bob.id.as_uuid(),
        bob.id.into(),
    );
    repos
        .users
        .create(&bob, Some(token.clone()), &event)
        .await
        .expect("create");
    assert_eq!(
        repos.tokens.find_by_digest(&token.digest).await.expect("find"),
        Some(token.clone())
    );
    assert_eq!(repos.tokens.get(token.id).await.expect("get"), token);
}

/// `Conflict(DuplicateEmail)` when the email is taken; neither user nor token is written.
async fn create_with_a_taken_email_is_duplicate_email_and_writes_nothing(repos: RepoSet) {
    let first = user(&repos).await;
    let second = custodian_domain::User {
        id: fresh(),
        ..new_user(first.email.as_str())
    };
    let token = new_token(TokenOwner::User(second.id), 5);
    let event = audit(
        None,
        AuditAction::Create,
        ResourceType::User,
        second.id.as_uuid(),
        second.id.into(),
    );
    let outcome = repos.users.create(&second, Some(token.clone()), &event).await;
    assert_eq!(outcome, Err(RepoError::Conflict(ConflictKind::DuplicateEmail)));
    assert_eq!(repos.users.get(second.id).await, Err(RepoError::NotFound));
    assert_eq!(repos.tokens.find_by_digest(&token.digest).await.expect("find"), None);
    assert_eq!(repos.users.count().await.expect("count"), 1);
}

/// `NotFound` when there is no such user.
async fn get_absent_is_not_found(repos: RepoSet) {
    assert_eq!(repos.users.get(fresh::<UserId>()).await, Err(RepoError::NotFound));
}

/// `find_by_email` finds by the stored (lower-case) email, `None` otherwise.
async fn find_by_email_finds_the_user_or_none(repos: RepoSet) {
    let carol = new_user("Carol@Example.com");
    let event = audit(
        None,
        AuditAction::Create,
        ResourceType::User,
        carol.id.as_uuid(),
        carol.id.into(),
    );
    repos.users.create(&carol, None, &event).await.expect("create");
    let found = repos
        .users
        .find_by_email(&email("carol@example.com"))
        .await
        .expect("find");
    assert_eq!(found, Some(carol));
    let missing = repos
        .users
        .find_by_email(&email("dave@example.com"))
        .await
        .expect("find");
    assert_eq!(missing, None);
}

/// Users ordered by email; a page holds `limit` users from `offset`, and the total counts all.
async fn list_orders_by_email_and_pages_with_the_total(repos: RepoSet) {
    for address in [
        "mallory@example.com",
        "alice@example.com",
        "zed@example.com",
        "bob@example.com",
    ] {
        let u = new_user(address);
        let event = audit(
            None,
            AuditAction::Create,
            ResourceType::User,
            u.id.as_uuid(),
            u.id.into(),
        );
        repos.users.create(&u, None, &event).await.expect("create");
    }
    let all = repos.users.list(ALL).await.expect("list");
    let emails: Vec<&str> = all.items.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        [
            "alice@example.com",
            "bob@example.com",
            "mallory@example.com",
            "zed@example.com"
        ]
    );
    assert_eq!(all.total, 4);
    let page = repos.users.list(Page { limit: 2, offset: 1 }).await.expect("list");
    let emails: Vec<&str> = page.items.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["bob@example.com", "mallory@example.com"]);
    assert_eq!(page.total, 4);
    let past_the_end = repos.users.list(Page { limit: 2, offset: 10 }).await.expect("list");
    assert!(past_the_end.items.is_empty());
    assert_eq!(past_the_end.total, 4);
}

/// `count` counts every user.
async fn count_counts_every_user(repos: RepoSet) {
    assert_eq!(repos.users.count().await.expect("count"), 0);
    user(&repos).await;
    user(&repos).await;
    assert_eq!(repos.users.count().await.expect("count"), 2);
}

/// `update` replaces display name, tenant admin and `disabled_at` (set and cleared), keeps
/// id, email and creation time; an absent user is `NotFound`.
async fn update_replaces_name_admin_and_disabled_and_nothing_else(repos: RepoSet) {
    let carol = user(&repos).await;
    let mut changed = carol.clone();
    changed.display_name = custodian_domain::DisplayName::parse_at("display_name", "Carol C.").expect("a name");
    changed.tenant_admin = true;
    changed.disabled_at = Some(super::fixtures::at(5));
    // Fields `update` must not touch.
    changed.email = email("someone-else@example.com");
    let event = audit(
        None,
        AuditAction::Update,
        ResourceType::User,
        carol.id.as_uuid(),
        carol.id.into(),
    );
    repos.users.update(&changed, &event).await.expect("update");
    let stored = repos.users.get(carol.id).await.expect("get");
    assert_eq!(stored.display_name, changed.display_name);
    assert!(stored.tenant_admin);
    assert_eq!(stored.disabled_at, Some(super::fixtures::at(5)));
    assert_eq!(
        (stored.email, stored.created_at),
        (carol.email.clone(), carol.created_at)
    );

    changed.disabled_at = None;
    let again = audit(
        None,
        AuditAction::Update,
        ResourceType::User,
        carol.id.as_uuid(),
        carol.id.into(),
    );
    repos.users.update(&changed, &again).await.expect("update");
    assert_eq!(repos.users.get(carol.id).await.expect("get").disabled_at, None);

    let ghost = new_user("ghost@example.com");
    assert_eq!(repos.users.update(&ghost, &event).await, Err(RepoError::NotFound));
}

/// `delete` refuses the only owner of a team (and changes nothing); once another member
/// owns it, the user goes with their tokens and memberships; an absent user is `NotFound`.
async fn delete_refuses_the_only_owner_and_takes_tokens_and_memberships(repos: RepoSet) {
    let owned = super::fixtures::user_and_team(&repos).await;
    let (team, dave) = (owned.team.id, owned.owner.clone());
    let token = new_token(TokenOwner::User(dave.id), 9);
    let event = |action| audit(None, action, ResourceType::User, dave.id.as_uuid(), dave.id.into());
    repos
        .tokens
        .create(&token, &event(AuditAction::Create))
        .await
        .expect("token");
    assert_eq!(
        repos.users.delete(dave.id, &event(AuditAction::Delete)).await,
        Err(RepoError::Conflict(ConflictKind::LastOwner))
    );
    assert!(
        repos.users.get(dave.id).await.is_ok(),
        "a refused delete changes nothing"
    );

    let erin = user(&repos).await;
    let added = audit(
        Some(team),
        AuditAction::Create,
        ResourceType::Member,
        erin.id.as_uuid(),
        dave.id.into(),
    );
    repos
        .memberships
        .add(
            &super::fixtures::membership(team, erin.id, custodian_domain::Role::Owner),
            None,
            &added,
        )
        .await
        .expect("a second owner");
    repos
        .users
        .delete(dave.id, &event(AuditAction::Delete))
        .await
        .expect("delete");
    assert_eq!(repos.users.get(dave.id).await, Err(RepoError::NotFound));
    assert_eq!(
        repos.memberships.get(team, dave.id).await,
        Ok(None),
        "the membership went"
    );
    assert!(repos.memberships.get(team, erin.id).await.expect("read").is_some());
    assert_eq!(
        repos.tokens.find_by_digest(&token.digest).await,
        Ok(None),
        "the token went"
    );
    assert_eq!(
        repos.users.delete(dave.id, &event(AuditAction::Delete)).await,
        Err(RepoError::NotFound)
    );
}
