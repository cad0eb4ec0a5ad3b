//! Requests about a team, its members and its virtual accounts: as they arrive (`*Input`,
//! plain strings) and once checked. Every failing field is reported at once.

use chrono::{DateTime, Utc};

use crate::enums::{Role, Tier};
use crate::error::{FieldError, ValidationErrors, kind};
use crate::identity::User;
use crate::ids::UserId;
use crate::secret::parse_enum;
use crate::text::{Description, DisplayName, Email, Name};

fn required_name(errors: &mut ValidationErrors, value: Option<String>) -> Option<Name> {
    match value {
        Some(n) => errors.check(Name::parse_at("name", n)),
        None => {
            errors.push(FieldError::new(&["name"], kind::MISSING, "is required"));
            None
        }
    }
}

/// A request to create a team, as it arrives.
#[derive(Debug, Clone, Default)]
pub struct NewTeamInput {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Only a tenant admin may choose; otherwise the configured default tier applies.
    pub tier: Option<String>,
}

/// A checked request to create a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTeam {
    pub name: Name,
    pub description: Option<Description>,
    /// `None`: the deployment's default tier.
    pub tier: Option<Tier>,
}

impl NewTeam {
    /// Check a create request: name 1–255 characters (required), description at most 2000,
    /// tier one of `free`, `pro`, `enterprise`.
    pub fn parse(input: NewTeamInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = required_name(&mut errors, input.name);
        let description = input
            .description
            .and_then(|d| errors.check(Description::parse_at("description", d)));
        let tier = parse_enum(&mut errors, "tier", input.tier.as_deref(), false);
        match name {
            Some(name) => errors.finish(|| Self {
                name,
                description,
                tier,
            }),
            None => Err(errors),
        }
    }
}

/// A team update as it arrives: only the fields that are present change, and
/// `description: Some(None)` clears the description.
#[derive(Debug, Clone, Default)]
pub struct TeamPatchInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    /// Only a tenant admin may change it.
    pub tier: Option<String>,
}

/// A checked team update; only changing fields are `Some`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamPatch {
    pub name: Option<Name>,
    pub description: Option<Option<Description>>,
    pub tier: Option<Tier>,
}

impl TeamPatch {
    /// Check an update: name 1–255 characters, description at most 2000, tier one of
    /// `free`, `pro`, `enterprise`.
    pub fn parse(input: TeamPatchInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = input.name.and_then(|n| errors.check(Name::parse_at("name", n)));
        let description = Description::parse_patch(&mut errors, input.description);
        let tier = parse_enum(&mut errors, "tier", input.tier.as_deref(), false);
        errors.finish(|| Self {
            name,
            description,
            tier,
        })
    }
}

/// A request to add a member, as it arrives: exactly one of `email` and `user_id`, and a
/// role.
#[derive(Debug, Clone, Default)]
pub struct AddMemberInput {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub role: Option<String>,
}

/// How a request to add a member names the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    Email(Email),
    Id(UserId),
}

impl AddMemberInput {
    /// The user the request names, when it names exactly one in a well-formed way. The
    /// caller looks them up and hands the result to [`NewMember::parse`].
    pub fn member_ref(&self) -> Option<MemberRef> {
        match (&self.email, &self.user_id) {
            (Some(email), None) => Email::parse_at("email", email).ok().map(MemberRef::Email),
            (None, Some(id)) => id.parse().ok().map(MemberRef::Id),
            _ => None,
        }
    }

    /// Whether the request grants `owner`, which only an owner may grant.
    pub fn grants_owner(&self) -> bool {
        self.role.as_deref().and_then(|r| r.parse::<Role>().ok()) == Some(Role::Owner)
    }
}

/// A checked request to add a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    /// The user the request named.
    pub user: User,
    pub role: Role,
}

