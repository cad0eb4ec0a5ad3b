//! Making a tenant admin from outside the API: on a deployment's first start, and with
//! `custodian bootstrap` at the console. The operator is not a user, so these events have
//! no actor; the detail says which of the two made the admin.

use std::fmt;

use custodian_domain::{
    AuditAction, AuditEvent, DisplayName, Email, FieldError, Name, Outcome, RequestContext, ResourceType, Role,
    Subject, Team, Tier, TokenName, TokenOwner, User, UserId, ValidationErrors, error::kind,
};
use custodian_ports::ConflictKind;
use secrecy::SecretString;

use crate::{AddMemberInput, CoreError, Custodian, NewTeamInput, TeamPatchInput};

/// The email of the tenant admin a first start creates.
pub const FIRST_ADMIN_EMAIL: &str = "admin@localhost";
/// The name of the team a first start creates.
pub const FIRST_TEAM: &str = "default";

/// A request for a tenant admin that owns a team, as the operator typed it.
#[derive(Debug, Clone, Default)]
pub struct BootstrapInput {
    /// The new admin's email.
    pub email: String,
    /// The team it owns: created, or joined as owner when a team has that name.
    pub team: String,
    /// The team's tier (the configured default for a new team when `None`; an existing
    /// team is moved to it when given).
    pub tier: Option<String>,
}

/// A tenant admin made from outside the API: the user, the team it owns, and its personal
/// access token (named `bootstrap`), shown once. `Debug` never shows the token.
pub struct Bootstrapped {
    pub user: User,
    pub team: Team,
    pub token: SecretString,
}

impl fmt::Debug for Bootstrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bootstrapped")
            .field("user", &self.user)
            .field("team", &self.team)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl Custodian {
    /// On a deployment without users, make the tenant admin `admin@localhost` (display
    /// name `Admin`), owner of the team `default`. `None` when a user exists, including when
    /// another server starting on the same database made the admin first.
    pub async fn bootstrap_first_start(&self) -> Result<Option<Bootstrapped>, CoreError> {
        if self.ports.repos.users.count().await? > 0 {
            return Ok(None);
        }
        let email = Email::parse_at("email", FIRST_ADMIN_EMAIL)?;
        let display_name = DisplayName::parse_at("display_name", "Admin")?;
        let team = Name::parse_at("team", FIRST_TEAM)?;
        match self
            .make_admin(email, display_name, team, None, "first start: the tenant admin")
            .await
        {
            Ok(made) => Ok(Some(made)),
            Err(CoreError::Conflict(ConflictKind::DuplicateEmail)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Make the tenant admin `input.email`, owner of the team `input.team`, on any
    /// deployment. Every field is checked before anything is written (`Validation` at
    /// `email`, `team` or `tier`); `Conflict(DuplicateEmail)` when a user has the email.
    pub async fn bootstrap_admin(&self, input: BootstrapInput) -> Result<Bootstrapped, CoreError> {
        let mut errors = ValidationErrors::new();
        let email = errors.check(Email::parse_at("email", &input.email));
        let team = errors.check(Name::parse_at("team", input.team));
        let tier = match input.tier.as_deref() {
            None => Some(None),
            Some(t) => errors
                .check(
                    t.parse::<Tier>()
                        .map_err(|e| FieldError::new(&["tier"], kind::INVALID_ENUM, e.to_string())),
                )
                .map(Some),
        };
        let (Some(email), Some(team), Some(tier)) = (email, team, tier) else {
            return Err(errors.into());
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let display_name =
            DisplayName::from_email(&email).or_else(|_| DisplayName::parse_at("display_name", "Admin"))?;
        self.make_admin(email, display_name, team, tier, "custodian bootstrap: a tenant admin")
            .await
    }

    /// Store the admin with its token, then give it the team: created with `tier` (the
    /// default tier when `None`), or joined as owner and moved to `tier` when given.
    async fn make_admin(
        &self,
        email: Email,
        display_name: DisplayName,
        team_name: Name,
        tier: Option<Tier>,
        detail: &str,
    ) -> Result<Bootstrapped, CoreError> {
        let existing = self.ports.repos.teams.find_by_name(&team_name).await?;
        let user = User {
            id: UserId::from_uuid(self.ports.ids.new_id()),
            email,
            display_name,
            tenant_admin: true,
            created_at: self.now(),
            disabled_at: None,
        };
        let token_name = TokenName::parse_at("name", "bootstrap")?;
        let issued = self.issue_token(TokenOwner::User(user.id), Some(token_name), None);
        // The operator at the console is not a user: the event has no actor.
        let audit = AuditEvent {
            detail: Some(detail.to_owned()),
            ..self.event_by(
                None,
                &RequestContext::default(),
                None,
                AuditAction::Create,
                (ResourceType::User, Some(user.id.as_uuid()), Some(user.email.as_str())),
                Outcome::Success,
            )
        };
        self.ports
            .repos
            .users
            .create(&user, Some(issued.record), &audit)
            .await?;

        let admin = Subject::User {
            id: user.id,
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            tenant_admin: true,
        };
        let ctx = RequestContext::default();
        let team = match existing {
            None => {
                let input = NewTeamInput {
                    name: Some(team_name.as_str().to_owned()),
                    tier: tier.map(|t| t.as_str().to_owned()),
                    ..NewTeamInput::default()
                };
                self.create_team(&admin, &ctx, input).await?
            }
            Some(team) => {
                let input = AddMemberInput {
                    user_id: Some(user.id.to_string()),
                    role: Some(Role::Owner.as_str().to_owned()),
                    email: None,
                };
                self.add_member(&admin, &ctx, team.id, input).await?;
                match tier {
                    Some(tier) => {
                        let patch = TeamPatchInput {
                            tier: Some(tier.as_str().to_owned()),
                            ..TeamPatchInput::default()
                        };
                        self.update_team(&admin, &ctx, team.id, patch).await?.0
                    }
                    None => team,
                }
            }
        };
        Ok(Bootstrapped {
            user,
            team,
            token: issued.token,
        })
    }
}
