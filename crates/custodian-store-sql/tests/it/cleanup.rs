//! The clean-up queue on SQLite and PostgreSQL: its contract suite, and a migration that
//! keeps the tasks recorded before it.

use std::sync::Arc;

use custodian_ports::CleanupQueue;
use custodian_store_sql::{SqlCleanupQueue, test_support};
use custodian_testkit::{contract, run_cases};

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
