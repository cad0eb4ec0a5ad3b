//! Error translation, in one place: diesel and pool errors become [`RepoError`]s here and
//! nowhere else. Messages name a table, a constraint or a column, never a value.

use custodian_ports::{ConflictKind, RepoError};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};

/// What a query inside this crate fails with, before it leaves the crate as a [`RepoError`].
#[derive(Debug)]
pub(crate) enum DbError {
    /// diesel failed: translated by [`From<DbError> for RepoError`].
    Query(DieselError),
    /// No connection could be had from the pool.
    Pool(String),
    /// A rule of the port, decided by the query itself (`LastOwner`, a limit, …).
    Repo(RepoError),
}

impl DbError {
    /// A row that cannot be turned back into a domain value: names the column only.
    pub(crate) fn corrupt(table: &str, column: &str) -> Self {
        DbError::Repo(RepoError::Internal(format!(
            "stored row of {table} has an invalid {column}"
        )))
    }
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        DbError::Query(e)
    }
}

impl From<RepoError> for DbError {
    fn from(e: RepoError) -> Self {
        DbError::Repo(e)
    }
}

impl From<DbError> for RepoError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Repo(e) => e,
            DbError::Pool(message) => RepoError::Unavailable(message),
            DbError::Query(e) => translate(&e),
        }
    }
}

/// Unique violation → `Conflict` (which one, from the constraint), foreign-key violation →
/// `NotFound`, connection trouble and lock timeouts → `Unavailable`, anything else →
/// `Internal`.
fn translate(e: &DieselError) -> RepoError {
    match e {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            RepoError::Conflict(unique_conflict(info.as_ref()))
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => RepoError::NotFound,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::SerializationFailure,
            _,
        ) => RepoError::Unavailable("the database connection failed or the transaction must be retried".into()),
        DieselError::DatabaseError(_, info) if is_busy(info.as_ref()) => {
            RepoError::Unavailable("the database is locked by another writer".into())
        }
        DieselError::DatabaseError(kind, info) => RepoError::Internal(format!(
            "database error {kind:?} (table {}, constraint {})",
            info.table_name().unwrap_or("-"),
            info.constraint_name().unwrap_or("-"),
        )),
        DieselError::BrokenTransactionManager => RepoError::Unavailable("the connection is in a broken state".into()),
        DieselError::DeserializationError(_) => RepoError::Internal("a stored value cannot be read".into()),
        DieselError::SerializationError(_) => RepoError::Internal("a value cannot be written".into()),
        _ => RepoError::Internal("the query failed".into()),
    }
}

/// Which uniqueness rule a write broke. PostgreSQL names the constraint; SQLite names the
/// columns in its message (`UNIQUE constraint failed: users.email`), which holds no value.
fn unique_conflict(info: &dyn DatabaseErrorInformation) -> ConflictKind {
    let source = info.constraint_name().unwrap_or_else(|| info.message());
    if source.contains("users_email_key") || source.contains("users.email") {
        ConflictKind::DuplicateEmail
    } else if source.contains("memberships") {
        ConflictKind::AlreadyMember
    } else {
        ConflictKind::DuplicateName
    }
}

/// SQLite's `SQLITE_BUSY`: another connection holds the lock (after `busy_timeout`, where
/// the connection has one).
pub(crate) fn is_busy(info: &dyn DatabaseErrorInformation) -> bool {
    let message = info.message();
    message.contains("database is locked") || message.contains("database is busy")
}

/// For a write whose foreign-key refusal means something other than `NotFound`: a delete
/// whose referencing rows appeared after the in-use check (`Conflict(kind)`), or a sealed
/// credential whose master key was removed after it was chosen (`Unavailable`).
pub(crate) fn foreign_key_means(meaning: RepoError) -> impl Fn(diesel::result::Error) -> DbError {
    move |error| match error {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ForeignKeyViolation, _) => {
            meaning.clone().into()
        }
        other => other.into(),
    }
}

