//! A SQLite connection that runs its statements on the calling thread, as
//! an sqlx `Executor` of the `Any` driver, so the `db` functions written for
//! pools and transactions run on it unchanged.
//!
//! Why: sqlx runs every SQLite connection on a thread of its own, and each
//! query is a message to that thread and a wake-up back. The ingest writer
//! sends two queries per batch (`Script`), so each batch was handed between
//! the writer's thread and the connection's four times, and on a busy
//! 2-core machine each hand-over waited for a core behind request parsing
//! (`/proc/<pid>/task/*/schedstat` shows both threads waiting on the run
//! queue for seconds over a composite run). On this connection the
//! writer's thread does the SQLite work itself: one wake-up per batch.
//!
//! The futures and streams it returns are complete when returned (the
//! work is done inside the call), so the caller's thread is busy for the
//! length of each statement; the ingest writer owns a thread for that. The
//! connection is shared with the rollup worker and the checkpointer
//! through the write gate (`store::Writer::Sqlite`), a mutex around it.
//!
//! Parameters bind as sqlx's SQLite driver binds them (`?` in order across
//! the statements of one query, `?NNN` and `$NNN` by number), rows come
//! back as `AnyRow`s typed by each value, as sqlx maps them, and statements
//! that sqlx would keep prepared (`persistent`) are kept here too.
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use libsqlite3_sys as ffi;
use sqlx::any::{Any, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo, AnyTypeInfoKind};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::{Describe, Either, Execute, Executor};
use sqlx_core::any::{AnyColumn, AnyValue, AnyValueKind};
use sqlx_core::ext::ustr::UStr;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::NonNull;
use std::sync::Arc;

/// Statements kept prepared at most (sqlx's default cache holds 100).
const CACHE_CAPACITY: usize = 100;

pub struct InlineSqlite {
    db: NonNull<ffi::sqlite3>,
    /// Persistent queries by their text: each one's statements, prepared
    /// as they are first reached.
    cache: HashMap<String, Parsed>,
}

// SAFETY: the connection is opened in SQLite's multi-thread mode and used by
// one thread at a time (`&mut self` everywhere; shared only behind a mutex).
unsafe impl Send for InlineSqlite {}
unsafe impl Sync for InlineSqlite {}

impl std::fmt::Debug for InlineSqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineSqlite")
            .field("cached", &self.cache.len())
            .finish()
    }
}

/// The statements of one query, prepared up to `statements.len()`; `rest` is
/// the byte offset of the text not prepared yet.
struct Parsed {
    statements: Vec<Statement>,
    rest: usize,
    complete: bool,
}

impl Parsed {
    fn new() -> Parsed {
        Parsed {
            statements: Vec::new(),
            rest: 0,
            complete: false,
        }
    }
}

struct Statement(NonNull<ffi::sqlite3_stmt>);

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on a connection that outlives
        // it (`InlineSqlite` drops its cache before closing).
        unsafe { ffi::sqlite3_finalize(self.0.as_ptr()) };
    }
}

impl InlineSqlite {
    /// Opens (creating if missing) the database file and applies `pragmas`.
    /// Functions registered with `sqlite3_auto_extension` are added to it
    /// as to every connection.
    pub fn open(path: &str, pragmas: &str) -> Result<InlineSqlite, sqlx::Error> {
        let c_path = CString::new(path)
            .map_err(|_| sqlx::Error::Configuration("a NUL byte in the SQLite path".into()))?;
        let mut db = std::ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE | ffi::SQLITE_OPEN_NOMUTEX;
        // SAFETY: valid C string and out pointer.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, std::ptr::null()) };
        let Some(db) = NonNull::new(db) else {
            return Err(sqlx::Error::Protocol(format!(
                "sqlite3_open_v2 returned no connection (code {rc})"
            )));
        };
        let mut conn = InlineSqlite {
            db,
            cache: HashMap::new(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error());
        }
        // SAFETY: an open connection.
        unsafe { ffi::sqlite3_extended_result_codes(db.as_ptr(), 1) };
        conn.run(pragmas, Vec::new(), false, &mut |_| {})?;
        Ok(conn)
    }

    /// Whether a transaction is open (after an error SQLite may have ended
    /// it already).
    pub fn in_transaction(&self) -> bool {
        // SAFETY: an open connection.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) == 0 }
    }

