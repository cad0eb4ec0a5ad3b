//! One PostgreSQL database per test, cloned from a migrated template and dropped afterwards
//! (the crates.io test-db pattern). Dev-only: depend on it from `[dev-dependencies]`.
//!
//! A test calls [`TestPostgres::start`] with a template name and a migration closure. The
//! template database is created and migrated once per name — across every test thread and
//! every test process running at the same time — and each test gets its own copy made with
//! `CREATE DATABASE … TEMPLATE …`, which is dropped `WITH (FORCE)` when the [`TestPostgres`]
//! is dropped. Put a hash of the migrations in the template name, so a changed migration
//! set gets a fresh template instead of a stale one.
//!
//! Environment (set by `cargo xtask test`, which finds or starts PostgreSQL first):
//!
//! | variable | meaning |
//! |---|---|
//! | `CUSTODIAN_TEST_DATABASE_URL` | admin connection URL; default `postgres://postgres@127.0.0.1:5432/postgres` |
//! | `CUSTODIAN_TEST_POSTGRES=skip` | [`TestPostgres::start`] returns `None` after a loud `SKIPPED (postgres)` line |
//!
//! Without `skip`, an unreachable server or a failed migration panics: a PostgreSQL test
//! fails, it never passes silently.
//!
//! ```no_run
//! # async fn example() {
//! use custodian_test_db::TestPostgres;
//!
//! let Some(db) = TestPostgres::start("custodian_example_tmpl_0123abcd", |url| async move {
//!     let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
//!     tokio::spawn(connection);
//!     client.batch_execute("CREATE TABLE things (id BIGINT PRIMARY KEY)").await?;
//!     Ok(())
//! })
//! .await
//! else {
//!     return; // CUSTODIAN_TEST_POSTGRES=skip: the skip was printed
//! };
//! // Connect to `db.url()`; the database `db.name()` is dropped with `db`.
//! # }
//! ```

use std::error::Error;
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
use uuid::Uuid;

/// Admin connection URL of the server the tests use.
pub const DATABASE_URL_ENV: &str = "CUSTODIAN_TEST_DATABASE_URL";
/// `skip` turns every PostgreSQL test into a loud early return.
pub const POSTGRES_MODE_ENV: &str = "CUSTODIAN_TEST_POSTGRES";
/// The admin URL used when [`DATABASE_URL_ENV`] is unset: our machines' local server.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Every per-test database is named `custodian_test_<uuid v7, simple>`.
pub const TEST_DATABASE_PREFIX: &str = "custodian_test_";

/// Error type the migration closure returns.
pub type MigrateError = Box<dyn Error + Send + Sync>;

