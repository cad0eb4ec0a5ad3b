//! The contract suites, one module per storage port. Each module exposes
//! `pub fn cases() -> Vec<Case<RepoSet>>` (or `Case<Arc<dyn CredentialStore>>` for the
//! credential store), and every case documents the rule of the port it checks.

pub mod audit;
pub mod cleanup;
pub mod credential_store;
pub mod fixtures;
pub mod locations;
pub mod memberships;
pub mod secret_groups;
pub mod secrets;
pub mod teams;
pub mod tokens;
pub mod users;
pub mod vault_connections;
pub mod virtual_accounts;
