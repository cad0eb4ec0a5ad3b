//! The `custodian` server: layered configuration, composition of the SQL storage and the
//! core ([`Services`]), first-start bootstrap, the operator [`commands`], and the HTTP
//! server ([`Application`]).

mod app;
mod bootstrap;
pub mod commands;
mod config;
mod stores;
mod tokens;

pub use app::{Application, REQUEST_ID_HEADER, Services};
pub use bootstrap::{ADMIN_EMAIL, Bootstrap, BootstrapError, BootstrapOutcome, DEFAULT_TEAM};
pub use config::{
    CONFIG_ENV, Config, ConfigError, CredentialStoreKind, LogFormat, SsmConfig, UnknownVariable, process_env,
};
pub use tokens::PepperedTokens;
