//! Custodian's use cases and authorization decisions.
//!
//! **API Boundary:** [`Custodian`] is the facade. The HTTP layer calls it for every
//! request, and other Rust services embed it to [`resolve`](Custodian::resolve)
//! credentials at run time. It is built from [`Ports`] (every adapter as `Arc<dyn Port>`)
//! and [`Settings`], and each method takes the authenticated caller ([`Subject`]) and,
//! when it writes an audit event, the [`RequestContext`] of the request.
//!
//! **Architecture Invariant:** this crate depends only on `custodian-domain` and
//! `custodian-ports`; it knows nothing of SQL, HTTP, AWS or any vault provider.
//!
//! Rules the use cases keep:
//! - authorization is decided before anything is written ([`authz`]);
//! - every change is written together with its audit event (the repository ports take the
//!   `AuditEvent`); verifications and resolutions are recorded on their own;
//! - a storage secret row always points at credentials that exist: credentials are written
//!   before the row is committed and removed again when the commit fails;
//! - credentials a committed row no longer uses (old versions after a rotation, everything
//!   after a delete) are removed after the commit; when that fails the task is recorded in
//!   the [`CleanupQueue`] and [`Custodian::run_cleanup`] (`custodian gc`) retries it.

mod audit_log;
pub mod authz;
mod bootstrap;
mod cleanup;
mod credential_writes;
mod error;
mod identity;
mod locations;
mod members;
mod metered;
mod orphan_sweep;
mod resolution;
mod secret_groups;
mod secrets;
mod store_migration;
pub mod subject_cache;
mod teams;
mod vault_cache;
mod vault_connections;
mod virtual_accounts;

#[cfg(test)]
mod test_support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, Outcome, RequestContext, ResourceType, Role, Subject, TeamId, Tier,
    TierTable,
};
pub use custodian_ports::{Ports, Repositories};
use uuid::Uuid;

pub use authz::Action;
pub use bootstrap::{BootstrapInput, Bootstrapped, FIRST_ADMIN_EMAIL, FIRST_TEAM};
pub use cleanup::CleanupReport;
/// The inputs of the team, member and virtual-account use cases are the domain's; named
/// here too for the core's callers.
pub use custodian_domain::{AddMemberInput, NewTeamInput, NewVirtualAccountInput, RoleChangeInput, TeamPatchInput};
pub use custodian_ports::{StoreOpenError, StoreOpener};
pub use error::{CoreError, Requirement};
pub use identity::{IssuedToken, Me, NewUserInput};
pub use locations::LocationView;
pub use orphan_sweep::{OrphanSweep, SweepReport};
pub use resolution::{Verification, VerificationFailure};
pub use secret_groups::{
    GroupListInput, GroupManifestInput, GroupView, Integration, KeyListInput, KeyView, SubjectSummary, VersionView,
};
pub use secrets::SecretDetails;
pub use store_migration::{MigrationError, MigrationReport, StoreMigration};
pub use subject_cache::SubjectCacheSettings;
pub use vault_cache::VaultCacheSettings;
pub use vault_connections::VaultRotationInput;

/// The deployment's settings that the use cases need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The tenant's name (`tenant_name` in the configuration).
    pub tenant_name: String,
    /// Limits of each tier.
    pub tiers: TierTable,
    /// The tier of a new team when its creator does not (or may not) choose one.
    pub default_tier: Tier,
    /// How long a virtual account's old token keeps working after a regeneration that does
    /// not say otherwise.
    pub token_grace_period: Duration,
    /// The longest grace period a regeneration may ask for.
    pub max_token_grace_period: Duration,
    /// How many refused authentications of tokens that name nothing (unknown or
    /// malformed: what random guesses are) one process records one by one each minute;
    /// the rest of the minute is counted, and the count recorded with the next one.
    pub unknown_token_events_per_minute: u32,
    /// Whether reading secret-group values is turned off for every caller (keys stay
    /// readable).
    pub disable_secret_value_view: bool,
    /// The cache of values read from vaults for resolution.
    pub vault_cache: VaultCacheSettings,
    /// How authenticated subjects are remembered between requests.
    pub subject_cache: SubjectCacheSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tenant_name: "default".into(),
            tiers: TierTable::default(),
            default_tier: Tier::Enterprise,
            token_grace_period: Duration::zero(),
            max_token_grace_period: Duration::days(7),
            unknown_token_events_per_minute: 60,
            disable_secret_value_view: false,
            vault_cache: VaultCacheSettings::default(),
            subject_cache: SubjectCacheSettings::default(),
        }
    }
}

/// The facade over every use case. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Custodian {
    ports: Ports,
    settings: Arc<Settings>,
    /// The refused authentications of unknown tokens recorded and counted this minute.
    unknown_refusals: Arc<std::sync::Mutex<identity::RefusalWindow>>,
    /// What resolution read from vaults.
    vault_cache: Arc<vault_cache::VaultCache>,
    /// Authenticated subjects by token digest.
    subjects: Arc<subject_cache::SubjectCache>,
}

