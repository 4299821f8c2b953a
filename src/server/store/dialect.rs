//! Where SQLite and PostgreSQL differ in the SQL the queries write:
//! placeholders, multi-row statements, booleans, explicit ids and NULL
//! floats.
use super::Backend;
use sqlx::any::AnyRow;
use sqlx::Row;

/// Reads a boolean column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
pub fn get_bool(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

/// Rows per multi-row statement at most (PostgreSQL; SQLite cuts its own
/// sizes, `rows`).
const MAX_CHUNK: usize = 128;
/// Statements of up to this many rows (and of `MAX_CHUNK`) stay prepared in
/// sqlx's per-connection statement cache (100 entries), a few tables times
/// these sizes; other sizes are prepared for one use. Each statement is a
/// round trip to PostgreSQL, and a
/// batch's latency is mostly its round trips, so a batch is cut into as few
/// statements as possible rather than into cache-friendly powers of two.
const MAX_CACHED_SMALL: usize = 16;

/// Splits `0..n` into full `MAX_CHUNK` ranges and one remainder.
pub fn chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    (0..n)
        .step_by(MAX_CHUNK)
        .map(|start| start..(start + MAX_CHUNK).min(n))
        .collect()
}

/// Whether a statement of this many rows is worth keeping prepared.
pub fn keep_prepared(rows: usize) -> bool {
    rows == MAX_CHUNK || rows <= MAX_CACHED_SMALL
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` placeholders each; on
/// SQLite `(?, ?), (?, ?)`. SQLite records every numbered parameter in a
/// list that sqlx walks once per parameter when binding, which is quadratic
/// in the parameter count: with a thousand parameters it cost more than the
/// inserts. Anonymous `?` parameters are not in that list.
pub fn values_list(backend: Backend, columns: usize, rows: usize) -> String {
    let mut s = String::with_capacity(rows * columns * 5);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..columns {
            if c > 0 {
                s.push_str(", ");
            }
            n += 1;
            push_placeholder(&mut s, backend, n);
        }
        s.push(')');
    }
    s
}

/// `$1, $2, ... $n` (`?, ?, ...` on SQLite), for `IN (...)` lists.
pub fn placeholder_list(backend: Backend, n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 1..=n {
        if i > 1 {
            s.push_str(", ");
        }
        push_placeholder(&mut s, backend, i);
    }
    s
}

fn push_placeholder(s: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Sqlite => s.push('?'),
        Backend::Postgres => {
            s.push('$');
            s.push_str(&n.to_string());
        }
    }
}

/// What goes between the column list and `VALUES` of an explicit-id insert:
/// PostgreSQL identity columns refuse explicit values without it.
pub fn overriding(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " OVERRIDING SYSTEM VALUE",
    }
}

/// A nullable DOUBLE PRECISION parameter. sqlx 0.8's `Any` driver turns a
/// `None::<f64>` into a *float4* NULL on PostgreSQL; a prepared statement
/// first run with that NULL then refuses every later float8 value
/// ("incorrect binary data format in bind parameter"). This encodes NULL
/// as the kind sqlx maps to a float8 NULL, so the parameter type of a
/// cached statement is the same whether the value is there or not.
/// (Tested by `tests/writer.rs`: NULL then a value on one connection.)
#[derive(Debug, Clone, Copy)]
pub struct NullableF64(pub Option<f64>);

impl sqlx::Type<sqlx::Any> for NullableF64 {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Any> for NullableF64 {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(v) => <f64 as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&v, buf),
            // sqlx-core's any/arguments.rs maps an f32-typed NULL (kind
            // Real) to `Option::<f64>::None` and an f64-typed one to f32.
            None => <Option<f32> as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&None, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once_in_as_few_statements_as_possible() {
        for n in 0..600 {
            let ranges = chunks(n);
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next);
                assert!(!r.is_empty() && r.len() <= MAX_CHUNK);
                next = r.end;
            }
            assert_eq!(next, n);
            assert_eq!(ranges.len(), n.div_ceil(MAX_CHUNK));
        }
    }

    #[test]
    fn values_list_numbers_placeholders_in_row_order() {
        assert_eq!(values_list(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_list(Backend::Postgres, 1, 1), "($1)");
        assert_eq!(values_list(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(placeholder_list(Backend::Postgres, 3), "$1, $2, $3");
        assert_eq!(placeholder_list(Backend::Sqlite, 2), "?, ?");
    }
}
