//! What a use case can fail with, and the explicit translation of every port error.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use custodian_domain::{FieldError, LimitKind, LinkedLocation, Role, SecretType, ValidationErrors, error::kind};
use custodian_ports::{ConflictKind, RepoError, StoreError, VaultError};

/// What a forbidden caller lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// At least this role in the team.
    Role(Role),
    /// The deployment's tenant admin.
    TenantAdmin,
    /// A user: virtual accounts cannot do this (create teams, hold personal access tokens).
    User,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Role(role) => write!(f, "the {role} role or higher"),
            Requirement::TenantAdmin => f.write_str("a tenant admin"),
            Requirement::User => f.write_str("a user (not a virtual account)"),
        }
    }
}

impl From<Role> for Requirement {
    fn from(role: Role) -> Self {
        Requirement::Role(role)
    }
}

/// The failure underneath an [`CoreError::Internal`] or [`CoreError::Unavailable`] (a port's
/// error, itself holding what the adapter's library reported), kept so the 5xx it becomes
/// is logged with its whole chain. Two causes are equal when they read the same.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync + 'static>);

impl Cause {
    /// `error` as the cause of a core error.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}

/// Why a use case failed. No variant ever holds a credential, token or secret value, so
/// `Debug` and `Display` are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The input breaks a rule; every failing field is listed (422).
    #[error(transparent)]
    Validation(ValidationErrors),
    /// No such resource, or one of a team the caller does not belong to (404).
    #[error("not found")]
    NotFound,
    /// The caller may see the resource but not do this (403).
    #[error("forbidden: this needs {needed}")]
    Forbidden { needed: Requirement },
    /// The team is at its tier limit (403 `tier_limit_exceeded`).
    #[error("tier limit reached: at most {limit} {}", .kind.as_str())]
    LimitExceeded { kind: LimitKind, limit: u32 },
    /// The write breaks a uniqueness or integrity rule (409).
    #[error("conflict: {0}")]
    Conflict(ConflictKind),
    /// Changing a secret's type while linked locations have another type (409
    /// `location_type_mismatch`, listing them).
    #[error("secret_type cannot change to {secret_type}: {} linked location(s) have another type", .locations.len())]
    LocationTypeMismatch {
        secret_type: SecretType,
        locations: Vec<LinkedLocation>,
    },
    /// Deleting a user who is the only owner of these teams (409 `last_owner`, naming them).
    #[error("the user is the only owner of the team(s) {}: make another member owner first", .teams.join(", "))]
    LastOwnerOf { teams: Vec<String> },
    /// The caller may read a secret group's keys but not its values: too low a role, or
    /// the deployment turns value reads off for everyone (`by_setting`) (403
    /// `value_view_forbidden`).
    #[error("{}", if *.by_setting { "reading secret values is turned off on this deployment" } else { "reading secret values needs the operator role or higher" })]
    ValueViewForbidden { by_setting: bool },
    /// Missing, unknown, expired or revoked token (401).
    #[error("authentication required")]
    Unauthenticated,
    /// A team's external vault failed (`vault_unavailable`, `vault_auth_failed`,
    /// `vault_reference_not_found`, `vault_rate_limited`), naming the provider.
    #[error(transparent)]
    Vault(VaultError),
    /// The credentials that were found (in the store or the vault) do not pass the auth
    /// method's schema. Lists the failing fields, never their values.
    #[error("the stored credentials are not valid for the auth method: {0}")]
    InvalidCredentials(ValidationErrors),
    /// A backing service (database, credential store) is down or throttling (503).
    #[error("{what} is unavailable: {message}")]
    Unavailable {
        what: &'static str,
        message: String,
        retry_after: Option<Duration>,
        /// The port's error, for the log.
        #[source]
        cause: Option<Cause>,
    },
    /// A bug, a corrupt record or a misconfiguration (500). The message never holds a
    /// value; the cause, when there is one, is the port error underneath.
    #[error("internal error: {message}")]
    Internal {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
}

impl CoreError {
    /// A 500 with nothing underneath: a broken invariant the core found itself.
    pub fn internal(message: impl Into<String>) -> Self {
        CoreError::Internal {
            message: message.into(),
            cause: None,
        }
    }

    /// A 500 because of `cause`, summed up by `message`.
    pub fn internal_from(message: impl Into<String>, cause: impl Error + Send + Sync + 'static) -> Self {
        CoreError::Internal {
            message: message.into(),
            cause: Some(Cause::new(cause)),
        }
    }

