//! The aws-ssm credential store: SSM's rules enforced before any call, throttling and
//! faults against a local fake, and the CredentialStore contract against a real
//! `moto_server` (`CUSTODIAN_TEST_MOTO_URL`, set by `cargo xtask test`).

mod consistency;
mod fake_ssm;
mod faults;
mod migration;
mod moto;
mod support;
