//! The `custodian` server: configuration, composition of the SQL storage and the core,
//! first-start bootstrap, and the HTTP server ([`Application`]).

mod app;
mod bootstrap;
mod config;
mod tokens;

pub use app::Application;
pub use bootstrap::{ADMIN_EMAIL, Bootstrap, DEFAULT_TEAM};
pub use config::Config;
pub use tokens::PepperedTokens;