impl NewMember {
    /// Check a request to add a member. `user` is the user named by
    /// [`AddMemberInput::member_ref`], looked up by the caller (`None` when the request
    /// names nobody that way, or nobody has that email or id): a user who does not exist is
    /// an error on the field that named them.
    pub fn parse(input: AddMemberInput, user: Option<User>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let role = parse_enum(&mut errors, "role", input.role.as_deref(), true);
        let known = user.is_some();
        match (input.email, input.user_id) {
            (Some(_), Some(_)) => errors.push(FieldError::new(
                &["user_id"],
                kind::NOT_ALLOWED,
                "give either email or user_id, not both",
            )),
            (None, None) => errors.push(FieldError::new(&["email"], kind::MISSING, "give email or user_id")),
            (Some(email), None) => {
                if errors.check(Email::parse_at("email", &email)).is_some() && !known {
                    errors.push(FieldError::new(&["email"], kind::NOT_FOUND, "no user has this email"));
                }
            }
            (None, Some(id)) => match id.parse::<UserId>() {
                Ok(_) if !known => {
                    errors.push(FieldError::new(&["user_id"], kind::NOT_FOUND, "no user has this id"));
                }
                Ok(_) => {}
                Err(_) => errors.push(FieldError::new(&["user_id"], kind::INVALID_FORMAT, "must be a uuid")),
            },
        }
        match (user, role) {
            (Some(user), Some(role)) => errors.finish(|| Self { user, role }),
            _ => Err(errors),
        }
    }
}

/// A request to change a member's role, as it arrives.
#[derive(Debug, Clone, Default)]
pub struct RoleChangeInput {
    pub role: Option<String>,
}

/// A checked change of a member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChange {
    pub role: Role,
}

impl RoleChange {
    /// Check a role change: `viewer`, `operator`, `admin` or `owner` (required).
    pub fn parse(input: RoleChangeInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        match parse_enum(&mut errors, "role", input.role.as_deref(), true) {
            Some(role) => Ok(Self { role }),
            None => Err(errors),
        }
    }
}

/// A request to create a virtual account, as it arrives.
#[derive(Debug, Clone, Default)]
pub struct NewVirtualAccountInput {
    pub name: Option<String>,
    pub role: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A checked request to create a virtual account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVirtualAccount {
    pub name: Name,
    /// Never `owner`.
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewVirtualAccount {
    /// Check a create request: name 1–255 characters and a role (both required); the role
    /// is never `owner`, and `expires_at`, when given, is after `now`.
    pub fn parse(input: NewVirtualAccountInput, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = required_name(&mut errors, input.name);
        let role = parse_enum(&mut errors, "role", input.role.as_deref(), true);
        if role == Some(Role::Owner) {
            errors.push(FieldError::new(
                &["role"],
                kind::NOT_ALLOWED,
                "a virtual account cannot be owner; use viewer, operator or admin",
            ));
        }
        if input.expires_at.is_some_and(|e| e <= now) {
            errors.push(FieldError::new(
                &["expires_at"],
                kind::OUT_OF_RANGE,
                "must be in the future",
            ));
        }
        match (name, role) {
            (Some(name), Some(role)) => errors.finish(|| Self {
                name,
                role,
                expires_at: input.expires_at,
            }),
            _ => Err(errors),
        }
    }
}

/// A user update as it arrives (`PATCH /v1/users/{id}`): only the fields present change.
#[derive(Debug, Clone, Default)]
pub struct UserPatchInput {
    pub display_name: Option<String>,
    pub tenant_admin: Option<bool>,
    /// `true` disables the user (every token refused at once), `false` enables them again.
    pub disabled: Option<bool>,
}

/// A checked user update; only changing fields are `Some`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub display_name: Option<DisplayName>,
    pub tenant_admin: Option<bool>,
    pub disabled: Option<bool>,
}

impl UserPatch {
    /// Check an update: display name 1–255 characters on one line.
    pub fn parse(input: UserPatchInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let display_name = input
            .display_name
            .and_then(|d| errors.check(DisplayName::parse_at("display_name", d)));
        errors.finish(|| Self {
            display_name,
            tenant_admin: input.tenant_admin,
            disabled: input.disabled,
        })
    }
}
