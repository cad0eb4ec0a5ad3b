//! The token issuer of tests: real `cus_` tokens from `custodian-crypto`, digested under a
//! fixed pepper, so tokens behave as a server's do without a keyring.

use std::fmt;
use std::sync::Arc;

use custodian_crypto::{TokenHasher, generate_token};
use custodian_domain::TokenDigest;
use custodian_ports::TokenIssuer;
use secrecy::SecretString;

/// Issues tokens as a server does, with a pepper every test shares.
pub struct TestTokens(TokenHasher);

impl Default for TestTokens {
    fn default() -> Self {
        Self(TokenHasher::new([7; 32]))
    }
}

impl fmt::Debug for TestTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TestTokens")
    }
}

impl TokenIssuer for TestTokens {
    fn generate(&self) -> SecretString {
        generate_token()
    }

    fn digest(&self, token: &str) -> TokenDigest {
        TokenDigest(self.0.digest(token))
    }
}

/// The test token issuer as the core takes it.
pub fn token_issuer() -> Arc<dyn TokenIssuer> {
    Arc::new(TestTokens::default())
}
