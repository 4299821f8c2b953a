//! SQLite's WAL checkpoints, off the ingest writer's path, and the bound
//! on the log file.
//!
//! By default SQLite copies the log into the database inside the commit
//! that takes the log past 1,000 pages, syncing both files on the way. With
//! ingest writing about a page per value, that is a commit of several
//! milliseconds every few dozen commits, and every request in those
//! batches waits for it.
//!
//! So every connection runs with `wal_autocheckpoint = 0`, and a task with a
//! connection of its own checkpoints PASSIVE shortly after commits. PASSIVE
//! never takes the write lock, so the writer commits while it copies and
//! syncs. It cannot start the log over while commits keep coming, though:
//! that needs a moment when everything is copied and nobody writes. When the
//! log has grown past [`Limits::restart`], or past [`Limits::periodic`]
//! (4 MiB) with [`RESTART_EVERY`] gone by since the last restart, so that
//! light traffic keeps the log small, the task first catches up with
//! back-to-back checkpoints until little is left, then takes the write gate
//! (`store::Writer::Sqlite`: the ingest writer waits between two batches)
//! for one last short copy, after which the next commit starts the log
//! over. The writer's wait is that last copy and its two syncs.
//!
//! A checkpoint that does not copy the whole log (every one while commits
//! keep coming) writes its pages into the database file but does not sync
//! it: only a complete one does, and with the writer held that sync would
//! flush every page copied since the previous restart. The task syncs the
//! file itself before it takes the gate (through a descriptor SQLite
//! opened, `file_sync`), which leaves the gated sync only the last few
//! pages.
//!
//! The log file: SQLite writes the log from its start again only after a
//! complete copy, and never shrinks the file by itself, so the file is as
//! large as the log ever grew. It is kept under `limit` bytes
//! (`StoreOptions::wal_limit_bytes`): the log starts over once it holds
//! a quarter of that ([`Limits::restart`]); if it passes three quarters while
//! the task catches up, the task takes the gate at once ([`Limits::hurry`],
//! counted and warned about: the limit is too small for the write rate, and
//! each such restart holds the writer for a whole copy and its syncs);
//! and every connection runs with `journal_size_limit` at the limit
//! ([`truncate_to`]), so that the commit that starts the log over cuts a
//! file that grew past it back, and leaves one that did not alone. Only
//! what commits during the task's last round can take the file past the
//! limit. A reader that holds an old snapshot keeps the log from starting
//! over, and the file grows until it lets go; the next restart cuts it
//! back.
use super::file_sync::FileSync;
use crate::server::store::Pool;
use sqlx::{Any, Executor, Row};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};

/// Commits gathered per background checkpoint: fewer, larger checkpoints
/// copy a page written by many commits once and sync the files less often.
const GATHER: Duration = Duration::from_millis(50);
/// Checkpoint this often even without ingest commits (the dashboard's and
/// the command line's writes).
const IDLE: Duration = Duration::from_secs(1);
/// Bytes of a frame's header in the log, before its page.
const FRAME_HEADER: i64 = 24;

/// Where the task acts, in frames of the log, for a log file kept under
/// `limit` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The log is started over once it holds this many frames: a quarter
    /// of the limit. Each restart holds the writer for a short copy and two
    /// file syncs, a few milliseconds, so a lower mark costs the writer more
    /// often; but the catch-up before the gate needs room to run before
    /// the log reaches `hurry`. Under heavy ingest the log grows by about
    /// 100 MB/s (a few KiB of index pages per value), and with the mark at
    /// half of 32 MiB every restart began past `hurry` and held the writer
    /// for a whole copy and its syncs, 20-30 ms several times a second.
    pub restart: i64,
    /// Past this many frames (three quarters of the limit) the task stops
    /// catching up and takes the gate for the rest of the copy.
    pub hurry: i64,
    /// A log of this many frames (4 MiB, or `restart` if lower) is started
    /// over once [`RESTART_EVERY`] has passed since the last restart.
    pub periodic: i64,
}

/// How long a log of [`Limits::periodic`] frames or more waits for a
/// restart. While commits keep coming, a plain checkpoint never copies the
/// whole log, so without it the log of a server under light but steady
/// traffic would grow to `restart` frames (hundreds of MiB) before it
/// started over; under heavy ingest `restart` comes first.
pub const RESTART_EVERY: Duration = Duration::from_secs(5);

impl Limits {
    pub fn new(limit_bytes: u64, page_size: i64) -> Limits {
        let frames = i64::try_from(limit_bytes).unwrap_or(i64::MAX) / (page_size + FRAME_HEADER);
        let restart = (frames / 4).max(1);
        Limits {
            restart,
            hurry: (frames * 3 / 4).max(1),
            periodic: ((4 << 20) / (page_size + FRAME_HEADER)).clamp(1, restart),
        }
    }

