//! Test fixtures: a `Custodian` over mockall mocks, a fixed clock, counting ids, a
//! predictable token issuer and sample records.
//!
//! A mock with no expectation panics when called, so a test that sets none on the
//! credential store or a repository's writes also proves they were never reached.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use custodian_domain::{
    AuthMethod, CredentialField, Description, DisplayName, Email, FieldMapping, FieldMappings, LinkedLocation,
    Location, LocationId, Membership, Name, Role, SecretId, SecretStorage, SecretType, StorageSecret, Subject, Team,
    TeamId, Tier, TokenDigest, User, UserId, VaultConnection, VaultConnectionId, VaultReference, VaultSettings,
    VaultType, VirtualAccountId,
};
use custodian_ports::{
    Clock, IdGenerator, MockAuditRepository, MockCleanupQueue, MockCredentialStore, MockLocationRepository,
    MockMembershipRepository, MockSecretGroupRepository, MockSecretRepository, MockTeamRepository, MockTokenRepository,
    MockUserRepository, MockVaultConnectionRepository, MockVaultProvider, MockVirtualAccountRepository, StoreError,
    TokenIssuer,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::{Custodian, Ports, Repositories, Settings};

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

struct CountingIds(AtomicU64);

impl IdGenerator for CountingIds {
    fn new_id(&self) -> Uuid {
        Uuid::from_u128(u128::from(0x1000 + self.0.fetch_add(1, Ordering::SeqCst)))
    }
}

/// Tokens `cus_issued_N`; the digest is the token's bytes, padded (predictable in tests).
pub(crate) struct FakeIssuer(AtomicU64);

impl TokenIssuer for FakeIssuer {
    fn generate(&self) -> SecretString {
        SecretString::from(format!("cus_issued_{}", self.0.fetch_add(1, Ordering::SeqCst)))
    }

    fn digest(&self, token: &str) -> TokenDigest {
        digest_of(token)
    }
}

pub(crate) fn digest_of(token: &str) -> TokenDigest {
    let mut bytes = [0u8; 32];
    for (i, b) in token.bytes().enumerate() {
        bytes[i % 32] ^= b.wrapping_add(i as u8);
    }
    TokenDigest(bytes)
}

/// One mock per port; call [`Mocks::build`] once the expectations are set.
#[derive(Default)]
pub(crate) struct Mocks {
    pub(crate) users: MockUserRepository,
    pub(crate) teams: MockTeamRepository,
    pub(crate) memberships: MockMembershipRepository,
    pub(crate) virtual_accounts: MockVirtualAccountRepository,
    pub(crate) tokens: MockTokenRepository,
    pub(crate) secrets: MockSecretRepository,
    pub(crate) locations: MockLocationRepository,
    pub(crate) vault_connections: MockVaultConnectionRepository,
    pub(crate) audit: MockAuditRepository,
    pub(crate) store: MockCredentialStore,
    pub(crate) cleanup: MockCleanupQueue,
    pub(crate) vaults: Vec<MockVaultProvider>,
    pub(crate) settings: Settings,
}

impl Mocks {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn build(mut self) -> Custodian {
        // Nothing changes identities behind the core's back unless a test says so.
        self.tokens.expect_identity_epoch().returning(|| Ok(0));
        // The core labels the store's calls with its backend.
        self.store.expect_backend().return_const("local");
        // Credentials are stored on their own before their row, unless a test's store seals
        // them for the row's transaction (an expectation set earlier matches first).
        self.store.expect_seal_for_commit().returning(|_, _, _| Ok(None));
        let repos = Repositories {
            users: Arc::new(self.users),
            teams: Arc::new(self.teams),
            memberships: Arc::new(self.memberships),
            virtual_accounts: Arc::new(self.virtual_accounts),
            tokens: Arc::new(self.tokens),
            secrets: Arc::new(self.secrets),
            locations: Arc::new(self.locations),
            vault_connections: Arc::new(self.vault_connections),
            secret_groups: Arc::new(MockSecretGroupRepository::new()),
            audit: Arc::new(self.audit),
            cleanup: Arc::new(self.cleanup),
        };
        let ports = self.vaults.into_iter().fold(
            Ports::new(repos, Arc::new(self.store), Arc::new(FakeIssuer(AtomicU64::new(0))))
                .with_clock(Arc::new(FixedClock))
                .with_ids(Arc::new(CountingIds(AtomicU64::new(0)))),
            |ports, vault| ports.with_vault_provider(Arc::new(vault)),
        );
        Custodian::new(ports, self.settings)
    }

    /// `user` has `role` in `team` (any number of lookups).
    pub(crate) fn member(&mut self, team: TeamId, user: UserId, role: Role) -> &mut Self {
        self.memberships
            .expect_get()
            .withf(move |t, u| *t == team && *u == user)
            .returning(move |t, u| {
                Ok(Some(Membership {
                    team_id: t,
                    user_id: u,
                    role,
                    created_at: now(),
                }))
            });
        self
    }

    /// `user` belongs to no team.
    pub(crate) fn stranger(&mut self, user: UserId) -> &mut Self {
        self.memberships
            .expect_get()
            .withf(move |_, u| *u == user)
            .returning(|_, _| Ok(None));
        self
    }

    /// `teams.get(team)` answers `team` (any number of times).
    pub(crate) fn team(&mut self, team: Team) -> &mut Self {
        self.teams
            .expect_get()
            .withf(move |id| *id == team.id)
            .returning(move |_| Ok(team.clone()));
        self
    }

    /// `secrets.get` answers `secret` for its team and id.
    pub(crate) fn secret(&mut self, secret: StorageSecret) -> &mut Self {
        self.secrets
            .expect_get()
            .withf({
                let (t, i) = (secret.team_id, secret.id);
                move |team, id| *team == t && *id == i
            })
            .returning(move |_, _| Ok(secret.clone()));
        self
    }

    /// `secrets.get_with_locations` answers `secret` with the locations `linked` for its
    /// team and id (any number of lookups).
    pub(crate) fn secret_in_use(&mut self, secret: StorageSecret, linked: Vec<LinkedLocation>) -> &mut Self {
        self.secrets
            .expect_get_with_locations()
            .withf({
                let (t, i) = (secret.team_id, secret.id);
                move |team, id| *team == t && *id == i
            })
            .returning(move |_, _| Ok((secret.clone(), linked.clone())));
        self
    }

    /// `audit.record` accepts every event.
    pub(crate) fn audit_anything(&mut self) -> &mut Self {
        self.audit.expect_record().returning(|_| Ok(()));
        self
    }
}

pub(crate) fn team_id() -> TeamId {
    TeamId::from_uuid(Uuid::from_u128(1))
}

pub(crate) fn other_team_id() -> TeamId {
    TeamId::from_uuid(Uuid::from_u128(2))
}

pub(crate) fn team(tier: Tier) -> Team {
    Team {
        id: team_id(),
        name: Name::parse_at("name", "data").unwrap(),
        description: None,
        tier,
        created_at: now(),
        created_by: UserId::from_uuid(Uuid::from_u128(100)).into(),
        updated_at: now(),
    }
}

pub(crate) fn alice_id() -> UserId {
    UserId::from_uuid(Uuid::from_u128(100))
}

pub(crate) fn bob_id() -> UserId {
    UserId::from_uuid(Uuid::from_u128(101))
}

pub(crate) fn user_record(id: UserId, email: &str) -> User {
    User {
        id,
        email: Email::parse_at("email", email).unwrap(),
        display_name: DisplayName::parse_at("display_name", "Someone").unwrap(),
        tenant_admin: false,
        created_at: now(),
        disabled_at: None,
    }
}

/// Alice, a user who is not a tenant admin.
pub(crate) fn alice() -> Subject {
    Subject::User {
        id: alice_id(),
        email: Email::parse_at("email", "alice@example.com").unwrap(),
        display_name: DisplayName::parse_at("display_name", "Alice").unwrap(),
        tenant_admin: false,
    }
}

/// The tenant admin.
pub(crate) fn root() -> Subject {
    Subject::User {
        id: UserId::from_uuid(Uuid::from_u128(99)),
        email: Email::parse_at("email", "admin@localhost").unwrap(),
        display_name: DisplayName::parse_at("display_name", "Admin").unwrap(),
        tenant_admin: true,
    }
}

pub(crate) fn account_id() -> VirtualAccountId {
    VirtualAccountId::from_uuid(Uuid::from_u128(300))
}

pub(crate) fn account(team: TeamId, role: Role) -> Subject {
    Subject::VirtualAccount {
        id: account_id(),
        team_id: team,
        name: Name::parse_at("name", "worker").unwrap(),
        role,
    }
}

pub(crate) fn secret_id() -> SecretId {
    SecretId::from_uuid(Uuid::from_u128(500))
}

pub(crate) fn vault_id() -> VaultConnectionId {
    VaultConnectionId::from_uuid(Uuid::from_u128(600))
}

/// A managed S3 secret at credentials version `version`.
pub(crate) fn managed_secret(version: i64) -> StorageSecret {
    StorageSecret {
        id: secret_id(),
        team_id: team_id(),
        name: Name::parse_at("name", "prod-s3").unwrap(),
        description: Some(Description::parse_at("description", "").unwrap()),
        secret_type: SecretType::S3,
        auth_method: AuthMethod::S3AccessKey,
        storage: SecretStorage::Managed,
        credentials_version: version,
        credentials_updated_at: now(),
        created_at: now(),
        created_by: alice_id().into(),
        updated_at: now(),
        updated_by: alice_id().into(),
    }
}

/// An external S3 secret in the Doppler connection [`vault_id`].
pub(crate) fn external_secret() -> StorageSecret {
    let mappings = FieldMappings::from_stored(vec![
        FieldMapping {
            field: CredentialField::AccessKeyId,
            reference: VaultReference::parse(VaultType::Doppler, "S3_KEY_ID").unwrap(),
        },
        FieldMapping {
            field: CredentialField::SecretAccessKey,
            reference: VaultReference::parse(VaultType::Doppler, "S3_SECRET").unwrap(),
        },
    ]);
    StorageSecret {
        storage: SecretStorage::External {
            vault_connection_id: vault_id(),
            field_mappings: mappings,
        },
        ..managed_secret(1)
    }
}

pub(crate) fn doppler_connection() -> VaultConnection {
    VaultConnection {
        id: vault_id(),
        team_id: team_id(),
        name: Name::parse_at("name", "doppler").unwrap(),
        description: None,
        settings: VaultSettings::Doppler {
            project: "backend".into(),
            config: "prd".into(),
        },
        secret_version: 3,
        last_verified_at: None,
        created_at: now(),
        created_by: alice_id().into(),
        updated_at: now(),
        updated_by: alice_id().into(),
    }
}

pub(crate) fn location_id() -> LocationId {
    LocationId::from_uuid(Uuid::from_u128(700))
}

pub(crate) fn location(location_type: SecretType) -> Location {
    Location {
        id: location_id(),
        team_id: team_id(),
        name: Name::parse_at("name", "raw-bucket").unwrap(),
        description: None,
        location_type,
        bucket_name: custodian_domain::BucketName::parse_at("bucket_name", "raw").unwrap(),
        region: None,
        endpoint_url: None,
        secret_id: secret_id(),
        created_at: now(),
        created_by: alice_id().into(),
        updated_at: now(),
        updated_by: alice_id().into(),
    }
}

/// Raw S3 credentials as a request carries them.
pub(crate) fn s3_credentials(key_id: &str, secret: &str) -> Vec<(String, SecretString)> {
    vec![
        ("access_key_id".to_owned(), SecretString::from(key_id)),
        ("secret_access_key".to_owned(), SecretString::from(secret)),
    ]
}

/// What the credential store fails with when it is down or throttling.
pub(crate) fn store_down() -> StoreError {
    StoreError::Unavailable {
        message: "down".into(),
        retry_after: None,
    }
}
