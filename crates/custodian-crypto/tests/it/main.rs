//! Integration tests of `custodian-crypto` through its public API only.

mod envelope;
mod keyring_file;
mod master_key;
mod redaction;
mod rotation;
mod tokens;

use custodian_crypto::Aad;
use uuid::Uuid;

/// The associated data of one record, which tests then vary field by field.
pub(crate) fn record() -> Aad<'static> {
    Aad {
        tenant: "default",
        team_id: Uuid::from_u128(0x1111),
        kind: "storage-secret",
        record_id: Uuid::from_u128(0x2222),
        version: 3,
    }
}
