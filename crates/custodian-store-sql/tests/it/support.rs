//! Fresh stores for the contract suites.

use custodian_store_sql::Database;
use custodian_test_db::{PgMode, postgres_mode};
use custodian_testkit::RepoSet;

/// Every repository over `db`.
pub(crate) fn repo_set(db: &Database) -> RepoSet {
    custodian_store_sql::repositories(db)
}

/// Whether PostgreSQL tests are skipped (`CUSTODIAN_TEST_POSTGRES=skip`).
pub(crate) fn postgres_skipped() -> bool {
    matches!(postgres_mode(), PgMode::Skip)
}