/// As [`foreign_key_means`], for a refusal of `table`'s foreign keys only: in a statement
/// that writes several tables ([`crate::db::one_statement`]), a refusal names the table
/// whose row was refused. Refusals of other tables stay `NotFound`.
pub(crate) fn foreign_key_of(table: &'static str, meaning: RepoError) -> impl Fn(DieselError) -> DbError {
    move |error| match error {
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)
            if info.table_name() == Some(table) =>
        {
            meaning.clone().into()
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DbError {
        DbError::Query(DieselError::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn unique_violations_name_the_rule_they_broke() {
        let cases = [
            ("UNIQUE constraint failed: users.email", ConflictKind::DuplicateEmail),
            (
                "UNIQUE constraint failed: memberships.team_id, memberships.user_id",
                ConflictKind::AlreadyMember,
            ),
            ("UNIQUE constraint failed: teams.name", ConflictKind::DuplicateName),
            (
                "UNIQUE constraint failed: storage_secrets.team_id, storage_secrets.name",
                ConflictKind::DuplicateName,
            ),
        ];
        for (message, kind) in cases {
            let e = database_error(DatabaseErrorKind::UniqueViolation, message);
            assert_eq!(RepoError::from(e), RepoError::Conflict(kind), "{message}");
        }
    }

    #[test]
    fn foreign_key_violations_and_missing_rows_are_not_found() {
        let e = database_error(DatabaseErrorKind::ForeignKeyViolation, "FOREIGN KEY constraint failed");
        assert_eq!(RepoError::from(e), RepoError::NotFound);
        assert_eq!(
            RepoError::from(DbError::Query(DieselError::NotFound)),
            RepoError::NotFound
        );
    }

    #[test]
    fn connection_trouble_and_lock_timeouts_are_unavailable() {
        for e in [
            database_error(DatabaseErrorKind::ClosedConnection, "server closed the connection"),
            database_error(DatabaseErrorKind::SerializationFailure, "could not serialize access"),
            database_error(DatabaseErrorKind::Unknown, "database is locked"),
            DbError::Pool("no connection".into()),
        ] {
            assert!(matches!(RepoError::from(e), RepoError::Unavailable(_)));
        }
    }

    #[test]
    fn other_errors_are_internal_without_the_database_message() {
        let e = database_error(
            DatabaseErrorKind::CheckViolation,
            "new row violates check constraint: value s3cr3t-value",
        );
        match RepoError::from(e) {
            RepoError::Internal(message) => assert!(!message.contains("s3cr3t"), "{message}"),
            other => panic!("expected Internal, got {other:?}"),
        }
        let corrupt = RepoError::from(DbError::corrupt("users", "email"));
        assert_eq!(
            corrupt,
            RepoError::Internal("stored row of users has an invalid email".into())
        );
    }

    /// A refusal as PostgreSQL reports it: with the table whose row was refused.
    #[derive(Debug)]
    struct Refused {
        table: &'static str,
    }

    impl DatabaseErrorInformation for Refused {
        fn message(&self) -> &str {
            "insert or update violates foreign key constraint"
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            Some(self.table)
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    #[test]
    fn a_foreign_key_refusal_means_something_else_only_for_its_table() {
        let unavailable = RepoError::Unavailable("the key was removed".into());
        let refusal =
            |table| DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, Box::new(Refused { table }));
        let of_blobs = foreign_key_of("credential_blobs", unavailable.clone());
        assert_eq!(RepoError::from(of_blobs(refusal("credential_blobs"))), unavailable);
        assert_eq!(
            RepoError::from(of_blobs(refusal("storage_secrets"))),
            RepoError::NotFound
        );
        let taken = DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("UNIQUE constraint failed: storage_secrets.team_id, storage_secrets.name".to_owned()),
        );
        assert_eq!(
            RepoError::from(of_blobs(taken)),
            RepoError::Conflict(ConflictKind::DuplicateName)
        );
    }
}
