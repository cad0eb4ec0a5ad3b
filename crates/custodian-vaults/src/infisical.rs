//! The Infisical adapter (skeleton: the adapter's engineer replaces this file).

use async_trait::async_trait;
use custodian_domain::{VaultReference, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use secrecy::SecretString;

/// The Infisical adapter's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfisicalConfig {}

/// The Infisical adapter.
#[derive(Debug)]
pub struct InfisicalProvider {
    #[allow(dead_code)]
    config: InfisicalConfig,
}

impl InfisicalProvider {
    pub fn new(config: InfisicalConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl VaultProvider for InfisicalProvider {
    fn vault_type(&self) -> VaultType {
        VaultType::Infisical
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
