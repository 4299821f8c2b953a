//! Giving memory back to the system after a burst of load.
//!
//! glibc's malloc keeps what a burst freed: each thread that allocates
//! under contention gets an arena of its own (up to 8 per core), a freed
//! block returns to the system only from the top of its arena, and after
//! the first large block (a request body near `max_body_bytes`) is freed,
//! glibc raises its mmap threshold so that later large blocks come from the
//! arenas too, where they leave holes. Under hostile load
//! (`tools/perf/hostile_load.py`: 8,000 requests, 48 connections, bodies up
//! to the limit, bad JSON, long paths) the server's RSS rose from 22 MB to
//! 896 MB and stayed at 736 MB; the same binary on jemalloc went back to
//! 50 MB within 20 s, so what glibc kept was freed memory, not live data.
//!
//! So: few arenas, a fixed mmap threshold (large blocks are mapped, and
//! unmapped when freed), and a task that hands freed pages inside the
//! arenas back (`malloc_trim`) every few seconds. Other C libraries (musl)
//! and systems keep their own behaviour.

/// How often freed pages inside the arenas are given back. A trim of a
/// mostly idle heap takes microseconds; under load it takes at most a few
/// milliseconds per interval on one thread.
pub const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Sets the allocator up; call first thing in `main`, before other threads
/// start.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; called before
        // other threads exist.
        unsafe {
            // Two arenas: the tokio workers, the ingest writer and SQLite's
            // threads share them; contention on them did not show in the
            // ingest benchmark.
            libc::mallopt(libc::M_ARENA_MAX, 2);
            // Setting it fixes it (glibc stops raising it): blocks of
            // 128 KiB and more are mapped on their own.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

/// Starts the task that gives freed pages back every `TRIM_INTERVAL`.
/// Call inside the runtime.
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // SAFETY: malloc_trim only walks the allocator's own arenas.
            unsafe { libc::malloc_trim(0) };
        }
    });
}
