//! The list of credential records left for `custodian gc`.

use custodian_domain::TeamId;
use custodian_ports::{CredentialKey, CredentialKind};
use custodian_store_sql::{CredentialGcLog, Database, test_support};
use custodian_testkit::contract::fixtures::at;
use uuid::Uuid;

use crate::support::postgres_skipped;

fn key(kind: CredentialKind) -> CredentialKey {
    CredentialKey {
        team_id: TeamId::from_uuid(Uuid::now_v7()),
        kind,
        record_id: Uuid::now_v7(),
    }
}

/// Recorded keys are listed oldest first, recording twice keeps the first instant, and
/// resolving removes a key (and succeeds when it is not listed).
async fn record_list_and_resolve(db: Database) {
    let log = CredentialGcLog::new(db);
    assert!(log.pending().await.expect("pending").is_empty());
    let (secret, connection) = (key(CredentialKind::StorageSecret), key(CredentialKind::VaultConnection));
    log.record(&connection, at(20)).await.expect("record");
    log.record(&secret, at(10)).await.expect("record");
    log.record(&connection, at(30)).await.expect("record again");
    assert_eq!(
        log.pending().await.expect("pending"),
        [(secret, at(10)), (connection, at(20))]
    );
    log.resolve(&secret).await.expect("resolve");
    log.resolve(&secret).await.expect("resolve again");
    assert_eq!(log.pending().await.expect("pending"), [(connection, at(20))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_record_list_and_resolve() {
    record_list_and_resolve(test_support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_record_list_and_resolve() {
    if postgres_skipped() {
        eprintln!("SKIPPED (postgres): credential gc log");
        return;
    }
    record_list_and_resolve(test_support::postgres().await.expect("PostgreSQL tests run")).await;
}
