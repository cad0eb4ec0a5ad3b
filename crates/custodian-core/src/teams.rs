//! Teams: create, read, list, update (name, description and tier) and delete.

use custodian_domain::{
    AuditAction, AuditEvent, Membership, NewTeam, NewTeamInput, Outcome, RequestContext, ResourceType, Role, Subject,
    Team, TeamId, TeamPatch, TeamPatchInput,
};
use custodian_ports::{Page, Paged};

use crate::authz::{self, Action};
use crate::{CoreError, Custodian};

impl Custodian {
    fn team_event(&self, subject: &Subject, ctx: &RequestContext, action: AuditAction, team: &Team) -> AuditEvent {
        self.audit_event(
            subject,
            ctx,
            Some(team.id),
            action,
            (ResourceType::Team, Some(team.id.as_uuid()), Some(team.name.as_str())),
            Outcome::Success,
        )
    }

    /// Create a team; the calling user becomes its owner. The tier is the configured
    /// default unless a tenant admin chooses one. `Conflict(DuplicateName)`.
    pub async fn create_team(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        input: NewTeamInput,
    ) -> Result<Team, CoreError> {
        let user = authz::require_user(subject)?;
        if input.tier.is_some() {
            authz::require_tenant_admin(subject)?;
        }
        let new = NewTeam::parse(input)?;
        let now = self.now();
        let team = Team {
            id: TeamId::from_uuid(self.ports.ids.new_id()),
            name: new.name,
            description: new.description,
            tier: new.tier.unwrap_or(self.settings.default_tier),
            created_at: now,
            created_by: subject.id(),
            updated_at: now,
        };
        let owner = Membership {
            team_id: team.id,
            user_id: user,
            role: Role::Owner,
            created_at: now,
        };
        let audit = self.team_event(subject, ctx, AuditAction::Create, &team);
        self.ports.repos.teams.create(&team, &owner, &audit).await?;
        Ok(team)
    }

    /// A team and the caller's effective role in it (viewer).
    pub async fn get_team(&self, subject: &Subject, team: TeamId) -> Result<(Team, Role), CoreError> {
        let role = self.authorize(subject, team, Action::ReadTeam).await?;
        Ok((self.ports.repos.teams.get(team).await?, role))
    }

    /// The caller's teams with their role; every team (as owner) for a tenant admin; its
    /// own team for a virtual account.
    pub async fn list_teams(&self, subject: &Subject, page: Page) -> Result<Paged<(Team, Role)>, CoreError> {
        match subject {
            Subject::User { tenant_admin: true, .. } => {
                let all = self.ports.repos.teams.list_all(page).await?;
                Ok(Paged {
                    items: all.items.into_iter().map(|t| (t, Role::Owner)).collect(),
                    total: all.total,
                })
            }
            Subject::User { id, .. } => Ok(self.ports.repos.teams.list_for_user(*id, page).await?),
            Subject::VirtualAccount { team_id, role, .. } => {
                let team = self.ports.repos.teams.get(*team_id).await?;
                let items = if page.offset == 0 {
                    vec![(team, *role)]
                } else {
                    Vec::new()
                };
                Ok(Paged { items, total: 1 })
            }
        }
    }

    /// Change a team's name or description (admin) and its tier (tenant admin only), as
    /// one write with one audit event: a change that is refused in part changes nothing.
    /// `Conflict(DuplicateName)`. The team as it is now, with the caller's role in it.
    pub async fn update_team(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        input: TeamPatchInput,
    ) -> Result<(Team, Role), CoreError> {
        if input.tier.is_some() {
            // A tier is the tenant's to choose; a team the caller cannot see stays not found.
            self.authorize(subject, team, Action::ReadTeam).await?;
            authz::require_tenant_admin(subject)?;
        }
        let role = self.authorize(subject, team, Action::UpdateTeam).await?;
        let patch = TeamPatch::parse(input)?;
        let mut current = self.ports.repos.teams.get(team).await?;
        if let Some(name) = patch.name {
            current.name = name;
        }
        if let Some(description) = patch.description {
            current.description = description;
        }
        let retiered = patch.tier.is_some_and(|tier| tier != current.tier);
        if let Some(tier) = patch.tier {
            current.tier = tier;
        }
        current.updated_at = self.now();
        let audit = self.team_event(subject, ctx, AuditAction::Update, &current);
        self.ports.repos.teams.update(&current, &audit).await?;
        if retiered {
            // Its limits are read from the remembered tier.
            self.subjects.forget_all();
        }
        Ok((current, role))
    }

    /// Delete an empty team (owner). `Conflict(TeamNotEmpty)` while it holds secrets,
    /// locations or vault connections.
    pub async fn delete_team(&self, subject: &Subject, ctx: &RequestContext, team: TeamId) -> Result<(), CoreError> {
        self.authorize(subject, team, Action::DeleteTeam).await?;
        let current = self.ports.repos.teams.get(team).await?;
        let audit = self.team_event(subject, ctx, AuditAction::Delete, &current);
        self.ports.repos.teams.delete(team, &audit).await?;
        // Its virtual accounts went with it.
        self.subjects.forget_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
