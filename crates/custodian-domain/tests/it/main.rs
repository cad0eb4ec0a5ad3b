//! Integration tests of `custodian-domain`: every rule of SPEC §7 and seeds 000–002,
//! checked against expectations written here from the seeds, not from the code.

mod support;

mod credentials;
mod locations;
mod matrix;
mod props;
mod secrets;
mod teams;
mod text;
mod vault;