    /// Ends an open transaction, if any.
    pub fn rollback(&mut self) {
        if self.in_transaction() {
            if let Err(e) = self.run("ROLLBACK", Vec::new(), true, &mut |_| {}) {
                tracing::warn!(error = %e, "rollback failed");
            }
        }
    }

    /// The connection's last error.
    fn error(&self) -> sqlx::Error {
        // SAFETY: an open connection; errmsg is a NUL-terminated string
        // owned by SQLite, copied at once.
        let (code, message) = unsafe {
            (
                ffi::sqlite3_extended_errcode(self.db.as_ptr()),
                CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr()))
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        sqlx::Error::Database(Box::new(InlineSqliteError { code, message }))
    }

    /// Runs every statement of `sql` with `args`, handing each statement's
    /// rows and then its result to `out`. Stops at the first error.
    fn run(
        &mut self,
        sql: &str,
        args: Vec<AnyValueKind<'_>>,
        persistent: bool,
        out: &mut dyn FnMut(Either<AnyQueryResult, AnyRow>),
    ) -> Result<(), sqlx::Error> {
        if !persistent {
            return self.run_parsed(sql, &mut Parsed::new(), &args, false, out);
        }
        // Out of `self` while it runs (an empty map does not allocate), so
        // that a kept query is run in place: no copy of its text per run.
        let mut cache = std::mem::take(&mut self.cache);
        let result = match cache.get_mut(sql) {
            Some(parsed) => self.run_parsed(sql, parsed, &args, true, out),
            None => {
                if cache.len() >= CACHE_CAPACITY {
                    // Rare (the writer's texts are few): start over.
                    cache.clear();
                }
                let mut parsed = Parsed::new();
                let result = self.run_parsed(sql, &mut parsed, &args, true, out);
                cache.insert(sql.to_string(), parsed);
                result
            }
        };
        self.cache = cache;
        result
    }

    fn run_parsed(
        &mut self,
        sql: &str,
        parsed: &mut Parsed,
        args: &[AnyValueKind<'_>],
        persistent: bool,
        out: &mut dyn FnMut(Either<AnyQueryResult, AnyRow>),
    ) -> Result<(), sqlx::Error> {
        let mut next_arg = 0;
        let mut index = 0;
        loop {
            if index == parsed.statements.len()
                && (parsed.complete || !self.prepare_next(sql, parsed, persistent)?)
            {
                return Ok(());
            }
            let stmt = parsed.statements[index].0.as_ptr();
            index += 1;
            let outcome = self
                .bind(stmt, args, &mut next_arg)
                .and_then(|()| self.step(stmt, out));
            // SAFETY: a statement of this connection. Reset so it can run
            // again and holds no lock; the bindings are cleared because
            // text and blobs were bound without a copy (`SQLITE_STATIC`).
            unsafe {
                ffi::sqlite3_reset(stmt);
                ffi::sqlite3_clear_bindings(stmt);
            }
            outcome?;
        }
    }

    /// Prepares the next statement of `sql`; false when only whitespace or
    /// comments are left.
    fn prepare_next(
        &mut self,
        sql: &str,
        parsed: &mut Parsed,
        persistent: bool,
    ) -> Result<bool, sqlx::Error> {
        loop {
            let rest = &sql.as_bytes()[parsed.rest..];
            if rest.iter().all(|b| b.is_ascii_whitespace() || *b == b';') {
                parsed.complete = true;
                return Ok(false);
            }
            let len = c_int::try_from(rest.len())
                .map_err(|_| sqlx::Error::Protocol("SQL text too long".into()))?;
            let mut stmt = std::ptr::null_mut();
            let mut tail: *const c_char = std::ptr::null();
            let flags = if persistent {
                ffi::SQLITE_PREPARE_PERSISTENT
            } else {
                0
            };
            // SAFETY: `rest` is valid for `len` bytes; SQLite reads at most
            // that many and points `tail` into it.
            let rc = unsafe {
                ffi::sqlite3_prepare_v3(
                    self.db.as_ptr(),
                    rest.as_ptr().cast(),
                    len,
                    flags,
                    &mut stmt,
                    &mut tail,
                )
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.error());
            }
            let used = if tail.is_null() {
                rest.len()
            } else {
                // SAFETY: `tail` points into `rest` (or one past its end).
                unsafe { tail.offset_from(rest.as_ptr().cast()) as usize }
            };
            parsed.rest += used.max(1).min(rest.len());
            if let Some(stmt) = NonNull::new(stmt) {
                parsed.statements.push(Statement(stmt));
                return Ok(true);
            }
            // A comment alone: no statement; go on with the rest.
        }
    }

