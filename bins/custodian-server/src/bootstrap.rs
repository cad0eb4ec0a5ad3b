//! First start: on a database without users, the tenant admin `admin@localhost`, its team
//! `default` and a personal access token.

use std::fmt;

use custodian_core::{CoreError, Custodian, NewTeamInput};
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, DisplayName, Email, Outcome, RequestContext, ResourceType, Subject, TokenId,
    TokenName, TokenOwner, TokenRecord, User, UserId,
};
use custodian_ports::{Clock, ConflictKind, IdGenerator, RepoError, TokenIssuer, UserRepository};
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
    let now = ports.clock.now();
    let user = User {
        id: UserId::from_uuid(ports.ids.new_id()),
        email: Email::parse_at("email", ADMIN_EMAIL)?,
        display_name: DisplayName::parse_at("display_name", "Admin")?,
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
        detail: Some("first start: the tenant admin".into()),
        context: RequestContext::default(),
    };
    match ports.users.create(&user, Some(record), &audit).await {
        Ok(()) => {}
        // Another process starting on the same database created it first.
        Err(RepoError::Conflict(ConflictKind::DuplicateEmail)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let admin = Subject::User {
        id: user.id,
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        tenant_admin: true,
    };
    custodian
        .create_team(
            &admin,
            &RequestContext::default(),
            NewTeamInput {
                name: Some(DEFAULT_TEAM.into()),
                ..NewTeamInput::default()
            },
        )
        .await?;
    Ok(Some(Bootstrap { user, token }))
}
