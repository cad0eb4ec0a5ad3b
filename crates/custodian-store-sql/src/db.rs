//! The one place that knows there are two backends.
//!
//! [`Database`] holds a pool of either PostgreSQL (`AsyncPgConnection`) or SQLite
//! (`SyncConnectionWrapper<SqliteConnection, SqliteCalls>`) connections. Repositories write each query
//! once, inside [`with_conn!`] (a read) or [`transaction!`] (a write); the macro expands the
//! same body once per backend, so it is type-checked against both and runs on whichever
//! the deployment uses. The only backend differences live here:
//!
//! - **Write transactions.** SQLite has one write lock per database, so every write
//!   transaction runs on one connection, the [`Writer`], which writers take in turn (an
//!   async mutex). Waiting for the lock in SQLite's busy handler instead means sleeping in
//!   steps of up to 100 ms: the slowest writes waited half a second under load, and a
//!   different pooled connection per write re-read the pages the last one wrote. The turn's
//!   holder starts `BEGIN IMMEDIATE`, which takes the database's write lock up front; when
//!   another process (a `custodian` command) holds it, the writer waits without blocking a
//!   thread and retries, for up to [`BUSY_WAIT`]. The pool's connections only read.
//!   On PostgreSQL writes run in ordinary `READ COMMITTED` transactions; a write of one
//!   statement ([`single_statement!`]) runs without `BEGIN` and `COMMIT`, a transaction of
//!   its own.
//! - **Where SQLite statements run** ([`SqliteCalls`]): on the calling thread. None can
//!   wait for a lock there: WAL readers never wait, and the writer's `BEGIN IMMEDIATE`
//!   fails at once when it would (it has no `busy_timeout`).
//! - **Lookups by key read with `get_result`, not `first`.** `first` appends `LIMIT ?`, and
//!   SQLite plans a statement around the value bound to its `LIMIT`, so it re-prepared
//!   such a statement at every run: that cost more than the lookup itself.
//! - **Locking a team** ([`Conn::lock_team`]) before a tier-limit count: PostgreSQL takes
//!   `SELECT … FOR UPDATE` on the team row, so concurrent inserts into one team serialise
//!   and the count cannot race the insert; SQLite already holds the write lock of the
//!   whole database (`BEGIN IMMEDIATE`), so a plain existence check suffices. An insert
//!   that counts against no limit locks nothing itself: the row's foreign key to its team
//!   keeps the team (PostgreSQL takes `FOR KEY SHARE` on the team row for it) and refuses
//!   the row of a team that does not exist (`NotFound`), so a team's creates do not wait
//!   for each other's commits.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use custodian_domain::{AuditEvent, LimitKind};
use custodian_ports::RepoError;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::{Hook, Object, Pool, PoolBuilder};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::convert::AuditRow;
use crate::error::DbError;
use crate::schema::{audit_events, teams};

/// The SQLite connection type of the pool.
pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection, SqliteCalls>;

tokio::task_local! {
    /// Set while statements that cannot wait for a lock run: on the calling thread.
    static INLINE: bool;
}

/// Where a SQLite statement runs. SQLite's API blocks, so diesel-async hands each
/// statement to tokio's blocking pool: a thread wakes, runs a few microseconds of work and
/// hands the result back, and that hop (two futex wake-ups per statement) cost more than
/// the statement. Statements that cannot wait for a lock run on the calling thread
/// instead ([`inline`]): the reads of [`with_conn!`] (WAL readers never wait) and the
/// transactions of [`transaction!`] (see [`begin_immediate`]). Opening a connection keeps
/// the hop.
pub(crate) struct SqliteCalls;

