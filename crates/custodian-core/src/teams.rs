//! Teams, their members and their virtual accounts.

use chrono::Duration;
use custodian_domain::{
    AddMemberInput, AuditAction, AuditEvent, Email, FieldError, LimitKind, MemberRef, Membership, NewMember, NewTeam,
    NewTeamInput, NewVirtualAccount, NewVirtualAccountInput, Outcome, RequestContext, ResourceType, Role, RoleChange,
    RoleChangeInput, Subject, Team, TeamId, TeamPatch, TeamPatchInput, TokenOwner, User, UserId, VirtualAccount,
    VirtualAccountId, error::kind,
};
use custodian_ports::{Page, Paged, RepoError};

use crate::authz::{self, Action};
use crate::identity::IssuedToken;
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
        self.ports.teams.create(&team, &owner, &audit).await?;
        Ok(team)
    }

    /// A team and the caller's effective role in it (viewer).
    pub async fn get_team(&self, subject: &Subject, team: TeamId) -> Result<(Team, Role), CoreError> {
        let role = self.authorize(subject, team, Action::ReadTeam).await?;
        Ok((self.ports.teams.get(team).await?, role))
    }

    /// The caller's teams with their role; every team (as owner) for a tenant admin; its
    /// own team for a virtual account.
    pub async fn list_teams(&self, subject: &Subject, page: Page) -> Result<Paged<(Team, Role)>, CoreError> {
        match subject {
            Subject::User { tenant_admin: true, .. } => {
                let all = self.ports.teams.list_all(page).await?;
                Ok(Paged {
                    items: all.items.into_iter().map(|t| (t, Role::Owner)).collect(),
                    total: all.total,
                })
            }
            Subject::User { id, .. } => Ok(self.ports.teams.list_for_user(*id, page).await?),
            Subject::VirtualAccount { team_id, role, .. } => {
                let team = self.ports.teams.get(*team_id).await?;
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
        let mut current = self.ports.teams.get(team).await?;
        if let Some(name) = patch.name {
            current.name = name;
        }
        if let Some(description) = patch.description {
            current.description = description;
        }
        if let Some(tier) = patch.tier {
            current.tier = tier;
        }
        current.updated_at = self.now();
        let audit = self.team_event(subject, ctx, AuditAction::Update, &current);
        self.ports.teams.update(&current, &audit).await?;
        Ok((current, role))
    }

    /// Delete an empty team (owner). `Conflict(TeamNotEmpty)` while it holds secrets,
    /// locations or vault connections.
    pub async fn delete_team(&self, subject: &Subject, ctx: &RequestContext, team: TeamId) -> Result<(), CoreError> {
        self.authorize(subject, team, Action::DeleteTeam).await?;
        let current = self.ports.teams.get(team).await?;
        let audit = self.team_event(subject, ctx, AuditAction::Delete, &current);
        self.ports.teams.delete(team, &audit).await?;
        Ok(())
    }

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
            MemberRef::Email(email) => Ok(self.ports.users.find_by_email(email).await?),
            MemberRef::Id(id) => match self.ports.users.get(*id).await {
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
        let tier = self.ports.teams.get(team).await?.tier;
        let membership = Membership {
            team_id: team,
            user_id: user.id,
            role,
            created_at: self.now(),
        };
        let audit = self.member_event(subject, ctx, AuditAction::Create, team, user.id, Some(&user.email));
        self.ports
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
        Ok(self.ports.memberships.list(team, page).await?)
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
            .memberships
            .get(team, user)
            .await?
            .ok_or(CoreError::NotFound)?;
        Ok((membership, self.ports.users.get(user).await?))
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
            .memberships
            .get(team, user)
            .await?
            .ok_or(CoreError::NotFound)?;
        if role == Role::Owner || current.role == Role::Owner {
            self.authorize(subject, team, Action::ManageOwners).await?;
        }
        let audit = self.member_event(subject, ctx, AuditAction::Update, team, user, None);
        Ok(self.ports.memberships.update_role(team, user, role, &audit).await?)
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
            .memberships
            .get(team, user)
            .await?
            .ok_or(CoreError::NotFound)?;
        if current.role == Role::Owner {
            self.authorize(subject, team, Action::ManageOwners).await?;
        }
        let audit = self.member_event(subject, ctx, AuditAction::Delete, team, user, None);
        self.ports.memberships.remove(team, user, &audit).await?;
        Ok(())
    }

    fn account_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        action: AuditAction,
        account: &VirtualAccount,
    ) -> AuditEvent {
        self.audit_event(
            subject,
            ctx,
            Some(account.team_id),
            action,
            (
                ResourceType::VirtualAccount,
                Some(account.id.as_uuid()),
                Some(account.name.as_str()),
            ),
            Outcome::Success,
        )
    }

    /// Create a virtual account with its first token (admin). Its role is never `owner`;
    /// `expires_at`, when given, must be in the future. `Conflict(DuplicateName)`.
    pub async fn create_virtual_account(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        input: NewVirtualAccountInput,
    ) -> Result<(VirtualAccount, IssuedToken), CoreError> {
        self.authorize(subject, team, Action::ManageVirtualAccounts).await?;
        let now = self.now();
        let new = NewVirtualAccount::parse(input, now)?;
        let account = VirtualAccount {
            id: VirtualAccountId::from_uuid(self.ports.ids.new_id()),
            team_id: team,
            name: new.name,
            role: new.role,
            expires_at: new.expires_at,
            created_at: now,
            created_by: subject.id(),
        };
        let issued = self.issue_token(TokenOwner::VirtualAccount(account.id), None, account.expires_at);
        let audit = self.account_event(subject, ctx, AuditAction::Create, &account);
        self.ports
            .virtual_accounts
            .create(&account, &issued.record, &audit)
            .await?;
        Ok((account, issued))
    }

    /// The team's virtual accounts (viewer).
    pub async fn list_virtual_accounts(
        &self,
        subject: &Subject,
        team: TeamId,
        page: Page,
    ) -> Result<Paged<VirtualAccount>, CoreError> {
        self.authorize(subject, team, Action::ReadMembers).await?;
        Ok(self.ports.virtual_accounts.list(team, page).await?)
    }

    /// Delete a virtual account and its tokens (admin).
    pub async fn delete_virtual_account(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: VirtualAccountId,
    ) -> Result<(), CoreError> {
        self.authorize(subject, team, Action::ManageVirtualAccounts).await?;
        let account = self.ports.virtual_accounts.get(team, id).await?;
        let audit = self.account_event(subject, ctx, AuditAction::Delete, &account);
        self.ports.virtual_accounts.delete(team, id, &audit).await?;
        Ok(())
    }

    /// Replace a virtual account's tokens with a new one (admin). The old tokens keep
    /// working for `grace_period_seconds` (default: the configured grace period, at most the
    /// configured maximum), then stop.
    pub async fn regenerate_virtual_account_token(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: VirtualAccountId,
        grace_period_seconds: Option<u32>,
    ) -> Result<(VirtualAccount, IssuedToken), CoreError> {
        self.authorize(subject, team, Action::ManageVirtualAccounts).await?;
        let grace = match grace_period_seconds {
            None => self.settings.token_grace_period,
            Some(s) => Duration::seconds(i64::from(s)),
        };
        if grace > self.settings.max_token_grace_period {
            return Err(FieldError::new(
                &["grace_period_seconds"],
                kind::OUT_OF_RANGE,
                format!(
                    "must be at most {} seconds",
                    self.settings.max_token_grace_period.num_seconds()
                ),
            )
            .into());
        }
        let account = self.ports.virtual_accounts.get(team, id).await?;
        let owner = TokenOwner::VirtualAccount(account.id);
        let issued = self.issue_token(owner, None, account.expires_at);
        let audit = self.account_event(subject, ctx, AuditAction::RegenerateToken, &account);
        self.ports
            .tokens
            .replace_for_owner(owner, self.now() + grace, &issued.record, &audit)
            .await?;
        Ok((account, issued))
    }
}

