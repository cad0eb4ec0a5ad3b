//! Migrations: up creates every table, down really reverts, up again works.

use custodian_store_sql::test_support::{empty, query_values, table_names};
use custodian_store_sql::{Backend, Database};

const TABLES: &[&str] = &[
    "audit_events",
    "credential_blobs",
    "credential_gc",
    "credential_store_binding",
    "group_secret_reads",
    "group_secret_versions",
    "group_secrets",
    "identity_epoch",
    "locations",
    "master_keys",
    "memberships",
    "retired_master_keys",
    "sealed_token_pepper",
    "secret_groups",
    "storage_secrets",
    "team_secret_counts",
    "teams",
    "tokens",
    "users",
    "vault_connections",
    "virtual_accounts",
];

async fn up_down_up(db: Database) {
    assert!(table_names(&db).await.is_empty(), "the database starts empty");
    let pending = db.pending_migrations().await.expect("pending migrations are listed");
    assert!(!pending.is_empty());
    assert!(
        table_names(&db).await.is_empty(),
        "listing the pending migrations changes nothing"
    );
    assert_eq!(db.applied_migrations().await.expect("migrate up"), pending);
    assert_eq!(table_names(&db).await, TABLES);
    assert_eq!(db.pending_migrations().await.expect("listed"), Vec::<String>::new());
    db.revert_all().await.expect("migrate down");
    assert_eq!(table_names(&db).await, Vec::<String>::new(), "down.sql leaves no table");
    db.migrate().await.expect("migrate up again");
    assert_eq!(table_names(&db).await, TABLES);
    db.migrate().await.expect("migrating twice is a no-op");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_up_down_up() {
    up_down_up(empty(Backend::Sqlite).await.expect("sqlite always runs")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_up_down_up() {
    let Some(db) = empty(Backend::Postgres).await else {
        return;
    };
    up_down_up(db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_connections_use_wal_foreign_keys_and_busy_timeout() {
    let db = custodian_store_sql::test_support::sqlite().await;
    let check = |sql: &'static str| {
        let db = db.clone();
        async move { query_values(&db, sql).await.expect(sql) }
    };
    assert_eq!(
        check("SELECT journal_mode AS value FROM pragma_journal_mode()").await,
        ["wal"]
    );
    assert_eq!(
        check("SELECT CAST(foreign_keys AS TEXT) AS value FROM pragma_foreign_keys()").await,
        ["1"]
    );
    assert_eq!(
        check("SELECT CAST(timeout AS TEXT) AS value FROM pragma_busy_timeout()").await,
        ["5000"]
    );
    // NORMAL is 1.
    assert_eq!(
        check("SELECT CAST(synchronous AS TEXT) AS value FROM pragma_synchronous()").await,
        ["1"]
    );
}

#[test]
fn unsupported_urls_are_refused() {
    for url in ["mysql://localhost/db", "sqlite://", "file.db"] {
        assert!(Database::connect(url).is_err(), "{url} must be refused");
    }
}

/// This package's folder in the checkout under test. Read at run time: `cargo test` sets
/// it for the test process, while the compile-time value could name another checkout
/// that shared the target directory.
fn package_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
}

/// The migration folders of one backend, sorted.
fn migration_dirs(backend: &str) -> Vec<String> {
    let dir = package_dir().join("migrations").join(backend);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("a migration folder")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Diesel identifies a migration by the version before the first `_`: two folders with
/// one version would let one of them never run.
#[test]
fn migration_versions_are_unique_and_the_backends_have_the_same_migrations() {
    let sqlite = migration_dirs("sqlite");
    let postgres = migration_dirs("postgres");
    assert_eq!(sqlite, postgres, "both backends have the same migration folders");
    let mut versions: Vec<&str> = sqlite.iter().map(|name| name.split('_').next().unwrap()).collect();
    let count = versions.len();
    versions.dedup();
    assert_eq!(versions.len(), count, "two migrations share a version: {sqlite:?}");
    for name in &sqlite {
        for file in ["up.sql", "down.sql"] {
            for backend in ["sqlite", "postgres"] {
                let path = package_dir().join("migrations").join(backend).join(name).join(file);
                assert!(path.is_file(), "{} is missing", path.display());
            }
        }
    }
}

/// SQLite migrations run with foreign keys off and check them afterwards: a database whose
/// rows break a foreign key is reported, not silently kept.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_migrate_reports_rows_that_break_a_foreign_key() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("custodian.db").display());
    let db = Database::connect_with(&url, 1).expect("open");
    db.migrate().await.expect("migrate");
    custodian_store_sql::test_support::execute(&db, "PRAGMA foreign_keys = OFF")
        .await
        .expect("foreign keys off on the only connection");
    custodian_store_sql::test_support::execute(
        &db,
        "INSERT INTO memberships (team_id, user_id, role, created_at) \
         VALUES ('no-such-team', 'no-such-user', 'owner', '2026-01-01 00:00:00')",
    )
    .await
    .expect("an orphan row");
    let outcome = db.migrate().await;
    assert!(
        matches!(&outcome, Err(custodian_store_sql::DatabaseError::Migration(m)) if m.contains("memberships")),
        "{outcome:?}"
    );
}