impl diesel_async::sync_connection_wrapper::SpawnBlocking for SqliteCalls {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>> + Send + 'a>,
    >
    where
        R: Send + 'static,
    {
        if INLINE.try_with(|inline| *inline).unwrap_or(false) {
            return Box::pin(std::future::ready(Ok(task())));
        }
        let handle = tokio::task::spawn_blocking(task);
        Box::pin(async move {
            handle
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
    }

    fn get_runtime() -> Self {
        SqliteCalls
    }
}

/// How long a SQLite write waits for another process's write lock before it fails with
/// `Unavailable`, as a read waits (`busy_timeout`).
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(5);

/// `BEGIN IMMEDIATE` on the writer's connection, called [`inline`]: the start of every
/// SQLite write transaction. The writer has no `busy_timeout`, so when another process
/// holds the write lock the statement fails at once; this waits (asynchronously, in steps
/// of 1 to 20 ms) and tries again, for up to [`BUSY_WAIT`].
pub(crate) async fn begin_immediate(conn: &mut SqliteConn) -> Result<(), DbError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let begun = conn
            .spawn_blocking(|inner| {
                diesel::connection::AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")
            })
            .await;
        match begun {
            Err(diesel::result::Error::DatabaseError(_, info))
                if crate::error::is_busy(info.as_ref()) && started.elapsed() < BUSY_WAIT =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// The connection every SQLite write transaction runs on, taken in turn (see the module
/// documentation). Opened at the first write, and again after a write left it broken.
pub(crate) struct Writer {
    path: PathBuf,
    conn: tokio::sync::Mutex<Option<SqliteConn>>,
    /// Started with the writer's connection; stops when the writer is dropped.
    checkpointer: std::sync::OnceLock<Checkpointer>,
}

/// The writer's connection while one write transaction holds it.
pub(crate) struct WriteTurn<'w> {
    conn: tokio::sync::MutexGuard<'w, Option<SqliteConn>>,
    checkpointer: Option<&'w Checkpointer>,
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        if let Some(checkpointer) = self.checkpointer {
            checkpointer.nudge();
        }
    }
}

/// How many pages the write-ahead log may hold before the writer copies them into the
/// database file itself. The [`Checkpointer`] copies them sooner; this bounds the log
/// when it cannot keep up, and lets the log start over from its beginning (which only a
/// writer that finds every page copied does).
const WRITER_CHECKPOINT_PAGES: u32 = 4000;

/// How long the [`Checkpointer`] lets commits gather before it copies them.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(50);

/// Copies the pages that commits appended to the write-ahead log into the database file,
/// on a thread of its own. SQLite's default makes the committing connection do it every
/// 1,000 pages, which on a busy server put a checkpoint (reading and writing a thousand
/// pages, two `fsync`s) inside every fiftieth create, with every other writer waiting for
/// it. This thread runs passive checkpoints, which never wait for a lock nor make a writer
/// or reader wait, a moment after each burst of commits, and sleeps while nothing is
/// written. It stops when the [`Writer`] is dropped, or at its first failure (logged), after
/// which the writer checkpoints itself past [`WRITER_CHECKPOINT_PAGES`].
struct Checkpointer {
    nudge: std::sync::mpsc::SyncSender<()>,
}

impl Checkpointer {
    fn start(path: PathBuf) -> std::io::Result<Self> {
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                use diesel::connection::SimpleConnection as _;
                // Opened while the database surely exists (its writer just opened it).
                let mut conn = match <SqliteConnection as diesel::Connection>::establish(&path.to_string_lossy()) {
                    Ok(conn) => conn,
                    Err(error) => {
                        // The writer checkpoints itself past WRITER_CHECKPOINT_PAGES.
                        tracing::warn!(%error, "cannot open the database for checkpoints");
                        return;
                    }
                };
                while nudged.recv().is_ok() {
                    std::thread::sleep(CHECKPOINT_PAUSE);
                    // The commits of the pause are copied by this checkpoint.
                    while nudged.try_recv().is_ok() {}
                    if let Err(error) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                        // Said once: the writer checkpoints itself from now on.
                        tracing::warn!(%error, "cannot copy the database's write-ahead log into it");
                        return;
                    }
                }
            })?;
        Ok(Self { nudge })
    }

    /// A commit happened: checkpoint soon (once for any number of nudges meanwhile).
    fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }
}

impl Writer {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            conn: tokio::sync::Mutex::new(None),
            checkpointer: std::sync::OnceLock::new(),
        }
    }

    /// Wait for the writer's turn; its connection, opened if needed.
    pub(crate) async fn turn(&self) -> Result<WriteTurn<'_>, DbError> {
        let started = std::time::Instant::now();
        let mut held = self.conn.lock().await;
        metrics::histogram!("custodian_db_writer_wait_seconds").record(started.elapsed().as_secs_f64());
        if held.as_mut().is_some_and(PoolableConnection::is_broken) {
            *held = None;
        }
        if held.is_none() {
            let path = self.path.to_string_lossy().into_owned();
            let mut conn = open_sqlite(path)
                .await
                .map_err(|e| DbError::Pool(format!("cannot open the database's writer: {e}")))?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = 0; PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES};"
            ))
            .await?;
            *held = Some(conn);
            if self.checkpointer.get().is_none() {
                match Checkpointer::start(self.path.clone()) {
                    Ok(started) => {
                        let _ = self.checkpointer.set(started);
                    }
                    // Without it the writer still checkpoints, every WRITER_CHECKPOINT_PAGES.
                    Err(error) => tracing::warn!(%error, "cannot start the database's checkpoint thread"),
                }
            }
        }
        Ok(WriteTurn {
            conn: held,
            checkpointer: self.checkpointer.get(),
        })
    }
}

