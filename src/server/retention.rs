//! Deletes telemetry older than `retention_days`, in small batches so that
//! ingest never waits long for the write lock.
use super::store::{now_ms, Db};
use std::time::Duration;

const BATCH: i64 = 5_000;

/// Deletes one batch of expired values, and the expired rollup buckets;
/// returns how many values went.
pub async fn prune_once(db: &Db, retention_days: u32) -> Result<u64, sqlx::Error> {
    if retention_days == 0 {
        return Ok(0);
    }
    let cutoff = now_ms() - i64::from(retention_days) * 86_400_000;
    // Few rows (one per series and minute at most), found by index: one
    // statement per table rather than batches.
    super::db::rollup::delete_older_than(&db.pool, cutoff).await?;
    super::db::resource::delete_older_than(&db.pool, db.backend, cutoff, BATCH).await
}

/// Runs pruning every hour (draining the backlog batch by batch).
pub fn spawn(db: Db, retention_days: u32) {
    if retention_days == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let mut total = 0;
            loop {
                match prune_once(&db, retention_days).await {
                    Ok(0) => break,
                    Ok(n) => total += n,
                    Err(e) => {
                        tracing::error!(error = %e, "retention pruning failed");
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if total > 0 {
                tracing::info!(deleted = total, retention_days, "pruned old telemetry");
            }
        }
    });
}
