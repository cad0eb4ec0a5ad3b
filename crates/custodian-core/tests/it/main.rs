//! The core over real, in-memory ports (`custodian-testkit`): whole stories that cross
//! several use cases, checking what the store and the repositories hold afterwards.

mod bootstrap;
mod cleanup;
mod identity;
mod secret_groups;
mod secrets;
mod support;