impl WriteTurn<'_> {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut SqliteConn {
        self.conn.as_mut().expect("a turn holds an open connection")
    }
}

/// Commit the transaction [`begin_immediate`] opened when `outcome` is `Ok`, roll it back
/// otherwise.
pub(crate) async fn finish<T>(conn: &mut SqliteConn, outcome: Result<T, DbError>) -> Result<T, DbError> {
    type Manager = diesel_async::sync_connection_wrapper::SyncTransactionManagerWrapper<
        diesel::connection::AnsiTransactionManager,
    >;
    match outcome {
        Ok(value) => {
            <Manager as diesel_async::TransactionManager<SqliteConn>>::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(error) => {
            <Manager as diesel_async::TransactionManager<SqliteConn>>::rollback_transaction(conn).await?;
            Err(error)
        }
    }
}

/// Runs `statements` with their SQLite calls on the calling thread (see [`SqliteCalls`]):
/// only for statements that cannot wait for a lock.
pub(crate) async fn inline<T>(statements: impl Future<Output = T>) -> T {
    INLINE.scope(true, statements).await
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Set on every SQLite connection. `busy_timeout` first, so switching to WAL waits for a
/// concurrent opener instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// Set on the connection that runs SQLite migrations: as [`SQLITE_PRAGMAS`], with foreign
/// keys off.
const SQLITE_MIGRATION_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;";

/// One row of SQLite's `PRAGMA foreign_key_check`.
#[derive(diesel::QueryableByName)]
struct ForeignKeyViolation {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table: String,
}

/// What opening or migrating a database fails with. Messages never hold the URL's password.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL is neither `sqlite://<path>` nor `postgres://…`.
    #[error("unsupported database URL: expected sqlite://<path> or postgres://…")]
    UnsupportedUrl,
    /// The pool could not be built or no connection could be opened.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// Make the SQLite database at `path` (created empty when missing) and the `-wal` and
/// `-shm` files beside it, when they exist, readable and writable by their owner only.
/// SQLite creates its `-wal` and `-shm` files with the database file's mode.
fn owner_only(path: &std::path::Path) -> Result<(), DatabaseError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let cannot = |e: std::io::Error| DatabaseError::Connect(format!("cannot secure {}: {e}", path.display()));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(cannot)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(cannot)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(cannot(e)),
        }
    }
    Ok(())
}

/// Which backend a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A pool of connections to either backend.
#[derive(Clone)]
pub(crate) enum Pools {
    Postgres {
        pool: Pool<AsyncPgConnection>,
        url: String,
    },
    Sqlite {
        pool: Pool<SqliteConn>,
        path: PathBuf,
        /// The connection of every write transaction (see the module documentation).
        writer: Arc<Writer>,
    },
}

