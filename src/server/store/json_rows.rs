//! The ingest writer's multi-row inserts (`push_rows`). On SQLite the rows
//! go as one parameter, a JSON array of arrays that the statement unpacks
//! with `json_each`; on PostgreSQL as multi-row `VALUES` lists.
//!
//! Why JSON on SQLite: a statement that takes its rows this way has one
//! text whatever the number of rows, so it stays prepared, and so do the
//! writer's whole opening and closing scripts. Multi-row `VALUES` lists
//! changed their text with every batch's size and were compiled anew for
//! every commit (about a fifth of the SQLite thread's time in a profile of
//! composite posts), and each of their values was bound on its own; the
//! JSON form takes 7-15% less server CPU per single post. Why not on
//! PostgreSQL: there the same JSON statements (`jsonb_array_elements`)
//! are slower than the cached `VALUES` statements with binary parameters
//! (by about a fifth, single and composite posts alike).
//!
//! Floats: SQLite's text-to-float conversion is not correctly rounded for
//! every double (with SQLite 3.46, 109 of 1,000,000 random doubles come
//! back one unit in the last place off), so on SQLite a float travels
//! as its IEEE-754 bits, an integer, which `flownexus_f64(bits)` turns back
//! exactly; `sqlite::register_functions` adds that function to every SQLite
//! connection. On PostgreSQL floats are bound as binary parameters.
use super::script::Script;
use super::Backend;

/// How a column is unpacked from its JSON cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Int,
    Float,
    Text,
    /// Bytes, written as hex.
    Bytes,
    Bool,
}

/// Adds `{head} <rows> {tail}` to the script: an insert of `items`, one row
/// each, whose cells `write` gives in the order of `cells`. On SQLite one
/// statement that stays prepared (`select_from_json`); on PostgreSQL
/// `VALUES` lists of up to `MAX_CHUNK` rows, the full ones kept prepared.
pub fn push_rows<'q, T>(
    script: &mut Script<'q>,
    head: &str,
    tail: &str,
    cells: &[Cell],
    items: &'q [T],
    mut write: impl FnMut(&mut RowSink<'_, 'q>, &'q T),
) {
    if items.is_empty() {
        return;
    }
    match script.backend() {
        Backend::Sqlite => {
            let sql = format!("{head} {} {tail}", select_from_json(cells));
            let mut json = JsonRows::new(items.len());
            for item in items {
                json.row();
                write(&mut RowSink::Json(&mut json), item);
            }
            script.push(&sql, true).bind(json.finish());
        }
        Backend::Postgres => {
            for range in super::chunks(items.len()) {
                let sql = format!(
                    "{head} VALUES {} {tail}",
                    super::values_list(Backend::Postgres, cells.len(), range.len())
                );
                script.push(&sql, super::keep_prepared(range.len()));
                for item in &items[range] {
                    write(&mut RowSink::Bind(script), item);
                }
            }
        }
    }
}

/// Where `push_rows` puts a row's cells: the JSON parameter (SQLite) or
/// the statement's parameters (PostgreSQL).
pub enum RowSink<'a, 'q> {
    Json(&'a mut JsonRows),
    Bind(&'a mut Script<'q>),
}

impl<'q> RowSink<'_, 'q> {
    pub fn int(&mut self, v: impl Into<Option<i64>>) -> &mut Self {
        match self {
            RowSink::Json(json) => {
                json.int(v);
            }
            RowSink::Bind(script) => {
                let v: Option<i64> = v.into();
                script.bind(v);
            }
        }
        self
    }

    pub fn float(&mut self, v: Option<f64>) -> &mut Self {
        match self {
            RowSink::Json(json) => {
                json.float(v);
            }
            RowSink::Bind(script) => {
                script.bind(super::NullableF64(v));
            }
        }
        self
    }

    pub fn text(&mut self, v: Option<&'q str>) -> &mut Self {
        match self {
            RowSink::Json(json) => {
                json.text(v);
            }
            RowSink::Bind(script) => {
                script.bind(v);
            }
        }
        self
    }

    pub fn bytes(&mut self, v: Option<&'q [u8]>) -> &mut Self {
        match self {
            RowSink::Json(json) => {
                json.bytes(v);
            }
            RowSink::Bind(script) => {
                script.bind(v);
            }
        }
        self
    }

    pub fn boolean(&mut self, v: bool) -> &mut Self {
        match self {
            RowSink::Json(json) => {
                json.boolean(v);
            }
            RowSink::Bind(script) => {
                script.bind(v);
            }
        }
        self
    }
}

/// `SELECT <one expression per column> FROM <the rows> WHERE true`, the
/// source of an `INSERT ... SELECT` taking its rows from one JSON
/// parameter (SQLite). (`WHERE true` resolves SQLite's parsing ambiguity
/// between a join and an upsert's `ON CONFLICT`.) The parameter is an
/// anonymous `?`, so the statement can be one of several in a `Script`.
fn select_from_json(cells: &[Cell]) -> String {
    let mut sql = String::from("SELECT ");
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let field = format!("j.value->>{i}");
        let expr = match cell {
            Cell::Int | Cell::Bool | Cell::Text => field,
            Cell::Float => format!("flownexus_f64({field})"),
            Cell::Bytes => format!("unhex({field})"),
        };
        sql.push_str(&expr);
    }
    sql.push_str(" FROM json_each(?) AS j WHERE true");
    sql
}

