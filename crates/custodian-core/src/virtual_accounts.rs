//! A team's virtual accounts (machine identities) and their tokens.

use chrono::Duration;
use custodian_domain::{
    AuditAction, AuditEvent, FieldError, NewVirtualAccount, NewVirtualAccountInput, Outcome, RequestContext,
    ResourceType, Subject, TeamId, TokenOwner, VirtualAccount, VirtualAccountId, error::kind,
};
use custodian_ports::{Page, Paged};

use crate::authz::Action;
use crate::identity::IssuedToken;
use crate::{CoreError, Custodian};

impl Custodian {
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
            .repos
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
        Ok(self.ports.repos.virtual_accounts.list(team, page).await?)
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
        let account = self.ports.repos.virtual_accounts.get(team, id).await?;
        let audit = self.account_event(subject, ctx, AuditAction::Delete, &account);
        self.ports.repos.virtual_accounts.delete(team, id, &audit).await?;
        self.subjects.forget_all();
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
        let account = self.ports.repos.virtual_accounts.get(team, id).await?;
        let owner = TokenOwner::VirtualAccount(account.id);
        let issued = self.issue_token(owner, None, account.expires_at);
        let audit = self.account_event(subject, ctx, AuditAction::RegenerateToken, &account);
        self.ports
            .repos
            .tokens
            .replace_for_owner(owner, self.now() + grace, &issued.record, &audit)
            .await?;
        self.subjects.forget_all();
        Ok((account, issued))
    }
}

#[cfg(test)]
mod tests;
