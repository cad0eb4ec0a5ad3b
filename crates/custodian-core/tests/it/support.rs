//! A `Custodian` over the in-memory repositories and credential store, with a clock the
//! test moves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use custodian_core::{Custodian, NewTeamInput, Ports, Repositories, Settings};
use custodian_domain::TeamId;
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, CreateSecretInput, DisplayName, Email, Outcome, RequestContext,
    ResourceType, Subject, Team, User, UserId,
};
use custodian_ports::{
    AuditFilter, AuditRepository, Clock, CredentialKey, CredentialStore, IdGenerator, Page, Paged, RepoError,
    StoreError, StoredPage, UuidV7Ids,
};
use custodian_testkit::memory::MemoryRepos;
use custodian_testkit::memory_cleanup::MemoryCleanupQueue;
use custodian_testkit::memory_store::MemoryCredentialStore;
use custodian_testkit::tokens::token_issuer;
use secrecy::{ExposeSecret, SecretString};

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

/// The memory store, with a switch that makes its removals (`prune`, `delete_all`) fail as
/// a store that went down right after a commit would.
pub(crate) struct FlakyStore {
    inner: Arc<MemoryCredentialStore>,
    removals_fail: AtomicBool,
    /// A value whose writes fail (a store that goes down in the middle of a request).
    failing_value: Mutex<Option<String>>,
}

impl FlakyStore {
    /// Make every write of `value` fail as an unavailable store (`None`: none fails).
    pub(crate) fn fail_writes_of(&self, value: Option<&str>) {
        *self.failing_value.lock().expect("not poisoned") = value.map(str::to_owned);
    }

    pub(crate) fn fail_removals(&self, fail: bool) {
        self.removals_fail.store(fail, Ordering::SeqCst);
    }

    fn removal(&self) -> Result<(), StoreError> {
        if self.removals_fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                message: "the store is down".into(),
                retry_after: None,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl CredentialStore for FlakyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        let failing = self.failing_value.lock().expect("not poisoned").clone();
        if failing.is_some_and(|f| f == value.expose_secret()) {
            return Err(StoreError::Unavailable {
                message: "the store went down".into(),
                retry_after: None,
            });
        }
        self.inner.put(key, version, value).await
    }
    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        self.inner.get(key, version).await
    }
    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        self.inner.delete_version(key, version).await
    }
    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        self.removal()?;
        self.inner.prune(key, keep).await
    }
    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.removal()?;
        self.inner.delete_all(key).await
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        self.inner.list_stored(page, limit).await
    }
}

/// The memory audit repository, keeping a copy of every event recorded on its own
/// (`record`), team or no team: failed authentications have none.
pub(crate) struct RecordingAudit {
    inner: Arc<dyn AuditRepository>,
    recorded: Mutex<Vec<AuditEvent>>,
}

impl RecordingAudit {
    pub(crate) fn recorded(&self) -> Vec<AuditEvent> {
        self.recorded.lock().expect("the audit lock is never poisoned").clone()
    }
}

#[async_trait]
impl AuditRepository for RecordingAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), RepoError> {
        self.inner.record(event).await?;
        self.recorded
            .lock()
            .expect("the audit lock is never poisoned")
            .push(event.clone());
        Ok(())
    }
    async fn list(&self, team: TeamId, filter: &AuditFilter, page: Page) -> Result<Paged<AuditEvent>, RepoError> {
        self.inner.list(team, filter, page).await
    }
    async fn list_tenant(&self, filter: &AuditFilter, page: Page) -> Result<Paged<AuditEvent>, RepoError> {
        self.inner.list_tenant(filter, page).await
    }
}

pub(crate) struct World {
    pub(crate) custodian: Custodian,
    pub(crate) store: Arc<MemoryCredentialStore>,
    pub(crate) flaky: Arc<FlakyStore>,
    pub(crate) audit: Arc<RecordingAudit>,
    pub(crate) cleanup: Arc<MemoryCleanupQueue>,
    pub(crate) clock: Arc<TestClock>,
    pub(crate) admin: Subject,
    /// The ports the facade was built over: a second facade over them is a second server
    /// on the same database.
    pub(crate) ports: Ports,
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
        let set = repos.repositories();
        let store = Arc::new(MemoryCredentialStore::default());
        let cleanup = Arc::new(MemoryCleanupQueue::default());
        let flaky = Arc::new(FlakyStore {
            inner: store.clone(),
            removals_fail: AtomicBool::new(false),
            failing_value: Mutex::new(None),
        });
        let audit = Arc::new(RecordingAudit {
            inner: set.audit.clone(),
            recorded: Mutex::new(Vec::new()),
        });
        let clock = Arc::new(TestClock(Mutex::new(
            Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0)
                .single()
                .expect("a valid instant"),
        )));
        let repos = Repositories {
            audit: audit.clone(),
            cleanup: cleanup.clone(),
            ..set
        };
        let ports = Ports::new(repos, flaky.clone(), token_issuer())
            .with_clock(clock.clone())
            .with_ids(Arc::new(UuidV7Ids));
        let admin = User {
            id: UserId::from_uuid(UuidV7Ids.new_id()),
            email: Email::parse_at("email", "admin@localhost").expect("a valid email"),
            display_name: DisplayName::parse_at("display_name", "Admin").expect("a valid name"),
            tenant_admin: true,
            created_at: clock.now(),
            disabled_at: None,
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
        ports
            .repos
            .users
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
            custodian: Custodian::new(ports.clone(), settings),
            ports,
            store,
            flaky,
            audit,
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
