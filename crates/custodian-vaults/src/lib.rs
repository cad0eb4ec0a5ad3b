//! The vault provider adapters behind the `VaultProvider` port: a team keeps its storage
//! credentials in its own 1Password, Doppler or Infisical, and Custodian reads them at
//! resolution time through a vault connection.
//!
//! - [`DopplerProvider`]: Doppler's HTTP API with the connection's service token.
//! - [`InfisicalProvider`]: Infisical's HTTP API with a machine identity (universal auth).
//! - [`OnePasswordProvider`]: the `op` CLI with the connection's service-account token.
//!
//! Each takes its base URL (or the `op` path) and timeouts from [`VaultsConfig`]. Errors
//! become the port's `VaultError`s naming the provider; no error, log line or `Debug`
//! output holds a token or a value.

mod doppler;
mod infisical;
mod onepassword;

use std::sync::Arc;

use custodian_ports::VaultProvider;

pub use doppler::{DopplerConfig, DopplerProvider};
pub use infisical::{InfisicalConfig, InfisicalProvider};
pub use onepassword::{OnePasswordConfig, OnePasswordProvider};

/// The settings of every provider (`[vaults]` in the configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultsConfig {
    pub doppler: DopplerConfig,
    pub infisical: InfisicalConfig,
    pub onepassword: OnePasswordConfig,
}

/// One provider per vault type, configured by `config`.
pub fn providers(config: &VaultsConfig) -> Vec<Arc<dyn VaultProvider>> {
    vec![
        Arc::new(DopplerProvider::new(config.doppler.clone())),
        Arc::new(InfisicalProvider::new(config.infisical.clone())),
        Arc::new(OnePasswordProvider::new(config.onepassword.clone())),
    ]
}
