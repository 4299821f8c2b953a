//! The database layer. One pool type (sqlx's `Any`) serves SQLite and
//! PostgreSQL; the SQL is shared wherever the two dialects agree and every
//! function takes an executor, so callers choose a pool or a transaction.
//! Placeholders are `$1`-style, which both drivers accept.
pub mod api_token;
pub mod endpoint;
pub mod endpoint_operation;
pub mod event;
pub mod firmware;
pub mod firmware_update;
pub mod json_rows;
pub mod resource;
pub mod resource_type;
pub mod rollup;
pub mod script;
pub mod seed;
pub mod sessions;
pub mod sqlite_inline;
pub mod users;
pub mod wal;

use sqlx::any::{AnyPoolOptions, AnyRow};
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
    /// 50 at a time, each batch a thread wake-up; measured with `perf`, that
    /// per-row work was most of a 10,000-value GET. The native driver keeps
    /// the column list shared and takes a larger row buffer.
    pub bulk_reader: Option<SqlitePool>,
    /// SQLite only: the WAL checkpoints, done beside the ingest writer
    /// instead of inside its commits (see `wal`).
    pub wal: Option<std::sync::Arc<wal::Wal>>,
}

/// The ingest writer's connection, one of its own on either database.
#[derive(Clone, Debug)]
pub enum Writer {
    /// The connection every ingest and rollup write goes through, one
    /// that runs its statements on the thread holding it
    /// (`sqlite_inline`), behind a mutex that is the write gate. The ingest
    /// writer holds it for each batch, the rollup worker for each of its
    /// transactions and the checkpointer for a restart's last copy, so
    /// that one waits for the other here and is woken as soon as the other
    /// is done. Meeting on SQLite's lock instead, the loser waits in
    /// SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and so on between
    /// tries: measured, ingest commits waited 4 to 20 ms once a second,
    /// when the rollup wrote. One connection for both keeps its page cache
    /// warm: SQLite empties a connection's cache whenever another one has
    /// written since its last transaction, and the writer's first commits
    /// after the rollup wrote on another connection took 45-55 ms instead
    /// of about 2 ms.
    Sqlite(std::sync::Arc<tokio::sync::Mutex<sqlite_inline::InlineSqlite>>),
    /// A pool of one connection, connected on first use and kept, so that
    /// its prepared statements stay warm. The rollup writes on the main
    /// pool beside it: PostgreSQL's row locks let both proceed at once.
    Postgres(Pool),
}

impl Db {
    /// Takes the write gate (SQLite), the writer's connection, for the
    /// length of a write transaction.
    pub async fn gate(&self) -> Option<tokio::sync::MutexGuard<'_, sqlite_inline::InlineSqlite>> {
        match &self.writer {
            Writer::Sqlite(gate) => Some(gate.lock().await),
            Writer::Postgres(_) => None,
        }
    }
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

static INSTALL_DRIVERS: Once = Once::new();

/// Set on every SQLite connection. WAL lets the dashboard read while ingest
/// writes; NORMAL sync is durable across process crashes in WAL mode. A
/// 16 MiB page cache per connection (SQLite's default is 2 MiB) keeps the
/// indexes ingest writes to in memory instead of re-reading them with a
/// syscall per page; temporary b-trees (sorts) stay in memory too.
///
/// No connection checkpoints the WAL when it commits: a task of its own
/// does (`wal::Wal`), so that ingest commits do not wait for the copy.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
     PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; \
     PRAGMA wal_autocheckpoint = 0;";

/// The pools' `after_connect` hook on SQLite, for the `Any` and the native
/// driver's connections alike.
fn apply_sqlite_pragmas<'c, C>(
    conn: &'c mut C,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>>
where
    C: Send,
    for<'e> &'e mut C: Executor<'e>,
{
    Box::pin(async move {
        conn.execute(SQLITE_PRAGMAS).await?;
        Ok(())
    })
}