impl Custodian {
    /// The facade over `ports`, configured by `settings`.
    pub fn new(ports: Ports, settings: Settings) -> Self {
        Self {
            ports: metered::metered(ports),
            vault_cache: Arc::new(vault_cache::VaultCache::new(settings.vault_cache)),
            subjects: Arc::new(subject_cache::SubjectCache::new(settings.subject_cache)),
            settings: Arc::new(settings),
            unknown_refusals: Arc::default(),
        }
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    /// Whether the deployment can serve: its database answers a cheap read
    /// (`Unavailable` otherwise). For a readiness probe; it writes nothing.
    pub async fn check_ready(&self) -> Result<(), CoreError> {
        self.ports.repos.users.count().await?;
        Ok(())
    }

    /// Decide whether `subject` may perform `action` in `team` (see [`authz`]); on success,
    /// the caller's effective role there. `NotFound` when the team does not exist.
    pub async fn authorize(&self, subject: &Subject, team: TeamId, action: Action) -> Result<Role, CoreError> {
        let role = self.authorize_without_team_read(subject, team, action).await?;
        if subject.is_tenant_admin() {
            // A tenant admin acts in every team, but only in teams that exist: a list of a
            // missing team's records is a 404, not an empty page.
            self.ports.repos.teams.get(team).await?;
        }
        Ok(role)
    }

    /// [`Custodian::authorize`] without reading the team for a tenant admin, for a use case
    /// whose next step learns whether the team exists anyway: it reads the team, or looks up
    /// one of the team's records by team and id (a record keeps its team from being
    /// deleted, so that lookup answers `NotFound` for a missing team, as `authorize` would).
    /// Members and virtual accounts are decided exactly as by `authorize`.
    pub(crate) async fn authorize_without_team_read(
        &self,
        subject: &Subject,
        team: TeamId,
        action: Action,
    ) -> Result<Role, CoreError> {
        let membership = match subject {
            Subject::User {
                id,
                tenant_admin: false,
                ..
            } => self.ports.repos.memberships.get(team, *id).await?.map(|m| m.role),
            Subject::User { .. } | Subject::VirtualAccount { .. } => None,
        };
        authz::decide(subject, team, membership, action)
    }

    /// An audit event by `subject`, as of now, for the request `ctx`.
    fn audit_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: Option<TeamId>,
        action: AuditAction,
        resource: (ResourceType, Option<Uuid>, Option<&str>),
        outcome: Outcome,
    ) -> AuditEvent {
        self.event_by(Some(subject), ctx, team, action, resource, outcome)
    }

    /// An audit event as of now, for the request `ctx`, by `actor`: `None` for what no
    /// subject did (a refused authentication, the operator at the console).
    fn event_by(
        &self,
        actor: Option<&Subject>,
        ctx: &RequestContext,
        team: Option<TeamId>,
        action: AuditAction,
        resource: (ResourceType, Option<Uuid>, Option<&str>),
        outcome: Outcome,
    ) -> AuditEvent {
        let (resource_type, resource_id, resource_name) = resource;
        AuditEvent {
            id: AuditEventId::from_uuid(self.ports.ids.new_id()),
            occurred_at: self.now(),
            team_id: team,
            actor_id: actor.map(Subject::id),
            actor_kind: actor.map(Subject::kind),
            action,
            resource_type,
            resource_id,
            resource_name: resource_name.map(str::to_owned),
            outcome,
            detail: None,
            context: ctx.clone(),
        }
    }

    /// Record an event that goes with no other write (a verification, a resolution). An
    /// operation that cannot be audited is not reported as done: the error is returned.
    async fn record(&self, event: &AuditEvent) -> Result<(), CoreError> {
        self.ports.repos.audit.record(event).await.map_err(|error| {
            tracing::error!(
                action = event.action.as_str(),
                resource_type = event.resource_type.as_str(),
                resource_id = ?event.resource_id,
                %error,
                "could not record an audit event"
            );
            CoreError::from(error)
        })
    }

    /// `team`'s tier, from memory while it is remembered (see `subject_cache.rs`), else
    /// read. `NotFound` for a team that does not exist, unless it was removed meanwhile
    /// through another server: a write into it is then refused by its foreign key.
    pub(crate) async fn team_tier(&self, team: TeamId) -> Result<Tier, CoreError> {
        match self.subjects.tier(team, &*self.ports.repos.tokens).await {
            subject_cache::Lookup::Hit(tier) => Ok(tier),
            subject_cache::Lookup::Miss { generation } => {
                let tier = self.ports.repos.teams.get(team).await?.tier;
                self.subjects.keep_tier(team, tier, generation);
                Ok(tier)
            }
        }
    }

    fn limit(&self, tier: Tier, kind: custodian_domain::LimitKind) -> Option<u32> {
        self.settings.tiers.limit(tier, kind)
    }
}
