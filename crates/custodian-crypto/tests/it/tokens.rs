use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use custodian_crypto::{Keyring, TOKEN_PREFIX, TokenHasher, generate_token};
use secrecy::ExposeSecret;

#[test]
fn tokens_have_the_prefix_and_at_least_256_random_bits() {
    let token = generate_token();
    let token = token.expose_secret();
    assert_eq!(TOKEN_PREFIX, "cus_");
    let body = token.strip_prefix("cus_").expect("prefix");
    let random = URL_SAFE_NO_PAD.decode(body).expect("base64url without padding");
    assert!(random.len() * 8 >= 256);
    assert!(body.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
}

#[test]
fn tokens_are_distinct() {
    let tokens: HashSet<String> = (0..2000).map(|_| generate_token().expose_secret().to_owned()).collect();
    assert_eq!(tokens.len(), 2000);
}

#[test]
fn digest_is_stable_for_one_pepper() {
    let a = TokenHasher::new([1u8; 32]);
    let b = TokenHasher::new([1u8; 32]);
    let token = generate_token();
    assert_eq!(a.digest(token.expose_secret()), b.digest(token.expose_secret()));
    assert_eq!(a.digest(token.expose_secret()), a.digest(token.expose_secret()));
    assert_ne!(a.digest("cus_a"), a.digest("cus_b"));
}

#[test]
fn digest_depends_on_the_pepper() {
    let mut other = [1u8; 32];
    other[31] = 2;
    assert_ne!(
        TokenHasher::new([1u8; 32]).digest("cus_a"),
        TokenHasher::new(other).digest("cus_a")
    );
    assert_ne!(
        Keyring::generate().token_hasher().digest("cus_a"),
        Keyring::generate().token_hasher().digest("cus_a")
    );
}

#[test]
fn verify_accepts_only_the_matching_token() {
    let hasher = Keyring::generate().token_hasher();
    let token = generate_token();
    let digest = hasher.digest(token.expose_secret());
    assert!(hasher.verify(token.expose_secret(), &digest));
    assert!(!hasher.verify(generate_token().expose_secret(), &digest));
    assert!(!hasher.verify("", &digest));
}