    /// Binds the statement's parameters as sqlx's SQLite driver does:
    /// anonymous `?` take the next argument, `?NNN` and `$NNN` argument NNN.
    /// Parameters without an argument stay NULL.
    fn bind(
        &self,
        stmt: *mut ffi::sqlite3_stmt,
        args: &[AnyValueKind<'_>],
        next_arg: &mut usize,
    ) -> Result<(), sqlx::Error> {
        // SAFETY: a prepared statement of this connection.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(stmt) };
        for param in 1..=count {
            // SAFETY: as above; the name is a NUL-terminated string or null.
            let name = unsafe { ffi::sqlite3_bind_parameter_name(stmt, param) };
            let n = if name.is_null() {
                *next_arg += 1;
                *next_arg
            } else {
                // SAFETY: non-null, NUL-terminated, owned by the statement.
                let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
                name.strip_prefix('?')
                    .or_else(|| name.strip_prefix('$'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        sqlx::Error::Protocol(format!("unsupported SQL parameter {name}"))
                    })?
            };
            let Some(value) = args.get(n - 1) else {
                break;
            };
            // SAFETY: text and blob pointers stay valid until the bindings
            // are cleared after the statement ran (`run_parsed`).
            let rc = unsafe {
                match value {
                    AnyValueKind::Null(_) => ffi::sqlite3_bind_null(stmt, param),
                    AnyValueKind::Bool(b) => ffi::sqlite3_bind_int64(stmt, param, *b as i64),
                    AnyValueKind::SmallInt(i) => ffi::sqlite3_bind_int64(stmt, param, *i as i64),
                    AnyValueKind::Integer(i) => ffi::sqlite3_bind_int64(stmt, param, *i as i64),
                    AnyValueKind::BigInt(i) => ffi::sqlite3_bind_int64(stmt, param, *i),
                    AnyValueKind::Real(r) => ffi::sqlite3_bind_double(stmt, param, *r as f64),
                    AnyValueKind::Double(d) => ffi::sqlite3_bind_double(stmt, param, *d),
                    AnyValueKind::Text(t) => ffi::sqlite3_bind_text64(
                        stmt,
                        param,
                        t.as_ptr().cast(),
                        t.len() as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    AnyValueKind::Blob(b) => ffi::sqlite3_bind_blob64(
                        stmt,
                        param,
                        b.as_ptr().cast(),
                        b.len() as u64,
                        ffi::SQLITE_STATIC(),
                    ),
                    other => {
                        return Err(sqlx::Error::Protocol(format!(
                            "unsupported parameter {other:?}"
                        )))
                    }
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.error());
            }
        }
        Ok(())
    }

    /// Steps the statement to its end, handing each row to `out`, then its
    /// result (rows changed; 0 for a statement that only reads).
    fn step(
        &self,
        stmt: *mut ffi::sqlite3_stmt,
        out: &mut dyn FnMut(Either<AnyQueryResult, AnyRow>),
    ) -> Result<(), sqlx::Error> {
        let mut header: Option<Header> = None;
        loop {
            // SAFETY: a bound statement of this connection.
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_ROW => {
                    let header = header.get_or_insert_with(|| Header::of(stmt));
                    out(Either::Right(read_row(stmt, header)));
                }
                ffi::SQLITE_DONE => break,
                _ => return Err(self.error()),
            }
        }
        // SAFETY: as above.
        let rows_affected = unsafe {
            if ffi::sqlite3_stmt_readonly(stmt) != 0 {
                0
            } else {
                ffi::sqlite3_changes64(self.db.as_ptr()) as u64
            }
        };
        out(Either::Left(AnyQueryResult {
            rows_affected,
            last_insert_id: None,
        }));
        Ok(())
    }

    /// Runs a query, collecting what it returns.
    fn collect<'q>(
        &mut self,
        mut query: impl Execute<'q, Any>,
    ) -> Vec<Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>> {
        let sql = query.sql();
        let persistent = query.persistent() && query.statement().is_none();
        let args = match query.take_arguments() {
            Ok(args) => args.map(|a| a.values.0).unwrap_or_default(),
            Err(e) => return vec![Err(sqlx::Error::Encode(e))],
        };
        let mut results = Vec::new();
        if let Err(e) = self.run(sql, args, persistent, &mut |item| results.push(Ok(item))) {
            results.push(Err(e));
        }
        results
    }
}

