//! Contract of [`MembershipRepository`](custodian_ports::MembershipRepository).

use custodian_domain::{AuditAction, AuditEvent, LimitKind, ResourceType, Role, TeamId, UserId};
use custodian_ports::{ConflictKind, Page, RepoError};

use super::fixtures::{ALL, Owned, audit, audit_ids, cases, fresh, membership, new_user, user, user_and_team};
use crate::{Case, RepoSet};

/// The cases of the suite.
pub fn cases() -> Vec<Case<RepoSet>> {
    cases![
        add_then_get_returns_the_membership_and_records_the_event,
        add_an_existing_member_is_already_member,
        add_at_the_member_limit_is_limit_exceeded_and_writes_nothing,
        add_below_the_limit_or_without_limit_succeeds,
        add_to_an_unknown_team_or_user_is_not_found,
        get_of_a_non_member_is_none,
        list_gives_members_with_users_by_email_paged_with_total,
        list_for_user_gives_every_membership_of_the_user,
        update_role_changes_and_returns_the_membership,
        update_role_of_a_non_member_is_not_found,
        update_role_of_the_last_owner_is_last_owner,
        update_role_of_one_of_two_owners_succeeds,
        remove_removes_the_member,
        remove_a_non_member_is_not_found,
        remove_the_last_owner_is_last_owner,
    ]
}

fn member_event(owned: &Owned, user: UserId, action: AuditAction) -> AuditEvent {
    audit(
        Some(owned.team_id()),
        action,
        ResourceType::Member,
        user.as_uuid(),
        owned.actor(),
    )
}

/// Add `role` membership of a fresh user to `owned`'s team (unlimited).
async fn add_member(repos: &RepoSet, owned: &Owned, role: Role) -> UserId {
    let member = user(repos).await;
    let event = member_event(owned, member.id, AuditAction::Create);
    repos
        .memberships
        .add(&membership(owned.team_id(), member.id, role), None, &event)
        .await
        .expect("add");
    member.id
}

/// `add` stores the membership and its event; `get` gives it back.
async fn add_then_get_returns_the_membership_and_records_the_event(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let member = user(&repos).await;
    let added = membership(owned.team_id(), member.id, Role::Operator);
    let event = member_event(&owned, member.id, AuditAction::Create);
    repos.memberships.add(&added, Some(5), &event).await.expect("add");
    assert_eq!(
        repos.memberships.get(owned.team_id(), member.id).await.expect("get"),
        Some(added)
    );
    assert!(audit_ids(&repos, owned.team_id()).await.contains(&event.id));
}

/// `Conflict(AlreadyMember)` when the user is a member already; the role is unchanged.
async fn add_an_existing_member_is_already_member(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let again = membership(owned.team_id(), owned.owner.id, Role::Viewer);
    let event = member_event(&owned, owned.owner.id, AuditAction::Create);
    assert_eq!(
        repos.memberships.add(&again, None, &event).await,
        Err(RepoError::Conflict(ConflictKind::AlreadyMember))
    );
    let kept = repos
        .memberships
        .get(owned.team_id(), owned.owner.id)
        .await
        .expect("get");
    assert_eq!(kept.map(|m| m.role), Some(Role::Owner));
    assert!(!audit_ids(&repos, owned.team_id()).await.contains(&event.id));
}

/// `LimitExceeded(Members)` at the limit; nothing is written.
async fn add_at_the_member_limit_is_limit_exceeded_and_writes_nothing(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let member = user(&repos).await;
    let event = member_event(&owned, member.id, AuditAction::Create);
    let outcome = repos
        .memberships
        .add(&membership(owned.team_id(), member.id, Role::Viewer), Some(1), &event)
        .await;
    assert_eq!(
        outcome,
        Err(RepoError::LimitExceeded {
            kind: LimitKind::Members,
            limit: 1
        })
    );
    assert_eq!(
        repos.memberships.get(owned.team_id(), member.id).await.expect("get"),
        None
    );
    assert!(!audit_ids(&repos, owned.team_id()).await.contains(&event.id));
}

