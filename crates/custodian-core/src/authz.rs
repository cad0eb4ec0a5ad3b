//! Authorization: the role table as data.
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

    /// The lowest role that may perform the action.
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
mod tests;
