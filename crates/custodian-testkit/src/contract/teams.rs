//! Contract of [`TeamRepository`](custodian_ports::TeamRepository).

use custodian_domain::{AuditAction, ResourceType, Role, TeamId, Tier, TokenOwner};
use custodian_ports::{ConflictKind, Page, RepoError};

use super::fixtures::{
    ALL, audit, audit_ids, cases, description, fresh, membership, name, new_team, user, user_and_team, virtual_account,
};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        create_stores_the_team_its_owner_and_its_event,
        create_with_a_taken_name_is_duplicate_name_and_writes_nothing,
        create_for_an_unknown_owner_is_not_found,
        get_absent_is_not_found,
        find_by_name_gives_the_team_of_exactly_that_name,
        list_all_orders_by_name_and_pages_with_the_total,
        list_for_user_gives_the_users_teams_with_role_by_name,
        update_replaces_name_description_and_tier,
        update_absent_is_not_found,
        update_to_a_taken_name_is_duplicate_name,
        delete_removes_members_virtual_accounts_and_their_tokens,
        delete_absent_is_not_found,
        delete_while_it_holds_secrets_locations_or_connections_is_team_not_empty,
    ]
}

fn team_event(team: TeamId, action: AuditAction, actor: custodian_domain::SubjectId) -> custodian_domain::AuditEvent {
    audit(Some(team), action, ResourceType::Team, team.as_uuid(), actor)
}

/// `create` stores the team, makes `owner` its owner and records the event.
async fn create_stores_the_team_its_owner_and_its_event(repos: RepoSet) {
    let owner = user(&repos).await;
    let team = new_team("platform", owner.id.into());
    let event = team_event(team.id, AuditAction::Create, owner.id.into());
    repos
        .teams
        .create(&team, &membership(team.id, owner.id, Role::Owner), &event)
        .await
        .expect("create");
    assert_eq!(repos.teams.get(team.id).await.expect("get"), team);
    let member = repos.memberships.get(team.id, owner.id).await.expect("get membership");
    assert_eq!(member.map(|m| m.role), Some(Role::Owner));
    assert_eq!(audit_ids(&repos, team.id).await, [event.id]);
}

/// `find_by_name` finds the team of exactly that name, and nothing for another name.
async fn find_by_name_gives_the_team_of_exactly_that_name(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let found = repos.teams.find_by_name(&owned.team.name).await.expect("find");
    assert_eq!(found, Some(owned.team.clone()));
    let other = name(&format!("{}-other", owned.team.name.as_str()));
    assert_eq!(repos.teams.find_by_name(&other).await.expect("find"), None);
}

/// `Conflict(DuplicateName)` when a team has that name; nothing is written.
async fn create_with_a_taken_name_is_duplicate_name_and_writes_nothing(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let other = user(&repos).await;
    let team = new_team(owned.team.name.as_str(), other.id.into());
    let event = team_event(team.id, AuditAction::Create, other.id.into());
    let outcome = repos
        .teams
        .create(&team, &membership(team.id, other.id, Role::Owner), &event)
        .await;
    assert_eq!(outcome, Err(RepoError::Conflict(ConflictKind::DuplicateName)));
    assert_eq!(repos.teams.get(team.id).await, Err(RepoError::NotFound));
    assert_eq!(repos.memberships.get(team.id, other.id).await.expect("get"), None);
    assert!(audit_ids(&repos, team.id).await.is_empty());
}

/// The owner must exist: `NotFound`, and no team is left behind.
async fn create_for_an_unknown_owner_is_not_found(repos: RepoSet) {
    let ghost: custodian_domain::UserId = fresh();
    let team = new_team("orphans", custodian_domain::SubjectId::from(ghost));
    let event = team_event(team.id, AuditAction::Create, ghost.into());
    let outcome = repos
        .teams
        .create(&team, &membership(team.id, ghost, Role::Owner), &event)
        .await;
    assert_eq!(outcome, Err(RepoError::NotFound));
    assert_eq!(repos.teams.get(team.id).await, Err(RepoError::NotFound));
}

