//! SQLite's WAL checkpoints, off the ingest writer's path.
//!
//! By default SQLite copies the log into the database inside the commit
//! that takes the log past 1,000 pages, syncing both files on the way. With
//! ingest writing about a page per value, that was a 4-6 ms commit every
//! 60 ms or so, about 30% of the writer's busy time (measured 2026-11-30:
//! 391 of 14,794 commits over 4 ms, 3.4 s of 11.7 s), and every request in
//! those batches waited for it.
//!
//! So every connection runs with `wal_autocheckpoint = 0`, and a task with a
//! connection of its own checkpoints PASSIVE shortly after commits. PASSIVE
//! never takes the write lock, so the writer commits while it copies and
//! syncs. It cannot start the log over while commits keep coming, though:
//! that needs a moment when everything is copied and nobody writes. When the
//! log has grown past [`RESTART_FRAMES`], the task first catches up with
//! back-to-back checkpoints until little is left, then takes the write gate
//! (`Db::write_gate`: the ingest writer waits between two batches) for one
//! last short copy, after which the next commit starts the log over. The
//! writer's wait is that last copy and its two syncs.
use super::Pool;
use sqlx::{Any, Executor, Row};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};

/// Commits gathered per background checkpoint: fewer, larger checkpoints
/// copy a page written by many commits once and sync the files less often.
const GATHER: Duration = Duration::from_millis(50);
/// Checkpoint this often even without ingest commits (the dashboard's and
/// the command line's writes).
const IDLE: Duration = Duration::from_secs(1);
/// Log size (frames of one page, 4 KiB) past which the log is started
/// over: about 256 MiB of disk. Each restart holds the writer for a short
/// copy and the two file syncs, 4-14 ms measured (2026-11-30); at 32,768
/// frames that was every 1.6 s at 12,500 values/s, and it set the p99.
pub const RESTART_FRAMES: i64 = 65_536;
/// Frames committed during one catch-up round at most before the task
/// takes the write gate for the restart's last copy.
const RESTART_LEFT: i64 = 1_024;
/// Back-to-back checkpoints at most while catching up for a restart (a
/// reader holding an old snapshot can keep frames from being copied).
const CATCH_UP_ROUNDS: usize = 8;

/// What `PRAGMA wal_checkpoint` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Another checkpoint was running, or (not PASSIVE) a lock was busy.
    pub busy: bool,
    /// Frames in the log.
    pub log: i64,
    /// Frames of the log copied into the database.
    pub copied: i64,
}

/// Runs a PASSIVE checkpoint: copies what it can without waiting for
/// anyone.
pub async fn checkpoint_passive<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Checkpoint, sqlx::Error> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(executor)
        .await?;
    Ok(Checkpoint {
        busy: row.try_get::<i64, _>(0)? != 0,
        log: row.try_get(1)?,
        copied: row.try_get(2)?,
    })
}

/// The ingest writer's side of the checkpoint task.
#[derive(Debug, Default)]
pub struct Wal {
    committed: Notify,
}

impl Wal {
    /// Starts the checkpoint task on its own connection from `pool`; it
    /// takes `gate` for the last copy of a restart. The task ends once the
    /// returned handle and its clones are dropped.
    pub fn start(pool: Pool, gate: Arc<Mutex<()>>) -> Arc<Wal> {
        let wal = Arc::new(Wal::default());
        tokio::spawn(run(Arc::downgrade(&wal), pool, gate));
        wal
    }

    /// Tells the task that a transaction committed.
    pub fn committed(&self) {
        self.committed.notify_one();
    }
}

async fn run(wal: Weak<Wal>, pool: Pool, gate: Arc<Mutex<()>>) {
    let mut next_restart = Instant::now();
    loop {
        {
            let Some(wal) = wal.upgrade() else { return };
            let _ = tokio::time::timeout(IDLE, wal.committed.notified()).await;
        }
        tokio::time::sleep(GATHER).await;
        let result = match checkpoint_passive(&pool).await {
            Ok(c) if c.log >= RESTART_FRAMES && Instant::now() >= next_restart => {
                restart(&pool, &gate, c).await
            }
            other => other.map(|_| true),
        };
        match result {
            Ok(true) => {}
            // A reader still needs part of the log: holding the writers at
            // the gate every few milliseconds would not help it finish.
            Ok(false) => next_restart = Instant::now() + IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed");
                tokio::time::sleep(IDLE).await;
            }
        }
    }
}

/// Copies the whole log so that the next commit starts it over: catches up
/// without holding anyone, then copies the rest with the writers held at
/// the gate. Returns whether the whole log was copied.
async fn restart(pool: &Pool, gate: &Mutex<()>, mut c: Checkpoint) -> Result<bool, sqlx::Error> {
    // A checkpoint's own copy and syncs take a while, and the frames
    // committed meanwhile are copied by the next round: rounds shrink until
    // few frames come in during one.
    let mut rounds = 0;
    loop {
        let before = c.log;
        c = checkpoint_passive(pool).await?;
        rounds += 1;
        if rounds >= CATCH_UP_ROUNDS || c.log - before <= RESTART_LEFT {
            break;
        }
    }
    let left = c.log - c.copied;
    let _writers_wait = gate.lock().await;
    let held = Instant::now();
    let c = checkpoint_passive(pool).await?;
    let copied = !c.busy && c.copied == c.log;
    if copied {
        tracing::debug!(
            frames = c.log,
            rounds,
            left,
            held_ms = held.elapsed().as_secs_f64() * 1e3,
            "WAL copied; the next commit starts it over"
        );
    } else {
        tracing::debug!(?c, "WAL not fully copied; a reader needs part of it");
    }
    Ok(copied)
}
