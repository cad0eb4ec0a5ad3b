//! The testkit's own tests: each contract suite against its in-memory fake.

mod cleanup;
mod credential_store;
mod memory;
mod secret_groups;