/// Below the limit, and with no limit, members are added.
async fn add_below_the_limit_or_without_limit_succeeds(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let second = user(&repos).await;
    let event = member_event(&owned, second.id, AuditAction::Create);
    repos
        .memberships
        .add(&membership(owned.team_id(), second.id, Role::Viewer), Some(2), &event)
        .await
        .expect("below the limit");
    for _ in 0..3 {
        add_member(&repos, &owned, Role::Viewer).await;
    }
    assert_eq!(
        repos.memberships.list(owned.team_id(), ALL).await.expect("list").total,
        5
    );
}

/// `NotFound` when the team or the user does not exist.
async fn add_to_an_unknown_team_or_user_is_not_found(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let member = user(&repos).await;
    let missing_team: TeamId = fresh();
    let event = member_event(&owned, member.id, AuditAction::Create);
    assert_eq!(
        repos
            .memberships
            .add(&membership(missing_team, member.id, Role::Viewer), None, &event)
            .await,
        Err(RepoError::NotFound)
    );
    let ghost: UserId = fresh();
    let event = member_event(&owned, ghost, AuditAction::Create);
    assert_eq!(
        repos
            .memberships
            .add(&membership(owned.team_id(), ghost, Role::Viewer), None, &event)
            .await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos.memberships.list(owned.team_id(), ALL).await.expect("list").total,
        1
    );
}

/// `get` is `None` for a user who is not a member (or a team that does not exist).
async fn get_of_a_non_member_is_none(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let stranger = user(&repos).await;
    assert_eq!(
        repos.memberships.get(owned.team_id(), stranger.id).await.expect("get"),
        None
    );
    assert_eq!(repos.memberships.get(fresh(), owned.owner.id).await.expect("get"), None);
}

/// The team's members with their users, ordered by email, paged, with the total.
async fn list_gives_members_with_users_by_email_paged_with_total(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let mut expected = vec![(
        membership(owned.team_id(), owned.owner.id, Role::Owner),
        owned.owner.clone(),
    )];
    for (address, role) in [("zoe@example.com", Role::Viewer), ("adam@example.com", Role::Admin)] {
        let person = new_user(address);
        let event = audit(
            None,
            AuditAction::Create,
            ResourceType::User,
            person.id.as_uuid(),
            person.id.into(),
        );
        repos.users.create(&person, None, &event).await.expect("user");
        let added = membership(owned.team_id(), person.id, role);
        let event = member_event(&owned, person.id, AuditAction::Create);
        repos.memberships.add(&added, None, &event).await.expect("add");
        expected.push((added, person));
    }
    // The team's owner was created with the team, at the time `membership` gives it too.
    expected.sort_by(|a, b| a.1.email.cmp(&b.1.email));
    let _other_team = user_and_team(&repos).await;
    let listed = repos.memberships.list(owned.team_id(), ALL).await.expect("list");
    assert_eq!(listed.items, expected);
    assert_eq!(listed.total, 3);
    let page = repos
        .memberships
        .list(owned.team_id(), Page { limit: 2, offset: 1 })
        .await
        .expect("list");
    assert_eq!(page.items, expected[1..]);
    assert_eq!(page.total, 3);
}

/// Every membership of the user, in any team, and no other.
async fn list_for_user_gives_every_membership_of_the_user(repos: RepoSet) {
    let first = user_and_team(&repos).await;
    let second = user_and_team(&repos).await;
    let member = user(&repos).await;
    let mut expected = Vec::new();
    for (owned, role) in [(&first, Role::Viewer), (&second, Role::Admin)] {
        let added = membership(owned.team_id(), member.id, role);
        let event = member_event(owned, member.id, AuditAction::Create);
        repos.memberships.add(&added, None, &event).await.expect("add");
        expected.push(added);
    }
    let mut listed = repos.memberships.list_for_user(member.id).await.expect("list");
    listed.sort_by_key(|m| m.team_id);
    expected.sort_by_key(|m| m.team_id);
    assert_eq!(listed, expected);
    assert!(repos.memberships.list_for_user(fresh()).await.expect("list").is_empty());
}

/// `update_role` changes the role, returns the updated membership and records the event.
async fn update_role_changes_and_returns_the_membership(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let member = add_member(&repos, &owned, Role::Viewer).await;
    let event = member_event(&owned, member, AuditAction::Update);
    let updated = repos
        .memberships
        .update_role(owned.team_id(), member, Role::Admin, &event)
        .await
        .expect("update");
    assert_eq!(updated, membership(owned.team_id(), member, Role::Admin));
    assert_eq!(
        repos.memberships.get(owned.team_id(), member).await.expect("get"),
        Some(updated)
    );
    assert!(audit_ids(&repos, owned.team_id()).await.contains(&event.id));
}

