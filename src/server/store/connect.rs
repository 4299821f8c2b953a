//! Opening the database: the pools and the writer's connection for either
//! backend, the SQLite pragmas, and the migrations.
use super::sqlite::{self, InlineSqlite, Wal};
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{AnyPool, Executor, Row};
use std::path::Path;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

pub type Pool = AnyPool;
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// The pool plus which database it talks to, for the few places where the
/// dialects differ.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: Pool,
    pub backend: Backend,
    /// Where the ingest writer's (and on SQLite the rollup's) writes go.
    pub writer: Writer,
    /// SQLite only: a small pool on sqlx's native SQLite driver for reads
    /// that return thousands of rows (the data API's every-value answer).
    /// Through the `Any` driver each row is converted to an `AnyRow`, its
    /// column list rebuilt, and rows come back from the connection's thread
    /// 50 at a time, each batch a thread wake-up; that per-row work is
    /// most of a 10,000-value GET. The native driver keeps
    /// the column list shared and takes a larger row buffer.
    pub bulk_reader: Option<SqlitePool>,
    /// SQLite only: the WAL checkpoints, done beside the ingest writer
    /// instead of inside its commits (see `sqlite::wal`).
    pub wal: Option<std::sync::Arc<Wal>>,
}

/// The ingest writer's connection, one of its own on either database.
#[derive(Clone, Debug)]
pub enum Writer {
    /// The connection every ingest and rollup write goes through, one
    /// that runs its statements on the thread holding it
    /// (`sqlite::InlineSqlite`), behind a mutex that is the write gate. The ingest
    /// writer holds it for each batch, the rollup worker for each of its
    /// transactions and the checkpointer for a restart's last copy, so
    /// that one waits for the other here and is woken as soon as the other
    /// is done. Meeting on SQLite's lock instead, the loser waits in
    /// SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and so on between
    /// tries: ingest commits wait 4 to 20 ms each time the rollup writes.
    /// One connection for both keeps its page cache warm: SQLite empties a
    /// connection's cache whenever another one has written since its last
    /// transaction, and the writer's first commits after the rollup wrote
    /// on another connection take 45-55 ms instead of about 2 ms.
    Sqlite(std::sync::Arc<tokio::sync::Mutex<InlineSqlite>>),
    /// A pool of one connection, connected on first use and kept, so that
    /// its prepared statements stay warm. The rollup writes on the main
    /// pool beside it: PostgreSQL's row locks let both proceed at once.
    Postgres(Pool),
}

/// Rows the native SQLite driver buffers between its connection thread and
/// the reading task (sqlx's default is 50).
const BULK_ROW_BUFFER: usize = 4_096;

#[derive(Debug, thiserror::Error)]
pub enum DbInitError {
    #[error("unsupported database URL {0:?}: use sqlite://<file> or postgres://...")]
    UnsupportedUrl(String),
    #[error("an in-memory SQLite database is not supported: the server's connections share one file; use sqlite://<file>")]
    InMemory,
    #[error("cannot create the database directory {0}: {1}")]
    CreateDir(String, std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("seeding resource types failed: {0}")]
    Seed(sqlx::Error),
}

pub(super) static INSTALL_DRIVERS: Once = Once::new();

/// Set on every SQLite connection. WAL lets the dashboard read while ingest
/// writes; NORMAL sync is durable across process crashes in WAL mode. A
/// 16 MiB page cache per connection (SQLite's default is 2 MiB) keeps the
/// indexes ingest writes to in memory instead of re-reading them with a
/// syscall per page; temporary b-trees (sorts) stay in memory too.
///
/// No connection checkpoints the WAL when it commits: a task of its own
/// does (`sqlite::Wal`), so that ingest commits do not wait for the copy.
pub(super) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
     PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; \
     PRAGMA wal_autocheckpoint = 0;";

/// What the settings choose about the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// SQLite: the size in bytes the write-ahead log file is kept under
    /// (`sqlite::wal`).
    pub wal_limit_bytes: u64,
}

/// The default of `wal_limit_bytes`, in MiB (`sqlite_wal_limit_mib`).
pub const DEFAULT_WAL_LIMIT_MIB: u64 = 32;

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            wal_limit_bytes: DEFAULT_WAL_LIMIT_MIB << 20,
        }
    }
}

/// Every SQLite connection's pragmas: `SQLITE_PRAGMAS`, and the size the
/// log file is cut back to when a commit starts the log over
/// (`sqlite::wal::truncate_to`).
fn sqlite_pragmas(options: StoreOptions) -> String {
    format!(
        "{SQLITE_PRAGMAS} PRAGMA journal_size_limit = {};",
        sqlite::wal::truncate_to(options.wal_limit_bytes)
    )
}

