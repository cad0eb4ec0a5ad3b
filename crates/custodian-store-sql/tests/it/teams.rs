//! Team rules that need rows no repository of this crate's identity part writes.

use custodian_domain::{AuditAction, ResourceType};
use custodian_ports::{ConflictKind, RepoError, TeamRepository};
use custodian_store_sql::{Database, SqlTeamRepository, test_support};
use custodian_testkit::contract::fixtures::{audit, user_and_team};

use crate::support::{postgres_skipped, repo_set};

/// `Conflict(TeamNotEmpty)` while the team holds a vault connection; the team stays.
async fn delete_of_a_team_holding_a_vault_connection_is_team_not_empty(db: Database) {
    let repos = repo_set(&db);
    let owned = user_and_team(&repos).await;
    let team = owned.team_id();
    let inserted = test_support::execute(
        &db,
        &format!(
            "INSERT INTO vault_connections (id, team_id, name, description, vault_type, settings, secret_version, \
             last_verified_at, created_at, created_by, updated_at, updated_by) VALUES \
             ('{id}', '{team}', 'vault', NULL, 'onepassword', '{{}}', 1, NULL, '2026-01-01 00:00:00', '{actor}', \
             '2026-01-01 00:00:00', '{actor}')",
            id = uuid::Uuid::now_v7(),
            actor = owned.actor(),
        ),
    )
    .await
    .expect("insert a vault connection");
    assert_eq!(inserted, 1);
    let teams = SqlTeamRepository::new(db.clone());
    let event = audit(
        Some(team),
        AuditAction::Delete,
        ResourceType::Team,
        team.as_uuid(),
        owned.actor(),
    );
    assert_eq!(
        teams.delete(team, &event).await,
        Err(RepoError::Conflict(ConflictKind::TeamNotEmpty))
    );
    assert_eq!(teams.get(team).await.expect("the team stays"), owned.team);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_delete_of_a_non_empty_team_conflicts() {
    delete_of_a_team_holding_a_vault_connection_is_team_not_empty(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_delete_of_a_non_empty_team_conflicts() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): delete of a non-empty team");
        return;
    }
    delete_of_a_team_holding_a_vault_connection_is_team_not_empty(
        test_support::postgres().await.expect("PostgreSQL tests run"),
    )
    .await;
}

#[test]
fn debug_output_hides_the_database_url() {
    let db = Database::connect("postgres://custodian:hunter2-password@db.internal:5432/custodian").expect("a URL");
    let shown = format!("{db:?}");
    assert!(shown.contains("Postgres"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("db.internal"), "{shown}");
}
