//! SQLite beneath sqlx's public API, and its write-ahead log. Everything
//! in the engine that depends on sqlx's internals (`sqlx-core`) or on
//! SQLite's C API (`libsqlite3-sys`) is in this module: the rest of the
//! code sees an `InlineSqlite` connection (an sqlx `Executor` like any
//! other) and the checkpointer `Wal` (with `file_sync`, its way to sync
//! the database file).
mod file_sync;
mod inline;
pub mod wal;

pub use inline::{InlineSqlite, InlineSqliteError};
pub use wal::Wal;

#[cfg(test)]
mod tests {
    use libsqlite3_sys as ffi;
    use std::ffi::CStr;

    fn compiled_with(option: &CStr) -> bool {
        // SAFETY: a NUL-terminated string; the call only reads it.
        unsafe { ffi::sqlite3_compileoption_used(option.as_ptr()) != 0 }
    }

    /// `.cargo/config.toml` (`LIBSQLITE3_FLAGS`) builds SQLite without
    /// its memory statistics and its shared page cache, each behind a
    /// process-wide mutex. A build that lost the setting passes every
    /// other test, only slower.
    #[test]
    fn sqlite_is_built_without_its_process_wide_locks() {
        assert!(compiled_with(c"DEFAULT_MEMSTATUS=0"));
        assert!(!compiled_with(c"ENABLE_MEMORY_MANAGEMENT"));
        // Connections are still used from several threads.
        assert!(compiled_with(c"THREADSAFE=1"));
    }
}
