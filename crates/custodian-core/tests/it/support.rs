//! A `Custodian` over the in-memory repositories and credential store, with a clock the
//! test moves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use custodian_core::{Custodian, NewTeamInput, Ports, Settings};
use custodian_crypto::{TokenHasher, generate_token};
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, CreateSecretInput, DisplayName, Email, Outcome, RequestContext,
    ResourceType, Subject, Team, TokenDigest, User, UserId,
};
use custodian_ports::{Clock, IdGenerator, TokenIssuer, UuidV7Ids};
use custodian_testkit::memory::MemoryRepos;
use custodian_testkit::memory_cleanup::MemoryCleanupQueue;
use custodian_testkit::memory_store::MemoryCredentialStore;
use secrecy::SecretString;

/// A clock that stands still until the test moves it.
pub(crate) struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub(crate) fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("the clock lock is never poisoned");
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("the clock lock is never poisoned")
    }
}

struct PepperedTokens(TokenHasher);

impl TokenIssuer for PepperedTokens {
    fn generate(&self) -> SecretString {
        generate_token()
    }

    fn digest(&self, token: &str) -> TokenDigest {
        TokenDigest(self.0.digest(token))
    }
}

pub(crate) struct World {
    pub(crate) custodian: Custodian,
    pub(crate) store: Arc<MemoryCredentialStore>,
    #[allow(dead_code, reason = "read by the clean-up stories")]
    pub(crate) cleanup: Arc<MemoryCleanupQueue>,
    pub(crate) clock: Arc<TestClock>,
    pub(crate) admin: Subject,
}

pub(crate) fn ctx() -> RequestContext {
    RequestContext {
        request_id: Some("it".into()),
        ..RequestContext::default()
    }
}

impl World {
    pub(crate) async fn new(settings: Settings) -> Self {
        let repos = MemoryRepos::new();
        let set = repos.repo_set();
        let store = Arc::new(MemoryCredentialStore::default());
        let cleanup = Arc::new(MemoryCleanupQueue::default());
        let clock = Arc::new(TestClock(Mutex::new(
            Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0)
                .single()
                .expect("a valid instant"),
        )));
        let ports = Ports {
            users: set.users.clone(),
            teams: set.teams,
            memberships: set.memberships,
            virtual_accounts: set.virtual_accounts,
            tokens: set.tokens,
            secrets: set.secrets,
            locations: set.locations,
            vault_connections: set.vault_connections,
            audit: set.audit,
            credential_store: store.clone(),
            cleanup: cleanup.clone(),
            vault_providers: HashMap::new(),
            clock: clock.clone(),
            ids: Arc::new(UuidV7Ids),
            token_issuer: Arc::new(PepperedTokens(TokenHasher::new([3; 32]))),
        };
        let admin = User {
            id: UserId::from_uuid(UuidV7Ids.new_id()),
            email: Email::parse_at("email", "admin@localhost").expect("a valid email"),
            display_name: DisplayName::parse_at("display_name", "Admin").expect("a valid name"),
            tenant_admin: true,
            created_at: clock.now(),
        };
        let event = AuditEvent {
            id: AuditEventId::from_uuid(UuidV7Ids.new_id()),
            occurred_at: clock.now(),
            team_id: None,
            actor_id: None,
            actor_kind: None,
            action: AuditAction::Create,
            resource_type: ResourceType::User,
            resource_id: Some(admin.id.as_uuid()),
            resource_name: None,
            outcome: Outcome::Success,
            detail: None,
            context: ctx(),
        };
        set.users
            .create(&admin, None, &event)
            .await
            .expect("the admin is created");
        let admin = Subject::User {
            id: admin.id,
            email: admin.email,
            display_name: admin.display_name,
            tenant_admin: true,
        };
        Self {
            custodian: Custodian::new(ports, settings),
            store,
            cleanup,
            clock,
            admin,
        }
    }

    pub(crate) async fn team(&self, name: &str, tier: &str) -> Team {
        self.custodian
            .create_team(
                &self.admin,
                &ctx(),
                NewTeamInput {
                    name: Some(name.into()),
                    tier: Some(tier.into()),
                    ..NewTeamInput::default()
                },
            )
            .await
            .expect("the team is created")
    }
}

pub(crate) fn s3_input(name: &str, secret: &str) -> CreateSecretInput {
    CreateSecretInput {
        name: Some(name.into()),
        secret_type: Some("s3".into()),
        auth_method: Some("s3_access_key".into()),
        credentials: Some(vec![
            ("access_key_id".into(), SecretString::from("AKIAEXAMPLE")),
            ("secret_access_key".into(), SecretString::from(secret)),
        ]),
        ..CreateSecretInput::default()
    }
}
