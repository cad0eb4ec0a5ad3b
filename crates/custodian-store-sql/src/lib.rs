//! Custodian's SQL storage: the repository ports on SQLite (the embedded default) and
//! PostgreSQL, with diesel and diesel-async, and their embedded migrations.
//!
//! **Architecture Invariant:** each query is written once, against the portable schema of
//! [`schema`]; the only module that knows there are two backends is `db` (connection
//! pools, transactions, the team lock before a tier-limit count). diesel errors never
//! leave this crate: `error` translates them into [`custodian_ports::RepoError`].

mod convert;
mod db;
mod error;
pub mod schema;

pub use db::{Backend, Database, DatabaseError};
mod audit;
mod cleanup;
mod inventory;
mod local_store;
mod locations;
mod master_keys;
mod memberships;
mod search;
mod secret_groups;
mod secrets;
mod teams;
mod tokens;
mod users;
mod vault_connections;
mod virtual_accounts;

pub use audit::SqlAuditRepository;
pub use cleanup::SqlCleanupQueue;
pub use inventory::SqlCredentialInventory;
pub use local_store::LocalCredentialStore;
pub use locations::SqlLocationRepository;
pub use master_keys::{KeyRemovalError, MasterKeyUsage};
pub use memberships::SqlMembershipRepository;
pub use secret_groups::SqlSecretGroupRepository;
pub use secrets::SqlSecretRepository;
pub use teams::SqlTeamRepository;
pub use tokens::SqlTokenRepository;
pub use users::SqlUserRepository;
pub use vault_connections::SqlVaultConnectionRepository;
pub use virtual_accounts::SqlVirtualAccountRepository;

/// Every repository port over `db`: the SQL crate's part of a deployment's ports.
pub fn repositories(db: &Database) -> custodian_ports::Repositories {
    use std::sync::Arc;
    custodian_ports::Repositories {
        users: Arc::new(SqlUserRepository::new(db.clone())),
        teams: Arc::new(SqlTeamRepository::new(db.clone())),
        memberships: Arc::new(SqlMembershipRepository::new(db.clone())),
        virtual_accounts: Arc::new(SqlVirtualAccountRepository::new(db.clone())),
        tokens: Arc::new(SqlTokenRepository::new(db.clone())),
        secrets: Arc::new(SqlSecretRepository::new(db.clone())),
        locations: Arc::new(SqlLocationRepository::new(db.clone())),
        vault_connections: Arc::new(SqlVaultConnectionRepository::new(db.clone())),
        secret_groups: Arc::new(SqlSecretGroupRepository::new(db.clone())),
        audit: Arc::new(SqlAuditRepository::new(db.clone())),
        cleanup: Arc::new(SqlCleanupQueue::new(db.clone())),
    }
}

#[cfg(feature = "test-support")]
pub mod test_support;