/// `NotFound` when there is no such team.
async fn get_absent_is_not_found(repos: RepoSet) {
    assert_eq!(repos.teams.get(fresh::<TeamId>()).await, Err(RepoError::NotFound));
}

/// Every team, ordered by name, paged, with the total.
async fn list_all_orders_by_name_and_pages_with_the_total(repos: RepoSet) {
    let owner = user(&repos).await;
    for team_name in ["ops", "data", "web"] {
        let team = new_team(team_name, owner.id.into());
        let event = team_event(team.id, AuditAction::Create, owner.id.into());
        repos
            .teams
            .create(&team, &membership(team.id, owner.id, Role::Owner), &event)
            .await
            .expect("create");
    }
    let all = repos.teams.list_all(ALL).await.expect("list");
    let names: Vec<&str> = all.items.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["data", "ops", "web"]);
    assert_eq!(all.total, 3);
    let page = repos.teams.list_all(Page { limit: 1, offset: 2 }).await.expect("list");
    let names: Vec<&str> = page.items.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["web"]);
    assert_eq!(page.total, 3);
}

/// The user's teams only, each with the user's role, ordered by name.
async fn list_for_user_gives_the_users_teams_with_role_by_name(repos: RepoSet) {
    let first = user_and_team(&repos).await;
    let second = user_and_team(&repos).await;
    let _unrelated = user_and_team(&repos).await;
    let member = user(&repos).await;
    for (owned, role) in [(&second, Role::Viewer), (&first, Role::Admin)] {
        let event = audit(
            Some(owned.team_id()),
            AuditAction::Create,
            ResourceType::Member,
            member.id.as_uuid(),
            owned.actor(),
        );
        repos
            .memberships
            .add(&membership(owned.team_id(), member.id, role), None, &event)
            .await
            .expect("add");
    }
    let mut expected = vec![(first.team.clone(), Role::Admin), (second.team.clone(), Role::Viewer)];
    expected.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let listed = repos.teams.list_for_user(member.id, ALL).await.expect("list");
    assert_eq!(listed.items, expected);
    assert_eq!(listed.total, 2);
    let page = repos
        .teams
        .list_for_user(member.id, Page { limit: 1, offset: 1 })
        .await
        .expect("list");
    assert_eq!(page.items, expected[1..]);
    assert_eq!(page.total, 2);
}

/// `update` replaces name, description and tier.
async fn update_replaces_name_description_and_tier(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let mut team = owned.team.clone();
    team.name = name("renamed");
    team.description = Some(description("a new purpose"));
    team.tier = Tier::Enterprise;
    team.updated_at = super::fixtures::at(100);
    let event = team_event(team.id, AuditAction::Update, owned.actor());
    repos.teams.update(&team, &event).await.expect("update");
    assert_eq!(repos.teams.get(team.id).await.expect("get"), team);
    assert!(audit_ids(&repos, team.id).await.contains(&event.id));
    team.description = None;
    let event = team_event(team.id, AuditAction::Update, owned.actor());
    repos.teams.update(&team, &event).await.expect("update");
    assert_eq!(repos.teams.get(team.id).await.expect("get").description, None);
}

/// `NotFound` when the team does not exist.
async fn update_absent_is_not_found(repos: RepoSet) {
    let owner = user(&repos).await;
    let team = new_team("nowhere", owner.id.into());
    let event = team_event(team.id, AuditAction::Update, owner.id.into());
    assert_eq!(repos.teams.update(&team, &event).await, Err(RepoError::NotFound));
    assert!(audit_ids(&repos, team.id).await.is_empty());
}

/// `Conflict(DuplicateName)` when another team has the new name; nothing changes.
async fn update_to_a_taken_name_is_duplicate_name(repos: RepoSet) {
    let first = user_and_team(&repos).await;
    let second = user_and_team(&repos).await;
    let mut renamed = second.team.clone();
    renamed.name = first.team.name.clone();
    let event = team_event(renamed.id, AuditAction::Update, second.actor());
    assert_eq!(
        repos.teams.update(&renamed, &event).await,
        Err(RepoError::Conflict(ConflictKind::DuplicateName))
    );
    assert_eq!(repos.teams.get(second.team_id()).await.expect("get"), second.team);
}

