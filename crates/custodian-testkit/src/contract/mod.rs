//! The contract suites, one module per storage port. Each module exposes
//! `pub fn cases() -> Vec<Case<RepoSet>>` (or `Case<Arc<dyn CredentialStore>>` for the
//! credential store), and every case documents the rule of the port it checks.

pub mod cleanup;
pub mod credential_store;
pub mod locations;
pub mod secrets;
pub mod vault_connections;