impl Drop for InlineSqlite {
    fn drop(&mut self) {
        self.cache.clear();
        // SAFETY: every statement of the connection was finalized above.
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
    }
}

/// A statement's column names, read once per run.
struct Header {
    names: Vec<UStr>,
    index: Arc<sqlx_core::HashMap<UStr, usize>>,
}

impl Header {
    fn of(stmt: *mut ffi::sqlite3_stmt) -> Header {
        // SAFETY: a statement that just returned a row.
        let count = unsafe { ffi::sqlite3_column_count(stmt) };
        let names: Vec<UStr> = (0..count)
            .map(|i| {
                // SAFETY: as above; the name is NUL-terminated, copied at once.
                let name = unsafe {
                    let p = ffi::sqlite3_column_name(stmt, i);
                    if p.is_null() {
                        String::new()
                    } else {
                        CStr::from_ptr(p).to_string_lossy().into_owned()
                    }
                };
                UStr::from(name)
            })
            .collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        Header {
            names,
            index: Arc::new(index),
        }
    }
}

/// The current row, each value typed by what it holds (as sqlx's SQLite
/// driver maps values to `Any`).
fn read_row(stmt: *mut ffi::sqlite3_stmt, header: &Header) -> AnyRow {
    let mut columns = Vec::with_capacity(header.names.len());
    let mut values = Vec::with_capacity(header.names.len());
    for (i, name) in header.names.iter().enumerate() {
        let col = i as c_int;
        // SAFETY: a statement positioned on a row; pointers from column_text
        // and column_blob are valid until the next step and copied at once.
        let kind = unsafe {
            match ffi::sqlite3_column_type(stmt, col) {
                ffi::SQLITE_INTEGER => AnyValueKind::BigInt(ffi::sqlite3_column_int64(stmt, col)),
                ffi::SQLITE_FLOAT => AnyValueKind::Double(ffi::sqlite3_column_double(stmt, col)),
                ffi::SQLITE_TEXT => {
                    let p = ffi::sqlite3_column_text(stmt, col);
                    let n = ffi::sqlite3_column_bytes(stmt, col) as usize;
                    let bytes = if p.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(p, n)
                    };
                    AnyValueKind::Text(Cow::Owned(String::from_utf8_lossy(bytes).into_owned()))
                }
                ffi::SQLITE_BLOB => {
                    let p = ffi::sqlite3_column_blob(stmt, col);
                    let n = ffi::sqlite3_column_bytes(stmt, col) as usize;
                    let bytes = if p.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(p.cast::<u8>(), n).to_vec()
                    };
                    AnyValueKind::Blob(Cow::Owned(bytes))
                }
                _ => AnyValueKind::Null(AnyTypeInfoKind::Null),
            }
        };
        let type_kind = match &kind {
            AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
            AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
            AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
            AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
            _ => AnyTypeInfoKind::Null,
        };
        columns.push(AnyColumn {
            ordinal: i,
            name: name.clone(),
            type_info: AnyTypeInfo { kind: type_kind },
        });
        values.push(AnyValue { kind });
    }
    AnyRow {
        column_names: header.index.clone(),
        columns,
        values,
    }
}

impl<'c> Executor<'c> for &'c mut InlineSqlite {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(futures::stream::iter(self.collect(query)))
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        // The whole query runs (an INSERT ... RETURNING completes); the
        // first row is the answer.
        let mut first = None;
        for item in self.collect(query) {
            match item {
                Err(e) => return Box::pin(futures::future::ready(Err(e))),
                Ok(Either::Right(row)) if first.is_none() => first = Some(row),
                Ok(_) => {}
            }
        }
        Box::pin(futures::future::ready(Ok(first)))
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        _sql: &'q str,
        _parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(futures::future::ready(Err(sqlx::Error::Protocol(
            "statements of the inline SQLite connection are prepared when they run".into(),
        ))))
    }

    fn describe<'e, 'q: 'e>(
        self,
        _sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(futures::future::ready(Err(sqlx::Error::Protocol(
            "describe is not supported on the inline SQLite connection".into(),
        ))))
    }
}

/// A SQLite error: its extended result code and message.
#[derive(Debug)]
pub struct InlineSqliteError {
    code: c_int,
    message: String,
}

impl std::fmt::Display for InlineSqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for InlineSqliteError {}