/// A connection pool to the SQLite or PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct Database {
    pools: Pools,
    /// Whatever must live as long as the pool: a test's temporary directory or database.
    _keep_alive: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The PostgreSQL URL may hold a password: never printed.
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Open a pool for `url`: `sqlite://<path>` (the file is created when missing, and
    /// the database file with its `-wal` and `-shm` files made readable by their owner
    /// only, mode 0600) or
    /// `postgres://…` / `postgresql://…`. Connections are opened lazily; call
    /// [`Database::migrate`] before use.
    pub fn connect(url: &str) -> Result<Self, DatabaseError> {
        Self::connect_with(url, Self::DEFAULT_POOL_SIZE)
    }

    /// How many connections [`Database::connect`] pools.
    pub const DEFAULT_POOL_SIZE: u32 = 10;

    /// [`Database::connect`] with at most `pool_size` pooled connections (at least one).
    pub fn connect_with(url: &str, pool_size: u32) -> Result<Self, DatabaseError> {
        let pool_size = usize::try_from(pool_size.max(1)).unwrap_or(usize::MAX);
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(DatabaseError::UnsupportedUrl);
            }
            owner_only(std::path::Path::new(path))?;
            let mut config = ManagerConfig::<SqliteConn>::default();
            config.custom_setup = Box::new(|path| Box::pin(open_sqlite(path.to_owned())));
            // A connection to a local file does not go stale: no test query at each
            // checkout (the default ran `SELECT 1` before every statement's checkout).
            config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
            let pool = with_timeouts(Pool::builder(manager).max_size(pool_size))
                .build()
                .map_err(|e| DatabaseError::Connect(e.to_string()))?;
            Ok(Self {
                pools: Pools::Sqlite {
                    pool,
                    path: PathBuf::from(path),
                    writer: Arc::new(Writer::new(PathBuf::from(path))),
                },
                _keep_alive: None,
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut config = ManagerConfig::<AsyncPgConnection>::default();
            // A connection the server closed is dropped at checkout without a query; one
            // that sat idle is tested first (`verify_idle`).
            config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
            let pool = with_timeouts(Pool::builder(manager).max_size(pool_size))
                .pre_recycle(Hook::async_fn(|conn, metrics| {
                    Box::pin(verify_idle(conn, metrics.last_used()))
                }))
                .build()
                .map_err(|e| DatabaseError::Connect(e.to_string()))?;
            Ok(Self {
                pools: Pools::Postgres {
                    pool,
                    url: url.to_owned(),
                },
                _keep_alive: None,
            })
        } else {
            Err(DatabaseError::UnsupportedUrl)
        }
    }

    /// The backend behind this pool.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Postgres { .. } => Backend::Postgres,
            Pools::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// The SQLite database file, when the backend is SQLite.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self.pools {
            Pools::Sqlite { path, .. } => Some(path),
            Pools::Postgres { .. } => None,
        }
    }

    /// Keep `resource` alive as long as any clone of this pool (test databases).
    #[cfg(feature = "test-support")]
    pub(crate) fn keeping(mut self, resource: Arc<dyn Any + Send + Sync>) -> Self {
        self._keep_alive = Some(resource);
        self
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Whether `other` opens the same database as this pool (the same PostgreSQL URL, or
    /// the same SQLite file as given): what one writes, the other's transactions can
    /// write too.
    pub(crate) fn is_same_database(&self, other: &Database) -> bool {
        match (&self.pools, &other.pools) {
            (Pools::Postgres { url, .. }, Pools::Postgres { url: other, .. }) => url == other,
            (Pools::Sqlite { path, .. }, Pools::Sqlite { path: other, .. }) => path == other,
            _ => false,
        }
    }

    /// Run every pending embedded migration of this backend.
    pub async fn migrate(&self) -> Result<(), DatabaseError> {
        self.applied_migrations().await.map(|_| ())
    }

    /// [`Database::migrate`], returning the version of each migration it applied, in
    /// order (empty when the schema was already current).
    pub async fn applied_migrations(&self) -> Result<Vec<String>, DatabaseError> {
        self.with_migration_harness(|harness, migrations| harness.run_pending_migrations(migrations))
            .await
    }

    /// The versions of the embedded migrations this database has not applied yet, in
    /// order; nothing is changed. A database opened by a service that does not own the
    /// schema is checked with it.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, DatabaseError> {
        self.with_migration_harness(|harness, migrations| harness.pending_migrations(migrations))
            .await
    }

    /// Revert every applied migration (used to check that each `down.sql` really reverts).
    pub async fn revert_all(&self) -> Result<(), DatabaseError> {
        self.with_migration_harness(|harness, migrations| harness.revert_all_migrations(migrations))
            .await
            .map(|_| ())
    }

    /// Runs `f` on a dedicated connection in a blocking thread (diesel's migration harness
    /// is synchronous).
    async fn with_migration_harness<F, T>(&self, f: F) -> Result<T, DatabaseError>
    where
        F: for<'h> FnOnce(&'h mut dyn MigrationRunner, EmbeddedMigrations) -> MigrationResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pools = self.pools.clone();
        let outcome = tokio::task::spawn_blocking(move || -> Result<T, DatabaseError> {
            match pools {
                Pools::Sqlite { path, .. } => {
                    let path = path.to_string_lossy().into_owned();
                    let mut conn =
                        SqliteConnection::establish(&path).map_err(|e| DatabaseError::Connect(e.to_string()))?;
                    // Foreign keys stay off while migrating (SQLite's way of changing a
                    // table is to rebuild it, which must not cascade), and are checked
                    // afterwards.
                    diesel::connection::SimpleConnection::batch_execute(&mut conn, SQLITE_MIGRATION_PRAGMAS)
                        .map_err(|e| DatabaseError::Connect(e.to_string()))?;
                    let done = f(&mut SqliteRunner(&mut conn), SQLITE_MIGRATIONS)
                        .map_err(|e| DatabaseError::Migration(e.to_string()))?;
                    let violations: Vec<ForeignKeyViolation> =
                        diesel::RunQueryDsl::load(diesel::sql_query("PRAGMA foreign_key_check"), &mut conn)
                            .map_err(|e| DatabaseError::Migration(e.to_string()))?;
                    match <[ForeignKeyViolation]>::first(&violations) {
                        None => Ok(done),
                        Some(v) => Err(DatabaseError::Migration(format!(
                            "{} row(s) break a foreign key after migrating (first in table {})",
                            violations.len(),
                            v.table
                        ))),
                    }
                }
                Pools::Postgres { url, .. } => {
                    let mut conn: diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection> =
                        diesel::Connection::establish(&url).map_err(|e| DatabaseError::Connect(e.to_string()))?;
                    f(&mut PgRunner(&mut conn), POSTGRES_MIGRATIONS)
                        .map_err(|e| DatabaseError::Migration(e.to_string()))
                }
            }
        })
        .await;
        outcome.map_err(|_| DatabaseError::Migration("the migration task panicked".into()))?
    }
}