    /// Whether a log of `frames` is due to start over, `since` the last
    /// restart.
    pub fn due(&self, frames: i64, since: Duration) -> bool {
        frames >= self.restart || (frames >= self.periodic && since >= RESTART_EVERY)
    }
}

/// The `journal_size_limit` for a log file kept under `limit_bytes`: the
/// limit itself, so that the commit that starts the log over cuts the file
/// back only when it grew past the limit (a long read held an old
/// snapshot), never in the steady state. A log of a few restart marks'
/// worth would otherwise lose its tail at every restart and grow it again
/// from nothing: block allocation on every cycle, and, on a filesystem
/// mounted with `discard` (common on virtual machines), a synchronous
/// TRIM of the freed blocks inside the committing writer's `ftruncate`.
pub fn truncate_to(limit_bytes: u64) -> u64 {
    limit_bytes
}

/// Frames committed during one catch-up round at most before the task
/// takes the write gate for the restart's last copy.
const RESTART_LEFT: i64 = 1_024;
/// Back-to-back checkpoints at most while catching up for a restart (a
/// reader holding an old snapshot can keep frames from being copied).
const CATCH_UP_ROUNDS: usize = 8;

/// Database file syncs (each followed by a checkpoint) at most before the
/// task takes the write gate, and the frames committed during one round
/// that are few enough to leave to the gated checkpoint.
const SYNC_ROUNDS: usize = 6;
const SYNC_LEFT: i64 = 128;

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
    /// Times the whole log was copied so that it could start over.
    restarts: AtomicU64,
    /// Restarts whose whole copy was done with the writers held, because
    /// the log had passed [`Limits::hurry`] when the restart began.
    hurried: AtomicU64,
}

impl Wal {
    /// Starts the checkpoint task on its own connection from `pool`; it
    /// takes `gate` for the last copy of a restart. `file` is the database
    /// file (None in memory), which the task syncs before it takes the gate.
    /// The log file is kept under `limit_bytes` (see the module's comment).
    /// The task ends once the returned handle and its clones are dropped.
    pub fn start<G: Send + 'static>(
        pool: Pool,
        gate: Arc<Mutex<G>>,
        file: Option<PathBuf>,
        limit_bytes: u64,
    ) -> Arc<Wal> {
        let wal = Arc::new(Wal::default());
        tokio::spawn(run(Arc::downgrade(&wal), pool, gate, file, limit_bytes));
        wal
    }

    /// Times the whole log was copied so that the next commit starts it
    /// over.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Restarts that held the writers for the whole copy: the log grew
    /// past three quarters of its limit before the task could catch up,
    /// so the limit is too small for the write rate.
    pub fn hurried_restarts(&self) -> u64 {
        self.hurried.load(Ordering::Relaxed)
    }

    /// Tells the task that a transaction committed.
    pub fn committed(&self) {
        self.committed.notify_one();
    }
}

async fn run<G>(
    wal: Weak<Wal>,
    pool: Pool,
    gate: Arc<Mutex<G>>,
    file: Option<PathBuf>,
    limit_bytes: u64,
) {
    let page_size = match sqlx::query_scalar::<_, i64>("PRAGMA page_size")
        .fetch_one(&pool)
        .await
    {
        Ok(size) => size,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the page size; taking 4096");
            4096
        }
    };
    let limits = Limits::new(limit_bytes, page_size);
    let mut sync = None;
    let mut next_restart = Instant::now();
    let mut last_restart = Instant::now();
    let mut hurry_warning = HurryWarning::default();
    loop {
        {
            let Some(wal) = wal.upgrade() else { return };
            let _ = tokio::time::timeout(IDLE, wal.committed.notified()).await;
        }
        tokio::time::sleep(GATHER).await;
        let result = match checkpoint_passive(&pool).await {
            Ok(c)
                if limits.due(c.log, last_restart.elapsed()) && Instant::now() >= next_restart =>
            {
                let done = restart(&pool, &gate, file.as_deref(), &mut sync, c, limits.hurry).await;
                if let (Ok(Restart { hurried: true, .. }), Some(wal)) = (&done, wal.upgrade()) {
                    wal.hurried.fetch_add(1, Ordering::Relaxed);
                    hurry_warning.hurried(limit_bytes);
                }
                done.map(|r| Some(r.copied))
            }
            // A plain checkpoint can copy a long log whole too (a reader
            // just let go while the task waited to try again), and the next
            // commit starts the log over all the same.
            Ok(c) if c.log >= limits.restart && !c.busy && c.copied == c.log => Ok(Some(true)),
            other => other.map(|_| None),
        };
        match result {
            Ok(None) => {}
            Ok(Some(true)) => {
                last_restart = Instant::now();
                if let Some(wal) = wal.upgrade() {
                    wal.restarts.fetch_add(1, Ordering::Relaxed);
                }
            }
            // A reader still needs part of the log: holding the writers at
            // the gate every few milliseconds would not help it finish.
            Ok(Some(false)) => next_restart = Instant::now() + IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed");
                tokio::time::sleep(IDLE).await;
            }
        }
    }
}

