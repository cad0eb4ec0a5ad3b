//! The storage-secret contract suite on SQLite and PostgreSQL, each case on a fresh database.

use custodian_store_sql::test_support;
use custodian_testkit::contract::secrets;
use custodian_testkit::run_cases;

use crate::support::{postgres_skipped, repo_set};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_contract_on_sqlite() {
    run_cases("sqlite", "secrets", &secrets::cases(), || async {
        repo_set(&test_support::sqlite().await)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_contract_on_postgres() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): secrets contract");
        return;
    }
    run_cases("postgres", "secrets", &secrets::cases(), || async {
        let db = test_support::postgres()
            .await
            .expect("PostgreSQL tests are not skipped");
        repo_set(&db)
    })
    .await;
}
