//! Contract of [`TokenRepository`](custodian_ports::TokenRepository).

use custodian_domain::{AuditAction, AuditEvent, ResourceType, Team, Tier, TokenId, TokenOwner, UserId};
use custodian_ports::RepoError;

use super::fixtures::{at, audit, cases, fresh, new_token, user, user_and_team, virtual_account};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        create_then_get_and_find_by_digest_return_the_record,
        create_for_an_unknown_owner_is_not_found,
        get_absent_is_not_found_and_an_unknown_digest_is_none,
        find_by_digest_returns_revoked_and_expired_records_too,
        list_for_owner_gives_the_owners_tokens_newest_first,
        touch_records_the_last_use,
        touch_absent_is_not_found,
        revoke_sets_revoked_at,
        revoke_absent_is_not_found,
        replace_for_owner_revokes_every_token_and_inserts_the_replacement,
        the_identity_epoch_moves_with_identity_changes_and_not_with_a_use,
    ]
}

fn token_event(owner: TokenOwner, token: TokenId, action: AuditAction) -> AuditEvent {
    audit(None, action, ResourceType::Token, token.as_uuid(), owner.subject_id())
}

async fn stored_token(repos: &RepoSet, owner: TokenOwner, created: i64) -> custodian_domain::TokenRecord {
    let token = new_token(owner, created);
    let event = token_event(owner, token.id, AuditAction::Create);
    repos.tokens.create(&token, &event).await.expect("create token");
    token
}

/// Tokens of users and of virtual accounts are stored whole and found by id and digest.
async fn create_then_get_and_find_by_digest_return_the_record(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let (account, _) = virtual_account(&repos, &owned, "deployer").await;
    for owner in [TokenOwner::User(owned.owner.id), TokenOwner::VirtualAccount(account.id)] {
        let mut token = new_token(owner, 7);
        token.last_used_at = Some(at(8));
        let event = token_event(owner, token.id, AuditAction::Create);
        repos.tokens.create(&token, &event).await.expect("create");
        assert_eq!(repos.tokens.get(token.id).await.expect("get"), token);
        assert_eq!(
            repos.tokens.find_by_digest(&token.digest).await.expect("find"),
            Some(token)
        );
    }
}

/// `NotFound` when the owner does not exist.
async fn create_for_an_unknown_owner_is_not_found(repos: RepoSet) {
    for owner in [TokenOwner::User(fresh()), TokenOwner::VirtualAccount(fresh())] {
        let token = new_token(owner, 7);
        let event = token_event(owner, token.id, AuditAction::Create);
        assert_eq!(repos.tokens.create(&token, &event).await, Err(RepoError::NotFound));
        assert_eq!(repos.tokens.get(token.id).await, Err(RepoError::NotFound));
    }
}

/// `get` of an unknown id is `NotFound`; `find_by_digest` of an unknown digest is `None`.
async fn get_absent_is_not_found_and_an_unknown_digest_is_none(repos: RepoSet) {
    assert_eq!(repos.tokens.get(fresh()).await, Err(RepoError::NotFound));
    let unknown = new_token(TokenOwner::User(fresh()), 0);
    assert_eq!(repos.tokens.find_by_digest(&unknown.digest).await.expect("find"), None);
}

/// The record is returned whatever its state: the caller checks expiry and revocation.
async fn find_by_digest_returns_revoked_and_expired_records_too(repos: RepoSet) {
    let owner = TokenOwner::User(user(&repos).await.id);
    let mut token = new_token(owner, 7);
    token.expires_at = Some(at(8));
    token.revoked_at = Some(at(9));
    let event = token_event(owner, token.id, AuditAction::Create);
    repos.tokens.create(&token, &event).await.expect("create");
    assert_eq!(
        repos.tokens.find_by_digest(&token.digest).await.expect("find"),
        Some(token)
    );
}

/// The owner's tokens only, newest first.
async fn list_for_owner_gives_the_owners_tokens_newest_first(repos: RepoSet) {
    let alice = TokenOwner::User(user(&repos).await.id);
    let bob = TokenOwner::User(user(&repos).await.id);
    let old = stored_token(&repos, alice, 10).await;
    let newest = stored_token(&repos, alice, 30).await;
    let middle = stored_token(&repos, alice, 20).await;
    let _other = stored_token(&repos, bob, 40).await;
    let listed = repos.tokens.list_for_owner(alice).await.expect("list");
    assert_eq!(listed, [newest, middle, old]);
    assert!(
        repos
            .tokens
            .list_for_owner(TokenOwner::User(fresh::<UserId>()))
            .await
            .expect("list")
            .is_empty()
    );
}

/// `touch` sets `last_used_at`.
async fn touch_records_the_last_use(repos: RepoSet) {
    let owner = TokenOwner::User(user(&repos).await.id);
    let token = stored_token(&repos, owner, 7).await;
    repos.tokens.touch(token.id, at(500)).await.expect("touch");
    assert_eq!(
        repos.tokens.get(token.id).await.expect("get").last_used_at,
        Some(at(500))
    );
    repos.tokens.touch(token.id, at(600)).await.expect("touch");
    assert_eq!(
        repos.tokens.get(token.id).await.expect("get").last_used_at,
        Some(at(600))
    );
}