type MigrationResult<T> = diesel::migration::Result<T>;

/// A migration harness of either backend, object-safe. Each returns the versions it ran.
pub(crate) trait MigrationRunner {
    fn run_pending_migrations(&mut self, migrations: EmbeddedMigrations) -> MigrationResult<Vec<String>>;
    fn revert_all_migrations(&mut self, migrations: EmbeddedMigrations) -> MigrationResult<Vec<String>>;
    fn pending_migrations(&mut self, migrations: EmbeddedMigrations) -> MigrationResult<Vec<String>>;
}

struct SqliteRunner<'c>(&'c mut SqliteConnection);
struct PgRunner<'c>(&'c mut diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>);

macro_rules! migration_runner {
    ($runner:ident) => {
        impl MigrationRunner for $runner<'_> {
            fn run_pending_migrations(&mut self, migrations: EmbeddedMigrations) -> MigrationResult<Vec<String>> {
                MigrationHarness::run_pending_migrations(self.0, migrations)
                    .map(|done| done.iter().map(ToString::to_string).collect())
            }
            fn revert_all_migrations(&mut self, migrations: EmbeddedMigrations) -> MigrationResult<Vec<String>> {
                MigrationHarness::revert_all_migrations(self.0, migrations)
                    .map(|done| done.iter().map(ToString::to_string).collect())
            }
            fn pending_migrations(&mut self, migrations: EmbeddedMigrations) -> MigrationResult<Vec<String>> {
                MigrationHarness::pending_migrations(self.0, migrations)
                    .map(|pending| pending.iter().map(|m| m.name().version().to_string()).collect())
            }
        }
    };
}
migration_runner!(SqliteRunner);
migration_runner!(PgRunner);

/// How long a caller waits for a free pooled connection, and for a new connection to open,
/// before the call fails with `Unavailable` (a database that is down or overloaded must not
/// hang requests).
const POOL_WAIT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn with_timeouts<C>(builder: PoolBuilder<C>) -> PoolBuilder<C>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager,
{
    builder
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
}

/// How long a PostgreSQL connection may sit unused before a checkout tests it.
const VERIFY_AFTER_IDLE: Duration = Duration::from_secs(2);

/// Test a PostgreSQL connection unused for [`VERIFY_AFTER_IDLE`] with `SELECT 1` before it
/// is handed out (the pool then opens another when it fails). A connection in steady use is
/// not tested: the `SELECT 1` at every checkout cost a round trip per query, and a server
/// that closed the connection is noticed without one (the connection reads as closed).
async fn verify_idle(
    conn: &mut AsyncPgConnection,
    idle: Duration,
) -> deadpool::managed::HookResult<diesel_async::pooled_connection::PoolError> {
    if idle < VERIFY_AFTER_IDLE {
        return Ok(());
    }
    conn.ping(&RecyclingMethod::Verified)
        .await
        .map_err(|e| deadpool::managed::HookError::Backend(diesel_async::pooled_connection::PoolError::QueryError(e)))
}

