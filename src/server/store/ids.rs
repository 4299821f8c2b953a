//! Ids allocated before the insert, so that one multi-row statement can
//! insert rows whose ids the rows referencing them already know.
use super::script::Script;
use super::Backend;
use sqlx::any::AnyRow;
use sqlx::{Executor, Row};

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
    pub fn push_query(script: &mut Script<'_>) {
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
