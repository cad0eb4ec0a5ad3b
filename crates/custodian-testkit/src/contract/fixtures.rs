//! Valid domain values and ready-made records for the contract suites.
//!
//! Times are whole seconds after a fixed instant ([`at`]), so every backend stores them
//! exactly; ids are fresh v7 uuids; names derived from ids never collide between cases.

use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, Description, DisplayName, Email, Membership, Name, Outcome, RequestContext,
    ResourceType, Role, SubjectId, SubjectKind, Team, TeamId, Tier, TokenDigest, TokenId, TokenName, TokenOwner,
    TokenRecord, User, UserId, VirtualAccount, VirtualAccountId,
};
use custodian_ports::Page;
use uuid::Uuid;

use crate::RepoSet;

/// Builds `Vec<Case<RepoSet>>` from `async fn name(repos: RepoSet)` items, each case named
/// after its function.
macro_rules! cases {
    ($($name:ident),+ $(,)?) => {
        vec![$($crate::Case {
            name: stringify!($name),
            run: |repos| -> $crate::BoxFuture<()> { Box::pin($name(repos)) },
        }),+]
    };
}
pub(crate) use cases;

/// A page large enough for every case.
pub const ALL: Page = Page { limit: 200, offset: 0 };

/// The instant `secs` seconds after 2026-01-01T00:00:00Z.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("a valid instant")
}

/// A fresh id of any kind.
pub fn fresh<T: From<Uuid>>() -> T {
    T::from(Uuid::now_v7())
}

pub fn name(value: &str) -> Name {
    Name::parse_at("name", value).expect("a valid name")
}

pub fn description(value: &str) -> Description {
    Description::parse_at("description", value).expect("a valid description")
}

pub fn email(value: &str) -> Email {
    Email::parse_at("email", value).expect("a valid email")
}

/// A user (not stored) with the given email.
pub fn new_user(address: &str) -> User {
    User {
        id: fresh(),
        email: email(address),
        display_name: DisplayName::parse_at("display_name", "Test User").expect("a valid display name"),
        tenant_admin: false,
        created_at: at(0),
        disabled_at: None,
    }
}

/// A team (not stored) named `team_name`, created by `creator`.
pub fn new_team(team_name: &str, creator: SubjectId) -> Team {
    Team {
        id: fresh(),
        name: name(team_name),
        description: Some(description("the platform team")),
        tier: Tier::Free,
        created_at: at(1),
        created_by: creator,
        updated_at: at(1),
    }
}

/// A membership (not stored).
pub fn membership(team: TeamId, user: UserId, role: Role) -> Membership {
    Membership {
        team_id: team,
        user_id: user,
        role,
        created_at: at(2),
    }
}

/// A virtual account (not stored) of `team`.
pub fn new_virtual_account(team: TeamId, account_name: &str, creator: SubjectId) -> VirtualAccount {
    VirtualAccount {
        id: fresh(),
        team_id: team,
        name: name(account_name),
        role: Role::Operator,
        expires_at: Some(at(86_400)),
        created_at: at(3),
        created_by: creator,
    }
}

/// A token record (not stored) of `owner`, created at `at(created)`, with a fresh digest.
/// A user's token is named; a virtual account's is not.
pub fn new_token(owner: TokenOwner, created: i64) -> TokenRecord {
    let mut digest = [0u8; 32];
    digest[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    digest[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    TokenRecord {
        id: fresh::<TokenId>(),
        owner,
        name: match owner {
            TokenOwner::User(_) => Some(TokenName::parse_at("name", "ci-token").expect("a valid token name")),
            TokenOwner::VirtualAccount(_) => None,
        },
        digest: TokenDigest(digest),
        created_at: at(created),
        expires_at: Some(at(created + 86_400)),
        revoked_at: None,
        last_used_at: None,
    }
}

/// An audit event of `team` (or of no team) about a resource, by a user `actor`.
pub fn audit(
    team: Option<TeamId>,
    action: AuditAction,
    resource_type: ResourceType,
    resource_id: Uuid,
    actor: SubjectId,
) -> AuditEvent {
    AuditEvent {
        id: fresh::<AuditEventId>(),
        occurred_at: at(10),
        team_id: team,
        actor_id: Some(actor),
        actor_kind: Some(SubjectKind::User),
        action,
        resource_type,
        resource_id: Some(resource_id),
        resource_name: None,
        outcome: Outcome::Success,
        detail: Some("created by the contract suite".to_owned()),
        context: RequestContext {
            request_id: Some("req-1".to_owned()),
            client_ip: Some("192.0.2.1".to_owned()),
            user_agent: Some("contract-suite".to_owned()),
        },
    }
}

/// Store a fresh user with a unique email.
pub async fn user(repos: &RepoSet) -> User {
    let id: UserId = fresh();
    let user = User {
        id,
        ..new_user(&format!("u{}@example.com", id.as_uuid().simple()))
    };
    let event = audit(None, AuditAction::Create, ResourceType::User, id.as_uuid(), id.into());
    repos.users.create(&user, None, &event).await.expect("user created");
    user
}

/// A stored team and the user that owns it.
#[derive(Debug, Clone)]
pub struct Owned {
    pub team: Team,
    pub owner: User,
}

impl Owned {
    pub fn team_id(&self) -> TeamId {
        self.team.id
    }

    pub fn actor(&self) -> SubjectId {
        self.owner.id.into()
    }
}

/// Store a fresh user and a fresh team (tier `free`, unique name) it owns.
pub async fn user_and_team(repos: &RepoSet) -> Owned {
    let owner = user(repos).await;
    let id: TeamId = fresh();
    let team = Team {
        id,
        ..new_team(&format!("team-{}", id.as_uuid().simple()), owner.id.into())
    };
    let event = audit(
        Some(id),
        AuditAction::Create,
        ResourceType::Team,
        id.as_uuid(),
        owner.id.into(),
    );
    repos
        .teams
        .create(&team, &membership(id, owner.id, Role::Owner), &event)
        .await
        .expect("team created");
    Owned { team, owner }
}

/// Store a fresh virtual account of `owned`'s team named `account_name`, with its token.
pub async fn virtual_account(repos: &RepoSet, owned: &Owned, account_name: &str) -> (VirtualAccount, TokenRecord) {
    let account = new_virtual_account(owned.team_id(), account_name, owned.actor());
    let token = new_token(TokenOwner::VirtualAccount(account.id), 3);
    let event = audit(
        Some(owned.team_id()),
        AuditAction::Create,
        ResourceType::VirtualAccount,
        account.id.as_uuid(),
        owned.actor(),
    );
    repos
        .virtual_accounts
        .create(&account, &token, &event)
        .await
        .expect("virtual account created");
    (account, token)
}

/// The ids of the events recorded for `team`, newest first.
pub async fn audit_ids(repos: &RepoSet, team: TeamId) -> Vec<AuditEventId> {
    repos
        .audit
        .list(team, &custodian_ports::AuditFilter::default(), ALL)
        .await
        .expect("audit list")
        .items
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// A virtual account id that is not stored anywhere.
pub fn missing_virtual_account() -> VirtualAccountId {
    fresh()
}
