//! custodian-store-sql against SQLite and PostgreSQL: migrations, the contract suites of
//! every repository port it implements, and concurrency of tier limits.

mod migrations;
mod secret_groups;
mod support;