/// The pools' `after_connect` hook on SQLite, for the `Any` and the native
/// driver's connections alike: runs `pragmas`.
pub(super) fn sqlite_pragmas_hook<C>(
    pragmas: std::sync::Arc<str>,
) -> impl for<'c> Fn(
    &'c mut C,
    sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>>
       + Send
       + Sync
       + 'static
where
    C: Send,
    for<'e> &'e mut C: Executor<'e>,
{
    move |conn, _meta| {
        let pragmas = pragmas.clone();
        Box::pin(async move {
            conn.execute(&*pragmas).await?;
            Ok(())
        })
    }
}

impl Db {
    /// Connects without migrating, with the default options.
    pub async fn connect(url: &str) -> Result<Db, DbInitError> {
        Db::connect_with(url, StoreOptions::default()).await
    }

    /// Connects without migrating.
    pub async fn connect_with(url: &str, store: StoreOptions) -> Result<Db, DbInitError> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend =
            Backend::from_url(url).ok_or_else(|| DbInitError::UnsupportedUrl(url.to_string()))?;
        let mut url = url.to_string();
        let mut bulk_reader = None;
        let mut checkpointer = None;
        let pragmas: std::sync::Arc<str> = sqlite_pragmas(store).into();
        let options = match backend {
            Backend::Sqlite => {
                if let Some(file) = sqlite_file(&url) {
                    if let Some(dir) = Path::new(&file).parent() {
                        if !dir.as_os_str().is_empty() {
                            std::fs::create_dir_all(dir).map_err(|e| {
                                DbInitError::CreateDir(dir.display().to_string(), e)
                            })?;
                        }
                    }
                }
                if !url.contains("mode=") {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str("mode=rwc");
                }
                let options = |max| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        // A SQLite connection is a file handle: nothing can
                        // hang up on it. sqlx's default ping before each
                        // acquire is a round trip to the connection's thread.
                        .test_before_acquire(false)
                        .after_connect(sqlite_pragmas_hook(pragmas.clone()))
                };
                let native = SqliteConnectOptions::from_str(&url)
                    .map_err(DbInitError::Connect)?
                    .row_buffer_size(BULK_ROW_BUFFER);
                bulk_reader = Some(
                    SqlitePoolOptions::new()
                        .max_connections(2)
                        .test_before_acquire(false)
                        .acquire_timeout(Duration::from_secs(30))
                        .after_connect(sqlite_pragmas_hook(pragmas.clone()))
                        .connect_lazy_with(native),
                );
                checkpointer = Some(
                    options(1)
                        .acquire_timeout(Duration::from_secs(30))
                        .connect_lazy(&url)
                        .map_err(DbInitError::Connect)?,
                );
                options(8)
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(16),
        };
        let pool = options
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .map_err(DbInitError::Connect)?;
        let (writer, wal) = match backend {
            // The writer keeps its connection for good.
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(1)
                    .max_lifetime(None)
                    .idle_timeout(None)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy(&url)
                    .map_err(DbInitError::Connect)?;
                (Writer::Postgres(pool), None)
            }
            Backend::Sqlite => {
                let file = sqlite_file(&url).ok_or(DbInitError::InMemory)?;
                let conn = InlineSqlite::open(&file, &pragmas).map_err(DbInitError::Connect)?;
                let gate = std::sync::Arc::new(tokio::sync::Mutex::new(conn));
                let wal = checkpointer.map(|pool| {
                    Wal::start(pool, gate.clone(), Some(file.into()), store.wal_limit_bytes)
                });
                (Writer::Sqlite(gate), wal)
            }
        };
        Ok(Db {
            pool,
            backend,
            writer,
            bulk_reader,
            wal,
        })
    }

    /// Applies the migrations not applied yet.
    pub async fn migrate(&self) -> Result<(), DbInitError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Table (or view) name -> sorted column names, read from the live schema.
    pub async fn schema_columns(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, sqlx::Error> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT m.name AS table_name, p.name AS column_name \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'"
            }
            Backend::Postgres => {
                "SELECT table_name::text AS table_name, column_name::text AS column_name \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'"
            }
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
        for row in rows {
            let table: String = row.try_get("table_name")?;
            let column: String = row.try_get("column_name")?;
            out.entry(table).or_default().push(column);
        }
        for cols in out.values_mut() {
            cols.sort();
        }
        Ok(out)
    }
}

/// The file path of a `sqlite://` URL, or None for in-memory databases.
fn sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(path.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_in_memory_sqlite_database_is_refused() {
        let err = Db::connect("sqlite::memory:").await.unwrap_err();
        assert!(matches!(err, DbInitError::InMemory), "{err}");
    }

    #[test]
    fn sqlite_file_is_taken_from_the_url() {
        assert_eq!(sqlite_file("sqlite://data/x.db"), Some("data/x.db".into()));
        assert_eq!(
            sqlite_file("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db".into())
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(Backend::from_url("mysql://x"), None);
        assert_eq!(
            Backend::from_url("postgresql://h/db"),
            Some(Backend::Postgres)
        );
    }
}
