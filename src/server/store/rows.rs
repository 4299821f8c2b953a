//! The ingest writer's multi-row inserts (`push_rows`): multi-row
//! `VALUES` lists whose values are bound as parameters, cut into
//! statements of a few fixed sizes so that each statement's text is one of
//! few and stays prepared.
//!
//! On SQLite the sizes are 128, 32, 8 and 1 rows, each statement a query
//! of its own (`Script::push_alone`): a batch of any size runs statements
//! that are all prepared already. On the writer's inline connection a
//! query is a function call, so more statements cost little; the rows were
//! one JSON parameter unpacked with `json_each` before, and SQLite's JSON
//! functions (each row's element turned back into text, then parsed again
//! for each cell) were about a sixth of the writer's time at full load.
//! Floats bind as doubles and bytes as blobs, exactly.
//!
//! On PostgreSQL: `VALUES` lists of up to `MAX_CHUNK` rows, the full ones
//! and the small ones kept prepared (`dialect::keep_prepared`): each
//! statement is a round trip there, so a batch is cut into as few as
//! possible.
use super::script::Script;
use super::Backend;

/// Row counts of the statements on SQLite, largest first; a batch is cut
/// greedily into these.
const SQLITE_SIZES: [usize; 4] = [128, 32, 8, 1];

/// Adds `{head} VALUES <rows> {tail}` statements to the script: an insert
/// of `items`, one row of `columns` values each, which `write` binds in
/// column order.
pub fn push_rows<'q, T>(
    script: &mut Script<'q>,
    head: &str,
    tail: &str,
    columns: usize,
    items: &'q [T],
    mut write: impl FnMut(&mut RowSink<'_, 'q>, &'q T),
) {
    if items.is_empty() {
        return;
    }
    let backend = script.backend();
    for range in statement_ranges(backend, items.len()) {
        let sql = format!(
            "{head} VALUES {} {tail}",
            super::values_list(backend, columns, range.len())
        );
        match backend {
            Backend::Sqlite => script.push_alone(&sql, true),
            Backend::Postgres => script.push(&sql, super::keep_prepared(range.len())),
        };
        let mut sink = RowSink(script);
        for item in &items[range] {
            write(&mut sink, item);
        }
    }
}

/// The rows of each statement: on SQLite in `SQLITE_SIZES`, on PostgreSQL
/// full `MAX_CHUNK`s and one remainder (`dialect::chunks`).
fn statement_ranges(backend: Backend, n: usize) -> Vec<std::ops::Range<usize>> {
    match backend {
        Backend::Postgres => super::chunks(n),
        Backend::Sqlite => {
            let mut out = Vec::new();
            let mut start = 0;
            for size in SQLITE_SIZES {
                while n - start >= size {
                    out.push(start..start + size);
                    start += size;
                }
            }
            out
        }
    }
}

/// Binds a row's values, in column order, to the statement pushed last.
pub struct RowSink<'a, 'q>(&'a mut Script<'q>);

impl<'q> RowSink<'_, 'q> {
    pub fn int(&mut self, v: impl Into<Option<i64>>) -> &mut Self {
        let v: Option<i64> = v.into();
        self.0.bind(v);
        self
    }

    pub fn float(&mut self, v: Option<f64>) -> &mut Self {
        self.0.bind(super::NullableF64(v));
        self
    }

    pub fn text(&mut self, v: Option<&'q str>) -> &mut Self {
        self.0.bind(v);
        self
    }

    pub fn bytes(&mut self, v: Option<&'q [u8]>) -> &mut Self {
        self.0.bind(v);
        self
    }

    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.0.bind(v);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{AnyConnection, Connection, Row};

    #[test]
    fn sqlite_statements_have_few_sizes_and_cover_every_row_once() {
        for n in [1, 2, 7, 8, 9, 127, 128, 129, 300, 1211] {
            let ranges = statement_ranges(Backend::Sqlite, n);
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next);
                assert!(
                    SQLITE_SIZES.contains(&r.len()),
                    "{n}: a statement of {}",
                    r.len()
                );
                next = r.end;
            }
            assert_eq!(next, n);
        }
        let sizes: Vec<usize> = statement_ranges(Backend::Sqlite, 300)
            .iter()
            .map(|r| r.len())
            .collect();
        assert_eq!(sizes, vec![128, 128, 32, 8, 1, 1, 1, 1]);
    }

    /// Every double comes back bit for bit (bound as a double, never
    /// through decimal text), and every other cell as written, through
    /// statements of every size.
    #[tokio::test]
    async fn sqlite_reads_back_every_cell_exactly() {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, o INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut floats = vec![
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            // Not -0.0: SQLite stores an integral REAL as an integer and
            // drops its sign (docs/benchmarks.md, "Exact floats").
            0.1,
            -3.444418313650998e-109,
            -2.268960681969623e176,
        ];
        while floats.len() < 20_000 {
            // xorshift: random bit patterns cover every exponent.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                floats.push(f);
            }
        }
        let rows: Vec<(i64, f64)> = floats
            .iter()
            .copied()
            .enumerate()
            .map(|(i, f)| (i as i64, f))
            .collect();
        let mut script = Script::new(Backend::Sqlite);
        push_rows(
            &mut script,
            "INSERT INTO t (i, f, s, b, o)",
            "",
            5,
            &rows,
            |row, (i, f)| {
                row.int(*i)
                    .float(Some(*f))
                    .text(Some("é\n\"x"))
                    .bytes(Some(&[0, 255]))
                    .boolean(i % 2 == 0);
            },
        );
        let nulls = [()];
        push_rows(
            &mut script,
            "INSERT INTO t (i, f, s, b, o)",
            "",
            5,
            &nulls,
            |row, ()| {
                row.int(None)
                    .float(None)
                    .text(None)
                    .bytes(None)
                    .boolean(false);
            },
        );
        script.execute(&mut conn).await.unwrap();
        let got = sqlx::query("SELECT i, f, s, b, o FROM t ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(got.len(), floats.len() + 1);
        for (i, (row, f)) in got.iter().zip(&floats).enumerate() {
            assert_eq!(row.get::<i64, _>(0), i as i64);
            let back: f64 = row.get(1);
            assert_eq!(back.to_bits(), f.to_bits(), "{f:e} came back as {back:e}");
            assert_eq!(row.get::<String, _>(2), "é\n\"x");
            assert_eq!(row.get::<Vec<u8>, _>(3), vec![0, 255]);
            assert_eq!(row.get::<i64, _>(4), (i % 2 == 0) as i64);
        }
        let last = got.last().unwrap();
        assert_eq!(last.get::<Option<i64>, _>(0), None);
        assert_eq!(last.get::<Option<f64>, _>(1), None);
        assert_eq!(last.get::<Option<String>, _>(2), None);
        assert_eq!(last.get::<Option<Vec<u8>>, _>(3), None);
    }
}