/// Opens one pooled SQLite connection with the pragmas every connection needs.
async fn open_sqlite(path: String) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&path).await?;
    conn.batch_execute(SQLITE_PRAGMAS)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// A pooled connection, or `Unavailable`.
pub(crate) async fn checkout<C>(pool: &Pool<C>) -> Result<Object<C>, DbError>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    AsyncDieselConnectionManager<C>:
        deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>,
{
    let started = std::time::Instant::now();
    let conn = pool.get().await;
    record_pool_use(pool.status(), started.elapsed());
    conn.map_err(|_| DbError::Pool("no database connection could be opened".into()))
}

/// How often a checkout updates the pool's gauges: each update is four lookups in the
/// metrics registry, a few per cent of a cached read when every checkout made them, and a
/// scraper reads the gauges every few seconds at most.
const POOL_GAUGES_EVERY: Duration = Duration::from_millis(100);

/// How long the checkout waited, and the pool's connections after it (at most every
/// [`POOL_GAUGES_EVERY`]).
fn record_pool_use(status: deadpool::Status, waited: Duration) {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SINCE: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);
    // Milliseconds since SINCE at which the gauges are next due.
    static NEXT_DUE: AtomicU64 = AtomicU64::new(0);

    metrics::histogram!("custodian_db_pool_wait_seconds").record(waited.as_secs_f64());
    let now = u64::try_from(SINCE.elapsed().as_millis()).unwrap_or(u64::MAX);
    let due = AtomicU64::load(&NEXT_DUE, Ordering::Relaxed);
    let every = u64::try_from(POOL_GAUGES_EVERY.as_millis()).unwrap_or(u64::MAX);
    if now < due
        || NEXT_DUE
            .compare_exchange(due, now.saturating_add(every), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let gauge = |state: &'static str, n: usize| {
        #[allow(clippy::cast_precision_loss)] // a pool holds far fewer than 2^52 connections
        metrics::gauge!("custodian_db_pool_connections", "state" => state).set(n as f64);
    };
    gauge("open", status.size);
    gauge("idle", status.available);
    gauge("in_use", status.size.saturating_sub(status.available));
    gauge("waiting", status.waiting);
}

/// Runs a read on a pooled connection of `pool`.
pub(crate) async fn run<C, T>(
    pool: &Pool<C>,
    f: impl AsyncFnOnce(&mut C) -> Result<T, DbError>,
) -> Result<T, custodian_ports::RepoError>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    AsyncDieselConnectionManager<C>:
        deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>,
{
    let mut conn = checkout(pool).await?;
    Ok(f(&mut conn).await?)
}

/// Runs `$body` (a block returning `Result<T, DbError>`, with `$conn` bound to a
/// connection of the deployment's backend) on a pooled connection, outside a transaction.
/// For reads only: on SQLite the statements run on the calling thread ([`SqliteCalls`]);
/// a write, even of one statement, goes through [`transaction!`].
/// Evaluates to `Result<T, RepoError>`.
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:block) => {
        match $db.pools() {
            $crate::db::Pools::Postgres { pool, .. } => {
                $crate::db::run(pool, async move |$conn: &mut ::diesel_async::AsyncPgConnection| $body).await
            }
            $crate::db::Pools::Sqlite { pool, .. } => {
                $crate::db::inline($crate::db::run(
                    pool,
                    async move |$conn: &mut $crate::db::SqliteConn| $body,
                ))
                .await
            }
        }
    };
}
pub(crate) use with_conn;

