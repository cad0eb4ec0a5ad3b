//! custodian-store-sql against SQLite and PostgreSQL: migrations, the contract suites of
//! every repository port it implements, and concurrency of tier limits.

mod cleanup;
mod concurrency;
mod contract;
mod migrations;
mod support;
mod teams;
