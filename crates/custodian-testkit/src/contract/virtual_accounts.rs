//! Contract of [`VirtualAccountRepository`](custodian_ports::VirtualAccountRepository).

use custodian_domain::{AuditAction, ResourceType, TeamId, TokenOwner, VirtualAccountId};
use custodian_ports::{ConflictKind, Page, RepoError};

use super::fixtures::{
    ALL, audit, audit_ids, cases, fresh, missing_virtual_account, new_token, new_virtual_account, user_and_team,
    virtual_account,
};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        create_stores_the_account_its_token_and_its_event,
        create_with_a_name_taken_in_the_team_is_duplicate_name,
        create_with_a_name_taken_in_another_team_succeeds,
        create_in_an_unknown_team_is_not_found,
        get_absent_or_in_another_team_is_not_found,
        list_is_team_scoped_by_name_paged_with_total,
        delete_removes_the_account_and_its_tokens,
        delete_absent_or_in_another_team_is_not_found,
    ]
}

/// `create` stores the account with its first token and records the event.
async fn create_stores_the_account_its_token_and_its_event(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let (account, token) = virtual_account(&repos, &owned, "deployer").await;
    assert_eq!(
        repos
            .virtual_accounts
            .get(owned.team_id(), account.id)
            .await
            .expect("get"),
        account
    );
    assert_eq!(
        repos.virtual_accounts.get_by_id(account.id).await.expect("get_by_id"),
        account
    );
    assert_eq!(
        repos.tokens.find_by_digest(&token.digest).await.expect("find"),
        Some(token)
    );
    assert_eq!(
        audit_ids(&repos, owned.team_id()).await.len(),
        2,
        "the team's and the account's"
    );
}

/// `Conflict(DuplicateName)` when the team has an account of that name; no token is kept.
async fn create_with_a_name_taken_in_the_team_is_duplicate_name(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    virtual_account(&repos, &owned, "deployer").await;
    let again = new_virtual_account(owned.team_id(), "deployer", owned.actor());
    let token = new_token(TokenOwner::VirtualAccount(again.id), 4);
    let event = audit(
        Some(owned.team_id()),
        AuditAction::Create,
        ResourceType::VirtualAccount,
        again.id.as_uuid(),
        owned.actor(),
    );
    assert_eq!(
        repos.virtual_accounts.create(&again, &token, &event).await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(repos.tokens.find_by_digest(&token.digest).await.expect("find"), None);
    assert!(!audit_ids(&repos, owned.team_id()).await.contains(&event.id));
}

/// Names are per team.
async fn create_with_a_name_taken_in_another_team_succeeds(repos: RepoSet) {
    let first = user_and_team(&repos).await;
    let second = user_and_team(&repos).await;
    virtual_account(&repos, &first, "deployer").await;
    let (account, _) = virtual_account(&repos, &second, "deployer").await;
    assert_eq!(account.team_id, second.team_id());
}

/// `NotFound` when the team does not exist.
async fn create_in_an_unknown_team_is_not_found(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let team: TeamId = fresh();
    let account = new_virtual_account(team, "deployer", owned.actor());
    let token = new_token(TokenOwner::VirtualAccount(account.id), 4);
    let event = audit(
        Some(team),
        AuditAction::Create,
        ResourceType::VirtualAccount,
        account.id.as_uuid(),
        owned.actor(),
    );
    assert_eq!(
        repos.virtual_accounts.create(&account, &token, &event).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos.virtual_accounts.get_by_id(account.id).await,
        Err(RepoError::NotFound)
    );
}

/// `NotFound` when absent or in another team (no existence leak); `get_by_id` ignores teams.
async fn get_absent_or_in_another_team_is_not_found(repos: RepoSet) {
    let first = user_and_team(&repos).await;
    let second = user_and_team(&repos).await;
    let (account, _) = virtual_account(&repos, &first, "deployer").await;
    assert_eq!(
        repos.virtual_accounts.get(second.team_id(), account.id).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos
            .virtual_accounts
            .get(first.team_id(), missing_virtual_account())
            .await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos.virtual_accounts.get_by_id(fresh::<VirtualAccountId>()).await,
        Err(RepoError::NotFound)
    );
}

/// The team's accounts only, ordered by name, paged, with the total.
async fn list_is_team_scoped_by_name_paged_with_total(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let other = user_and_team(&repos).await;
    for account_name in ["metrics", "backup", "deployer"] {
        virtual_account(&repos, &owned, account_name).await;
    }
    virtual_account(&repos, &other, "another").await;
    let listed = repos.virtual_accounts.list(owned.team_id(), ALL).await.expect("list");
    let names: Vec<&str> = listed.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["backup", "deployer", "metrics"]);
    assert_eq!(listed.total, 3);
    let page = repos
        .virtual_accounts
        .list(owned.team_id(), Page { limit: 1, offset: 1 })
        .await
        .expect("list");
    let names: Vec<&str> = page.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["deployer"]);
    assert_eq!(page.total, 3);
}

/// `delete` removes the account and every token of it, and records the event.
async fn delete_removes_the_account_and_its_tokens(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let (account, token) = virtual_account(&repos, &owned, "deployer").await;
    let (kept, kept_token) = virtual_account(&repos, &owned, "keeper").await;
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
    assert_eq!(
        repos.virtual_accounts.get_by_id(account.id).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.tokens.get(token.id).await, Err(RepoError::NotFound));
    assert_eq!(repos.virtual_accounts.get_by_id(kept.id).await.expect("kept"), kept);
    assert_eq!(repos.tokens.get(kept_token.id).await.expect("kept token"), kept_token);
    assert!(audit_ids(&repos, owned.team_id()).await.contains(&event.id));
}

/// `NotFound` when absent or in another team; the account stays.
async fn delete_absent_or_in_another_team_is_not_found(repos: RepoSet) {
    let first = user_and_team(&repos).await;
    let second = user_and_team(&repos).await;
    let (account, _) = virtual_account(&repos, &first, "deployer").await;
    let event = audit(
        Some(second.team_id()),
        AuditAction::Delete,
        ResourceType::VirtualAccount,
        account.id.as_uuid(),
        second.actor(),
    );
    assert_eq!(
        repos
            .virtual_accounts
            .delete(second.team_id(), account.id, &event)
            .await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos
            .virtual_accounts
            .delete(first.team_id(), missing_virtual_account(), &event)
            .await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos.virtual_accounts.get_by_id(account.id).await.expect("kept"),
        account
    );
    assert!(!audit_ids(&repos, second.team_id()).await.contains(&event.id));
}
