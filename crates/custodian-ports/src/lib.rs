//! The ports of Custodian: what the core needs from the world, as `async` traits consumed
//! as `Arc<dyn Port>`.
//!
//! Each method's documentation names the errors it must return; that is the contract the
//! adapters (`custodian-store-sql`, `custodian-store-ssm`, `custodian-vaults`) and the
//! in-memory fakes (`custodian-testkit`) are tested against. No library error type
//! (diesel, reqwest, aws-smithy) appears here: adapters translate theirs.
//!
//! With the `mock` feature every trait gets a `mockall` mock (`MockSecretRepository`, …).

mod cleanup;
mod credential_store;
mod error;
mod inventory;
mod ports;
mod repositories;
mod secret_groups;
mod system;
mod vault;

pub use cleanup::{CleanupQueue, CleanupTask, PendingCleanup};
pub use credential_store::{
    CredentialKey, CredentialKind, CredentialStore, SealedCredential, StoreError, StoredPage, StoredVersion,
};
pub use error::{ConflictKind, RepoError};
pub use inventory::{
    CredentialInventory, CredentialRef, MigrationPhase, RefCursor, StoreBackend, StoreBinding, StoreId, StoreOpenError,
    StoreOpener,
};
pub use ports::{Ports, Repositories};
pub use repositories::{
    AuditFilter, AuditRepository, LocationFilter, LocationRepository, MembershipRepository, Page, Paged, SecretFilter,
    SecretRepository, TeamRepository, TokenRepository, UserRepository, VaultConnectionRepository,
    VirtualAccountRepository,
};
pub use secret_groups::{DeletedGroup, GroupFilter, GroupKeyDetails, KeyFilter, SecretGroupRepository, TeamScope};
pub use system::{Clock, IdGenerator, SystemClock, TokenIssuer, UuidV7Ids};
pub use vault::{Freshness, VaultAccess, VaultError, VaultProvider};

#[cfg(feature = "mock")]
pub use cleanup::MockCleanupQueue;
#[cfg(feature = "mock")]
pub use credential_store::MockCredentialStore;
#[cfg(feature = "mock")]
pub use repositories::{
    MockAuditRepository, MockLocationRepository, MockMembershipRepository, MockSecretRepository, MockTeamRepository,
    MockTokenRepository, MockUserRepository, MockVaultConnectionRepository, MockVirtualAccountRepository,
};
#[cfg(feature = "mock")]
pub use secret_groups::MockSecretGroupRepository;
#[cfg(feature = "mock")]
pub use system::{MockClock, MockIdGenerator, MockTokenIssuer};
#[cfg(feature = "mock")]
pub use vault::MockVaultProvider;