impl DatabaseError for InlineSqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{AnyConnection, Connection, Row};

    const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;";

    /// sqlx's own SQLite connection and an inline one on the same file.
    async fn both() -> (tempfile::TempDir, AnyConnection, InlineSqlite) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("inline.db");
        let inline = InlineSqlite::open(file.to_str().unwrap(), PRAGMAS).unwrap();
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let sqlx_conn = AnyConnection::connect(&url).await.unwrap();
        (dir, sqlx_conn, inline)
    }

    /// Column names and values. (sqlx types a NULL by the column's
    /// declared type, this connection as NULL; both decode alike.)
    fn rendered(rows: &[AnyRow]) -> Vec<String> {
        rows.iter()
            .map(|row| {
                let names: Vec<&str> = row.columns.iter().map(|c| &*c.name).collect();
                let values: Vec<String> = row
                    .values
                    .iter()
                    .map(|v| match &v.kind {
                        AnyValueKind::Null(_) => "NULL".to_string(),
                        kind => format!("{kind:?}"),
                    })
                    .collect();
                format!("{names:?} {values:?}")
            })
            .collect()
    }

    /// Runs each query on sqlx's connection and on the inline one and
    /// compares rows (names, value kinds, values) and rows changed.
    #[tokio::test]
    async fn returns_what_sqlx_returns_for_the_same_queries() {
        let (_dir, mut sqlx_conn, mut inline) = both().await;
        sqlx::query(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT UNIQUE, b BLOB)",
        )
        .execute(&mut inline)
        .await
        .unwrap();
        type Build = fn() -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments<'static>>;
        let queries: Vec<(&str, Build)> = vec![
            ("anonymous parameters across statements", || {
                sqlx::query(
                    "INSERT INTO t (i, r, s, b) VALUES (?, ?, ?, ?); \
                     INSERT INTO t (i, s) VALUES (?, ?) RETURNING id, i, s",
                )
                .bind(1_i64)
                .bind(0.1_f64)
                .bind("é\n\"x")
                .bind(vec![0_u8, 255])
                .bind(2_i32)
                .bind("two")
            }),
            ("numbered parameters, one used twice", || {
                sqlx::query("INSERT INTO t (i, r, s) VALUES ($1, $2, $3 || $1) RETURNING *")
                    .bind(3_i64)
                    .bind(Some(-2.5e-300_f64))
                    .bind("three")
            }),
            ("booleans, NULLs and an empty blob", || {
                sqlx::query("INSERT INTO t (i, r, s, b) VALUES (?, ?, ?, ?) RETURNING *")
                    .bind(true)
                    .bind(None::<f64>)
                    .bind(None::<String>)
                    .bind(Vec::<u8>::new())
            }),
            ("a parameter without an argument is NULL", || {
                sqlx::query("SELECT ? AS a, ? AS b").bind(7_i64)
            }),
            ("update counts rows", || {
                sqlx::query("UPDATE t SET r = r * 2 WHERE i < ?").bind(3_i64)
            }),
            ("every value kind", || {
                sqlx::query(
                    "SELECT id, i, r, s, b, i + 0.5 AS half, length(b) AS n, NULL AS absent \
                     FROM t ORDER BY id",
                )
            }),
            ("comments and empty statements", || {
                sqlx::query("-- a comment\nSELECT 1 AS one;; /* another */ SELECT 2 AS two;")
            }),
            ("delete counts rows", || {
                sqlx::query("DELETE FROM t WHERE s = ?").bind("two")
            }),
        ];
        for (what, build) in queries {
            // sqlx first: the inline connection must see its writes and
            // produce the same from the same state, so each query runs on
            // one connection, is rolled back, and runs on the other.
            let mut tx = sqlx_conn.begin().await.unwrap();
            let expected_rows = build().fetch_all(&mut *tx).await.unwrap();
            tx.rollback().await.unwrap();
            let mut tx = sqlx_conn.begin().await.unwrap();
            let expected_changes = build().execute(&mut *tx).await.unwrap().rows_affected();
            tx.rollback().await.unwrap();

            sqlx::query("BEGIN").execute(&mut inline).await.unwrap();
            let got_rows = build().fetch_all(&mut inline).await.unwrap();
            sqlx::query("ROLLBACK").execute(&mut inline).await.unwrap();
            sqlx::query("BEGIN").execute(&mut inline).await.unwrap();
            let got_changes = build().execute(&mut inline).await.unwrap().rows_affected();
            sqlx::query("ROLLBACK").execute(&mut inline).await.unwrap();

            assert_eq!(rendered(&got_rows), rendered(&expected_rows), "{what}");
            // (sqlx reports SQLite's count of the last write for a SELECT
            // too; this connection 0.)
            let sql = build().sql().trim_start().to_ascii_uppercase();
            if ["INSERT", "UPDATE", "DELETE"]
                .iter()
                .any(|w| sql.starts_with(w))
            {
                assert_eq!(got_changes, expected_changes, "{what}: rows changed");
            } else {
                assert_eq!(got_changes, 0, "{what}: rows changed");
            }
            // Keep the rows of the inserts for the queries that read them.
            build().execute(&mut inline).await.unwrap();
        }
    }

    #[tokio::test]
    async fn rows_decode_as_sqlx_rows_do() {
        let (_dir, _sqlx_conn, mut inline) = both().await;
        let row = sqlx::query("SELECT 1 AS n, 0.5 AS f, 'x' AS s, x'00ff' AS b, NULL AS z")
            .fetch_one(&mut inline)
            .await
            .unwrap();
        assert_eq!(row.get::<i64, _>("n"), 1);
        assert_eq!(row.get::<i32, _>("n"), 1);
        // An integer is not a bool to the `Any` driver, as with sqlx's own
        // connection; `store::get_bool` reads 0/1.
        assert!(row.try_get::<bool, _>("n").is_err());
        assert!(crate::server::store::get_bool(&row, "n").unwrap());
        assert_eq!(row.get::<f64, _>("f"), 0.5);
        assert_eq!(row.get::<String, _>("s"), "x");
        assert_eq!(row.get::<Vec<u8>, _>("b"), vec![0, 255]);
        assert_eq!(row.get::<Option<i64>, _>("z"), None);
        assert!(
            row.try_get::<i64, _>("s").is_err(),
            "text is not an integer"
        );
        assert!(row.try_get::<i64, _>("missing").is_err());
    }

    /// A kept query that fails half-way runs again: its statements were
    /// reset, and the statements before the failure did their work, as on
    /// sqlx's connection (no transaction: each statement commits).
    #[tokio::test]
    async fn a_kept_script_runs_again_after_failing_half_way() {
        let (_dir, _sqlx_conn, mut inline) = both().await;
        sqlx::query("CREATE TABLE u (s TEXT PRIMARY KEY)")
            .execute(&mut inline)
            .await
            .unwrap();
        let script = "INSERT INTO u VALUES (?); INSERT INTO u VALUES (?)";
        let run = |inline: &mut InlineSqlite, a: &str, b: &str| {
            let (a, b) = (a.to_string(), b.to_string());
            futures::executor::block_on(sqlx::query(script).bind(a).bind(b).execute(inline))
        };
        run(&mut inline, "a", "b").unwrap();
        let err = run(&mut inline, "c", "a").unwrap_err();
        match err {
            sqlx::Error::Database(e) => {
                assert!(e.is_unique_violation(), "{e}");
                assert!(e.message().contains("UNIQUE"), "{}", e.message());
            }
            other => panic!("{other:?}"),
        }
        run(&mut inline, "d", "e").unwrap();
        let all: Vec<String> = sqlx::query_scalar("SELECT s FROM u ORDER BY s")
            .fetch_all(&mut inline)
            .await
            .unwrap();
        assert_eq!(all, ["a", "b", "c", "d", "e"]);
        assert_eq!(
            inline.cache.len(),
            3,
            "the CREATE, the script and the SELECT are kept"
        );
    }

    #[tokio::test]
    async fn syntax_errors_and_bad_parameters_are_errors() {
        let (_dir, _sqlx_conn, mut inline) = both().await;
        let err = sqlx::query("SELEC 1")
            .execute(&mut inline)
            .await
            .unwrap_err();
        assert!(matches!(err, sqlx::Error::Database(_)), "{err:?}");
        let err = sqlx::query("SELECT :name")
            .execute(&mut inline)
            .await
            .unwrap_err();
        assert!(matches!(err, sqlx::Error::Protocol(_)), "{err:?}");
        // The connection is still fine.
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut inline)
            .await
            .unwrap();
        assert_eq!(one, 1);
        assert!(!inline.in_transaction());
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let err = InlineSqlite::open("/nonexistent-dir/x/y.db", PRAGMAS).unwrap_err();
        assert!(err.to_string().contains("unable to open"), "{err}");
    }
}
