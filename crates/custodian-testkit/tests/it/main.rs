//! The integration tests of the test kit: the contract suites against the in-memory fakes.

mod cleanup;
mod credential_store;
mod memory;
