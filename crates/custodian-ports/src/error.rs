use custodian_domain::LimitKind;

/// What a repository can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// The record does not exist, or exists in another team (no existence leak).
    #[error("not found")]
    NotFound,
    /// The write would break a uniqueness or integrity rule.
    #[error("conflict: {0}")]
    Conflict(ConflictKind),
    /// The team is at its tier limit for `kind`; nothing was written.
    #[error("tier limit reached: at most {limit} {}", .kind.as_str())]
    LimitExceeded { kind: LimitKind, limit: u32 },
    /// The database cannot be reached or timed out; the call may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt row. The message never holds a value.
    #[error("database error: {0}")]
    Internal(String),
}

/// Which rule a conflicting write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConflictKind {
    #[error("the name is already taken")]
    DuplicateName,
    #[error("the email is already registered")]
    DuplicateEmail,
    #[error("the user is already a member of this team")]
    AlreadyMember,
    #[error("the secret is used by locations")]
    SecretInUse,
    #[error("the vault connection is used by secrets")]
    VaultConnectionInUse,
    #[error("the team must keep at least one owner")]
    LastOwner,
    #[error("the team still holds secrets, locations, vault connections or secret groups")]
    TeamNotEmpty,
    /// An optimistic-concurrency check failed: the record changed since it was read.
    #[error("the record changed since it was read")]
    Stale,
}