/// PostgreSQL identifiers longer than this are silently truncated by the server.
const MAX_IDENTIFIER_LEN: usize = 63;
/// Prefix of the temporary database a template is built in before it is renamed.
const TEMPLATE_BUILD_PREFIX: &str = "custodian_tmpl_build_";
/// First key of the two-key advisory lock, so our locks do not collide with others'.
const ADVISORY_LOCK_CLASS: i32 = 0x4355_5354; // "CUST"
/// How long an operation is retried while a database is "being accessed by other users".
const IN_USE_RETRY_FOR: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-test databases older than this are leftovers of killed runs and are dropped.
const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Whether PostgreSQL tests run, read from the environment by [`postgres_mode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgMode {
    /// `CUSTODIAN_TEST_POSTGRES=skip`: PostgreSQL tests return early, loudly.
    Skip,
    /// PostgreSQL tests run against the server behind `admin_url`.
    Run {
        /// A URL whose user may create and drop databases.
        admin_url: String,
    },
}

/// Reads [`POSTGRES_MODE_ENV`] and [`DATABASE_URL_ENV`].
pub fn postgres_mode() -> PgMode {
    mode_from(
        std::env::var(POSTGRES_MODE_ENV).ok().as_deref(),
        std::env::var(DATABASE_URL_ENV).ok().as_deref(),
    )
}

fn mode_from(mode: Option<&str>, url: Option<&str>) -> PgMode {
    if mode.is_some_and(|m| m.trim().eq_ignore_ascii_case("skip")) {
        return PgMode::Skip;
    }
    let admin_url = match url.map(str::trim) {
        Some(url) if !url.is_empty() => url.to_owned(),
        _ => DEFAULT_ADMIN_URL.to_owned(),
    };
    PgMode::Run { admin_url }
}

/// A PostgreSQL database of one test, cloned from a migrated template. Dropping it drops
/// the database `WITH (FORCE)`, closing any connection still open to it.
#[derive(Debug)]
pub struct TestPostgres {
    admin_url: String,
    name: String,
    url: String,
}

impl TestPostgres {
    /// Creates this test's database from the template `template_name`, creating and
    /// migrating the template first (once, under an advisory lock) if it does not exist.
    ///
    /// `migrate` receives the URL of the database being made into the template; it runs at
    /// most once per template name on the server. The template only appears under its name
    /// once `migrate` has succeeded.
    ///
    /// Returns `None` only when [`postgres_mode`] is [`PgMode::Skip`], after printing a
    /// `SKIPPED (postgres)` line naming the test.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached, `template_name` is not a valid database name,
    /// `migrate` fails, or a database cannot be created: the test fails.
    pub async fn start<F, Fut>(template_name: &str, migrate: F) -> Option<TestPostgres>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<(), MigrateError>>,
    {
        match postgres_mode() {
            PgMode::Skip => {
                print_skip();
                None
            }
            PgMode::Run { admin_url } => Some(Self::start_at(&admin_url, template_name, migrate).await),
        }
    }

    /// The URL of this test's database (the admin URL with the database name replaced).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of this test's database, `custodian_test_<uuid>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn start_at<F, Fut>(admin_url: &str, template_name: &str, migrate: F) -> TestPostgres
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<(), MigrateError>>,
    {
        if let Err(problem) = check_database_name(template_name) {
            panic!("custodian-test-db: template name {template_name:?} {problem}");
        }
        let admin = match connect(admin_url).await {
            Ok(admin) => admin,
            Err(e) => panic!(
                "custodian-test-db: cannot connect to PostgreSQL at {url}: {e}\n\
                 PostgreSQL tests need a server: start it (`pg_ctlcluster --skip-systemctl-redirect <version> main start`), \
                 set {DATABASE_URL_ENV} to an admin URL, or run `cargo xtask test`, which finds or starts it \
                 (or skips these tests loudly, outside CI).",
                url = redact(admin_url),
            ),
        };
        sweep_stale_databases(&admin).await;
        if let Err(e) = ensure_template(&admin, admin_url, template_name, migrate).await {
            panic!(
                "custodian-test-db: template {template_name:?} at {}: {e}",
                redact(admin_url)
            );
        }

        let name = format!("{TEST_DATABASE_PREFIX}{}", Uuid::now_v7().simple());
        let create = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(template_name)
        );
        if let Err(e) = execute_retrying_in_use(&admin, &create).await {
            panic!(
                "custodian-test-db: cannot create test database {name:?} from template {template_name:?}: {}",
                describe(&e)
            );
        }
        let url = match database_url(admin_url, &name) {
            Ok(url) => url,
            Err(e) => panic!("custodian-test-db: {e}"),
        };
        TestPostgres {
            admin_url: admin_url.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Drop may run inside a runtime (whose thread must not block on itself) or outside
        // any: a fresh thread with its own current-thread runtime works in both cases.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("drop {name}"))
            .spawn(move || -> Result<(), String> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot build a runtime: {e}"))?;
                runtime.block_on(async {
                    let admin = connect(&admin_url).await.map_err(|e| format!("cannot connect: {e}"))?;
                    drop_database(&admin, &name).await.map_err(|e| describe(&e))
                })
            });
        let outcome = match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("the drop thread panicked".to_owned())),
            Err(e) => Err(format!("cannot spawn the drop thread: {e}")),
        };
        if let Err(e) = outcome {
            log(&format!(
                "custodian-test-db: could not drop test database {:?}: {e}",
                self.name
            ));
        }
    }
}

fn print_skip() {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed thread>");
    log(&format!(
        "SKIPPED (postgres): {test} — {POSTGRES_MODE_ENV}=skip; set {DATABASE_URL_ENV} or run cargo xtask test"
    ));
}

/// Writes a line to stderr past libtest's output capture (which only catches the
/// `eprintln!` family), so a skip or a failed cleanup shows even in a passing test.
fn log(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Creates and migrates `template` unless it exists. Concurrent callers (threads or
/// processes) serialise on an advisory lock keyed by the template name; the template is
/// built under a temporary name and renamed only once `migrate` succeeded, so a crashed or
/// failed run never leaves a half-migrated template behind.
async fn ensure_template<F, Fut>(admin: &Client, admin_url: &str, template: &str, migrate: F) -> Result<(), String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), MigrateError>>,
{
    // The template appears under its name only when complete: no lock needed to see it.
    if database_exists(admin, template).await? {
        return Ok(());
    }
    admin
        .execute(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&ADVISORY_LOCK_CLASS, &template],
        )
        .await
        .map_err(|e| format!("cannot take the advisory lock: {}", describe(&e)))?;
    let built = build_template_locked(admin, admin_url, template, migrate).await;
    // On a panic in `migrate`, the admin connection closes and the server releases the lock.
    let unlocked = admin
        .execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&ADVISORY_LOCK_CLASS, &template],
        )
        .await;
    built?;
    unlocked
        .map(|_| ())
        .map_err(|e| format!("cannot release the advisory lock: {}", describe(&e)))
}

