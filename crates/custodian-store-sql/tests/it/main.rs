//! custodian-store-sql against SQLite and PostgreSQL: migrations, the contract suites of
//! every repository port it implements, and concurrency of tier limits.

mod concurrency;
mod contract;
mod credential_gc;
mod local_store;
mod locations;
mod migrations;
mod secrets;
mod secret_groups;
mod support;
mod teams;
mod vault_connections;