/// `delete` removes the team with its memberships, virtual accounts and their tokens.
async fn delete_removes_members_virtual_accounts_and_their_tokens(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let (account, token) = virtual_account(&repos, &owned, "deployer").await;
    let event = team_event(owned.team_id(), AuditAction::Delete, owned.actor());
    repos.teams.delete(owned.team_id(), &event).await.expect("delete");
    assert_eq!(repos.teams.get(owned.team_id()).await, Err(RepoError::NotFound));
    assert_eq!(
        repos
            .memberships
            .get(owned.team_id(), owned.owner.id)
            .await
            .expect("get"),
        None
    );
    assert!(
        repos
            .memberships
            .list_for_user(owned.owner.id)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        repos.virtual_accounts.get_by_id(account.id).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(repos.tokens.get(token.id).await, Err(RepoError::NotFound));
    assert!(
        repos
            .tokens
            .list_for_owner(TokenOwner::VirtualAccount(account.id))
            .await
            .expect("list")
            .is_empty()
    );
    // The owner remains a user; the audit trail outlives the team.
    assert_eq!(repos.users.get(owned.owner.id).await.expect("get"), owned.owner);
    assert!(audit_ids(&repos, owned.team_id()).await.contains(&event.id));
}

/// `NotFound` when the team does not exist.
async fn delete_absent_is_not_found(repos: RepoSet) {
    let owner = user(&repos).await;
    let id: TeamId = fresh();
    let event = team_event(id, AuditAction::Delete, owner.id.into());
    assert_eq!(repos.teams.delete(id, &event).await, Err(RepoError::NotFound));
    assert!(audit_ids(&repos, id).await.is_empty());
}

/// `Conflict(TeamNotEmpty)` while the team holds a vault connection, a secret or a
/// location; the team and its members stay. Once they are gone the team can be deleted.
async fn delete_while_it_holds_secrets_locations_or_connections_is_team_not_empty(repos: RepoSet) {
    use super::secrets::{stored_connection, stored_location, stored_secret, team};

    let owned = team(&repos).await;
    let connection = stored_connection(&repos, owned, "vault").await;
    let delete_team = |action| team_event(owned.team, action, owned.actor);
    let not_empty = Err(RepoError::Conflict(ConflictKind::TeamNotEmpty));
    assert_eq!(
        repos.teams.delete(owned.team, &delete_team(AuditAction::Delete)).await,
        not_empty
    );
    let secret = stored_secret(&repos, owned, "backups").await;
    let location = stored_location(&repos, owned, "site", secret.id).await;
    assert_eq!(
        repos.teams.delete(owned.team, &delete_team(AuditAction::Delete)).await,
        not_empty
    );
    assert!(repos.teams.get(owned.team).await.is_ok(), "the team stays");
    assert_eq!(repos.memberships.list(owned.team, ALL).await.expect("members").total, 1);

    let event =
        |resource_type, id: uuid::Uuid| audit(Some(owned.team), AuditAction::Delete, resource_type, id, owned.actor);
    repos
        .locations
        .delete(
            owned.team,
            location.id,
            &event(ResourceType::Location, location.id.as_uuid()),
        )
        .await
        .expect("delete the location");
    assert_eq!(
        repos.teams.delete(owned.team, &delete_team(AuditAction::Delete)).await,
        not_empty
    );
    repos
        .secrets
        .delete(
            owned.team,
            secret.id,
            &event(ResourceType::StorageSecret, secret.id.as_uuid()),
        )
        .await
        .expect("delete the secret");
    assert_eq!(
        repos.teams.delete(owned.team, &delete_team(AuditAction::Delete)).await,
        not_empty
    );
    repos
        .vault_connections
        .delete(
            owned.team,
            connection.id,
            &event(ResourceType::VaultConnection, connection.id.as_uuid()),
        )
        .await
        .expect("delete the vault connection");
    repos
        .teams
        .delete(owned.team, &delete_team(AuditAction::Delete))
        .await
        .expect("an empty team is deleted");
    assert_eq!(repos.teams.get(owned.team).await, Err(RepoError::NotFound));
}