async fn build_template_locked<F, Fut>(
    admin: &Client,
    admin_url: &str,
    template: &str,
    migrate: F,
) -> Result<(), String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), MigrateError>>,
{
    if database_exists(admin, template).await? {
        return Ok(()); // another session built it while we waited for the lock
    }
    // Deterministic per template, so a run killed mid-migration is cleaned up by the next.
    let building = build_name(template);
    drop_database(admin, &building)
        .await
        .map_err(|e| format!("cannot drop the leftover {building:?}: {}", describe(&e)))?;
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&building)))
        .await
        .map_err(|e| format!("cannot create {building:?}: {}", describe(&e)))?;

    let migrated = match database_url(admin_url, &building) {
        Ok(url) => migrate(url)
            .await
            .map_err(|e| format!("the migrate closure failed: {e}")),
        Err(e) => Err(e),
    };
    if let Err(e) = migrated {
        if let Err(drop_error) = drop_database(admin, &building).await {
            log(&format!(
                "custodian-test-db: could not drop {building:?} after a failed migration: {}",
                describe(&drop_error)
            ));
        }
        return Err(e);
    }

    // Connections `migrate` left open (a pool not yet closed) would block the rename and,
    // later, every clone: the migration is over, so they are leftovers.
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&building],
        )
        .await
        .map_err(|e| format!("cannot close connections to {building:?}: {}", describe(&e)))?;
    let rename = format!(
        "ALTER DATABASE {} RENAME TO {}",
        quote_ident(&building),
        quote_ident(template)
    );
    execute_retrying_in_use(admin, &rename)
        .await
        .map_err(|e| format!("cannot rename {building:?} to the template: {}", describe(&e)))
}

/// Drops per-test databases left by killed runs (older than [`STALE_AFTER`], read from
/// the uuid v7 in the name). Once per process, best effort.
async fn sweep_stale_databases(admin: &Client) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    let rows = match admin
        .query(
            "SELECT datname::text FROM pg_database WHERE left(datname, length($1)) = $1",
            &[&TEST_DATABASE_PREFIX],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            log(&format!(
                "custodian-test-db: cannot list old test databases: {}",
                describe(&e)
            ));
            return;
        }
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    for row in rows {
        let name: String = row.get(0);
        let Some(age) = test_database_age(&name, now) else {
            continue;
        };
        if age < STALE_AFTER {
            continue;
        }
        match drop_database(admin, &name).await {
            Ok(()) => log(&format!(
                "custodian-test-db: dropped stale test database {name:?} ({} h old)",
                age.as_secs() / 3600
            )),
            Err(e) => log(&format!(
                "custodian-test-db: cannot drop stale {name:?}: {}",
                describe(&e)
            )),
        }
    }
}

/// Age of a `custodian_test_<uuid v7>` database, from the timestamp in its uuid.
fn test_database_age(name: &str, now: Duration) -> Option<Duration> {
    let uuid = Uuid::try_parse(name.strip_prefix(TEST_DATABASE_PREFIX)?).ok()?;
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    now.checked_sub(Duration::new(secs, nanos))
}

async fn connect(url: &str) -> Result<Client, String> {
    let mut config: Config = url
        .parse()
        .map_err(|e| format!("invalid connection string: {}", describe(&e)))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (client, connection) = config.connect(NoTls).await.map_err(|e| describe(&e))?;
    tokio::spawn(async move {
        // Ends when the client is dropped; an error here is a lost connection, which the
        // next query reports.
        let _ = connection.await;
    });
    Ok(client)
}

async fn database_exists(admin: &Client, name: &str) -> Result<bool, String> {
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map(|row| row.is_some())
        .map_err(|e| format!("cannot look up database {name:?}: {}", describe(&e)))
}

async fn drop_database(admin: &Client, name: &str) -> Result<(), tokio_postgres::Error> {
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    execute_retrying_in_use(admin, &sql).await
}

/// Runs `sql`, retrying for a while when a database is in use by another session
/// (SQLSTATE 55006): a template being cloned or renamed is momentarily busy.
async fn execute_retrying_in_use(client: &Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    let deadline = Instant::now() + IN_USE_RETRY_FOR;
    let mut delay = Duration::from_millis(20);
    loop {
        match client.batch_execute(sql).await {
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && Instant::now() < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            result => return result,
        }
    }
}

