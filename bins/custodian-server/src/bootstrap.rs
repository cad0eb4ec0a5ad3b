//! First start: on a database without users, the tenant admin `admin@localhost`, its team
//! `default` and a personal access token.

use std::fmt;

use custodian_core::{AddMemberInput, CoreError, Custodian, NewTeamInput, TeamPatchInput};
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, DisplayName, Email, Name, Outcome, RequestContext, ResourceType, Role,
    Subject, Team, Tier, TokenId, TokenName, TokenOwner, TokenRecord, User, UserId,
};
use custodian_ports::{Clock, ConflictKind, IdGenerator, Page, RepoError, TeamRepository, TokenIssuer, UserRepository};
use secrecy::{ExposeSecret, SecretString};

/// The email of the tenant admin created on first start.
pub const ADMIN_EMAIL: &str = "admin@localhost";
/// The name of the team created on first start.
pub const DEFAULT_TEAM: &str = "default";

/// What the first start created. `Debug` never shows the token.
pub struct Bootstrap {
    /// The tenant admin.
    pub user: User,
    /// Its personal access token, to be shown once.
    pub token: SecretString,
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bootstrap")
            .field("user", &self.user)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// The ports bootstrap writes through.
pub(crate) struct BootstrapPorts<'a> {
    pub(crate) users: &'a dyn UserRepository,
    pub(crate) teams: &'a dyn TeamRepository,
    pub(crate) issuer: &'a dyn TokenIssuer,
    pub(crate) ids: &'a dyn IdGenerator,
    pub(crate) clock: &'a dyn Clock,
}

/// Create the tenant admin, its token and the team `default` when there is no user yet;
/// `None` when the database already has users (or another process bootstrapped it first).
pub(crate) async fn bootstrap_if_empty(
    ports: BootstrapPorts<'_>,
    custodian: &Custodian,
) -> Result<Option<Bootstrap>, CoreError> {
    if ports.users.count().await? > 0 {
        return Ok(None);
    }
    let email = Email::parse_at("email", ADMIN_EMAIL)?;
    let display_name = DisplayName::parse_at("display_name", "Admin")?;
    let (user, token) = match create_admin(&ports, email, display_name, "first start: the tenant admin").await {
        Ok(created) => created,
        // Another process starting on the same database created it first.
        Err(CoreError::Conflict(ConflictKind::DuplicateEmail)) => return Ok(None),
        Err(e) => return Err(e),
    };
    custodian
        .create_team(
            &admin_subject(&user),
            &RequestContext::default(),
            NewTeamInput {
                name: Some(DEFAULT_TEAM.into()),
                ..NewTeamInput::default()
            },
        )
        .await?;
    Ok(Some(Bootstrap { user, token }))
}

/// What `custodian bootstrap` made: a tenant admin, the team it owns, and its token.
pub struct BootstrapOutcome {
    /// The new tenant admin.
    pub user: User,
    /// The team it owns (created, or joined when the name was taken).
    pub team: Team,
    /// Its personal access token, to be shown once.
    pub token: SecretString,
}

impl fmt::Debug for BootstrapOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapOutcome")
            .field("user", &self.user)
            .field("team", &self.team)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// Why `custodian bootstrap` made nothing.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A user already has this email.
    #[error("a user with the email {0} already exists")]
    DuplicateEmail(String),
    /// The email, team name or tier is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The core or the storage failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Create a tenant admin `email` with a personal access token, on any database, and make
