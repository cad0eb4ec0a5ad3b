use chrono::{DateTime, Utc};
use custodian_domain::TokenDigest;
use secrecy::SecretString;
use uuid::Uuid;

/// The current time. Tests use a fixed or stepping clock.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Fresh identifiers for new records.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> Uuid;
}

/// Issues bearer tokens and computes the digest they are stored and looked up by
/// (HMAC-SHA256 under the server's pepper; see `custodian-crypto`).
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait TokenIssuer: Send + Sync {
    /// A fresh token: `cus_` followed by at least 256 random bits.
    fn generate(&self) -> SecretString;
    /// The digest of `token`; equal tokens give equal digests.
    fn digest(&self, token: &str) -> TokenDigest;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Time-ordered v7 uuids (index-friendly).
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
