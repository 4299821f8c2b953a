//! The SQLite write-ahead log file on disk: it stays under its limit
//! (`sqlite_wal_limit_mib`) while commits keep coming, and a file that grew
//! past it while a reader held the log is cut back once the log starts
//! over. (A SQLite property: PostgreSQL has no such file.)
use flownexus::server::store::{Db, StoreOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The limit under test: the log starts over at 4 MiB, the checkpointer
/// hurries past 6 MiB.
const LIMIT: u64 = 8 << 20;
/// Rows per commit, each a 3,000-byte value: about five frames of 4 KiB.
const ROWS: usize = 5;

fn wal_file(db_file: &Path) -> PathBuf {
    let mut name = db_file.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The -wal file's size on disk (0 before it exists).
fn wal_size(db_file: &Path) -> u64 {
    std::fs::metadata(wal_file(db_file))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// One write transaction at the write gate, as the ingest writer commits,
/// and the checkpointer told about it.
async fn commit(db: &Db) {
    let mut tx = db.begin_gated().await.unwrap();
    for _ in 0..ROWS {
        sqlx::query("INSERT INTO t (v) VALUES (randomblob(3000))")
            .execute(&mut tx.conn())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    db.wal.as_ref().unwrap().committed();
}

fn restarts(db: &Db) -> u64 {
    db.wal.as_ref().unwrap().restarts()
}

async fn sqlite_db(dir: &Path) -> (Db, PathBuf) {
    let file = dir.join("wal.db");
    let url = format!("sqlite://{}", file.display());
    let db = Db::connect_with(
        &url,
        StoreOptions {
            wal_limit_bytes: LIMIT,
        },
    )
    .await
    .unwrap();
    let mut tx = db.begin_gated().await.unwrap();
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        .execute(&mut tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (db, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_file_stays_under_its_limit_while_commits_keep_coming() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = sqlite_db(dir.path()).await;
    let limit: i64 = sqlx::query_scalar("PRAGMA journal_size_limit")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        limit as u64, LIMIT,
        "connections cut the file back to the limit, and only past it"
    );

    // Ten times the limit through the log, a commit about every
    // millisecond: some 20 MB/s. The checkpointer looks at the log 50 ms
    // after a commit and then every checkpoint round; at this pace what
    // commits meanwhile (about 1 MB) fits in the quarter between the
    // hurry threshold and the limit, so no slack is allowed on top.
    let mut written = 0;
    let mut largest = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while written < 10 * LIMIT {
        assert!(Instant::now() < deadline, "{written} bytes in 120 s");
        commit(&db).await;
        written += ROWS as u64 * 3_000;
        largest = largest.max(wal_size(&file));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows as u64 * 3_000, written, "no committed row is lost");
    assert!(
        restarts(&db) >= 5,
        "{} restarts for {written} bytes through a log restarted at {} bytes",
        restarts(&db),
        LIMIT / 4
    );
    assert!(
        largest <= LIMIT,
        "the -wal file reached {largest} bytes, over the limit of {LIMIT}"
    );
    assert!(
        largest >= LIMIT / 4,
        "the log never reached its restart size: {largest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_file_grown_past_its_limit_is_cut_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = sqlite_db(dir.path()).await;

    // A reader's open snapshot keeps the log from starting over: the file
    // grows past the limit.
    let mut reader = db.pool.begin().await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while wal_size(&file) <= 2 * LIMIT {
        assert!(Instant::now() < deadline, "the log did not grow");
        commit(&db).await;
    }
    let grown = wal_size(&file);
    reader.rollback().await.unwrap();

    // Once the reader lets go, the log starts over and the commit that
    // starts it cuts the file back.
    let before = restarts(&db);
    let deadline = Instant::now() + Duration::from_secs(60);
    while wal_size(&file) > LIMIT {
        assert!(
            Instant::now() < deadline,
            "the -wal file is still {} bytes (grown to {grown}) after 60 s",
            wal_size(&file)
        );
        commit(&db).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The checkpointer counts a restart after its checkpoint returns; the
    // commit that cuts the file can come first.
    let counted = Instant::now() + Duration::from_secs(5);
    while restarts(&db) <= before && Instant::now() < counted {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(restarts(&db) > before, "shrunk without a restart");
    assert!(wal_size(&file) < grown);
}

/// Another process that opens the database and closes it again (a backup,
/// the `sqlite3` shell, a monitoring script) while the server writes must
/// see the server's connections and leave the log alone. SQLite tells them
/// apart by POSIX locks, which a process loses on every descriptor of the
/// file once it closes any one of them: a descriptor of the database file
/// opened and closed beside SQLite's own (as a checkpoint's file sync
/// might) lets that other process take it for the last user, copy the log
/// and delete it under the server, whose later commits then go to a file
/// that is no longer there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_closing_the_database_leaves_the_servers_log_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = sqlite_db(dir.path()).await;
    // Through a few restarts, each with the checkpointer's file syncs.
    let mut commits = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while restarts(&db) < 2 {
        assert!(Instant::now() < deadline, "no restart in 120 s");
        commit(&db).await;
        commits += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let other = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1])\n\
             print(c.execute('SELECT count(*) FROM t').fetchone()[0])\n\
             c.close()",
        )
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    assert!(
        wal_file(&file).exists(),
        "the other process deleted the server's log when it closed"
    );
    for _ in 0..20 {
        commit(&db).await;
        commits += 1;
    }
    // A connection opened now reads every committed row.
    let fresh = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&fresh)
        .await
        .unwrap();
    assert_eq!(rows as u64, commits * ROWS as u64);
}