/// `NotFound` when the token is gone.
async fn touch_absent_is_not_found(repos: RepoSet) {
    assert_eq!(repos.tokens.touch(fresh(), at(5)).await, Err(RepoError::NotFound));
}

/// `revoke` sets `revoked_at` (a future instant too); other fields are unchanged.
async fn revoke_sets_revoked_at(repos: RepoSet) {
    let owner = TokenOwner::User(user(&repos).await.id);
    let token = stored_token(&repos, owner, 7).await;
    let event = token_event(owner, token.id, AuditAction::Revoke);
    repos.tokens.revoke(token.id, at(1_000), &event).await.expect("revoke");
    let revoked = repos.tokens.get(token.id).await.expect("get");
    assert_eq!(
        revoked,
        custodian_domain::TokenRecord {
            revoked_at: Some(at(1_000)),
            ..token
        }
    );
}

/// `NotFound` when absent.
async fn revoke_absent_is_not_found(repos: RepoSet) {
    let id: TokenId = fresh();
    let event = token_event(TokenOwner::User(fresh()), id, AuditAction::Revoke);
    assert_eq!(repos.tokens.revoke(id, at(5), &event).await, Err(RepoError::NotFound));
}

/// Every token of the owner is revoked at `revoke_at` and the replacement is inserted;
/// other owners' tokens are untouched.
async fn replace_for_owner_revokes_every_token_and_inserts_the_replacement(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let (account, first) = virtual_account(&repos, &owned, "deployer").await;
    let owner = TokenOwner::VirtualAccount(account.id);
    let second = stored_token(&repos, owner, 20).await;
    let (_, bystander) = virtual_account(&repos, &owned, "bystander").await;
    let replacement = new_token(owner, 30);
    let event = audit(
        Some(owned.team_id()),
        AuditAction::RegenerateToken,
        ResourceType::VirtualAccount,
        account.id.as_uuid(),
        owned.actor(),
    );
    repos
        .tokens
        .replace_for_owner(owner, at(3_600), &replacement, &event)
        .await
        .expect("replace");
    for old in [&first, &second] {
        assert_eq!(repos.tokens.get(old.id).await.expect("get").revoked_at, Some(at(3_600)));
    }
    assert_eq!(repos.tokens.get(replacement.id).await.expect("get"), replacement);
    assert_eq!(repos.tokens.get(bystander.id).await.expect("get"), bystander);
    let listed = repos.tokens.list_for_owner(owner).await.expect("list");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], replacement, "the replacement is the newest");
}

/// The identity epoch moves with a revocation, a changed user and a removed virtual
/// account, each once committed; recording a use does not move it.
async fn the_identity_epoch_moves_with_identity_changes_and_not_with_a_use(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let (account, _) = virtual_account(&repos, &owned, "deployer").await;
    let owner = TokenOwner::User(owned.owner.id);
    let token = stored_token(&repos, owner, 7).await;
    let epoch = || async { repos.tokens.identity_epoch().await.expect("the epoch is read") };

    let before = epoch().await;
    repos.tokens.touch(token.id, at(500)).await.expect("touch");
    assert_eq!(epoch().await, before, "a use is not an identity change");

    let event = token_event(owner, token.id, AuditAction::Revoke);
    repos.tokens.revoke(token.id, at(1_000), &event).await.expect("revoke");
    let revoked = epoch().await;
    assert!(revoked > before, "a revocation moves the epoch");

    let disabled = custodian_domain::User {
        disabled_at: Some(at(1_100)),
        ..owned.owner.clone()
    };
    let event = audit(
        None,
        AuditAction::Update,
        ResourceType::User,
        owned.owner.id.as_uuid(),
        owned.actor(),
    );
    repos.users.update(&disabled, &event).await.expect("update");
    let updated = epoch().await;
    assert!(updated > revoked, "a changed user moves the epoch");

    let event = audit(
        Some(owned.team_id()),
        AuditAction::Delete,
        ResourceType::VirtualAccount,
        account.id.as_uuid(),
        owned.actor(),
    );
    repos
        .virtual_accounts
        .delete(owned.team_id(), account.id, &event)
        .await
        .expect("delete");
    let removed = epoch().await;
    assert!(removed > updated, "a removed virtual account moves the epoch");

    // A team's tier is remembered too (it decides the team's limits).
    let touched = Team {
        updated_at: at(2_000),
        ..owned.team.clone()
    };
    let team_event = || {
        audit(
            Some(owned.team_id()),
            AuditAction::Update,
            ResourceType::Team,
            owned.team_id().as_uuid(),
            owned.actor(),
        )
    };
    repos.teams.update(&touched, &team_event()).await.expect("update");
    assert_eq!(
        epoch().await,
        removed,
        "a team changed but for its tier is not an identity change"
    );
    let promoted = Team {
        tier: Tier::Enterprise,
        ..touched
    };
    repos.teams.update(&promoted, &team_event()).await.expect("update");
    let retiered = epoch().await;
    assert!(retiered > removed, "a changed tier moves the epoch");
    let bystander = user_and_team(&repos).await;
    let event = audit(
        Some(bystander.team_id()),
        AuditAction::Delete,
        ResourceType::Team,
        bystander.team_id().as_uuid(),
        bystander.actor(),
    );
    repos
        .teams
        .delete(bystander.team_id(), &event)
        .await
        .expect("an empty team is deleted");
    assert!(epoch().await > retiered, "a removed team moves the epoch");
}
