//! Authorization: SPEC §4 as data.
//!
//! Every team-scoped action has a minimum [`Role`] ([`Action::minimum_role`]). The caller's
//! effective role in a team is:
//! - a tenant admin: `owner`, in every team;
//! - a user: the role of their membership; no membership means the team does not exist
//!   for them (`NotFound`, no existence leak);
//! - a virtual account: its own role in its own team, and nothing anywhere else (`NotFound`).
//!
//! A caller whose effective role is below the action's minimum gets `Forbidden`.

use custodian_domain::{Role, Subject, TeamId, UserId};

use crate::error::{CoreError, Requirement};

/// Something a caller does inside a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read the team itself.
    ReadTeam,
    /// List the team's members and virtual accounts.
    ReadMembers,
    /// Read metadata of storage secrets.
    ReadSecrets,
    /// Read metadata of locations.
    ReadLocations,
    /// Read metadata of vault connections.
    ReadVaultConnections,
    /// Read the team's audit events.
    ReadAuditEvents,
    /// Read the keys (not values) of secret groups.
    ReadGroupKeys,
    /// Verify a storage secret's credentials.
    VerifySecret,
    /// Verify a location (its secret's credentials).
    VerifyLocation,
    /// Verify a vault connection against its provider.
    VerifyVaultConnection,
    /// Resolve a storage secret's credentials (the embedded `resolve` API).
    ResolveCredentials,
    /// Read secret-group values.
    ReadGroupValues,
    /// Create, update or delete storage secrets.
    WriteSecrets,
    /// Create, update or delete locations.
    WriteLocations,
    /// Create, update, rotate or delete vault connections.
    WriteVaultConnections,
    /// Create, update or delete secret groups.
    WriteSecretGroups,
    /// Change the team's name or description.
    UpdateTeam,
    /// Add, change or remove members below `owner`.
    ManageMembers,
    /// Create, delete virtual accounts and regenerate their tokens.
    ManageVirtualAccounts,
    /// Grant or remove the `owner` role.
    ManageOwners,
    /// Delete the team.
    DeleteTeam,
}

impl Action {
    /// Every action, for exhaustive tests and documentation.
    pub const ALL: &'static [Action] = &[
        Action::ReadTeam,
        Action::ReadMembers,
        Action::ReadSecrets,
        Action::ReadLocations,
        Action::ReadVaultConnections,
        Action::ReadAuditEvents,
        Action::ReadGroupKeys,
        Action::VerifySecret,
        Action::VerifyLocation,
        Action::VerifyVaultConnection,
        Action::ResolveCredentials,
        Action::ReadGroupValues,
        Action::WriteSecrets,
        Action::WriteLocations,
        Action::WriteVaultConnections,
        Action::WriteSecretGroups,
        Action::UpdateTeam,
        Action::ManageMembers,
        Action::ManageVirtualAccounts,
        Action::ManageOwners,
        Action::DeleteTeam,
    ];

    /// The lowest role that may perform the action (SPEC §4).
    pub const fn minimum_role(self) -> Role {
        match self {
            Action::ReadTeam
            | Action::ReadMembers
            | Action::ReadSecrets
            | Action::ReadLocations
            | Action::ReadVaultConnections
            | Action::ReadAuditEvents
            | Action::ReadGroupKeys => Role::Viewer,
            Action::VerifySecret
            | Action::VerifyLocation
            | Action::VerifyVaultConnection
            | Action::ResolveCredentials
            | Action::ReadGroupValues => Role::Operator,
            Action::WriteSecrets
            | Action::WriteLocations
            | Action::WriteVaultConnections
            | Action::WriteSecretGroups
            | Action::UpdateTeam
            | Action::ManageMembers
            | Action::ManageVirtualAccounts => Role::Admin,
            Action::ManageOwners | Action::DeleteTeam => Role::Owner,
        }
    }
}

/// The caller's effective role in `team`, given the role of their membership there (for
/// a user; ignored for tenant admins and virtual accounts). `NotFound` when the caller has
/// no standing in the team.
pub fn effective_role(subject: &Subject, team: TeamId, membership: Option<Role>) -> Result<Role, CoreError> {
    match subject {
        Subject::User { tenant_admin: true, .. } => Ok(Role::Owner),
        Subject::User { .. } => membership.ok_or(CoreError::NotFound),
        Subject::VirtualAccount { team_id, role, .. } if *team_id == team => Ok(*role),
        Subject::VirtualAccount { .. } => Err(CoreError::NotFound),
    }
}

/// Decide whether `subject` may perform `action` in `team`; on success, the effective role.
pub fn decide(subject: &Subject, team: TeamId, membership: Option<Role>, action: Action) -> Result<Role, CoreError> {
    let role = effective_role(subject, team, membership)?;
    let needed = action.minimum_role();
    if role.at_least(needed) {
        Ok(role)
    } else {
        Err(CoreError::Forbidden {
            needed: Requirement::Role(needed),
        })
    }
}

/// Only a tenant admin may go on (create users, set a team's tier).
pub fn require_tenant_admin(subject: &Subject) -> Result<(), CoreError> {
    if subject.is_tenant_admin() {
        Ok(())
    } else {
        Err(CoreError::Forbidden {
            needed: Requirement::TenantAdmin,
        })
    }
}

/// Only a user may go on (create teams, hold personal access tokens); the user's id.
pub fn require_user(subject: &Subject) -> Result<UserId, CoreError> {
    match subject {
        Subject::User { id, .. } => Ok(*id),
        Subject::VirtualAccount { .. } => Err(CoreError::Forbidden {
            needed: Requirement::User,
        }),
    }
}

#[cfg(test)]
mod tests {
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

    /// The table of SPEC §4, written out independently of `minimum_role`.
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
    fn the_table_matches_the_spec() {
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
}
