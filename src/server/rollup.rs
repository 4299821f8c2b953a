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
/// there are and how stale `ingest_minute` is. Each run writes a row per
/// series and minute whether it covers one second or ten, and ingest
/// commits wait while it writes (on SQLite, 4-20 ms measured with 1,500
/// series), so it runs every 10 s rather than every second.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Resource ids per batch (and transaction). A batch's write costs about
/// one upsert per series and minute, however many values it covers, and
/// ingest waits for it on SQLite: with 11,000 series that was 38-70 ms per
/// batch (2026-12-01), and at 40,000 values/s a run of 200,000-id batches
/// made two such stops where one would do. So a batch holds a whole run at
/// the highest ingest rates measured. The cap bounds the aggregate read,
/// which is one query: cut into queries of 25,000 ids with pauses between
/// them, it took 6.4 s instead of 1.5 s and slowed ingest for that long.
pub const BATCH_IDS: i64 = 500_000;

/// Rolls up one batch of at most `batch` ids after the watermark, none
/// above `until`. Returns None when there is nothing to do, else the
/// number of values rolled up (0 when the batch held only deleted ids).
pub async fn run_batch(db: &Db, batch: i64, until: i64) -> Result<Option<u64>, sqlx::Error> {
    let after = db::rollup::watermark(&db.pool).await?;
    if until <= after {
        return Ok(None);
    }
    let upto = until.min(after + batch.max(1));
    // Aggregate first, outside the write transaction: rows up to `upto` are
    // committed and never change (ids grow in commit order, see
    // `db::rollup`), so the groups are still right when they are written.
    let started = std::time::Instant::now();
    let groups = db::rollup::aggregate(&db.pool, after, upto).await?;
    let aggregated = started.elapsed();
    let _gate = db.gate().await;
    let gated = started.elapsed();
    let mut tx = db::begin_write(&db.pool).await?;
    if !db::rollup::claim(&mut *tx, after, upto).await? {
        // Another worker moved the watermark: roll back and look again.
        return Ok(Some(0));
    }
    let rows = db::rollup::apply(&mut tx, db.backend, &groups).await?;
    tx.commit().await?;
    // The write transaction is what ingest waits for (on SQLite).
    tracing::debug!(
        groups = groups.len(),
        aggregate_ms = aggregated.as_secs_f64() * 1e3,
        gate_wait_ms = (gated - aggregated).as_secs_f64() * 1e3,
        write_ms = (started.elapsed() - gated).as_secs_f64() * 1e3,
        "rollup batch"
    );
    Ok(Some(rows))
}

/// Rolls up everything stored when it starts, batch by batch; returns how
/// many values that was. For the worker, tests and benchmarks. Values
/// stored meanwhile wait for the next run: chasing them, the worker ran
/// small batches back to back under heavy ingest, each a write transaction
/// ingest waited for.
pub async fn run_once(db: &Db) -> Result<u64, sqlx::Error> {
    let until = db::resource::max_id(&db.pool).await?;
    let mut total = 0;
    while let Some(rows) = run_batch(db, BATCH_IDS, until).await? {
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
