//! The clean-up queue on SQLite and PostgreSQL: its contract suite, and a migration that
//! keeps the tasks recorded before it.

use std::sync::Arc;

use chrono::Utc;
use custodian_domain::TeamId;
use custodian_ports::{CleanupQueue, CleanupTask, CredentialKey, CredentialKind};
use custodian_store_sql::test_support::{execute, query_values};
use custodian_store_sql::{Backend, Database, SqlCleanupQueue, test_support};
use custodian_testkit::{contract, run_cases};
use uuid::Uuid;

use crate::support::postgres_skipped;

#[tokio::test(flavor = "multi_thread")]
async fn sqlite() {
    run_cases("sqlite", "cleanup", &contract::cleanup::cases(), || async {
        Arc::new(SqlCleanupQueue::new(test_support::sqlite().await)) as Arc<dyn CleanupQueue>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): contract cleanup");
        return;
    }
    run_cases("postgres", "cleanup", &contract::cleanup::cases(), || async {
        let db = test_support::postgres().await.expect("PostgreSQL tests run");
        Arc::new(SqlCleanupQueue::new(db)) as Arc<dyn CleanupQueue>
    })
    .await;
}

/// The statements of a migration file, without its comment lines.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn key() -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::new_v4()),
        kind: CredentialKind::StorageSecret,
        record_id: Uuid::new_v4(),
    }
}

/// Reverting the migration that added `prune_below` keeps the deletions (what every row
/// meant before it) and drops the prunes, which must not turn into deletions; migrating
/// up again reads the kept rows as deletions.
async fn the_prune_column_migration_really_reverts(db: Database, down_sql: &str) {
    let queue = SqlCleanupQueue::new(db.clone());
    let (deleted, rotated) = (key(), key());
    let at = Utc::now();
    queue
        .record(&deleted, CleanupTask::DeleteAll, at)
        .await
        .expect("record a deletion");
    queue
        .record(&rotated, CleanupTask::PruneBelow(3), at)
        .await
        .expect("record a prune");

    for statement in statements(down_sql) {
        execute(&db, &statement).await.expect("run the down migration");
    }
    let versions = query_values(&db, "SELECT version AS value FROM __diesel_schema_migrations")
        .await
        .expect("list the applied migrations");
    let version = versions
        .iter()
        .find(|v| v.ends_with("214500"))
        .expect("the migration is recorded");
    execute(
        &db,
        &format!("DELETE FROM __diesel_schema_migrations WHERE version = '{version}'"),
    )
    .await
    .expect("forget the reverted migration");

    let columns_sql = match db.backend() {
        Backend::Sqlite => "SELECT name AS value FROM pragma_table_info('credential_gc') ORDER BY name",
        Backend::Postgres => {
            "SELECT column_name::text AS value FROM information_schema.columns \
             WHERE table_name = 'credential_gc' ORDER BY column_name"
        }
    };
    assert_eq!(
        query_values(&db, columns_sql).await.expect("list the columns"),
        ["kind", "record_id", "recorded_at", "team_id"]
    );
    assert_eq!(
        query_values(&db, "SELECT record_id AS value FROM credential_gc")
            .await
            .expect("list the rows"),
        [deleted.record_id.to_string()]
    );

    db.migrate().await.expect("migrate up again");
    let pending = queue.pending(10).await.expect("read the queue");
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].key, pending[0].task), (deleted, CleanupTask::DeleteAll));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_migration_down_keeps_deletions_only() {
    the_prune_column_migration_really_reverts(
        test_support::sqlite().await,
        include_str!("../../migrations/sqlite/2026-11-25-214500_credential_gc_tasks/down.sql"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_migration_down_keeps_deletions_only() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): cleanup migration down");
        return;
    }
    the_prune_column_migration_really_reverts(
        test_support::postgres().await.expect("PostgreSQL tests run"),
        include_str!("../../migrations/postgres/2026-11-25-214500_credential_gc_tasks/down.sql"),
    )
    .await;
}
