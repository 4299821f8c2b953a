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
