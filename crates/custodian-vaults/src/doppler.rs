//! The Doppler adapter (skeleton: the adapter's engineer replaces this file).

use async_trait::async_trait;
use custodian_domain::{VaultReference, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use secrecy::SecretString;

/// The Doppler adapter's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DopplerConfig {}

/// The Doppler adapter.
#[derive(Debug)]
pub struct DopplerProvider {
    #[allow(dead_code)]
    config: DopplerConfig,
}

impl DopplerProvider {
    pub fn new(config: DopplerConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl VaultProvider for DopplerProvider {
    fn vault_type(&self) -> VaultType {
        VaultType::Doppler
    }

    async fn verify(&self, _access: &VaultAccess) -> Result<(), VaultError> {
        Err(VaultError::Unavailable {
            provider: self.vault_type(),
            message: "not written yet".into(),
        })
    }

    async fn fetch(
        &self,
        _access: &VaultAccess,
        _references: &[VaultReference],
        _freshness: Freshness,
    ) -> Result<Vec<SecretString>, VaultError> {
        Err(VaultError::Unavailable {
            provider: self.vault_type(),
            message: "not written yet".into(),
        })
    }
}
