//! The database handle: what it shows and how it fails.

use custodian_ports::{RepoError, TeamRepository};
use custodian_store_sql::{Database, SqlTeamRepository};

#[test]
fn debug_output_hides_the_database_url() {
    let db = Database::connect("postgres://custodian:hunter2-password@db.internal:5432/custodian").expect("a URL");
    let shown = format!("{db:?}");
    assert!(shown.contains("Postgres"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("db.internal"), "{shown}");
}

/// A database that cannot be reached answers `Unavailable` (retryable), not `Internal`.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_is_unavailable() {
    // Port 9 (discard) on loopback: nothing listens there.
    let db = Database::connect("postgres://postgres@127.0.0.1:9/custodian").expect("a URL");
    let teams = SqlTeamRepository::new(db);
    let outcome = teams.get(custodian_testkit::contract::fixtures::fresh()).await;
    assert!(matches!(outcome, Err(RepoError::Unavailable(_))), "{outcome:?}");
}
