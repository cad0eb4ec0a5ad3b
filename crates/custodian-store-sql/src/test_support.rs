//! Fresh, migrated databases for tests (feature `test-support`): a SQLite file in a
//! temporary directory, or a PostgreSQL database cloned from a migrated template. Each
//! lives as long as the last clone of its [`Database`].

use std::sync::Arc;

use custodian_test_db::{MigrateError, TestPostgres};

use crate::Database;

/// A fresh SQLite database, migrated, in its own temporary directory.
///
/// # Panics
///
/// When the directory or the database cannot be created: the test fails.
pub async fn sqlite() -> Database {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("custodian.db").display());
    let db = Database::connect(&url).expect("open the SQLite database");
    db.migrate().await.expect("migrate the SQLite database");
    db.keeping(Arc::new(dir))
}

/// A fresh PostgreSQL database cloned from the template of the current migrations, or
/// `None` when PostgreSQL tests are skipped (`CUSTODIAN_TEST_POSTGRES=skip`).
///
/// # Panics
///
/// When the server cannot be reached or the migrations fail: the test fails.
pub async fn postgres() -> Option<Database> {
    let test_db = TestPostgres::start(&postgres_template_name(), |url| async move {
        let db = Database::connect(&url)?;
        db.migrate().await?;
        Ok::<(), MigrateError>(())
    })
    .await?;
    let db = Database::connect(test_db.url()).expect("open the PostgreSQL test database");
    Some(db.keeping(Arc::new(test_db)))
}

/// An empty, unmigrated database of `backend` (for migration tests), or `None` when
/// PostgreSQL tests are skipped.
pub async fn empty(backend: crate::Backend) -> Option<Database> {
    match backend {
        crate::Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("create a temporary directory");
            let url = format!("sqlite://{}", dir.path().join("custodian.db").display());
            let db = Database::connect(&url).expect("open the SQLite database");
            Some(db.keeping(Arc::new(dir)))
        }
        crate::Backend::Postgres => {
            let test_db = TestPostgres::start("custodian_store_sql_empty", |_| async { Ok(()) }).await?;
            let db = Database::connect(test_db.url()).expect("open the PostgreSQL test database");
            Some(db.keeping(Arc::new(test_db)))
        }
    }
}

/// `custodian_store_sql_<hash>`: the template changes whenever a migration file does
/// (the hash is taken at compile time by `build.rs`).
pub fn postgres_template_name() -> String {
    format!("custodian_store_sql_{}", env!("CUSTODIAN_POSTGRES_MIGRATIONS_HASH"))
}

#[derive(diesel::QueryableByName)]
struct TextValue {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// Run `sql`, a query returning one text column named `value`, on a pooled connection
/// (to inspect the schema or a connection's settings).
pub async fn query_values(db: &Database, sql: &str) -> Result<Vec<String>, custodian_ports::RepoError> {
    use diesel_async::RunQueryDsl;
    let sql = sql.to_owned();
    crate::db::with_conn!(db, |conn| {
        let rows: Vec<TextValue> = diesel::sql_query(&sql).load(conn).await?;
        Ok(rows.into_iter().map(|r| r.value).collect())
    })
}

/// The names of the tables of `db` (without diesel's migration table), sorted.
pub async fn table_names(db: &Database) -> Vec<String> {
    let sql = match db.backend() {
        crate::Backend::Sqlite => {
            "SELECT name AS value FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' ORDER BY name"
        }
        crate::Backend::Postgres => {
            "SELECT table_name::text AS value FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name <> '__diesel_schema_migrations' ORDER BY table_name"
        }
    };
    query_values(db, sql).await.expect("list the tables")
}

/// Run a statement (to set up a row no repository of this build writes), outside a
/// transaction, as a read runs: tests only.
pub async fn execute(db: &Database, sql: &str) -> Result<usize, custodian_ports::RepoError> {
    use diesel_async::RunQueryDsl;
    let sql = sql.to_owned();
    crate::db::with_conn!(db, |conn| { Ok(diesel::sql_query(&sql).execute(conn).await?) })
}