/// Runs `$body` (as for [`with_conn!`]) in a write transaction: committed when it returns
/// `Ok`, rolled back otherwise. SQLite: `BEGIN IMMEDIATE` (see the module documentation).
/// Evaluates to `Result<T, RepoError>`.
macro_rules! transaction {
    ($db:expr, |$conn:ident| $body:block) => {
        match $db.pools() {
            $crate::db::Pools::Postgres { pool, .. } => match $crate::db::checkout(pool).await {
                Err(e) => Err(::custodian_ports::RepoError::from(e)),
                Ok(mut pooled) => ::diesel_async::AsyncConnection::transaction::<_, $crate::error::DbError, _>(
                    &mut *pooled,
                    async move |$conn: &mut ::diesel_async::AsyncPgConnection| $body,
                )
                .await
                .map_err(::custodian_ports::RepoError::from),
            },
            $crate::db::Pools::Sqlite { writer, .. } => $crate::db::transaction!(@sqlite writer, |$conn| $body),
        }
    };
    // SQLite's write transaction: the writer's turn, then `BEGIN IMMEDIATE`.
    (@sqlite $writer:ident, |$conn:ident| $body:block) => {
        match $writer.turn().await {
            Err(e) => Err(::custodian_ports::RepoError::from(e)),
            Ok(mut turn) => {
                let $conn: &mut $crate::db::SqliteConn = turn.conn();
                $crate::db::inline(async {
                    match $crate::db::begin_immediate($conn).await {
                        Err(e) => Err(::custodian_ports::RepoError::from(e)),
                        Ok(()) => {
                            let outcome: ::std::result::Result<_, $crate::error::DbError> = async { $body }.await;
                            $crate::db::finish($conn, outcome)
                                .await
                                .map_err(::custodian_ports::RepoError::from)
                        }
                    }
                })
                .await
            }
        }
    };
}
pub(crate) use transaction;

/// Runs `$body`, a write of exactly one statement on PostgreSQL, as [`transaction!`] would,
/// but there without `BEGIN` and `COMMIT`: one statement is a transaction of its own, so
/// the write costs one round trip instead of three (several writes can be one statement:
/// [`one_statement`]). On SQLite it is [`transaction!`] (every write takes the writer's
/// turn), so there `$body` may make several. Evaluates to
/// `Result<T, RepoError>`.
macro_rules! single_statement {
    ($db:expr, |$conn:ident| $body:block) => {
        match $db.pools() {
            $crate::db::Pools::Postgres { pool, .. } => {
                $crate::db::run(pool, async move |$conn: &mut ::diesel_async::AsyncPgConnection| $body).await
            }
            $crate::db::Pools::Sqlite { writer, .. } => $crate::db::transaction!(@sqlite writer, |$conn| $body),
        }
    };
}
pub(crate) use single_statement;

/// `statement`, prepared once per connection and run again from diesel's statement cache.
///
/// Diesel never caches an `UPDATE`: a changeset that skips `None` fields can take as many
/// shapes as its columns have subsets. The cache is keyed by the SQL text and the types
/// bound (this wrapper has no static query id), so caching one is always correct; wrap
/// an update whose shape is fixed (its changeset binds `None` as `NULL`, or sets fixed
/// columns), or takes only a few, so that the cache stays small.
pub(crate) fn prepared_once<Q>(statement: Q) -> PreparedOnce<Q> {
    PreparedOnce(statement)
}

/// See [`prepared_once`]. It has no `Debug`: a statement's `Debug` shows the values it
/// binds.
pub(crate) struct PreparedOnce<Q>(Q);

impl<Q> diesel::query_builder::QueryId for PreparedOnce<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for PreparedOnce<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// `writes` as one PostgreSQL statement: `WITH w0 AS (first), w1 AS (second) last`.
///
/// One statement is a transaction of its own and one round trip: all of its writes are
/// made or none is, without `BEGIN` and `COMMIT` (two round trips more and, for the
/// database, two more wake-ups of its backend). The writes of one statement do not see each
/// other's rows, so none may rely on another's (a foreign key or a uniqueness between
/// them); each table's own constraints and triggers apply as they would one by one. A
/// failure names its table (`table_name` of the error), which is how a caller tells which
/// write it was.
///
/// Prepared once per connection when every write is (its query id is its SQL text).
pub(crate) fn one_statement<'a>(
    writes: Vec<Box<dyn diesel::query_builder::QueryFragment<diesel::pg::Pg> + Send + 'a>>,
) -> OneStatement<'a> {
    OneStatement(writes)
}

/// See [`one_statement`]. It has no `Debug`, as [`PreparedOnce`] has none.
pub(crate) struct OneStatement<'a>(Vec<Box<dyn diesel::query_builder::QueryFragment<diesel::pg::Pg> + Send + 'a>>);

impl diesel::query_builder::QueryId for OneStatement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for OneStatement<'_> {
    fn walk_ast<'b>(&'b self, mut pass: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        let Some((last, firsts)) = self.0.split_last() else {
            return Err(diesel::result::Error::QueryBuilderError("no write to make".into()));
        };
        for (i, write) in firsts.iter().enumerate() {
            pass.push_sql(if i == 0 { "WITH " } else { ", " });
            pass.push_identifier(&format!("w{i}"))?;
            pass.push_sql(" AS (");
            write.walk_ast(pass.reborrow())?;
            pass.push_sql(")");
        }
        if !firsts.is_empty() {
            pass.push_sql(" ");
        }
        last.walk_ast(pass)
    }
}