/// `admin_url` with its database replaced by `name`; URLs and key=value strings both work.
fn database_url(admin_url: &str, name: &str) -> Result<String, String> {
    if admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://") {
        let mut url = url::Url::parse(admin_url).map_err(|e| format!("invalid admin URL {admin_url:?}: {e}"))?;
        url.set_path(&format!("/{name}"));
        Ok(url.into())
    } else {
        // In a key=value connection string the last `dbname` wins.
        Ok(format!(
            "{admin_url} dbname='{}'",
            name.replace('\\', "\\\\").replace('\'', "\\'")
        ))
    }
}

/// The admin URL for messages, without its password.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.into()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<the connection string>".to_owned(),
    }
}

fn check_database_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".to_owned());
    }
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(format!(
            "is {} bytes long; PostgreSQL truncates names past {MAX_IDENTIFIER_LEN}",
            name.len()
        ));
    }
    if name.contains('\0') {
        return Err("contains a NUL byte".to_owned());
    }
    Ok(())
}

/// Name of the database a template is built in: derived from the template name (so a
/// leftover is found again) and short enough whatever the template name's length.
fn build_name(template: &str) -> String {
    // FNV-1a: stable across runs and Rust versions, unlike `DefaultHasher`.
    let hash = template.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{TEMPLATE_BUILD_PREFIX}{hash:016x}")
}

fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A tokio-postgres error with the server's message and code, or its cause chain.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_mode_is_read_case_insensitively() {
        assert_eq!(mode_from(Some("skip"), None), PgMode::Skip);
        assert_eq!(mode_from(Some(" SKIP "), Some("postgres://x@h/db")), PgMode::Skip);
    }

    #[test]
    fn run_mode_uses_the_url_or_the_default() {
        assert_eq!(
            mode_from(None, None),
            PgMode::Run {
                admin_url: DEFAULT_ADMIN_URL.to_owned()
            }
        );
        assert_eq!(
            mode_from(Some("run"), Some("  ")),
            PgMode::Run {
                admin_url: DEFAULT_ADMIN_URL.to_owned()
            }
        );
        assert_eq!(
            mode_from(Some(""), Some("postgres://u@db:5433/admin")),
            PgMode::Run {
                admin_url: "postgres://u@db:5433/admin".to_owned()
            }
        );
    }

    #[test]
    fn database_url_replaces_only_the_database() {
        assert_eq!(
            database_url(
                "postgres://postgres:pw@127.0.0.1:5432/postgres?sslmode=disable",
                "custodian_test_1"
            )
            .unwrap(),
            "postgres://postgres:pw@127.0.0.1:5432/custodian_test_1?sslmode=disable"
        );
        assert_eq!(
            database_url("postgresql://postgres@localhost", "t").unwrap(),
            "postgresql://postgres@localhost/t"
        );
        assert_eq!(
            database_url("host=/run/postgresql user=postgres", "t").unwrap(),
            "host=/run/postgresql user=postgres dbname='t'"
        );
        let parsed: Config = database_url("host=h dbname=postgres", "t").unwrap().parse().unwrap();
        assert_eq!(parsed.get_dbname(), Some("t"));
    }

    #[test]
    fn names_fit_postgres_identifiers() {
        let test_name = format!("{TEST_DATABASE_PREFIX}{}", Uuid::now_v7().simple());
        assert!(test_name.len() <= MAX_IDENTIFIER_LEN);
        let build = build_name(&"x".repeat(63));
        assert!(build.len() <= MAX_IDENTIFIER_LEN);
        assert_eq!(build, build_name(&"x".repeat(63)), "stable across calls");
        assert_ne!(build_name("a"), build_name("b"));
        assert!(check_database_name(&"x".repeat(64)).is_err());
        assert!(check_database_name("").is_err());
        assert!(check_database_name("custodian_sql_0123abcd").is_ok());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("plain"), "\"plain\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn age_comes_from_the_uuid_v7() {
        let name = format!("{TEST_DATABASE_PREFIX}{}", Uuid::now_v7().simple());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(test_database_age(&name, now + Duration::from_secs(90_000)).unwrap() > STALE_AFTER);
        assert!(test_database_age(&name, now + Duration::from_secs(60)).unwrap() < STALE_AFTER);
        let v4 = format!("{TEST_DATABASE_PREFIX}{}", Uuid::new_v4().simple());
        assert_eq!(test_database_age(&v4, now), None, "no timestamp in a v4 uuid");
        assert_eq!(test_database_age("custodian_test_other", now), None);
        assert_eq!(test_database_age("postgres", now), None);
    }

    #[tokio::test]
    #[should_panic(expected = "cannot connect to PostgreSQL at postgres://postgres:***@127.0.0.1:1/postgres")]
    async fn an_unreachable_server_fails_the_test() {
        TestPostgres::start_at(
            "postgres://postgres:pw@127.0.0.1:1/postgres",
            "custodian_never",
            |_| async { Ok(()) },
        )
        .await;
    }
}