/// `NotFound` for a user who is not a member, or a team that does not exist.
async fn update_role_of_a_non_member_is_not_found(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let stranger = user(&repos).await;
    let event = member_event(&owned, stranger.id, AuditAction::Update);
    assert_eq!(
        repos
            .memberships
            .update_role(owned.team_id(), stranger.id, Role::Admin, &event)
            .await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        repos
            .memberships
            .update_role(fresh(), owned.owner.id, Role::Admin, &event)
            .await,
        Err(RepoError::NotFound)
    );
}

/// `Conflict(LastOwner)` when demoting the only owner; the role is unchanged.
async fn update_role_of_the_last_owner_is_last_owner(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    add_member(&repos, &owned, Role::Admin).await;
    let event = member_event(&owned, owned.owner.id, AuditAction::Update);
    assert_eq!(
        repos
            .memberships
            .update_role(owned.team_id(), owned.owner.id, Role::Admin, &event)
            .await,
        Err(RepoError::Conflict(ConflictKind::LastOwner))
    );
    let kept = repos
        .memberships
        .get(owned.team_id(), owned.owner.id)
        .await
        .expect("get");
    assert_eq!(kept.map(|m| m.role), Some(Role::Owner));
    // Keeping the owner an owner is no change of ownership.
    let event = member_event(&owned, owned.owner.id, AuditAction::Update);
    repos
        .memberships
        .update_role(owned.team_id(), owned.owner.id, Role::Owner, &event)
        .await
        .expect("owner stays owner");
}

/// With two owners, one may step down; then the other is the last.
async fn update_role_of_one_of_two_owners_succeeds(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let second = add_member(&repos, &owned, Role::Owner).await;
    let event = member_event(&owned, owned.owner.id, AuditAction::Update);
    repos
        .memberships
        .update_role(owned.team_id(), owned.owner.id, Role::Viewer, &event)
        .await
        .expect("one of two owners steps down");
    let event = member_event(&owned, second, AuditAction::Update);
    assert_eq!(
        repos
            .memberships
            .update_role(owned.team_id(), second, Role::Viewer, &event)
            .await,
        Err(RepoError::Conflict(ConflictKind::LastOwner))
    );
}

/// `remove` removes the member and records the event.
async fn remove_removes_the_member(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let member = add_member(&repos, &owned, Role::Operator).await;
    let event = member_event(&owned, member, AuditAction::Delete);
    repos
        .memberships
        .remove(owned.team_id(), member, &event)
        .await
        .expect("remove");
    assert_eq!(repos.memberships.get(owned.team_id(), member).await.expect("get"), None);
    assert!(audit_ids(&repos, owned.team_id()).await.contains(&event.id));
    // A second owner may leave too, as long as one stays.
    let second = add_member(&repos, &owned, Role::Owner).await;
    let event = member_event(&owned, second, AuditAction::Delete);
    repos
        .memberships
        .remove(owned.team_id(), second, &event)
        .await
        .expect("remove an owner of two");
}

/// `NotFound` for a user who is not a member.
async fn remove_a_non_member_is_not_found(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    let stranger = user(&repos).await;
    let event = member_event(&owned, stranger.id, AuditAction::Delete);
    assert_eq!(
        repos.memberships.remove(owned.team_id(), stranger.id, &event).await,
        Err(RepoError::NotFound)
    );
    assert!(!audit_ids(&repos, owned.team_id()).await.contains(&event.id));
}

/// `Conflict(LastOwner)` when removing the only owner; the member stays.
async fn remove_the_last_owner_is_last_owner(repos: RepoSet) {
    let owned = user_and_team(&repos).await;
    add_member(&repos, &owned, Role::Admin).await;
    let event = member_event(&owned, owned.owner.id, AuditAction::Delete);
    assert_eq!(
        repos.memberships.remove(owned.team_id(), owned.owner.id, &event).await,
        Err(RepoError::Conflict(ConflictKind::LastOwner))
    );
    assert!(
        repos
            .memberships
            .get(owned.team_id(), owned.owner.id)
            .await
            .expect("get")
            .is_some()
    );
}