impl Db {
    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Db, DbInitError> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        json_rows::register_sqlite_functions();
        let backend =
            Backend::from_url(url).ok_or_else(|| DbInitError::UnsupportedUrl(url.to_string()))?;
        let mut url = url.to_string();
        let mut bulk_reader = None;
        let mut checkpointer = None;
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
                        .after_connect(apply_sqlite_pragmas)
                };
                let native = SqliteConnectOptions::from_str(&url)
                    .map_err(DbInitError::Connect)?
                    .row_buffer_size(BULK_ROW_BUFFER);
                bulk_reader = Some(
                    SqlitePoolOptions::new()
                        .max_connections(2)
                        .test_before_acquire(false)
                        .acquire_timeout(Duration::from_secs(30))
                        .after_connect(apply_sqlite_pragmas)
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
                let conn = sqlite_inline::InlineSqlite::open(&file, SQLITE_PRAGMAS)
                    .map_err(DbInitError::Connect)?;
                let gate = std::sync::Arc::new(tokio::sync::Mutex::new(conn));
                let wal =
                    checkpointer.map(|pool| wal::Wal::start(pool, gate.clone(), Some(file.into())));
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

    /// Connects, applies pending migrations and seeds the resource types.
    /// Any failure is returned: the server refuses to start on it.
    pub async fn open(url: &str) -> Result<Db, DbInitError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        seed::seed_resource_types(&db.pool)
            .await
            .map_err(DbInitError::Seed)?;
        Ok(db)
    }

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

    /// Table name -> sorted column names, read from the live schema.
    pub async fn schema_columns(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, sqlx::Error> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT m.name AS table_name, p.name AS column_name \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'"
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

/// Reads a boolean column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
pub fn get_bool(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

/// Rows per multi-row statement at most.
const MAX_CHUNK: usize = 128;
/// Statements of up to this many rows (and of `MAX_CHUNK`) stay prepared in
/// sqlx's per-connection statement cache (100 entries), a few tables times
/// these sizes; other sizes are prepared for one use. Each statement is a
/// round trip to the database (on SQLite, to sqlx's worker thread), and a
/// batch's latency is mostly its round trips, so a batch is cut into as few
/// statements as possible rather than into cache-friendly powers of two.
const MAX_CACHED_SMALL: usize = 16;

/// Splits `0..n` into full `MAX_CHUNK` ranges and one remainder.
pub fn chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    (0..n)
        .step_by(MAX_CHUNK)
        .map(|start| start..(start + MAX_CHUNK).min(n))
        .collect()
}

/// Whether a statement of this many rows is worth keeping prepared.
pub fn keep_prepared(rows: usize) -> bool {
    rows == MAX_CHUNK || rows <= MAX_CACHED_SMALL
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` placeholders each; on
/// SQLite `(?, ?), (?, ?)`. SQLite records every numbered parameter in a
/// list that sqlx walks once per parameter when binding, which is quadratic
/// in the parameter count: with a thousand parameters it cost more than the
/// inserts. Anonymous `?` parameters are not in that list.
pub fn values_list(backend: Backend, columns: usize, rows: usize) -> String {
    let mut s = String::with_capacity(rows * columns * 5);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..columns {
            if c > 0 {
                s.push_str(", ");
            }
            n += 1;
            push_placeholder(&mut s, backend, n);
        }
        s.push(')');
    }
    s
}

/// `$1, $2, ... $n` (`?, ?, ...` on SQLite), for `IN (...)` lists.
pub fn placeholder_list(backend: Backend, n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 1..=n {
        if i > 1 {
            s.push_str(", ");
        }
        push_placeholder(&mut s, backend, i);
    }
    s
}

fn push_placeholder(s: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Sqlite => s.push('?'),
        Backend::Postgres => {
            s.push('$');
            s.push_str(&n.to_string());
        }
    }
}

/// Reserves `n` fresh ids for explicit-id inserts into `table`, so that one
/// multi-row statement can insert rows whose ids are already known to the
/// rows that reference them. Must run inside the writing transaction: on
/// SQLite it relies on the write lock that transaction already holds (call
/// it after the transaction's first write); on PostgreSQL it draws from the
/// identity sequence, which is safe under concurrency.
pub async fn allocate_ids<C>(
    conn: &mut C,
    backend: Backend,
    table: IdTable,
    n: usize,
) -> Result<Vec<i64>, sqlx::Error>
where
    for<'e> &'e mut C: Executor<'e, Database = sqlx::Any>,
{
    if n == 0 {
        return Ok(Vec::new());
    }
    let name = table.name();
    match backend {
        Backend::Sqlite => {
            let max: i64 = sqlx::query_scalar(&format!("SELECT {}", table.sqlite_id_floor()))
                .fetch_one(&mut *conn)
                .await?;
            Ok((max + 1..=max + n as i64).collect())
        }
        Backend::Postgres => {
            sqlx::query_scalar(&format!(
                "SELECT nextval(pg_get_serial_sequence('{name}', 'id')) \
                 FROM generate_series(1, $1)"
            ))
            .bind(n as i64)
            .fetch_all(&mut *conn)
            .await
        }
    }
}

/// Tables whose rows the ingest writer inserts with pre-allocated ids.
#[derive(Debug, Clone, Copy)]
pub enum IdTable {
    Resource,
    Event,
}

impl IdTable {
    fn name(self) -> &'static str {
        match self {
            IdTable::Resource => "resource",
            IdTable::Event => "event",
        }
    }

    /// SQLite: the expression for the id above which new ids start.
    /// SQLite would reuse ids when deletes (retention, a deleted endpoint)
    /// empty the top of the table; resource ids must stay above the rollup
    /// watermark, which counts every id up to it as rolled up, and above a
    /// pending rollup run's range (`db::rollup`).
    fn sqlite_id_floor(self) -> String {
        let floor = match self {
            IdTable::Resource => {
                "(SELECT max(last_resource_id, COALESCE(pending_upto, 0)) \
                 FROM rollup_state WHERE id = 1)"
            }
            IdTable::Event => "0",
        };
        format!(
            "max(COALESCE((SELECT MAX(id) FROM {}), 0), COALESCE({floor}, 0))",
            self.name()
        )
    }
}

/// Where the ingest writer's ids come from. On SQLite the writer holds the
/// write lock from its first statement (`BEGIN IMMEDIATE`), so no one else
/// can insert until it commits: it reads the highest ids in use once, in
/// its opening script, and counts on from there without another round
/// trip. On PostgreSQL the ids come from the identity sequences.
#[derive(Debug)]
pub enum IdSource {
    Counted { resource: i64, event: i64 },
    Sequence,
}

impl IdSource {
    /// SQLite: adds the query of the highest ids in use to the script that
    /// opens the transaction; `read` takes its row.
    pub fn push_query(script: &mut script::Script<'_>) {
        if script.backend() == Backend::Sqlite {
            let sql = format!(
                "SELECT {} AS resource_floor, {} AS event_floor",
                IdTable::Resource.sqlite_id_floor(),
                IdTable::Event.sqlite_id_floor()
            );
            script.push(&sql, true);
        }
    }

    /// Takes the row of `push_query` (SQLite) off the front of `rows`.
    pub fn read(
        backend: Backend,
        rows: &mut impl Iterator<Item = AnyRow>,
    ) -> Result<IdSource, sqlx::Error> {
        match backend {
            Backend::Sqlite => {
                let row = rows.next().ok_or(sqlx::Error::RowNotFound)?;
                Ok(IdSource::Counted {
                    resource: row.try_get("resource_floor")?,
                    event: row.try_get("event_floor")?,
                })
            }
            Backend::Postgres => Ok(IdSource::Sequence),
        }
    }

    /// `n` fresh ids for `table`.
    pub async fn take<C>(
        &mut self,
        conn: &mut C,
        table: IdTable,
        n: usize,
    ) -> Result<Vec<i64>, sqlx::Error>
    where
        for<'e> &'e mut C: Executor<'e, Database = sqlx::Any>,
    {
        match self {
            IdSource::Counted { resource, event } => {
                let last = match table {
                    IdTable::Resource => resource,
                    IdTable::Event => event,
                };
                let first = *last + 1;
                *last += n as i64;
                Ok((first..=*last).collect())
            }
            IdSource::Sequence => allocate_ids(conn, Backend::Postgres, table, n).await,
        }
    }
}

/// Starts a write transaction on a pooled connection. On SQLite it begins
/// `IMMEDIATE`, taking the write lock at once (waiting for it under
/// `busy_timeout`): a deferred transaction that reads first and writes
/// after fails with SQLITE_BUSY_SNAPSHOT, at once and without retrying, when
/// another connection (the ingest writer, the rollup) committed in between.
pub async fn begin_write(pool: &Pool) -> Result<Tx<'static>, sqlx::Error> {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

/// A connection of either kind the writers use, one type for the `db`
/// functions to run on: SQLite's writer connection or an `AnyConnection`
/// (pooled, or a transaction's).
#[derive(Debug)]
pub enum Conn<'a> {
    Inline(&'a mut sqlite_inline::InlineSqlite),
    Any(&'a mut sqlx::AnyConnection),
}

impl<'c> Executor<'c> for &'c mut Conn<'_> {
    type Database = sqlx::Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures::stream::BoxStream<
        'e,
        Result<sqlx::Either<sqlx::any::AnyQueryResult, AnyRow>, sqlx::Error>,
    >
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, sqlx::Any>,
    {
        match self {
            Conn::Inline(c) => (&mut **c).fetch_many(query),
            Conn::Any(c) => (&mut **c).fetch_many(query),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures::future::BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, sqlx::Any>,
    {
        match self {
            Conn::Inline(c) => (&mut **c).fetch_optional(query),
            Conn::Any(c) => (&mut **c).fetch_optional(query),
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [sqlx::any::AnyTypeInfo],
    ) -> futures::future::BoxFuture<'e, Result<sqlx::any::AnyStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Inline(c) => (&mut **c).prepare_with(sql, parameters),
            Conn::Any(c) => (&mut **c).prepare_with(sql, parameters),
        }
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> futures::future::BoxFuture<'e, Result<sqlx::Describe<sqlx::Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Inline(c) => (&mut **c).describe(sql),
            Conn::Any(c) => (&mut **c).describe(sql),
        }
    }
}

/// A write transaction taken at the write gate: on SQLite on the writer's
/// connection, held until the transaction ends (rolled back if dropped
/// uncommitted); on PostgreSQL on a connection of the pool, beside the
/// ingest writer's.
pub enum GatedTx<'a> {
    Sqlite(SqliteWriterTx<'a>),
    Postgres(Tx<'static>),
}

/// The SQLite writer's connection inside a transaction.
pub struct SqliteWriterTx<'a>(tokio::sync::MutexGuard<'a, sqlite_inline::InlineSqlite>);

impl Drop for SqliteWriterTx<'_> {
    fn drop(&mut self) {
        self.0.rollback();
    }
}

impl Db {
    /// Begins a write transaction at the write gate (see `GatedTx`).
    pub async fn begin_gated(&self) -> Result<GatedTx<'_>, sqlx::Error> {
        match self.gate().await {
            Some(mut conn) => {
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                Ok(GatedTx::Sqlite(SqliteWriterTx(conn)))
            }
            None => Ok(GatedTx::Postgres(begin_write(&self.pool).await?)),
        }
    }
}

impl GatedTx<'_> {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            GatedTx::Sqlite(tx) => Conn::Inline(&mut tx.0),
            GatedTx::Postgres(tx) => Conn::Any(tx),
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            GatedTx::Sqlite(mut tx) => {
                sqlx::query("COMMIT").execute(&mut *tx.0).await?;
                Ok(())
            }
            GatedTx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// Starts the ingest writer's transaction. On SQLite `IMMEDIATE` takes the
/// write lock at once, which `IdSource` relies on (and a deferred
/// transaction that reads first could not upgrade if another connection
/// wrote in between).
pub fn push_begin_write(script: &mut script::Script<'_>) {
    let sql = match script.backend() {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    script.push(sql, true);
}

pub fn push_commit(script: &mut script::Script<'_>) {
    script.push("COMMIT", true);
}

/// Ends a transaction opened with `push_begin_write` that failed. Fine when
/// none is open (SQLite ends it itself on some errors).
pub async fn rollback<C>(conn: &mut C)
where
    for<'e> &'e mut C: Executor<'e, Database = sqlx::Any>,
{
    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
        tracing::debug!(error = %e, "rollback after a failed write");
    }
}

/// What goes between the column list and `VALUES` of an explicit-id insert:
/// PostgreSQL identity columns refuse explicit values without it.
pub fn overriding(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " OVERRIDING SYSTEM VALUE",
    }
}

/// A nullable DOUBLE PRECISION parameter. sqlx 0.8's `Any` driver turns a
/// `None::<f64>` into a *float4* NULL on PostgreSQL; a prepared statement
/// first run with that NULL then refuses every later float8 value
/// ("incorrect binary data format in bind parameter"). This encodes NULL
/// as the kind sqlx maps to a float8 NULL, so the parameter type of a
/// cached statement is the same whether the value is there or not.
/// (Tested by `tests/writer.rs`: NULL then a value on one connection.)
#[derive(Debug, Clone, Copy)]
pub struct NullableF64(pub Option<f64>);

impl sqlx::Type<sqlx::Any> for NullableF64 {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Any> for NullableF64 {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(v) => <f64 as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&v, buf),
            // sqlx-core's any/arguments.rs maps an f32-typed NULL (kind
            // Real) to `Option::<f64>::None` and an f64-typed one to f32.
            None => <Option<f32> as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&None, buf),
        }
    }
}

/// The current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On SQLite the gated transactions run on the writer's connection; one
    /// dropped without a commit leaves nothing behind and frees the gate.
    #[tokio::test]
    async fn a_gated_transaction_dropped_uncommitted_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/gated.db", dir.path().display());
        let db = Db::connect(&url).await.unwrap();
        let mut tx = db.begin_gated().await.unwrap();
        sqlx::query("CREATE TABLE g (v INTEGER)")
            .execute(&mut tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        {
            let mut tx = db.begin_gated().await.unwrap();
            sqlx::query("INSERT INTO g VALUES (1)")
                .execute(&mut tx.conn())
                .await
                .unwrap();
        }
        let mut tx = db.begin_gated().await.unwrap();
        sqlx::query("INSERT INTO g VALUES (2)")
            .execute(&mut tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let stored: Vec<i64> = sqlx::query_scalar("SELECT v FROM g")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(stored, [2]);
        assert!(!db.gate().await.unwrap().in_transaction());
    }

    #[tokio::test]
    async fn an_in_memory_sqlite_database_is_refused() {
        let err = Db::connect("sqlite::memory:").await.unwrap_err();
        assert!(matches!(err, DbInitError::InMemory), "{err}");
    }

    #[test]
    fn chunks_cover_every_row_once_in_as_few_statements_as_possible() {
        for n in 0..600 {
            let ranges = chunks(n);
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next);
                assert!(!r.is_empty() && r.len() <= MAX_CHUNK);
                next = r.end;
            }
            assert_eq!(next, n);
            assert_eq!(ranges.len(), n.div_ceil(MAX_CHUNK));
        }
    }

    #[test]
    fn values_list_numbers_placeholders_in_row_order() {
        assert_eq!(values_list(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_list(Backend::Postgres, 1, 1), "($1)");
        assert_eq!(values_list(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(placeholder_list(Backend::Postgres, 3), "$1, $2, $3");
        assert_eq!(placeholder_list(Backend::Sqlite, 2), "?, ?");
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
