//! Users, teams, memberships, virtual accounts, tokens and the subject of a request.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::enums::{Role, Tier};
use crate::ids::{SubjectId, TeamId, TokenId, UserId, VirtualAccountId};
use crate::text::{Description, DisplayName, Email, Name, TokenName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub tenant_admin: bool,
    pub created_at: DateTime<Utc>,
    /// When a tenant admin disabled the user: every token of theirs is refused from then on.
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: TeamId,
    pub name: Name,
    pub description: Option<Description>,
    pub tier: Tier,
    pub created_at: DateTime<Utc>,
    pub created_by: SubjectId,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub team_id: TeamId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A machine identity inside one team. Its role is never `owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAccount {
    pub id: VirtualAccountId,
    pub team_id: TeamId,
    pub name: Name,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: SubjectId,
}

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenOwner {
    User(UserId),
    VirtualAccount(VirtualAccountId),
}

impl TokenOwner {
    pub fn subject_id(self) -> SubjectId {
        match self {
            TokenOwner::User(id) => id.into(),
            TokenOwner::VirtualAccount(id) => id.into(),
        }
    }
}

/// HMAC-SHA256 of a bearer token under the server's pepper; the only form a token is kept in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A stored token: everything but the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub owner: TokenOwner,
    /// A personal access token's name; `None` for virtual-account tokens.
    pub name: Option<TokenName>,
    pub digest: TokenDigest,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    /// Whether the token authenticates at `now` (not revoked, not expired).
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|r| r > now) && self.expires_at.is_none_or(|e| e > now)
    }
}

/// The authenticated caller of a request, as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User {
        id: UserId,
        email: Email,
        display_name: DisplayName,
        tenant_admin: bool,
    },
    VirtualAccount {
        id: VirtualAccountId,
        team_id: TeamId,
        name: Name,
        role: Role,
    },
}

impl Subject {
    pub fn id(&self) -> SubjectId {
        match self {
            Subject::User { id, .. } => (*id).into(),
            Subject::VirtualAccount { id, .. } => (*id).into(),
        }
    }

    pub fn is_tenant_admin(&self) -> bool {
        matches!(self, Subject::User { tenant_admin: true, .. })
    }

    pub fn kind(&self) -> SubjectKind {
        match self {
            Subject::User { .. } => SubjectKind::User,
            Subject::VirtualAccount { .. } => SubjectKind::VirtualAccount,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    User,
    VirtualAccount,
}

impl SubjectKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::VirtualAccount => "virtual_account",
        }
    }
}
