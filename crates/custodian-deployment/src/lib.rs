//! A Custodian deployment from its configuration: the same composition for the server,
//! its operator commands and the Rust services that embed the core.
//!
//! - [`Config`]: the layered configuration (defaults < TOML file < `CUSTODIAN_*`
//!   variables), typed, with every secret setting a `SecretString`.
//! - [`Deployment`]: the database, the keyring (file or master key), the credential store
//!   (`local` or `aws-ssm`) and the core wired over them. A server *opens* it
//!   ([`Deployment::open`]: it migrates and records what it needs); an embedding service
//!   *attaches* to it ([`Deployment::attach`]: it changes nothing and refuses a deployment
//!   that is not set up, or set up for another store).
//! - [`commands`]: the operator commands besides `serve` (`migrate`, `bootstrap`,
//!   `keys rotate`, `gc`, `store migrate`).
//!
//! **API Boundary:** [`Deployment::attach`] and [`Deployment::custodian`] are how a Rust
//! service embeds Custodian over a running deployment:
//!
//! ```no_run
//! use custodian_deployment::{Config, Deployment};
//! use custodian_domain::{CredentialField, SecretId, TeamId};
//! use secrecy::{ExposeSecret, SecretString};
//!
//! async fn s3_keys(team: TeamId, secret: SecretId, token: SecretString) -> anyhow::Result<(String, String)> {
//!     let config = Config::load(None)?;
//!     let deployment = Deployment::attach(&config).await?;
//!     let custodian = deployment.custodian();
//!     let worker = custodian.authenticate(&token).await?;
//!     let credentials = custodian.resolve(&worker, team, secret).await?;
//!     let field = |f| credentials.get(f).map(|v| v.expose_secret().to_owned()).unwrap_or_default();
//!     Ok((field(CredentialField::AccessKeyId), field(CredentialField::SecretAccessKey)))
//! }
//! ```
//!
//! **Architecture Invariant:** this crate and the binary are the only ones that depend on
//! the adapter crates (checked by `cargo xtask tidy`). Its errors are `anyhow` chains: they
//! are read by operators, not matched by code.

mod bootstrap;
pub mod commands;
mod config;
mod deployment;
mod stores;
mod tokens;

pub use bootstrap::{ADMIN_EMAIL, Bootstrap, BootstrapError, BootstrapOutcome, DEFAULT_TEAM};
pub use config::{
    CONFIG_ENV, Config, ConfigError, CredentialStoreKind, DopplerConfig, InfisicalConfig, LogFormat, OnePasswordConfig,
    RateLimitConfig, SsmConfig, UnknownVariable, VaultCacheConfig, VaultsConfig, process_env,
};
pub use deployment::Deployment;
pub use tokens::PepperedTokens;
