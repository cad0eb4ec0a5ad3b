//! custodian-store-sql against SQLite and PostgreSQL: migrations, the contract suites of
//! every repository port it implements, and concurrency of tier limits.

mod concurrency;
mod contract;
mod credential_gc;
mod database;
mod local_store;
mod locations;
mod migrations;
mod secrets;
mod support;
mod vault_connections;
