//! The secret-group contract suite on SQLite and PostgreSQL.
//!
//! The suite creates users and teams through the `RepoSet` and reads the audit trail from
//! it. Users and audit events are this crate's repositories; teams are inserted by `Teams`
//! below, with plain SQL, until the crate has its own team repository. The ports the suite
//! never calls are mocks.

use std::sync::Arc;

use async_trait::async_trait;
use custodian_domain::{AuditEvent, Membership, Role, Team, TeamId, UserId};
use custodian_ports::{
    MockLocationRepository, MockMembershipRepository, MockSecretRepository, MockTokenRepository,
    MockVaultConnectionRepository, MockVirtualAccountRepository, Page, Paged, RepoError, TeamRepository,
};
use custodian_store_sql::test_support::{postgres, query_values, sqlite};
use custodian_store_sql::{Database, SqlAuditRepository, SqlSecretGroupRepository, SqlUserRepository};
use custodian_testkit::contract::secret_groups::{GroupStores, cases};
use custodian_testkit::{RepoSet, run_cases};

/// Inserts teams and their first owner; nothing else.
struct Teams(Database);

fn not_kept() -> RepoError {
    RepoError::Internal("not needed by the secret-group suite".into())
}

/// A time as SQL text (whole seconds, as the suite uses).
fn sql_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string()
}

#[async_trait]
impl TeamRepository for Teams {
    async fn create(&self, team: &Team, owner: &Membership, _: &AuditEvent) -> Result<(), RepoError> {
        // Every value below is an id, a generated name, an enum or a time: nothing to escape.
        let insert_team = format!(
            "INSERT INTO teams (id, name, description, tier, created_at, created_by, updated_at) \
             VALUES ('{}', '{}', NULL, '{}', '{}', '{}', '{}') RETURNING id AS value",
            team.id,
            team.name,
            team.tier.as_str(),
            sql_time(team.created_at),
            team.created_by,
            sql_time(team.updated_at),
        );
        query_values(&self.0, &insert_team).await?;
        let insert_owner = format!(
            "INSERT INTO memberships (team_id, user_id, role, created_at) \
             VALUES ('{}', '{}', '{}', '{}') RETURNING team_id AS value",
            owner.team_id,
            owner.user_id,
            owner.role.as_str(),
            sql_time(owner.created_at),
        );
        query_values(&self.0, &insert_owner).await?;
        Ok(())
    }
    async fn get(&self, _: TeamId) -> Result<Team, RepoError> {
        Err(not_kept())
    }
    async fn list_all(&self, _: Page) -> Result<Paged<Team>, RepoError> {
        Err(not_kept())
    }
    async fn list_for_user(&self, _: UserId, _: Page) -> Result<Paged<(Team, Role)>, RepoError> {
        Err(not_kept())
    }
    async fn update(&self, _: &Team, _: &AuditEvent) -> Result<(), RepoError> {
        Err(not_kept())
    }
    async fn delete(&self, _: TeamId, _: &AuditEvent) -> Result<(), RepoError> {
        Err(not_kept())
    }
}

fn stores(db: Database) -> GroupStores {
    GroupStores {
        repos: RepoSet {
            users: Arc::new(SqlUserRepository::new(db.clone())),
            teams: Arc::new(Teams(db.clone())),
            memberships: Arc::new(MockMembershipRepository::new()),
            virtual_accounts: Arc::new(MockVirtualAccountRepository::new()),
            tokens: Arc::new(MockTokenRepository::new()),
            secrets: Arc::new(MockSecretRepository::new()),
            locations: Arc::new(MockLocationRepository::new()),
            vault_connections: Arc::new(MockVaultConnectionRepository::new()),
            audit: Arc::new(SqlAuditRepository::new(db.clone())),
        },
        groups: Arc::new(SqlSecretGroupRepository::new(db)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_passes_the_secret_group_contract() {
    run_cases("sqlite", "secret_groups", &cases(), || async { stores(sqlite().await) }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_passes_the_secret_group_contract() {
    // `None` only when PostgreSQL tests are switched off (CUSTODIAN_TEST_POSTGRES=skip).
    let Some(first) = postgres().await else {
        return;
    };
    let mut first = Some(first);
    run_cases("postgres", "secret_groups", &cases(), || {
        let ready = first.take();
        async move {
            let db = match ready {
                Some(db) => db,
                None => postgres().await.expect("PostgreSQL stays available"),
            };
            stores(db)
        }
    })
    .await;
}