#[cfg(test)]
mod tests {
    use custodian_domain::{Name, Tier};
    use custodian_ports::ConflictKind;
    use secrecy::ExposeSecret;

    use super::*;
    use crate::Requirement;
    use crate::test_support::*;

    fn ctx() -> RequestContext {
        RequestContext {
            request_id: Some("req-1".into()),
            client_ip: Some("127.0.0.1".into()),
            user_agent: None,
        }
    }

    #[tokio::test]
    async fn the_creator_of_a_team_becomes_its_owner_at_the_default_tier() {
        let mut mocks = Mocks::new();
        mocks.settings.default_tier = Tier::Pro;
        mocks
            .teams
            .expect_create()
            .withf(|team, owner, audit| {
                team.tier == Tier::Pro
                    && team.name.as_str() == "analytics"
                    && owner.team_id == team.id
                    && owner.user_id == alice_id()
                    && owner.role == Role::Owner
                    && audit.team_id == Some(team.id)
                    && audit.context.request_id.as_deref() == Some("req-1")
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let team = mocks
            .build()
            .create_team(
                &alice(),
                &ctx(),
                NewTeamInput {
                    name: Some("analytics".into()),
                    ..NewTeamInput::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(team.tier, Tier::Pro);
    }

    #[tokio::test]
    async fn only_a_tenant_admin_chooses_a_tier() {
        let input = NewTeamInput {
            name: Some("analytics".into()),
            tier: Some("free".into()),
            ..NewTeamInput::default()
        };
        assert_eq!(
            Mocks::new().build().create_team(&alice(), &ctx(), input.clone()).await,
            Err(CoreError::Forbidden {
                needed: Requirement::TenantAdmin
            })
        );
        let mut mocks = Mocks::new();
        mocks
            .teams
            .expect_create()
            .withf(|team, _, _| team.tier == Tier::Free)
            .times(1)
            .returning(|_, _, _| Ok(()));
        assert_eq!(
            mocks.build().create_team(&root(), &ctx(), input).await.unwrap().tier,
            Tier::Free
        );
    }

    #[tokio::test]
    async fn a_virtual_account_cannot_create_a_team() {
        let result = Mocks::new()
            .build()
            .create_team(
                &account(team_id(), Role::Admin),
                &ctx(),
                NewTeamInput {
                    name: Some("x".into()),
                    ..NewTeamInput::default()
                },
            )
            .await;
        assert_eq!(
            result,
            Err(CoreError::Forbidden {
                needed: Requirement::User
            })
        );
    }

    #[tokio::test]
    async fn a_team_name_is_checked_and_a_taken_one_conflicts() {
        let result = Mocks::new()
            .build()
            .create_team(&alice(), &ctx(), NewTeamInput::default())
            .await;
        assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["name"])));

        let mut mocks = Mocks::new();
        mocks
            .teams
            .expect_create()
            .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::DuplicateName)));
        let result = mocks
            .build()
            .create_team(
                &alice(),
                &ctx(),
                NewTeamInput {
                    name: Some("data".into()),
                    ..NewTeamInput::default()
                },
            )
            .await;
        assert_eq!(result, Err(CoreError::Conflict(ConflictKind::DuplicateName)));
    }

    #[tokio::test]
    async fn a_tenant_admin_finds_no_team_that_does_not_exist() {
        let mut mocks = Mocks::new();
        mocks.teams.expect_get().returning(|_| Err(RepoError::NotFound));
        assert_eq!(
            mocks
                .build()
                .list_members(&root(), other_team_id(), Page::default())
                .await,
            Err(CoreError::NotFound)
        );
    }

    #[tokio::test]
    async fn a_non_member_cannot_see_a_team() {
        let mut mocks = Mocks::new();
        mocks.stranger(alice_id());
        assert_eq!(
            mocks.build().get_team(&alice(), team_id()).await,
            Err(CoreError::NotFound)
        );
    }

    #[tokio::test]
    async fn setting_a_tier_needs_a_tenant_admin() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Owner);
        let tier = TeamPatchInput {
            tier: Some("enterprise".into()),
            ..TeamPatchInput::default()
        };
        assert_eq!(
            mocks
                .build()
                .update_team(&alice(), &ctx(), team_id(), tier.clone())
                .await,
            Err(CoreError::Forbidden {
                needed: Requirement::TenantAdmin
            })
        );
        let mut mocks = Mocks::new();
        mocks.team(team(Tier::Free));
        mocks
            .teams
            .expect_update()
            .withf(|team, audit| team.tier == Tier::Enterprise && audit.action == AuditAction::Update)
            .times(1)
            .returning(|_, _| Ok(()));
        let (updated, role) = mocks
            .build()
            .update_team(&root(), &ctx(), team_id(), tier)
            .await
            .unwrap();
        assert_eq!(updated.tier, Tier::Enterprise);
        assert_eq!(role, Role::Owner);
    }

    #[tokio::test]
    async fn a_rename_with_a_tier_change_is_one_write_or_none() {
        let patch = TeamPatchInput {
            name: Some("renamed".into()),
            tier: Some("pro".into()),
            ..TeamPatchInput::default()
        };
        // The team's owner may rename it but not choose its tier: nothing is written (the
        // mocks expect no update).
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Owner).team(team(Tier::Free));
        assert_eq!(
            mocks
                .build()
                .update_team(&alice(), &ctx(), team_id(), patch.clone())
                .await,
            Err(CoreError::Forbidden {
                needed: Requirement::TenantAdmin
            })
        );
        // A stranger learns nothing about the team.
        let mut mocks = Mocks::new();
        mocks.stranger(alice_id());
        assert_eq!(
            mocks
                .build()
                .update_team(&alice(), &ctx(), team_id(), patch.clone())
                .await,
            Err(CoreError::NotFound)
        );
        // A bad tier and a bad name are reported together, before anything is written.
        let bad = TeamPatchInput {
            name: Some(String::new()),
            tier: Some("gold".into()),
            ..TeamPatchInput::default()
        };
        let mut mocks = Mocks::new();
        mocks.team(team(Tier::Free));
        let result = mocks.build().update_team(&root(), &ctx(), team_id(), bad).await;
        assert!(
            matches!(&result, Err(CoreError::Validation(e)) if e.has(&["name"]) && e.has(&["tier"])),
            "{result:?}"
        );
        // A tenant admin's rename and tier change: one write, one audit event.
        let mut mocks = Mocks::new();
        mocks.team(team(Tier::Free));
        mocks
            .teams
            .expect_update()
            .withf(|team, audit| {
                team.name.as_str() == "renamed"
                    && team.tier == Tier::Pro
                    && audit.action == AuditAction::Update
                    && audit.resource_name.as_deref() == Some("renamed")
            })
            .times(1)
            .returning(|_, _| Ok(()));
        let (updated, _) = mocks
            .build()
            .update_team(&root(), &ctx(), team_id(), patch)
            .await
            .unwrap();
        assert_eq!((updated.name.as_str(), updated.tier), ("renamed", Tier::Pro));
    }

    #[tokio::test]
    async fn only_an_owner_deletes_a_team() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Admin);
        assert_eq!(
            mocks.build().delete_team(&alice(), &ctx(), team_id()).await,
            Err(CoreError::Forbidden {
                needed: Requirement::Role(Role::Owner)
            })
        );
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Owner).team(team(Tier::Free));
        mocks
            .teams
            .expect_delete()
            .returning(|_, _| Err(RepoError::Conflict(ConflictKind::TeamNotEmpty)));
        assert_eq!(
            mocks.build().delete_team(&alice(), &ctx(), team_id()).await,
            Err(CoreError::Conflict(ConflictKind::TeamNotEmpty))
        );
    }

    #[tokio::test]
    async fn an_admin_renames_a_team_and_a_viewer_cannot() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Viewer);
        let patch = TeamPatchInput {
            name: Some("renamed".into()),
            description: Some(None),
            ..TeamPatchInput::default()
        };
        assert_eq!(
            mocks
                .build()
                .update_team(&alice(), &ctx(), team_id(), patch.clone())
                .await,
            Err(CoreError::Forbidden {
                needed: Requirement::Role(Role::Admin)
            })
        );
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Admin).team(team(Tier::Free));
        mocks
            .teams
            .expect_update()
            .withf(|team, _| team.name.as_str() == "renamed" && team.description.is_none())
            .times(1)
            .returning(|_, _| Ok(()));
        mocks
            .build()
            .update_team(&alice(), &ctx(), team_id(), patch)
            .await
            .unwrap();
    }

    fn role(role: &str) -> RoleChangeInput {
        RoleChangeInput {
            role: Some(role.into()),
        }
    }

    fn add(email: &str, role: &str) -> AddMemberInput {
        AddMemberInput {
            email: Some(email.into()),
            user_id: None,
            role: Some(role.into()),
        }
    }

    #[tokio::test]
    async fn adding_a_member_passes_the_tiers_member_limit() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Admin).team(team(Tier::Free));
        mocks
            .users
            .expect_find_by_email()
            .returning(|_| Ok(Some(user_record(bob_id(), "bob@example.com"))));
        mocks
            .memberships
            .expect_add()
            .withf(|m, limit, audit| {
                m.user_id == bob_id()
                    && m.role == Role::Operator
                    && *limit == Some(1)
                    && audit.resource_type == ResourceType::Member
            })
            .times(1)
            .returning(|_, _, _| {
                Err(RepoError::LimitExceeded {
                    kind: LimitKind::Members,
                    limit: 1,
                })
            });
        assert_eq!(
            mocks
                .build()
                .add_member(&alice(), &ctx(), team_id(), add("bob@example.com", "operator"))
                .await,
            Err(CoreError::LimitExceeded {
                kind: LimitKind::Members,
                limit: 1
            })
        );
    }

    #[tokio::test]
    async fn an_enterprise_team_has_no_member_limit() {
        let mut mocks = Mocks::new();
        mocks
            .member(team_id(), alice_id(), Role::Admin)
            .team(team(Tier::Enterprise));
        mocks
            .users
            .expect_get()
            .returning(|id| Ok(user_record(id, "bob@example.com")));
        mocks
            .memberships
            .expect_add()
            .withf(|_, limit, _| limit.is_none())
            .times(1)
            .returning(|_, _, _| Ok(()));
        let input = AddMemberInput {
            email: None,
            user_id: Some(bob_id().to_string()),
            role: Some("viewer".into()),
        };
        let membership = mocks
            .build()
            .add_member(&alice(), &ctx(), team_id(), input)
            .await
            .unwrap();
        assert_eq!(membership.user_id, bob_id());
    }

    #[tokio::test]
    async fn granting_owner_needs_an_owner() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Admin);
        assert_eq!(
            mocks
                .build()
                .add_member(&alice(), &ctx(), team_id(), add("bob@example.com", "owner"))
                .await,
            Err(CoreError::Forbidden {
                needed: Requirement::Role(Role::Owner)
            })
        );
    }

    #[tokio::test]
    async fn an_unknown_user_is_a_validation_error_on_the_field_that_named_them() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Owner);
        mocks.users.expect_find_by_email().returning(|_| Ok(None));
        let result = mocks
            .build()
            .add_member(&alice(), &ctx(), team_id(), add("ghost@example.com", "viewer"))
            .await;
        assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["email"])));
    }

    #[tokio::test]
    async fn an_operator_cannot_manage_members() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Operator);
        assert_eq!(
            mocks
                .build()
                .add_member(&alice(), &ctx(), team_id(), add("bob@example.com", "viewer"))
                .await,
            Err(CoreError::Forbidden {
                needed: Requirement::Role(Role::Admin)
            })
        );
    }

    #[tokio::test]
    async fn demoting_or_removing_an_owner_needs_an_owner() {
        let mut mocks = Mocks::new();
        mocks
            .member(team_id(), alice_id(), Role::Admin)
            .member(team_id(), bob_id(), Role::Owner);
        let custodian = mocks.build();
        let needed = Err(CoreError::Forbidden {
            needed: Requirement::Role(Role::Owner),
        });
        assert_eq!(
            custodian
                .change_member_role(&alice(), &ctx(), team_id(), bob_id(), role("viewer"))
                .await
                .map(|_| ()),
            needed
        );
        assert_eq!(
            custodian.remove_member(&alice(), &ctx(), team_id(), bob_id()).await,
            needed
        );
    }

    #[tokio::test]
    async fn the_last_owner_conflict_passes_through() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Owner);
        mocks
            .memberships
            .expect_update_role()
            .returning(|_, _, _, _| Err(RepoError::Conflict(ConflictKind::LastOwner)));
        mocks
            .memberships
            .expect_remove()
            .returning(|_, _, _| Err(RepoError::Conflict(ConflictKind::LastOwner)));
        let custodian = mocks.build();
        assert_eq!(
            custodian
                .change_member_role(&alice(), &ctx(), team_id(), alice_id(), role("admin"))
                .await,
            Err(CoreError::Conflict(ConflictKind::LastOwner))
        );
        assert_eq!(
            custodian.remove_member(&alice(), &ctx(), team_id(), alice_id()).await,
            Err(CoreError::Conflict(ConflictKind::LastOwner))
        );
    }

    #[tokio::test]
    async fn a_virtual_account_is_never_owner_and_gets_its_first_token() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Admin);
        mocks
            .virtual_accounts
            .expect_create()
            .withf(|account, token, audit| {
                account.role == Role::Operator
                    && token.owner == TokenOwner::VirtualAccount(account.id)
                    && token.expires_at == account.expires_at
                    && audit.resource_type == ResourceType::VirtualAccount
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let custodian = mocks.build();
        let result = custodian
            .create_virtual_account(
                &alice(),
                &ctx(),
                team_id(),
                NewVirtualAccountInput {
                    name: Some("worker".into()),
                    role: Some("owner".into()),
                    expires_at: None,
                },
            )
            .await;
        assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["role"])));
        let (account, issued) = custodian
            .create_virtual_account(
                &alice(),
                &ctx(),
                team_id(),
                NewVirtualAccountInput {
                    name: Some("worker".into()),
                    role: Some("operator".into()),
                    expires_at: Some(now() + Duration::days(90)),
                },
            )
            .await
            .unwrap();
        assert_eq!(issued.record.owner, TokenOwner::VirtualAccount(account.id));
        assert!(issued.token.expose_secret().starts_with("cus_"));
    }

    fn stored_account() -> VirtualAccount {
        VirtualAccount {
            id: account_id(),
            team_id: team_id(),
            name: Name::parse_at("name", "worker").unwrap(),
            role: Role::Operator,
            expires_at: None,
            created_at: now(),
            created_by: alice_id().into(),
        }
    }

    #[tokio::test]
    async fn regenerating_a_token_keeps_the_old_one_for_the_grace_period() {
        for (asked, default, expected) in [(Some(600), 0, 600), (None, 60, 60), (Some(0), 60, 0)] {
            let mut mocks = Mocks::new();
            mocks.settings.token_grace_period = Duration::seconds(default);
            mocks.member(team_id(), alice_id(), Role::Admin);
            mocks
                .virtual_accounts
                .expect_get()
                .returning(|_, _| Ok(stored_account()));
            mocks
                .tokens
                .expect_replace_for_owner()
                .withf(move |owner, revoke_at, replacement, audit| {
                    *owner == TokenOwner::VirtualAccount(account_id())
                        && *revoke_at == now() + Duration::seconds(expected)
                        && replacement.owner == *owner
                        && audit.action == AuditAction::RegenerateToken
                })
                .times(1)
                .returning(|_, _, _, _| Ok(()));
            let (_, issued) = mocks
                .build()
                .regenerate_virtual_account_token(&alice(), &ctx(), team_id(), account_id(), asked)
                .await
                .unwrap();
            assert_eq!(issued.record.digest, digest_of(issued.token.expose_secret()));
        }
    }

    #[tokio::test]
    async fn a_grace_period_over_the_maximum_is_refused() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Admin);
        let result = mocks
            .build()
            .regenerate_virtual_account_token(&alice(), &ctx(), team_id(), account_id(), Some(8 * 24 * 3600))
            .await;
        assert!(matches!(result, Err(CoreError::Validation(e)) if e.has(&["grace_period_seconds"])));
    }

    #[tokio::test]
    async fn a_viewer_reads_one_member_with_their_user() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Viewer);
        mocks.member(team_id(), bob_id(), Role::Admin);
        mocks
            .users
            .expect_get()
            .withf(|id| *id == bob_id())
            .returning(|id| Ok(user_record(id, "bob@example.com")));
        let (membership, user) = mocks.build().get_member(&alice(), team_id(), bob_id()).await.unwrap();
        assert_eq!(membership.role, Role::Admin);
        assert_eq!(user.email.as_str(), "bob@example.com");
    }

    #[tokio::test]
    async fn a_member_is_not_found_outside_the_team_or_for_a_stranger() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Viewer);
        mocks.stranger(bob_id());
        let custodian = mocks.build();
        let not_a_member = custodian.get_member(&alice(), team_id(), bob_id()).await;
        assert_eq!(not_a_member, Err(CoreError::NotFound));
        let other_team = custodian
            .get_member(&account(other_team_id(), Role::Admin), team_id(), alice_id())
            .await;
        assert_eq!(other_team, Err(CoreError::NotFound));
    }

    #[tokio::test]
    async fn a_virtual_account_of_another_team_is_not_found() {
        let result = Mocks::new()
            .build()
            .delete_virtual_account(&account(other_team_id(), Role::Admin), &ctx(), team_id(), account_id())
            .await;
        assert_eq!(result, Err(CoreError::NotFound));
    }
}
