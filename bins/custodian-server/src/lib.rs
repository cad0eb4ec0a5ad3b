//! The `custodian` server: the HTTP server ([`Application`]) over a [`Deployment`]. The
//! configuration, the composition and the operator commands live in
//! `custodian-deployment`, re-exported here for the binary and its tests.

mod app;

pub use app::{Application, REQUEST_ID_HEADER};
pub use custodian_deployment::{
    ADMIN_EMAIL, Bootstrap, BootstrapError, BootstrapOutcome, CONFIG_ENV, Config, ConfigError, CredentialStoreKind,
    DEFAULT_TEAM, Deployment, LogFormat, PepperedTokens, RateLimitConfig, SsmConfig, UnknownVariable, commands,
    process_env,
};