/// it the owner of the team `team`: created with `tier` (the configured default when
/// `None`), or, when a team already has that name, joined as owner (and set to `tier`
/// when given). The email, name and tier are checked before anything is written.
pub(crate) async fn bootstrap_admin(
    ports: BootstrapPorts<'_>,
    custodian: &Custodian,
    email: &str,
    team: &str,
    tier: Option<&str>,
) -> Result<BootstrapOutcome, BootstrapError> {
    let email = Email::parse_at("email", email).map_err(|e| BootstrapError::Invalid(format!("--email: {e}")))?;
    let team_name = Name::parse_at("name", team).map_err(|e| BootstrapError::Invalid(format!("--team: {e}")))?;
    if let Some(tier) = tier {
        tier.parse::<Tier>()
            .map_err(|e| BootstrapError::Invalid(format!("--tier: {e}")))?;
    }
    if ports
        .users
        .find_by_email(&email)
        .await
        .map_err(CoreError::from)?
        .is_some()
    {
        return Err(BootstrapError::DuplicateEmail(email.as_str().to_owned()));
    }
    let existing = find_team(ports.teams, team_name.as_str()).await?;
    let local = email.as_str().split('@').next().unwrap_or_default().to_owned();
    let display_name = DisplayName::parse_at("display_name", local)
        .or_else(|_| DisplayName::parse_at("display_name", "Admin"))
        .map_err(CoreError::from)?;
    let shown = email.as_str().to_owned();
    let (user, token) = match create_admin(&ports, email, display_name, "custodian bootstrap: a tenant admin").await {
        Ok(created) => created,
        Err(CoreError::Conflict(ConflictKind::DuplicateEmail)) => return Err(BootstrapError::DuplicateEmail(shown)),
        Err(e) => return Err(e.into()),
    };
    let admin = admin_subject(&user);
    let ctx = RequestContext::default();
    let team = match existing {
        None => {
            custodian
                .create_team(
                    &admin,
                    &ctx,
                    NewTeamInput {
                        name: Some(team_name.as_str().to_owned()),
                        tier: tier.map(str::to_owned),
                        ..NewTeamInput::default()
                    },
                )
                .await?
        }
        Some(team) => {
            custodian
                .add_member(
                    &admin,
                    &ctx,
                    team.id,
                    AddMemberInput {
                        user_id: Some(user.id.to_string()),
                        role: Some(Role::Owner.as_str().to_owned()),
                        email: None,
                    },
                )
                .await?;
            match tier {
                Some(tier) => {
                    custodian
                        .update_team(
                            &admin,
                            &ctx,
                            team.id,
                            TeamPatchInput {
                                tier: Some(tier.to_owned()),
                                ..TeamPatchInput::default()
                            },
                        )
                        .await?
                        .0
                }
                None => team,
            }
        }
    };
    Ok(BootstrapOutcome { user, team, token })
}

/// The team named `name`, if any.
async fn find_team(teams: &dyn TeamRepository, name: &str) -> Result<Option<Team>, CoreError> {
    let mut offset = 0;
    loop {
        let page = teams.list_all(Page { limit: 100, offset }).await?;
        if let Some(team) = page.items.iter().find(|t| t.name.as_str() == name) {
            return Ok(Some(team.clone()));
        }
        if page.items.is_empty() {
            return Ok(None);
        }
        offset += page.items.len() as u64;
    }
}

fn admin_subject(user: &User) -> Subject {
    Subject::User {
        id: user.id,
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        tenant_admin: true,
    }
}

/// Store a tenant admin with a personal access token named `bootstrap`, and the audit
/// event of its creation (no actor: the operator at the console). `Conflict(DuplicateEmail)`
/// when the email is taken.
async fn create_admin(
    ports: &BootstrapPorts<'_>,
    email: Email,
    display_name: DisplayName,
    detail: &str,
) -> Result<(User, SecretString), CoreError> {
    let now = ports.clock.now();
    let user = User {
        id: UserId::from_uuid(ports.ids.new_id()),
        email,
        display_name,
        tenant_admin: true,
        created_at: now,
    };
    let token = ports.issuer.generate();
    let record = TokenRecord {
        id: TokenId::from_uuid(ports.ids.new_id()),
        owner: TokenOwner::User(user.id),
        name: Some(TokenName::parse_at("name", "bootstrap")?),
        digest: ports.issuer.digest(token.expose_secret()),
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    };
    let audit = AuditEvent {
        id: AuditEventId::from_uuid(ports.ids.new_id()),
        occurred_at: now,
        team_id: None,
        actor_id: None,
        actor_kind: None,
        action: AuditAction::Create,
        resource_type: ResourceType::User,
        resource_id: Some(user.id.as_uuid()),
        resource_name: Some(user.email.as_str().to_owned()),
        outcome: Outcome::Success,
        detail: Some(detail.into()),
        context: RequestContext::default(),
    };
    match ports.users.create(&user, Some(record), &audit).await {
        Ok(()) => Ok((user, token)),
        Err(RepoError::Conflict(ConflictKind::DuplicateEmail)) => {
            Err(CoreError::Conflict(ConflictKind::DuplicateEmail))
        }
        Err(e) => Err(e.into()),
    }
}
