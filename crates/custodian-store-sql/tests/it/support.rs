//! Fresh stores for the contract suites.

use std::sync::Arc;

use custodian_store_sql::{
    Database, SqlAuditRepository, SqlLocationRepository, SqlMembershipRepository, SqlSecretRepository,
    SqlTeamRepository, SqlTokenRepository, SqlUserRepository, SqlVaultConnectionRepository,
    SqlVirtualAccountRepository,
};
use custodian_test_db::{PgMode, postgres_mode};
use custodian_testkit::RepoSet;

/// Every repository over `db`.
pub(crate) fn repo_set(db: &Database) -> RepoSet {
    RepoSet {
        users: Arc::new(SqlUserRepository::new(db.clone())),
        teams: Arc::new(SqlTeamRepository::new(db.clone())),
        memberships: Arc::new(SqlMembershipRepository::new(db.clone())),
        virtual_accounts: Arc::new(SqlVirtualAccountRepository::new(db.clone())),
        tokens: Arc::new(SqlTokenRepository::new(db.clone())),
        secrets: Arc::new(SqlSecretRepository::new(db.clone())),
        locations: Arc::new(SqlLocationRepository::new(db.clone())),
        vault_connections: Arc::new(SqlVaultConnectionRepository::new(db.clone())),
        audit: Arc::new(SqlAuditRepository::new(db.clone())),
    }
}

/// Whether PostgreSQL tests are skipped (`CUSTODIAN_TEST_POSTGRES=skip`).
pub(crate) fn postgres_skipped() -> bool {
    matches!(postgres_mode(), PgMode::Skip)
}