/// What a restart did.
struct Restart {
    /// The whole log was copied: the next commit starts it over.
    copied: bool,
    /// The log held `hurry` frames or more when the restart began, so the
    /// writers were held for the whole copy and its syncs.
    hurried: bool,
}

/// Warns about hurried restarts: at the first, then at most once a minute
/// with the count since the last warning.
#[derive(Default)]
struct HurryWarning {
    last: Option<Instant>,
    since: u64,
}

impl HurryWarning {
    fn hurried(&mut self, limit_bytes: u64) {
        self.since += 1;
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        tracing::warn!(
            restarts = self.since,
            limit_mib = limit_bytes >> 20,
            "the SQLite write-ahead log passed three quarters of its limit before a restart \
             began, so the restart held the ingest writer for the whole copy: it fills faster \
             than the checkpointer copies it (a larger sqlite_wal_limit_mib suits this write \
             rate) or a long read kept it from starting over"
        );
        self.last = Some(Instant::now());
        self.since = 0;
    }
}

/// Copies the whole log so that the next commit starts it over: catches up
/// without holding anyone, unless the log holds `hurry` frames or more,
/// then copies the rest with the writers held at the gate.
async fn restart<G>(
    pool: &Pool,
    gate: &Mutex<G>,
    file: Option<&Path>,
    sync: &mut Option<FileSync>,
    mut c: Checkpoint,
    hurry: i64,
) -> Result<Restart, sqlx::Error> {
    let hurried = c.log >= hurry;
    // A checkpoint's own copy and syncs take a while, and the frames
    // committed meanwhile are copied by the next round: rounds shrink until
    // few frames come in during one.
    let mut rounds = 0;
    while c.log < hurry {
        let before = c.log;
        c = checkpoint_passive(pool).await?;
        rounds += 1;
        if rounds >= CATCH_UP_ROUNDS || c.log - before <= RESTART_LEFT {
            break;
        }
    }
    // The same for the syncs: the first writes every page copied since the
    // last restart, and the checkpoint after it copies what was committed
    // meanwhile, which the next, shorter sync writes, until few pages are
    // left for the gated sync.
    let synced = Instant::now();
    let mut syncs = 0;
    if let Some(file) = file.filter(|_| c.log < hurry) {
        loop {
            let before = c.log;
            sync_file(file, sync).await.map_err(sqlx::Error::Io)?;
            c = checkpoint_passive(pool).await?;
            syncs += 1;
            if syncs >= SYNC_ROUNDS || c.log - before <= SYNC_LEFT || c.log >= hurry {
                break;
            }
        }
    }
    let sync_ms = synced.elapsed().as_secs_f64() * 1e3;
    let left = c.log - c.copied;
    let _writers_wait = gate.lock().await;
    let held = Instant::now();
    let c = checkpoint_passive(pool).await?;
    let copied = !c.busy && c.copied == c.log;
    if copied {
        tracing::debug!(
            frames = c.log,
            hurried,
            rounds,
            syncs,
            sync_ms,
            left,
            held_ms = held.elapsed().as_secs_f64() * 1e3,
            "WAL copied; the next commit starts it over"
        );
    } else {
        tracing::debug!(?c, "WAL not fully copied; a reader needs part of it");
    }
    Ok(Restart { copied, hurried })
}

