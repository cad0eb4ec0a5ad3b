//! custodian-test-db against a real PostgreSQL (skipped loudly with
//! `CUSTODIAN_TEST_POSTGRES=skip`, which `cargo xtask test` sets only when it has none).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use custodian_test_db::{MigrateError, PgMode, TEST_DATABASE_PREFIX, TestPostgres, postgres_mode};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

fn admin_url() -> String {
    match postgres_mode() {
        PgMode::Run { admin_url } => admin_url,
        PgMode::Skip => panic!("only called after start returned a database"),
    }
}

/// A template name no earlier run has used (≤ 63 bytes).
fn fresh_template(tag: &str) -> String {
    let name = format!("custodian_it_{tag}_{}", Uuid::new_v4().simple());
    assert!(name.len() <= 63, "{name} too long");
    name
}

/// Creates the table and row every database cloned from the template must contain,
/// counting its runs.
async fn migrate(url: String, runs: Arc<AtomicUsize>) -> Result<(), MigrateError> {
    runs.fetch_add(1, Ordering::SeqCst);
    let client = connect(&url).await;
    client
        .batch_execute(
            "CREATE TABLE marker (id INT PRIMARY KEY, note TEXT NOT NULL);
             INSERT INTO marker VALUES (1, 'from the template');",
        )
        .await?;
    Ok(())
}

async fn database_exists(name: &str) -> bool {
    let admin = connect(&admin_url()).await;
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("look up a database")
        .is_some()
}

async fn drop_template(name: &str) {
    let admin = connect(&admin_url()).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop the template");
}

async fn notes(client: &Client) -> Vec<String> {
    client
        .query("SELECT note FROM marker ORDER BY id", &[])
        .await
        .expect("read the marker table")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn two_databases_from_one_template_are_distinct_and_migrated() {
    let template = fresh_template("two");
    let runs = Arc::new(AtomicUsize::new(0));
    let Some(first) = TestPostgres::start(&template, |url| migrate(url, runs.clone())).await else {
        return;
    };
    let Some(second) = TestPostgres::start(&template, |url| migrate(url, runs.clone())).await else {
        return;
    };
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the template is migrated once");
    assert_ne!(first.name(), second.name());
    assert_ne!(first.url(), second.url());
    for db in [&first, &second] {
        assert!(db.name().starts_with(TEST_DATABASE_PREFIX), "{}", db.name());
        assert!(db.name().len() <= 63);
        assert!(db.url().ends_with(db.name()), "{} names {}", db.url(), db.name());
    }

    let a = connect(first.url()).await;
    let b = connect(second.url()).await;
    let current: String = a
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, first.name());
    assert_eq!(notes(&a).await, ["from the template"]);
    assert_eq!(notes(&b).await, ["from the template"]);

    a.execute("INSERT INTO marker VALUES (2, 'only in the first')", &[])
        .await
        .unwrap();
    assert_eq!(notes(&a).await, ["from the template", "only in the first"]);
    assert_eq!(notes(&b).await, ["from the template"], "the databases are independent");

    drop((first, second));
    drop_template(&template).await;
}

#[tokio::test]
async fn the_database_is_gone_after_drop_even_with_a_connection_open() {
    let template = fresh_template("drop");
    let runs = Arc::new(AtomicUsize::new(0));
    let Some(db) = TestPostgres::start(&template, |url| migrate(url, runs.clone())).await else {
        return;
    };
    let name = db.name().to_owned();
    let still_open = connect(db.url()).await;
    assert_eq!(notes(&still_open).await, ["from the template"]);
    assert!(database_exists(&name).await);

    drop(db);

    assert!(!database_exists(&name).await, "{name} still exists after drop");
    assert!(
        still_open.query("SELECT 1", &[]).await.is_err(),
        "WITH (FORCE) closed the open connection"
    );
    drop_template(&template).await;
}

#[test]
fn drop_works_outside_any_runtime() {
    let template = fresh_template("sync");
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let Some(db) = runtime().block_on(TestPostgres::start(&template, |url| migrate(url, runs.clone()))) else {
        return;
    };
    let name = db.name().to_owned();
    assert!(tokio::runtime::Handle::try_current().is_err());
    drop(db);
    runtime().block_on(async {
        assert!(!database_exists(&name).await, "{name} still exists after drop");
        drop_template(&template).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_share_one_template_and_migrate_once() {
    let template = fresh_template("many");
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let template = template.clone();
            let runs = runs.clone();
            tokio::spawn(async move {
                TestPostgres::start(&template, |url| async move {
                    // Widen the window in which the other tasks find no template.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    migrate(url, runs).await
                })
                .await
            })
        })
        .collect();
    let mut databases = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Some(db) => databases.push(db),
            None => return, // skip mode, printed by start
        }
    }

    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "migrate ran once for 8 concurrent starts"
    );
    let mut names: Vec<_> = databases.iter().map(|db| db.name().to_owned()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 8, "every start got its own database");
    for db in &databases {
        assert_eq!(notes(&connect(db.url()).await).await, ["from the template"]);
    }

    drop(databases);
    for name in &names {
        assert!(!database_exists(name).await);
    }
    drop_template(&template).await;
}

#[tokio::test]
async fn a_failed_migration_leaves_no_template_and_the_next_start_migrates() {
    let template = fresh_template("fail");
    if postgres_mode() == PgMode::Skip {
        // Print the skip line through the crate, like every other test.
        assert!(TestPostgres::start(&template, |_| async { Ok(()) }).await.is_none());
        return;
    }
    let failing = {
        let template = template.clone();
        tokio::spawn(async move {
            TestPostgres::start(&template, |url| async move {
                let client = connect(&url).await;
                client.batch_execute("CREATE TABLE half_done (id INT)").await?;
                Err::<(), MigrateError>("migration 2 is broken".into())
            })
            .await
        })
    };
    let error = failing.await.expect_err("start panics when migrate fails");
    assert!(error.is_panic());
    let message = error.into_panic();
    let message = message.downcast_ref::<String>().map(String::as_str).unwrap_or_default();
    assert!(message.contains("migration 2 is broken"), "{message}");
    assert!(
        !database_exists(&template).await,
        "no half-migrated template under its name"
    );

    let runs = Arc::new(AtomicUsize::new(0));
    let db = TestPostgres::start(&template, |url| migrate(url, runs.clone()))
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let client = connect(db.url()).await;
    assert_eq!(notes(&client).await, ["from the template"]);
    let half_done: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'half_done'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(half_done, 0, "nothing of the failed attempt survives");
    drop(db);
    drop_template(&template).await;
}
