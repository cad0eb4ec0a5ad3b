//! The OnePassword adapter (skeleton: the adapter's engineer replaces this file).

use async_trait::async_trait;
use custodian_domain::{VaultReference, VaultType};
use custodian_ports::{Freshness, VaultAccess, VaultError, VaultProvider};
use secrecy::SecretString;

/// The OnePassword adapter's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnePasswordConfig {}

/// The OnePassword adapter.
#[derive(Debug)]
pub struct OnePasswordProvider {
    #[allow(dead_code)]
    config: OnePasswordConfig,
}

impl OnePasswordProvider {
    pub fn new(config: OnePasswordConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl VaultProvider for OnePasswordProvider {
    fn vault_type(&self) -> VaultType {
        VaultType::OnePassword
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