/// Writes the database file's dirty pages to disk (what a complete
/// checkpoint's sync would otherwise do with the writer held), through
/// `sync`, a connection of SQLite's own opened on first use (never a
/// descriptor of ours: see `file_sync`).
async fn sync_file(file: &Path, sync: &mut Option<FileSync>) -> std::io::Result<()> {
    let file = file.to_path_buf();
    let current = sync.take();
    let (kept, result) = tokio::task::spawn_blocking(move || {
        let mut current = match current {
            Some(s) => s,
            None => match FileSync::open(&file) {
                Ok(s) => s,
                Err(e) => return (None, Err(e)),
            },
        };
        let result = current.sync();
        (Some(current), result)
    })
    .await
    .map_err(std::io::Error::other)?;
    *sync = kept;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::any::AnyPoolOptions;

    #[test]
    fn limits_are_a_quarter_and_three_quarters_of_the_limit_in_frames() {
        let limits = Limits::new(32 << 20, 4096);
        assert_eq!(limits.restart, (32 << 20) / 4120 / 4);
        assert_eq!(limits.hurry, (32 << 20) / 4120 * 3 / 4);
        assert!(limits.restart * 4120 <= 8 << 20);
        assert_eq!(truncate_to(32 << 20), 32 << 20);
        // Absurdly small limits still restart at some point.
        assert_eq!(
            Limits::new(0, 4096),
            Limits {
                restart: 1,
                hurry: 1,
                periodic: 1,
            }
        );
        // 4 MiB, or the restart mark when that is lower.
        assert_eq!(Limits::new(32 << 20, 4096).periodic, (4 << 20) / 4120);
        assert_eq!(Limits::new(8 << 20, 4096).periodic, (8 << 20) / 4120 / 4);
    }

    #[test]
    fn a_log_is_due_at_the_restart_mark_or_after_a_while_past_the_periodic_one() {
        let limits = Limits::new(64 << 20, 4096);
        let (soon, later) = (Duration::from_millis(100), RESTART_EVERY);
        assert!(limits.due(limits.restart, soon));
        assert!(!limits.due(limits.restart - 1, soon));
        assert!(limits.due(limits.periodic, later));
        assert!(!limits.due(limits.periodic - 1, later));
        assert!(!limits.due(limits.periodic, RESTART_EVERY - Duration::from_millis(1)));
    }

    async fn connection(url: &str) -> Pool {
        crate::server::store::connect::INSTALL_DRIVERS
            .call_once(sqlx::any::install_default_drivers);
        AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(crate::server::store::connect::sqlite_pragmas_hook(
                crate::server::store::connect::SQLITE_PRAGMAS.into(),
            ))
            .connect(url)
            .await
            .unwrap()
    }

    /// A database file with a table `t (id, v BLOB)`, its writer's
    /// connection, the write gate and the checkpoint task for a log kept
    /// under `limit_bytes`.
    async fn database(limit_bytes: u64) -> (tempfile::TempDir, Pool, Arc<Mutex<()>>, Arc<Wal>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wal.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let writer = connection(&url).await;
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
            .execute(&writer)
            .await
            .unwrap();
        let gate = Arc::new(Mutex::new(()));
        let wal = Wal::start(
            connection(&url).await,
            gate.clone(),
            Some(file),
            limit_bytes,
        );
        (dir, writer, gate, wal)
    }

    /// Commits keep coming, as under ingest, and the task still starts the
    /// log over again and again, so that the log stays short, and no
    /// committed row is lost on the way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_starts_over_while_commits_keep_coming() {
        // A restart at 512 KiB (about 127 frames), so that a test sees many.
        let (_dir, writer, gate, wal) = database(2 << 20).await;

        // Each commit writes five 3 KB values: five or more frames.
        let mut commits = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let restarted = wal.restarts() >= 10;
            assert!(
                Instant::now() < deadline,
                "the log was not started over 10 times in 60 s"
            );
            {
                let _gate = gate.lock().await;
                let mut tx = writer.begin().await.unwrap();
                for _ in 0..5 {
                    sqlx::query("INSERT INTO t (v) VALUES (randomblob(3000))")
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
            wal.committed();
            commits += 1;
            // The commit after the tenth copy starts the log over.
            if restarted {
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }

        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&writer)
            .await
            .unwrap();
        assert_eq!(rows, commits * 5);
        // The log holds only the frames since it last started over, a
        // commit or a few. Without restarts it would hold them all: at
        // least a page per row.
        let log = checkpoint_passive(&writer).await.unwrap().log;
        assert!(
            log < rows,
            "{log} frames in the log after {rows} rows in {commits} commits"
        );
    }

    /// A log that fills faster than the task copies it (past three
    /// quarters of its limit before a restart begins) is still started
    /// over, and those restarts are counted as hurried: the metric that
    /// tells an operator to raise the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_filling_faster_than_it_is_copied_counts_hurried_restarts() {
        // The smallest limit: restart at 1 MiB, hurry at 3 MiB (about 760
        // frames). Each commit below writes about 1,000 frames, so every
        // restart finds the log past the hurry mark.
        let (_dir, writer, gate, wal) = database(4 << 20).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while wal.restarts() < 3 {
            assert!(Instant::now() < deadline, "no 3 restarts in 60 s");
            {
                let _gate = gate.lock().await;
                sqlx::query(
                    "INSERT INTO t (v) WITH RECURSIVE n(i) AS \
                     (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                     SELECT randomblob(3000) FROM n",
                )
                .execute(&writer)
                .await
                .unwrap();
            }
            wal.committed();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(wal.hurried_restarts() >= 1, "{wal:?}");
    }
}
