//! The console's side of making a tenant admin: the core's use cases
//! ([`Custodian::bootstrap_first_start`], [`Custodian::bootstrap_admin`]) with their
//! refusals put in the words of the command line.

use custodian_core::{BootstrapInput, Bootstrapped, CoreError, Custodian};
use custodian_ports::ConflictKind;

pub use custodian_core::{FIRST_ADMIN_EMAIL as ADMIN_EMAIL, FIRST_TEAM as DEFAULT_TEAM};

/// What the first start created, or `custodian bootstrap` made.
pub type Bootstrap = Bootstrapped;
/// What `custodian bootstrap` made: a tenant admin, the team it owns, and its token.
pub type BootstrapOutcome = Bootstrapped;

/// Why `custodian bootstrap` made nothing.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A user already has this email.
    #[error("a user with the email {0} already exists")]
    DuplicateEmail(String),
    /// The email, team name or tier is not valid; each field named by its flag.
    #[error("{0}")]
    Invalid(String),
    /// The core or the storage failed.
    #[error(transparent)]
    Core(CoreError),
}

/// `custodian bootstrap`: the tenant admin `email`, owner of `team` (created with `tier`, or
/// joined when the name is taken), on any database.
pub(crate) async fn bootstrap_admin(
    custodian: &Custodian,
    email: &str,
    team: &str,
    tier: Option<&str>,
) -> Result<BootstrapOutcome, BootstrapError> {
    let input = BootstrapInput {
        email: email.to_owned(),
        team: team.to_owned(),
        tier: tier.map(str::to_owned),
    };
    custodian.bootstrap_admin(input).await.map_err(|e| match e {
        CoreError::Conflict(ConflictKind::DuplicateEmail) => BootstrapError::DuplicateEmail(email.to_owned()),
        CoreError::Validation(errors) => BootstrapError::Invalid(
            errors
                .errors()
                .iter()
                .map(|e| format!("--{}: {}", e.path(), e.msg))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => BootstrapError::Core(other),
    })
}
