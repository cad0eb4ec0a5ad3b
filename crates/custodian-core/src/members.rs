//! A team's members and their roles.

use custodian_domain::{
    AddMemberInput, AuditAction, AuditEvent, Email, LimitKind, MemberRef, Membership, NewMember, Outcome,
    RequestContext, ResourceType, Role, RoleChange, RoleChangeInput, Subject, TeamId, User, UserId,
};
use custodian_ports::{Page, Paged, RepoError};

use crate::authz::Action;
use crate::{CoreError, Custodian};

impl Custodian {
    fn member_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        action: AuditAction,
        team: TeamId,
        user: UserId,
        email: Option<&Email>,
    ) -> AuditEvent {
        self.audit_event(
            subject,
            ctx,
            Some(team),
            action,
            (ResourceType::Member, Some(user.as_uuid()), email.map(Email::as_str)),
            Outcome::Success,
        )
    }

    /// The user `who` names, if there is one.
    async fn find_user(&self, who: &MemberRef) -> Result<Option<User>, CoreError> {
        match who {
            MemberRef::Email(email) => Ok(self.ports.repos.users.find_by_email(email).await?),
            MemberRef::Id(id) => match self.ports.repos.users.get(*id).await {
                Ok(user) => Ok(Some(user)),
                Err(RepoError::NotFound) => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Add a user to a team (admin; granting `owner` needs owner). The team's member limit
    /// applies (`LimitExceeded`); `Conflict(AlreadyMember)`. An unknown user is a 422 on
    /// the field that named them.
    pub async fn add_member(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        input: AddMemberInput,
    ) -> Result<Membership, CoreError> {
        self.authorize(subject, team, Action::ManageMembers).await?;
        if input.grants_owner() {
            self.authorize(subject, team, Action::ManageOwners).await?;
        }
        let user = match input.member_ref() {
            Some(who) => self.find_user(&who).await?,
            None => None,
        };
        let NewMember { user, role } = NewMember::parse(input, user)?;
        let tier = self.ports.repos.teams.get(team).await?.tier;
        let membership = Membership {
            team_id: team,
            user_id: user.id,
            role,
            created_at: self.now(),
        };
        let audit = self.member_event(subject, ctx, AuditAction::Create, team, user.id, Some(&user.email));
        self.ports
            .repos
            .memberships
            .add(&membership, self.limit(tier, LimitKind::Members), &audit)
            .await?;
        Ok(membership)
    }

    /// The team's members with their users (viewer).
    pub async fn list_members(
        &self,
        subject: &Subject,
        team: TeamId,
        page: Page,
    ) -> Result<Paged<(Membership, User)>, CoreError> {
        self.authorize(subject, team, Action::ReadMembers).await?;
        Ok(self.ports.repos.memberships.list(team, page).await?)
    }

    /// One member of the team with their user (viewer). `NotFound` when the user is not a
    /// member.
    pub async fn get_member(
        &self,
        subject: &Subject,
        team: TeamId,
        user: UserId,
    ) -> Result<(Membership, User), CoreError> {
        self.authorize(subject, team, Action::ReadMembers).await?;
        let membership = self
            .ports
            .repos
            .memberships
            .get(team, user)
            .await?
            .ok_or(CoreError::NotFound)?;
        Ok((membership, self.ports.repos.users.get(user).await?))
    }

    /// Change a member's role (admin; granting or taking away `owner` needs owner).
    /// `Conflict(LastOwner)` when the team would be left without an owner.
    pub async fn change_member_role(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        user: UserId,
        input: RoleChangeInput,
    ) -> Result<Membership, CoreError> {
        self.authorize(subject, team, Action::ManageMembers).await?;
        let RoleChange { role } = RoleChange::parse(input)?;
        let current = self
            .ports
            .repos
            .memberships
            .get(team, user)
            .await?
            .ok_or(CoreError::NotFound)?;
        if role == Role::Owner || current.role == Role::Owner {
            self.authorize(subject, team, Action::ManageOwners).await?;
        }
        let audit = self.member_event(subject, ctx, AuditAction::Update, team, user, None);
        Ok(self
            .ports
            .repos
            .memberships
            .update_role(team, user, role, &audit)
            .await?)
    }

    /// Remove a member (admin; removing an owner needs owner). `Conflict(LastOwner)`.
    pub async fn remove_member(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        user: UserId,
    ) -> Result<(), CoreError> {
        self.authorize(subject, team, Action::ManageMembers).await?;
        let current = self
            .ports
            .repos
            .memberships
            .get(team, user)
            .await?
            .ok_or(CoreError::NotFound)?;
        if current.role == Role::Owner {
            self.authorize(subject, team, Action::ManageOwners).await?;
        }
        let audit = self.member_event(subject, ctx, AuditAction::Delete, team, user, None);
        self.ports.repos.memberships.remove(team, user, &audit).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
