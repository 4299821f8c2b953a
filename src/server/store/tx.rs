//! Write transactions: on a pooled connection, at the write gate, or
//! opened and closed inside a `Script`.
use super::script::Script;
use super::sqlite::InlineSqlite;
use super::{Backend, Db, Pool, Tx, Writer};
use sqlx::any::AnyRow;
use sqlx::Executor;

impl Db {
    /// Takes the write gate (SQLite), the writer's connection, for the
    /// length of a write transaction.
    pub async fn gate(&self) -> Option<tokio::sync::MutexGuard<'_, InlineSqlite>> {
        match &self.writer {
            Writer::Sqlite(gate) => Some(gate.lock().await),
            Writer::Postgres(_) => None,
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
    Inline(&'a mut InlineSqlite),
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
pub struct SqliteWriterTx<'a>(tokio::sync::MutexGuard<'a, InlineSqlite>);

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
pub fn push_begin_write(script: &mut Script<'_>) {
    let sql = match script.backend() {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    script.push(sql, true);
}

pub fn push_commit(script: &mut Script<'_>) {
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
}
