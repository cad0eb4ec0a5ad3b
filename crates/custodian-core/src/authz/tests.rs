//! The authorization table and the effective role of each kind of caller.

use custodian_domain::{DisplayName, Email, Name, VirtualAccountId};
use uuid::Uuid;

use super::*;

fn team(n: u128) -> TeamId {
    TeamId::from_uuid(Uuid::from_u128(n))
}

fn user(tenant_admin: bool) -> Subject {
    Subject::User {
        id: UserId::from_uuid(Uuid::from_u128(100)),
        email: Email::parse_at("email", "ada@example.com").unwrap(),
        display_name: DisplayName::parse_at("display_name", "Ada").unwrap(),
        tenant_admin,
    }
}

fn account(team_id: TeamId, role: Role) -> Subject {
    Subject::VirtualAccount {
        id: VirtualAccountId::from_uuid(Uuid::from_u128(200)),
        team_id,
        name: Name::parse_at("name", "worker").unwrap(),
        role,
    }
}

/// The role table, written out independently of `minimum_role`.
fn expected_minimum(action: Action) -> Role {
    use Action as A;
    let viewer = [
        A::ReadTeam,
        A::ReadMembers,
        A::ReadSecrets,
        A::ReadLocations,
        A::ReadVaultConnections,
        A::ReadAuditEvents,
        A::ReadGroupKeys,
    ];
    let operator = [
        A::VerifySecret,
        A::VerifyLocation,
        A::VerifyVaultConnection,
        A::ResolveCredentials,
        A::ReadGroupValues,
    ];
    let owner = [A::ManageOwners, A::DeleteTeam];
    if viewer.contains(&action) {
        Role::Viewer
    } else if operator.contains(&action) {
        Role::Operator
    } else if owner.contains(&action) {
        Role::Owner
    } else {
        Role::Admin
    }
}

#[test]
fn the_table_matches_the_documented_minimum_roles() {
    for action in Action::ALL {
        assert_eq!(action.minimum_role(), expected_minimum(*action), "{action:?}");
    }
    assert_eq!(Action::ALL.len(), 21);
}

#[test]
fn members_act_by_their_role() {
    let t = team(1);
    for action in Action::ALL {
        for role in Role::ALL {
            let result = decide(&user(false), t, Some(*role), *action);
            if *role >= expected_minimum(*action) {
                assert_eq!(result, Ok(*role), "{action:?} as {role}");
            } else {
                assert_eq!(
                    result,
                    Err(CoreError::Forbidden {
                        needed: Requirement::Role(expected_minimum(*action))
                    }),
                    "{action:?} as {role}"
                );
            }
        }
    }
}

#[test]
fn non_members_see_nothing() {
    for action in Action::ALL {
        assert_eq!(decide(&user(false), team(1), None, *action), Err(CoreError::NotFound));
    }
}

#[test]
fn a_tenant_admin_acts_as_owner_in_every_team() {
    for action in Action::ALL {
        for membership in [None, Some(Role::Viewer)] {
            assert_eq!(
                decide(&user(true), team(7), membership, *action),
                Ok(Role::Owner),
                "{action:?}"
            );
        }
    }
}

#[test]
fn a_virtual_account_acts_in_its_own_team_with_its_role() {
    let own = team(1);
    for action in Action::ALL {
        for role in Role::ALL {
            let subject = account(own, *role);
            // A membership role passed by mistake never lifts an account.
            let result = decide(&subject, own, Some(Role::Owner), *action);
            if *role >= expected_minimum(*action) {
                assert_eq!(result, Ok(*role));
            } else {
                assert_eq!(
                    result,
                    Err(CoreError::Forbidden {
                        needed: Requirement::Role(expected_minimum(*action))
                    })
                );
            }
        }
    }
}

#[test]
fn a_virtual_account_sees_nothing_of_other_teams() {
    for action in Action::ALL {
        for role in Role::ALL {
            assert_eq!(
                decide(&account(team(1), *role), team(2), Some(Role::Owner), *action),
                Err(CoreError::NotFound)
            );
        }
    }
}

#[test]
fn tenant_actions_need_a_tenant_admin() {
    assert_eq!(require_tenant_admin(&user(true)), Ok(()));
    for subject in [user(false), account(team(1), Role::Admin)] {
        assert_eq!(
            require_tenant_admin(&subject),
            Err(CoreError::Forbidden {
                needed: Requirement::TenantAdmin
            })
        );
    }
}

#[test]
fn user_actions_refuse_virtual_accounts() {
    assert!(require_user(&user(false)).is_ok());
    assert_eq!(
        require_user(&account(team(1), Role::Admin)),
        Err(CoreError::Forbidden {
            needed: Requirement::User
        })
    );
}
