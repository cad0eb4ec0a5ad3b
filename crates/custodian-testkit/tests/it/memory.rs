//! The contract suites against [`MemoryRepos`]: the fake must keep every rule that the
//! SQL adapters keep.

use custodian_testkit::contract::{locations, secrets, vault_connections};
use custodian_testkit::memory::MemoryRepos;
use custodian_testkit::run_cases;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_contract() {
    run_cases("memory", "secrets", &secrets::cases(), || async {
        MemoryRepos::default().repo_set()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locations_contract() {
    run_cases("memory", "locations", &locations::cases(), || async {
        MemoryRepos::default().repo_set()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vault_connections_contract() {
    run_cases("memory", "vault_connections", &vault_connections::cases(), || async {
        MemoryRepos::default().repo_set()
    })
    .await;
}