    /// `error` of the credential store, for a write of the field at `field`: a value the
    /// store refuses is reported at that field (a storage secret's `credentials`, a vault
    /// connection's token), everything else as [`From<StoreError>`] maps it.
    pub fn from_store_write(error: StoreError, field: &[&str]) -> Self {
        match error {
            StoreError::Rejected(reason) => CoreError::Validation(ValidationErrors::single(FieldError::new(
                field,
                kind::INVALID_FORMAT,
                format!("the credential store refuses this value: {reason}"),
            ))),
            other => other.into(),
        }
    }

    /// Each error under this one, outermost first, as one line: what a log of a 5xx shows.
    pub fn chain(&self) -> String {
        let mut line = self.to_string();
        let mut next = self.source();
        while let Some(error) = next {
            line.push_str(": ");
            line.push_str(&error.to_string());
            next = error.source();
        }
        line
    }
}

impl From<ValidationErrors> for CoreError {
    fn from(errors: ValidationErrors) -> Self {
        CoreError::Validation(errors)
    }
}

impl From<FieldError> for CoreError {
    fn from(error: FieldError) -> Self {
        CoreError::Validation(error.into())
    }
}

impl From<RepoError> for CoreError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::NotFound => CoreError::NotFound,
            RepoError::Conflict(kind) => CoreError::Conflict(kind),
            RepoError::LimitExceeded { kind, limit } => CoreError::LimitExceeded { kind, limit },
            RepoError::Unavailable(ref message) => CoreError::Unavailable {
                what: "the database",
                message: message.clone(),
                retry_after: None,
                cause: Some(Cause::new(error)),
            },
            RepoError::Internal(_) => CoreError::internal_from("the database failed", error),
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(error: StoreError) -> Self {
        match error {
            // Metadata always points at stored credentials; a miss is a broken invariant.
            StoreError::NotFound => CoreError::internal_from("a record points at credentials the store lacks", error),
            // Another request wrote that version first: the record moved on under us.
            StoreError::AlreadyExists => CoreError::Conflict(ConflictKind::Stale),
            StoreError::Rejected(reason) => CoreError::Validation(ValidationErrors::single(FieldError::new(
                &["credentials"],
                kind::INVALID_FORMAT,
                format!("the credential store refuses these credentials: {reason}"),
            ))),
            StoreError::Integrity => CoreError::internal_from("stored credentials failed their integrity check", error),
            StoreError::Unavailable {
                ref message,
                retry_after,
            } => CoreError::Unavailable {
                what: "the credential store",
                message: message.clone(),
                retry_after,
                cause: Some(Cause::new(error)),
            },
            StoreError::Internal(_) => CoreError::internal_from("the credential store failed", error),
        }
    }
}

impl From<VaultError> for CoreError {
    fn from(error: VaultError) -> Self {
        match error {
            e @ (VaultError::Unavailable { .. }
            | VaultError::AuthFailed { .. }
            | VaultError::ReferenceNotFound { .. }
            | VaultError::RateLimited { .. }) => CoreError::Vault(e),
        }
    }
}

impl CoreError {
    /// A stable snake_case code for the error, as the HTTP layer and audit details use it.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Validation(_) => "validation_failed",
            CoreError::NotFound => "not_found",
            CoreError::Forbidden { .. } => "forbidden",
            CoreError::ValueViewForbidden { .. } => "value_view_forbidden",
            CoreError::LimitExceeded { .. } => "tier_limit_exceeded",
            CoreError::Conflict(kind) => match kind {
                ConflictKind::DuplicateName => "duplicate_name",
                ConflictKind::DuplicateEmail => "duplicate_email",
                ConflictKind::AlreadyMember => "already_member",
                ConflictKind::SecretInUse => "secret_in_use",
                ConflictKind::VaultConnectionInUse => "vault_connection_in_use",
                ConflictKind::LastOwner => "last_owner",
                ConflictKind::TeamNotEmpty => "team_not_empty",
                ConflictKind::Stale => "stale_write",
            },
            CoreError::LocationTypeMismatch { .. } => "location_type_mismatch",
            CoreError::LastOwnerOf { .. } => "last_owner",
            CoreError::Unauthenticated => "unauthenticated",
            CoreError::Vault(e) => match e {
                VaultError::Unavailable { .. } => "vault_unavailable",
                VaultError::AuthFailed { .. } => "vault_auth_failed",
                VaultError::ReferenceNotFound { .. } => "vault_reference_not_found",
                VaultError::RateLimited { .. } => "vault_rate_limited",
            },
            CoreError::InvalidCredentials(_) => "credentials_invalid",
            CoreError::Unavailable { .. } => "service_unavailable",
            CoreError::Internal { .. } => "internal_error",
        }
    }
}

#[cfg(test)]
mod tests;
