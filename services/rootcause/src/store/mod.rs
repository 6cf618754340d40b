//! Durable state: one repository API over SQLite (the default, a file in the data directory) or
//! PostgreSQL (when the database URL is `postgres://…`).
//!
//! Both engines run the same SQL text wherever the dialects agree (`$1` placeholders work in
//! both); each has its own migrations directory because their DDL does not (identity columns).
//! The two directories hold the same migration versions, which a test checks. Timestamps are
//! stored as epoch milliseconds (`BIGINT`), documents as `TEXT`.

mod actions;
mod alerts;
mod batch;
mod catalogues;
mod changes;
mod history;
mod metric_windows;
mod registry;
mod tokens;
mod topology;

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use thiserror::Error;

use crate::config::{SqliteDurability, StoreOptions, redact_url};

pub use actions::{
    AuditFilter, Decision, NewAudit, NewDecision, NewRun, RunStatus, StoredAudit, StoredDecision,
    StoredRun,
};
pub use alerts::{
    AlertFilter, EngineState, IncidentFilter, Page, StoredAlert, StoredAlertKind, StoredEvent,
    StoredIncident, incident_snapshot,
};
pub use batch::{AlertWrite, EncodedBatch, IngestBatch};
pub use catalogues::StoredCatalogue;
pub use changes::{ChangeFilter, NewChange, StoredChange};
pub use history::{
    HistoryFacts, HistorySummary, HistoryUpsert, NewFeedback, NewHistory, NewResolution,
    StoredFeedback, StoredHistory, StoredResolution, Verdict,
};
pub use metric_windows::{MetricWrite, StoredMetric};
pub use registry::{JobStatus, ModelStatus, NewModel, StoredJob, StoredModel};
pub use tokens::StoredToken;
pub use topology::{NewTopologyVersion, StoredTopology, TopologyVersionRow};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Runs `$body` with `$pool` bound to whichever typed pool the store has. The body is compiled
/// once per engine, so the same query text and bind calls serve both.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Gives a fieldless enum stored as text its `as_str` (the text in the database, which is its
/// serde name) and `parse` (that text back; anything else is [`StoreError::Corrupt`], naming
/// `what`).
macro_rules! stored_as_text {
    ($enum:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $enum {
            /// The text stored in the database (the serde name).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($enum::$variant => $text,)+
                }
            }

            fn parse(text: &str) -> Result<$enum, StoreError> {
                match text {
                    $($text => Ok($enum::$variant),)+
                    other => Err(StoreError::Corrupt(format!(
                        concat!("unknown ", $what, " {:?}"),
                        other
                    ))),
                }
            }
        }
    };
}
pub(crate) use stored_as_text;

/// An id as a database column (ids come from the database, so they fit).
pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `Ok` when an update changed a row; otherwise [`StoreError::Conflict`] saying why not (the row
/// was not in the state the update requires).
pub(super) fn changed_one(
    updated: u64,
    why_not: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    if updated == 0 {
        return Err(StoreError::Conflict(why_not()));
    }
    Ok(())
}

/// A database column as an id (never negative, as the database hands them out).
pub(super) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// A write lost a race or broke a uniqueness rule.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Running the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data the service cannot read back (or a batch it cannot encode).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Anything else the database said.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Key of the PostgreSQL advisory lock that makes one process the database's ingester.
const INGEST_LOCK_KEY: i64 = 0x0072_6f6f_7463_6175; // "rootcau"

/// The right to ingest into a database, held while this lives (see [`Store::claim_ingest`]).
#[derive(Debug)]
pub enum IngestLock {
    /// The advisory lock's session.
    Postgres(Box<sqlx::PgConnection>),
    /// The locked file.
    File(std::fs::File),
    /// An in-memory database: nobody else can reach it.
    None,
}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// An SQLite file (WAL mode).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A row type both engines can read: what the generic selects of [`Store`] return.
pub(crate) trait Row:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

impl<R> Row for R where
    R: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

/// The repository: every query the service makes goes through a method of this type.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
}

impl Store {
    /// The row of `table` whose id is `id`, read as `R` with the select list `columns`: the one
    /// way every "get by id" of the store is written.
    pub(crate) async fn select_by_id<R: Row>(
        &self,
        table: &str,
        columns: &str,
        id: i64,
    ) -> Result<Option<R>, StoreError> {
        let rows = self.select_where(table, columns, "id", id).await?;
        Ok(rows.into_iter().next())
    }

