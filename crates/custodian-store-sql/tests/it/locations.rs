//! The location contract suite on SQLite and PostgreSQL, each case on a fresh database.

use custodian_store_sql::test_support;
use custodian_testkit::contract::locations;
use custodian_testkit::run_cases;

use crate::support::{postgres_skipped, repo_set};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locations_contract_on_sqlite() {
    run_cases("sqlite", "locations", &locations::cases(), || async {
        repo_set(&test_support::sqlite().await)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locations_contract_on_postgres() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): locations contract");
        return;
    }
    run_cases("postgres", "locations", &locations::cases(), || async {
        let db = test_support::postgres()
            .await
            .expect("PostgreSQL tests are not skipped");
        repo_set(&db)
    })
    .await;
}
