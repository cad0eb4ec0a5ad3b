use chrono::{DateTime, SubsecRound, Utc};
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

/// The system clock, to the microsecond: the precision both databases keep, so a time
/// answered at creation equals the same time read back later.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
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

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::*;

    #[test]
    fn the_system_clock_keeps_microseconds_only() {
        for _ in 0..100 {
            assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
        }
    }
}
