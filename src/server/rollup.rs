//! The rollup worker: keeps the per-minute and per-hour rollups and
//! `ingest_minute` (`db::rollup`) up to date with the stored values. It runs
//! beside the ingest writer, never in its path: it reads committed rows by
//! id after the watermark, a batch per transaction, so the writer only
//! shares the database with it (on SQLite, the write lock for the length
//! of one batch).
use super::db::{self, Db};
use std::time::Duration;

/// How often the worker looks for new values. Charts stay exact whatever
/// the lag (values after the watermark are read raw); this bounds how many
/// there are and how stale `ingest_minute` is.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Resource ids per batch (and transaction): large enough that the fixed
/// cost of a batch does not matter, small enough that one batch holds the
/// SQLite write lock for well under a second.
pub const BATCH_IDS: i64 = 200_000;

/// Rolls up one batch of at most `batch` ids after the watermark. Returns
/// None when there is nothing after the watermark, else the number of
/// values rolled up (0 when the batch held only deleted ids).
pub async fn run_batch(db: &Db, batch: i64) -> Result<Option<u64>, sqlx::Error> {
    let after = db::rollup::watermark(&db.pool).await?;
    let max = db::resource::max_id(&db.pool).await?;
    if max <= after {
        return Ok(None);
    }
    let upto = max.min(after + batch.max(1));
    // Aggregate first, outside the write transaction: rows up to `upto` are
    // committed and never change (ids grow in commit order, see
    // `db::rollup`), so the groups are still right when they are written.
    let groups = db::rollup::aggregate(&db.pool, after, upto).await?;
    let mut tx = db.pool.begin().await?;
    if !db::rollup::claim(&mut *tx, after, upto).await? {
        // Another worker moved the watermark: roll back and look again.
        return Ok(Some(0));
    }
    let rows = db::rollup::apply(&mut tx, db.backend, &groups).await?;
    tx.commit().await?;
    Ok(Some(rows))
}

/// Rolls up everything stored so far, batch by batch; returns how many
/// values that was. For the worker, tests and benchmarks.
pub async fn run_once(db: &Db) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    while let Some(rows) = run_batch(db, BATCH_IDS).await? {
        total += rows;
    }
    Ok(total)
}

/// Runs [`run_once`] every [`INTERVAL`] for as long as the server runs.
pub fn spawn(db: Db) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&db).await {
                Ok(0) => {}
                Ok(rows) => tracing::debug!(rows, "rolled up values"),
                Err(e) => tracing::error!(error = %e, "rollup failed"),
            }
        }
    });
}