/// Writes rows for `select_from_json`: `[[1,"a",null],[2,"b",4.5]]`.
/// Each row's cells go in the order of the statement's `Cell`s.
pub struct JsonRows {
    buf: Vec<u8>,
    rows: usize,
    cells_in_row: usize,
}

impl JsonRows {
    fn new(rows: usize) -> JsonRows {
        let mut buf = Vec::with_capacity(2 + rows * 64);
        buf.push(b'[');
        JsonRows {
            buf,
            rows: 0,
            cells_in_row: 0,
        }
    }

    /// Starts the next row.
    pub fn row(&mut self) -> &mut Self {
        if self.rows > 0 {
            self.buf.extend_from_slice(b"],");
        }
        self.buf.push(b'[');
        self.rows += 1;
        self.cells_in_row = 0;
        self
    }

    fn next_cell(&mut self) {
        if self.cells_in_row > 0 {
            self.buf.push(b',');
        }
        self.cells_in_row += 1;
    }

    fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(b"null");
        self
    }

    pub fn int(&mut self, v: impl Into<Option<i64>>) -> &mut Self {
        self.next_cell();
        match v.into() {
            Some(v) => {
                // Writing a number into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut self.buf, &v);
                self
            }
            None => self.null(),
        }
    }

    /// A float, as its bits (see the module's comment). A non-finite one,
    /// which ingest never accepts, would be stored as NULL.
    pub fn float(&mut self, v: Option<f64>) -> &mut Self {
        self.next_cell();
        match v {
            Some(f) if f.is_finite() => {
                let _ = serde_json::to_writer(&mut self.buf, &(f.to_bits() as i64));
                self
            }
            _ => self.null(),
        }
    }

    pub fn text(&mut self, v: Option<&str>) -> &mut Self {
        self.next_cell();
        match v {
            // Writing a str into a Vec cannot fail.
            Some(s) => {
                let _ = serde_json::to_writer(&mut self.buf, s);
                self
            }
            None => self.null(),
        }
    }

    pub fn bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        self.next_cell();
        match v {
            Some(b) => {
                self.buf.push(b'"');
                self.buf.extend_from_slice(hex::encode(b).as_bytes());
                self.buf.push(b'"');
                self
            }
            None => self.null(),
        }
    }

    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.next_cell();
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The JSON text, to bind as the statement's one parameter.
    pub fn finish(mut self) -> String {
        if self.rows > 0 {
            self.buf.push(b']');
        }
        self.buf.push(b']');
        // Only ASCII punctuation, digits and serde_json's strings went in.
        String::from_utf8(self.buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{AnyConnection, Connection, Row};

    #[test]
    fn rows_are_a_json_array_of_arrays() {
        let mut rows = JsonRows::new(2);
        assert!(rows.is_empty());
        rows.row()
            .int(1)
            .text(Some("a\"b"))
            .float(Some(0.1))
            .bytes(Some(&[0xde, 0xad]));
        rows.row().int(None).text(None).float(None).boolean(true);
        assert_eq!(
            rows.finish(),
            format!(
                r#"[[1,"a\"b",{},"dead"],[null,null,null,true]]"#,
                0.1f64.to_bits()
            )
        );
        assert_eq!(JsonRows::new(0).finish(), "[]");
        let mut bits = JsonRows::new(1);
        bits.row().float(Some(f64::NAN));
        assert_eq!(bits.finish(), "[[null]]");
    }

    #[test]
    fn select_unpacks_each_cell() {
        let cells = [Cell::Int, Cell::Float, Cell::Text, Cell::Bytes, Cell::Bool];
        assert_eq!(
            select_from_json(&cells),
            "SELECT j.value->>0, flownexus_f64(j.value->>1), j.value->>2, unhex(j.value->>3), \
             j.value->>4 FROM json_each(?) AS j WHERE true"
        );
    }

    /// Every double comes back bit for bit, including those SQLite's own
    /// decimal parsing gets wrong (extreme exponents), and every other cell
    /// as written.
    #[tokio::test]
    async fn sqlite_reads_back_every_cell_exactly() {
        crate::server::store::sqlite::register_functions();
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut floats = vec![
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            -0.0,
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
        let mut rows = JsonRows::new(floats.len());
        for (i, f) in floats.iter().enumerate() {
            rows.row()
                .int(i as i64)
                .float(Some(*f))
                .text(Some("é\n\"x"))
                .bytes(Some(&[0, 255]))
                .boolean(i % 2 == 0);
        }
        rows.row()
            .int(None)
            .float(None)
            .text(None)
            .bytes(None)
            .boolean(false);
        let cells = [Cell::Int, Cell::Float, Cell::Text, Cell::Bytes, Cell::Bool];
        let sql = select_from_json(&cells);
        let got = sqlx::query(&sql)
            .bind(rows.finish())
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