    /// The rows of `table` whose column `column` is `value`, read as `R` with the select list
    /// `columns`, in the order of their ids (oldest first): a row by id, or the rows about one
    /// incident.
    pub(crate) async fn select_where<R: Row>(
        &self,
        table: &str,
        columns: &str,
        column: &str,
        value: i64,
    ) -> Result<Vec<R>, StoreError> {
        let sql = format!("SELECT {columns} FROM {table} WHERE {column} = $1 ORDER BY id");
        self.select(sql, Some(value)).await
    }

    /// Every row of `sql`, a query without parameters.
    pub(crate) async fn select_all<R: Row>(&self, sql: String) -> Result<Vec<R>, StoreError> {
        self.select(sql, None).await
    }

    /// Every row of `sql`, with its one parameter `$1` bound to `value` when there is one.
    async fn select<R: Row>(&self, sql: String, value: Option<i64>) -> Result<Vec<R>, StoreError> {
        Ok(with_pool!(self, pool => {
            let query = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql.clone()));
            match value {
                Some(value) => query.bind(value),
                None => query,
            }
            .fetch_all(pool)
            .await?
        }))
    }

    /// Connects to the database at `url`, creating an SQLite file if needed (its directory
    /// mode 0700, the file and its journals 0600), and applies the embedded migrations.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let acquire_timeout = Duration::from_secs(options.acquire_timeout_secs);
        let backend = match engine_of(url)? {
            Engine::Sqlite => {
                let new_file = prepare_sqlite_file(url)?;
                let connect = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(match options.sqlite_synchronous {
                        SqliteDurability::Full => SqliteSynchronous::Full,
                        SqliteDurability::Normal => SqliteSynchronous::Normal,
                    })
                    .foreign_keys(true)
                    .busy_timeout(acquire_timeout)
                    // The memory map serves reads of committed pages; the cache holds what a
                    // transaction writes and pages read from the WAL. The alert index leads
                    // with the start time, so a group commit dirties a few pages at its end.
                    .page_size(16384)
                    .pragma(
                        "cache_size",
                        format!("-{}", u64::from(options.sqlite_cache_mib.max(1)) * 1024),
                    )
                    .pragma("mmap_size", "1073741824")
                    // Checkpoints copy the WAL into the database file. Left to the committing
                    // connection they stall the ingest writer; the service runs them from a
                    // background task instead (`Store::checkpoint`), and this is only the
                    // backstop that bounds the WAL (about 400 MiB) should that task fall behind.
                    .pragma("wal_autocheckpoint", "100000");
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(acquire_timeout)
                    .connect_with(connect)
                    .await?;
                if let Some(file) = new_file {
                    restrict_sqlite_files(&file)?;
                }
                SQLITE_MIGRATIONS.run(&pool).await?;
                Backend::Sqlite(pool)
            }
            Engine::Postgres => {
                let connect = PgConnectOptions::from_str(url)?.application_name("rootcause");
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(acquire_timeout)
                    .connect_with(connect)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Backend::Postgres(pool)
            }
        };
        Ok(Store { backend })
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        match self.backend {
            Backend::Sqlite(_) => Engine::Sqlite,
            Backend::Postgres(_) => Engine::Postgres,
        }
    }

    /// Claims the right to ingest into this database for as long as the returned lock lives.
    /// Until partitions of the correlation state have owners, two replicas ingesting into one
    /// database would each number incidents from 1 and overwrite each other's rows; the second
    /// is refused ([`StoreError::Conflict`]) instead. PostgreSQL: a session advisory lock held
    /// on a connection of its own; SQLite: an exclusive lock on `<database>.ingest-lock`. Both
    /// are released by the operating system or the database when the process dies.
    pub async fn claim_ingest(&self, url: &str) -> Result<IngestLock, StoreError> {
        let taken = || {
            StoreError::Conflict(
                "another rootcause process is ingesting into this database (one ingesting \
                 replica per database until partitioned ownership lands); stop it, or give \
                 this one its own database"
                    .to_owned(),
            )
        };
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut connection = pool.acquire().await?.detach();
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(INGEST_LOCK_KEY)
                    .fetch_one(&mut connection)
                    .await?;
                if !locked {
                    return Err(taken());
                }
                Ok(IngestLock::Postgres(Box::new(connection)))
            }
            Backend::Sqlite(_) => {
                let options = SqliteConnectOptions::from_str(url)?;
                let file = options.get_filename();
                if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
                    return Ok(IngestLock::None);
                }
                let mut path = file.as_os_str().to_owned();
                path.push(".ingest-lock");
                let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
                let lock = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(io)?;
                match lock.try_lock() {
                    Ok(()) => Ok(IngestLock::File(lock)),
                    Err(std::fs::TryLockError::WouldBlock) => Err(taken()),
                    Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
                }
            }
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    /// SQLite: copies what the write-ahead log holds into the database file, without waiting
    /// for readers or blocking the writer (a passive checkpoint). Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if let Backend::Sqlite(pool) = &self.backend {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// For an SQLite URL, the directory its database file lives in (to create before opening);
