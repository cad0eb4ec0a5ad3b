//! The server end to end: in process through `Application`, and as the built binary.

mod application;
mod binary;
mod canary;
mod commands;
mod concurrent_rotations;
mod config_file;
mod docs_page;
mod embedding;
mod flow;
mod group_flow;
mod group_matrix;
mod hostile_input;
mod key_rotation;
mod master_key;
mod matrix;
mod metrics;
mod offboarding;
mod process;
mod schemathesis;
mod ssm;
mod store_migration;
mod support;
mod truefoundry_sdk;
mod vaults;
