//! The storage engine under the table queries (`db`): one pool type
//! (sqlx's `Any`) for SQLite and PostgreSQL, the connections and the write
//! gate, transactions, multi-statement scripts, JSON row parameters, id
//! allocation, and on SQLite the inline writer's connection and the WAL
//! checkpointer (`sqlite`). Queries take an executor, so callers choose a
//! pool or a transaction; placeholders are `$1`-style, which both drivers
//! accept.
mod connect;
mod dialect;
mod ids;
pub mod rows;
pub mod script;
pub mod sqlite;
mod tx;

pub use connect::{
    Backend, Db, DbInitError, Pool, StoreOptions, Tx, Writer, DEFAULT_WAL_LIMIT_MIB,
};
pub use dialect::{
    chunks, get_bool, keep_prepared, overriding, placeholder_list, values_list, NullableF64,
};
pub use ids::{allocate_ids, IdSource, IdTable};
pub use tx::{begin_write, push_begin_write, push_commit, rollback, Conn, GatedTx};

/// The current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
