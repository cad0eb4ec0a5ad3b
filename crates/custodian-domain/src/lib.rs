//! Custodian's domain: ids, enums, the secret_type/auth_method matrix, credential schemas
//! and every validation rule of the product.
//!
//! **Architecture Invariant:** this crate knows nothing of HTTP, SQL, AWS or any vault
//! provider. Inputs arrive as plain strings (`*Input` structs), are parsed into checked
//! types (`New*`, `*Update`), and every failing field is reported at once with its path.
//! Credentials are `secrecy` values from parsing on; nothing here prints one.

pub mod audit;
pub mod credentials;
pub mod enums;
pub mod error;
pub mod identity;
pub mod ids;
pub mod location;
pub mod secret;
pub mod secret_group;
pub mod team;
pub mod text;
pub mod tier;
pub mod vault;

pub use audit::{AuditEvent, RequestContext};
pub use credentials::Credentials;
pub use enums::{
    AuditAction, AuthMethod, CredentialField, Outcome, ResourceType, Role, SecretType, StorageMode, Tier,
    UnknownVariant, VaultType,
};
pub use error::{FieldError, ValidationErrors};
pub use identity::{
    Membership, Subject, SubjectKind, Team, TokenDigest, TokenOwner, TokenRecord, User, VirtualAccount,
};
pub use ids::{
    AuditEventId, GroupSecretId, GroupSecretVersionId, LocationId, SecretGroupId, SecretId, SubjectId, TeamId, TokenId,
    UserId, VaultConnectionId, VirtualAccountId,
};
pub use location::{EndpointUrl, KnownSecret, Location, LocationInput, LocationPatch, LocationPatchInput, NewLocation};
pub use secret::{
    CreateSecretInput, KnownVault, LinkedLocation, NewSecretStorage, NewStorageSecret, SecretStorage, SecretUpdate,
    StorageSecret, UpdateRejection, UpdateSecretInput,
};
pub use secret_group::{
    ChangedGroupSecret, CreateGroupInput, GroupChanges, GroupDraft, GroupName, GroupSecret, GroupSecretInput,
    GroupSecretValue, GroupSecretVersion, GroupUpdate, GroupUpdatePlan, KeyFqn, NewGroupKey, NewGroupSecret,
    NewSecretGroup, SecretGroup, SecretKey, UpdateGroupInput, ValueToStore, active_reads_since, group_fqn,
    integration_fqn, key_fqn, parse_group_fqn,
};
pub use team::{
    AddMemberInput, MemberRef, NewMember, NewTeam, NewTeamInput, NewVirtualAccount, NewVirtualAccountInput, RoleChange,
    RoleChangeInput, TeamPatch, TeamPatchInput, UserPatch, UserPatchInput,
};
pub use text::{BucketName, Description, DisplayName, Email, Name, Region, TokenName};
pub use tier::{LimitKind, TierLimits, TierTable};
pub use vault::{
    FieldMapping, FieldMappings, NewVaultConnection, RawFieldMapping, VaultConnection, VaultConnectionInput,
    VaultReference, VaultRotation, VaultSecret, VaultSettings,
};
