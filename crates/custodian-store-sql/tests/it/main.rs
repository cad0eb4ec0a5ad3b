//! custodian-store-sql against SQLite and PostgreSQL: migrations, the contract suites of
//! every repository port it implements, and concurrency of tier limits.

mod cleanup;
mod concurrency;
mod contract;
mod database;
mod inventory;
mod local_store;
mod locations;
mod migrations;
mod secret_groups;
mod secrets;
mod support;
mod vault_connections;
