//! SQLite write-ahead-log checkpoints, moved off the ingest writer's path.
//!
//! By default SQLite checkpoints inside the commit that grows the WAL past
//! 1,000 pages: that commit then copies the pages into the database file
//! and syncs it, and every request waiting for it waits too. Our
//! connections turn that off (`wal_autocheckpoint = 0`, see `Db::connect`)
//! and this task checkpoints from its own connection, which runs on its own
//! thread while the writer goes on appending. PASSIVE never blocks writers;
//! only if the log still grows past `TRUNCATE_AT_FRAMES` (a writer that
//! never leaves a gap) does a TRUNCATE checkpoint briefly wait for one.
use super::{Backend, Db};
use sqlx::Row;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(200);
/// 16,384 pages of 4 KiB: 64 MiB of log.
const TRUNCATE_AT_FRAMES: i64 = 16_384;

/// What `PRAGMA wal_checkpoint` reports: whether it could not finish, the
/// frames in the log and the frames copied into the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub busy: bool,
    pub log_frames: i64,
    pub checkpointed_frames: i64,
}

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Passive,
    Truncate,
}

pub async fn checkpoint(db: &Db, mode: Mode) -> Result<Checkpoint, sqlx::Error> {
    let sql = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    let row = sqlx::query(sql).fetch_one(&db.pool).await?;
    Ok(Checkpoint {
        busy: row.try_get::<i64, _>(0)? != 0,
        log_frames: row.try_get(1)?,
        checkpointed_frames: row.try_get(2)?,
    })
}

/// Starts the checkpoint task (SQLite only). It ends when the pool closes.
pub fn spawn_checkpointer(db: Db) {
    if db.backend != Backend::Sqlite {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if db.pool.is_closed() {
                return;
            }
            match checkpoint(&db, Mode::Passive).await {
                Ok(c) if c.log_frames > TRUNCATE_AT_FRAMES => {
                    tracing::warn!(
                        log_frames = c.log_frames,
                        "the SQLite log keeps growing under writes; truncating it"
                    );
                    if let Err(e) = checkpoint(&db, Mode::Truncate).await {
                        tracing::warn!(error = %e, "SQLite log truncation failed");
                    }
                }
                Ok(_) => {}
                Err(e) if db.pool.is_closed() => {
                    tracing::debug!(error = %e, "checkpointer stops: pool closed");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
            }
        }
    });
}