/// `None` for PostgreSQL and in-memory databases.
pub fn sqlite_directory(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    if engine_of(url)? != Engine::Sqlite {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url)?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
        return Ok(None);
    }
    // A bare file name lives in the working directory, which exists.
    Ok(file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(std::path::Path::to_path_buf))
}

/// Creates the directory of a SQLite database file (mode 0700: it holds the database's
/// journal files beside it) and returns the file when it does not exist yet.
fn prepare_sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
    if let Some(directory) = sqlite_directory(url)?
        && !directory.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&directory).map_err(io)?;
    }
    let options = SqliteConnectOptions::from_str(url)?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
        return Ok(None);
    }
    Ok((!file.exists()).then(|| file.to_path_buf()))
}

/// Makes a new database file and its journal files readable by the service's user only (0600):
/// they hold alerts, the audit log and automation secrets.
fn restrict_sqlite_files(file: &std::path::Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut path = file.as_os_str().to_owned();
            path.push(suffix);
            let path = std::path::PathBuf::from(path);
            if path.exists() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// The engine a URL names.
pub fn engine_of(url: &str) -> Result<Engine, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Engine::Sqlite),
        "postgres" | "postgresql" => Ok(Engine::Postgres),
        _ => Err(StoreError::UnsupportedUrl(redact_url(url))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::NewTopologyVersion;
    use crate::testing::TestDatabase;

    /// A fresh SQLite store in its own temporary directory (kept alive by the returned guard).
    pub(crate) async fn sqlite_store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        (
            Store::open(&url, &StoreOptions::default()).await.unwrap(),
            dir,
        )
    }

    /// Runs `check` against a fresh SQLite store and a fresh PostgreSQL database (when one is
    /// reachable; see [`TestDatabase::create`] for what happens when it is not).
    pub(crate) async fn on_both_engines<F, Fut>(check: F)
    where
        F: Fn(Store) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let (store, _dir) = sqlite_store().await;
        check(store.clone()).await;
        store.close().await;
        if let Some(database) = TestDatabase::create().await {
            let store = Store::open(&database.url, &StoreOptions::default())
                .await
                .unwrap();
            assert_eq!(store.engine(), Engine::Postgres);
            check(store.clone()).await;
            store.close().await;
            database.drop().await;
        }
    }

    /// Stores a bare incident row `id` (merged into `merged_into` when given), for tests of
    /// tables that refer to incidents.
    pub(crate) async fn insert_incident(store: &Store, id: i64, merged_into: Option<i64>) {
        with_pool!(store, pool => {
            sqlx::query(
                "INSERT INTO incidents (id, kind, status, opened_at, first_activity, \
                 last_activity, merged_into, services, label_groups, alert_count, firing_count, \
                 updated_at) VALUES ($1, 'topology', $2, 0, 0, 0, $3, '[]', '[]', 0, 0, 0)",
            )
            .bind(id)
            .bind(if merged_into.is_some() { "merged" } else { "open" })
            .bind(merged_into)
            .execute(pool)
            .await
            .unwrap();
        });
    }

    /// Opens the database at `url`, writes, closes, opens it again (migrations already applied
    /// must be a no-op) and reads the write back.
    async fn reopen(url: &str) {
        let store = Store::open(url, &StoreOptions::default()).await.unwrap();
        store.ping().await.unwrap();
        let row = store
            .insert_topology_version(&NewTopologyVersion {
                parent: None,
                created_at: chrono::Utc::now(),
                source: "test",
                note: "",
                digest: "d",
                service_count: 0,
                dependency_count: 0,
                document: "{}",
            })
            .await
            .unwrap();
        store.close().await;
        let again = Store::open(url, &StoreOptions::default()).await.unwrap();
        again.ping().await.unwrap();
        assert_eq!(
            again.latest_topology_version_id().await.unwrap(),
            Some(row.id)
        );
        again.close().await;
    }

    #[test]
    fn the_text_stored_for_each_status_is_its_serde_name() {
        fn check<T: serde::Serialize + Copy>(values: &[T], as_str: fn(T) -> &'static str) {
            for value in values {
                let serde_name = serde_json::to_value(value).unwrap();
                assert_eq!(as_str(*value), serde_name.as_str().unwrap());
            }
        }
        use {JobStatus as J, ModelStatus as M, RunStatus as R};
        check(&[Decision::Approved, Decision::Rejected], Decision::as_str);
        check(
            &[R::Pending, R::Running, R::Succeeded, R::Failed],
            R::as_str,
        );
        check(&[Verdict::Confirm, Verdict::Reject], Verdict::as_str);
        check(&[M::Active, M::Candidate, M::Retired], M::as_str);
        check(&[J::Queued, J::Running, J::Succeeded, J::Failed], J::as_str);
    }

    #[tokio::test]
    async fn a_database_opens_again_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        reopen(&format!(
            "sqlite://{}",
            dir.path().join("again.db").display()
        ))
        .await;
        if let Some(database) = TestDatabase::create().await {
            reopen(&database.url).await;
            database.drop().await;
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_database_is_private_to_the_service_user() {
        // Before: a 0644 database (automation secrets, the audit log) in a 0755 directory.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let file = data.join("rootcause.db");
        let store = Store::open(
            &format!("sqlite://{}", file.display()),
            &StoreOptions::default(),
        )
        .await
        .unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&file), 0o600);
        let wal = data.join("rootcause.db-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600);
        }
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_runs_in_wal_mode_with_foreign_keys() {
        let (store, _dir) = sqlite_store().await;
        let Backend::Sqlite(pool) = &store.backend else {
            unreachable!()
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(foreign_keys, 1);
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "FULL by default");
    }

    #[test]
    fn both_engines_have_the_same_migrations() {
        let versions = |m: &Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
        assert!(SQLITE_MIGRATIONS.iter().count() > 0);
    }

    #[test]
    fn sqlite_files_need_their_directory_and_servers_do_not() {
        let dir = sqlite_directory("sqlite:///var/lib/rootcause/db/rc.db").unwrap();
        assert_eq!(
            dir.as_deref(),
            Some(std::path::Path::new("/var/lib/rootcause/db"))
        );
        assert_eq!(sqlite_directory("postgres://u@h/db").unwrap(), None);
        assert_eq!(sqlite_directory("sqlite::memory:").unwrap(), None);
        assert_eq!(sqlite_directory("sqlite://rc.db").unwrap(), None);
    }

    #[test]
    fn urls_pick_the_engine_and_passwords_never_show() {
        assert_eq!(engine_of("sqlite://x.db").unwrap(), Engine::Sqlite);
        assert_eq!(engine_of("sqlite::memory:").unwrap(), Engine::Sqlite);
        assert_eq!(engine_of("postgres://u@h/db").unwrap(), Engine::Postgres);
        assert_eq!(engine_of("postgresql://u@h/db").unwrap(), Engine::Postgres);
        let error = engine_of("mysql://root:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(error.contains("mysql://root:***@h/db"), "{error}");
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/rc?sslmode=require"),
            "postgres://app:***@db:5432/rc?sslmode=require"
        );
        assert_eq!(redact_url("postgres://app@db/rc"), "postgres://app@db/rc");
        assert_eq!(
            redact_url("postgres://db/rc?user=app&password=hunter2&sslmode=require"),
            "postgres://db/rc?user=app&password=***&sslmode=require"
        );
    }
}
