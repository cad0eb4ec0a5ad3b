//! Fresh stores for the contract suites.

use std::sync::Arc;

use async_trait::async_trait;
use custodian_domain::{
    AuditEvent, LinkedLocation, Location, LocationId, SecretId, StorageSecret, TeamId, VaultConnection,
    VaultConnectionId,
};
use custodian_ports::{
    LocationFilter, LocationRepository, Page, Paged, RepoError, SecretFilter, SecretRepository,
    VaultConnectionRepository,
};
use custodian_store_sql::{
    Database, SqlAuditRepository, SqlMembershipRepository, SqlTeamRepository, SqlTokenRepository, SqlUserRepository,
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
        secrets: Arc::new(NotInThisBuild),
        locations: Arc::new(NotInThisBuild),
        vault_connections: Arc::new(NotInThisBuild),
        audit: Arc::new(SqlAuditRepository::new(db.clone())),
    }
}

/// Whether PostgreSQL tests are skipped (`CUSTODIAN_TEST_POSTGRES=skip`).
pub(crate) fn postgres_skipped() -> bool {
    matches!(postgres_mode(), PgMode::Skip)
}

/// Stands in for the secret, location and vault-connection repositories, which the suites
/// of this binary do not use: every call fails.
struct NotInThisBuild;

fn absent<T>() -> Result<T, RepoError> {
    Err(RepoError::Internal(
        "this repository is not part of this test build".into(),
    ))
}

#[async_trait]
impl SecretRepository for NotInThisBuild {
    async fn create(&self, _: &StorageSecret, _: Option<u32>, _: &AuditEvent) -> Result<(), RepoError> {
        absent()
    }
    async fn get(&self, _: TeamId, _: SecretId) -> Result<StorageSecret, RepoError> {
        absent()
    }
    async fn list(&self, _: TeamId, _: &SecretFilter, _: Page) -> Result<Paged<StorageSecret>, RepoError> {
        absent()
    }
    async fn update(&self, _: &StorageSecret, _: i64, _: &AuditEvent) -> Result<(), RepoError> {
        absent()
    }
    async fn delete(&self, _: TeamId, _: SecretId, _: &AuditEvent) -> Result<StorageSecret, RepoError> {
        absent()
    }
    async fn count(&self, _: TeamId) -> Result<u64, RepoError> {
        absent()
    }
}

#[async_trait]
impl LocationRepository for NotInThisBuild {
    async fn create(&self, _: &Location, _: &AuditEvent) -> Result<(), RepoError> {
        absent()
    }
    async fn get(&self, _: TeamId, _: LocationId) -> Result<Location, RepoError> {
        absent()
    }
    async fn list(&self, _: TeamId, _: &LocationFilter, _: Page) -> Result<Paged<Location>, RepoError> {
        absent()
    }
    async fn linked_to_secret(&self, _: TeamId, _: SecretId) -> Result<Vec<LinkedLocation>, RepoError> {
        absent()
    }
    async fn update(&self, _: &Location, _: &AuditEvent) -> Result<(), RepoError> {
        absent()
    }
    async fn delete(&self, _: TeamId, _: LocationId, _: &AuditEvent) -> Result<(), RepoError> {
        absent()
    }
}

#[async_trait]
impl VaultConnectionRepository for NotInThisBuild {
    async fn create(&self, _: &VaultConnection, _: Option<u32>, _: &AuditEvent) -> Result<(), RepoError> {
        absent()
    }
    async fn get(&self, _: TeamId, _: VaultConnectionId) -> Result<VaultConnection, RepoError> {
        absent()
    }
    async fn list(&self, _: TeamId, _: Page) -> Result<Paged<VaultConnection>, RepoError> {
        absent()
    }
    async fn secret_count(&self, _: TeamId, _: VaultConnectionId) -> Result<u64, RepoError> {
        absent()
    }
    async fn update(&self, _: &VaultConnection, _: i64, _: &AuditEvent) -> Result<(), RepoError> {
        absent()
    }
    async fn delete(&self, _: TeamId, _: VaultConnectionId, _: &AuditEvent) -> Result<VaultConnection, RepoError> {
        absent()
    }
}
