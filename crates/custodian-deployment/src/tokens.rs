//! Bearer tokens as the server issues them: `cus_` + 256 random bits, stored and looked up
//! by their HMAC digest under the keyring's pepper.

use std::fmt;

use custodian_crypto::{TokenHasher, generate_token};
use custodian_domain::TokenDigest;
use custodian_ports::TokenIssuer;
use secrecy::SecretString;

/// The [`TokenIssuer`] over `custodian-crypto`.
pub struct PepperedTokens(TokenHasher);

impl PepperedTokens {
    /// Tokens digested with `hasher` (the keyring's [`token_hasher`](custodian_crypto::Keyring::token_hasher)).
    pub fn new(hasher: TokenHasher) -> Self {
        Self(hasher)
    }
}

impl fmt::Debug for PepperedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PepperedTokens([REDACTED])")
    }
}

impl TokenIssuer for PepperedTokens {
    fn generate(&self) -> SecretString {
        generate_token()
    }

    fn digest(&self, token: &str) -> TokenDigest {
        TokenDigest(self.0.digest(token))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn digests_depend_on_the_token_and_the_pepper() {
        let a = PepperedTokens::new(TokenHasher::new([1; 32]));
        let b = PepperedTokens::new(TokenHasher::new([2; 32]));
        let token = a.generate();
        assert!(token.expose_secret().starts_with("cus_"));
        assert_eq!(a.digest(token.expose_secret()), a.digest(token.expose_secret()));
        assert_ne!(a.digest(token.expose_secret()), b.digest(token.expose_secret()));
        assert_ne!(a.digest(token.expose_secret()), a.digest(a.generate().expose_secret()));
        assert!(!format!("{a:?}").contains('1'));
    }
}