/// Whether `statement` is prepared once per connection and run again from diesel's
/// statement cache, on both backends, rather than parsed and planned at every run (and,
/// on PostgreSQL, prepared in a round trip of its own). Diesel caches a statement only when
/// its SQL cannot vary with the values bound; an `Insertable` row whose fields may each be
/// `DEFAULT` can, which is why every row here binds `None` as `NULL`
/// (`treat_none_as_default_value = false`).
#[cfg(test)]
pub(crate) fn is_prepared_once<Q>(statement: &Q) -> bool
where
    Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    use diesel::query_builder::QueryFragment;
    QueryFragment::<diesel::pg::Pg>::is_safe_to_cache_prepared(statement, &diesel::pg::Pg).unwrap_or(false)
        && QueryFragment::<diesel::sqlite::Sqlite>::is_safe_to_cache_prepared(statement, &diesel::sqlite::Sqlite)
            .unwrap_or(false)
}

/// Operations every repository needs inside a query body, on either connection type.
pub(crate) trait Conn: AsyncConnection + Send {
    /// Lock `team` (a team id) for the rest of the transaction before counting its records
    /// against a tier limit. `NotFound` when there is no such team.
    async fn lock_team(&mut self, team: &str) -> Result<(), DbError>;

    /// Insert `event` (inside the caller's transaction).
    async fn insert_audit(&mut self, event: &AuditEvent) -> Result<(), DbError>;
}

impl Conn for AsyncPgConnection {
    async fn lock_team(&mut self, team: &str) -> Result<(), DbError> {
        teams::table
            .select(teams::id)
            .filter(teams::id.eq(team))
            .for_update()
            .get_result::<String>(self)
            .await?;
        Ok(())
    }

    async fn insert_audit(&mut self, event: &AuditEvent) -> Result<(), DbError> {
        diesel::insert_into(audit_events::table)
            .values(AuditRow::from_event(event))
            .execute(self)
            .await?;
        Ok(())
    }
}

impl Conn for SqliteConn {
    async fn lock_team(&mut self, team: &str) -> Result<(), DbError> {
        // The transaction began with BEGIN IMMEDIATE and holds the write lock already.
        teams::table
            .select(teams::id)
            .filter(teams::id.eq(team))
            .get_result::<String>(self)
            .await?;
        Ok(())
    }

    async fn insert_audit(&mut self, event: &AuditEvent) -> Result<(), DbError> {
        diesel::insert_into(audit_events::table)
            .values(AuditRow::from_event(event))
            .execute(self)
            .await?;
        Ok(())
    }
}

/// `LimitExceeded(kind)` when a team that holds `current` records of `kind` is at its
/// `limit` (`None`: unlimited). Call after [`Conn::lock_team`], in the inserting transaction.
pub(crate) fn check_limit(current: i64, limit: Option<u32>, kind: LimitKind) -> Result<(), DbError> {
    match limit {
        Some(limit) if current >= i64::from(limit) => Err(DbError::Repo(RepoError::LimitExceeded { kind, limit })),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    /// Every `Insertable` row of this crate binds `None` as `NULL`, so that its insert is
    /// prepared once ([`super::is_prepared_once`]); none of their nullable columns has a
    /// default other than `NULL`.
    #[test]
    fn every_insertable_row_binds_none_as_null() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut rows = 0;
        for entry in std::fs::read_dir(dir).expect("the crate's sources") {
            let path = entry.expect("a source file").path();
            let source = std::fs::read_to_string(&path).expect("a source file");
            let lines: Vec<&str> = source.lines().collect();
            for (n, line) in lines.iter().enumerate() {
                if line.starts_with("#[derive(") && line.contains("Insertable") {
                    rows += 1;
                    let attribute = lines.get(n + 1).copied().unwrap_or_default();
                    assert!(
                        attribute.starts_with("#[diesel(") && attribute.contains("treat_none_as_default_value = false"),
                        "{}:{}: an Insertable row without `treat_none_as_default_value = false` is parsed and \
                         planned at every insert",
                        path.display(),
                        n + 2
                    );
                }
            }
        }
        assert!(
            rows >= 17,
            "found only {rows} Insertable rows: is the derive written differently?"
        );
    }
}
