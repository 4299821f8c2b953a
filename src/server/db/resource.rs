//! SQL for `resource` (stored values), `resource_series` (the list of
//! series) and the view `resource_latest` (each series' newest value).
use crate::model::{DataType, LatestValue, ResourcePath, Value};
use crate::server::store::rows;
use crate::server::store::script::Script;
use crate::server::store::{self, Backend};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

/// A value split into the typed storage columns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Columns {
    pub int_value: Option<i64>,
    pub float_value: Option<f64>,
    pub text_value: Option<String>,
    pub bytes_value: Option<Vec<u8>>,
}

impl Columns {
    pub fn from_value(v: &Value) -> Columns {
        let mut c = Columns::default();
        match v {
            Value::Integer(i) | Value::UnsignedInteger(i) | Value::Time(i) => {
                c.int_value = Some(*i)
            }
            Value::Boolean(b) => c.int_value = Some(*b as i64),
            Value::Float(f) => c.float_value = Some(*f),
            Value::String(s) | Value::Corelink(s) => c.text_value = Some(s.clone()),
            Value::Objlnk { .. } => c.text_value = Some(v.to_string()),
            Value::Opaque(b) => c.bytes_value = Some(b.clone()),
            Value::None => {}
        }
        c
    }

    /// The inverse of `from_value`, given the resource type's data type.
    pub fn to_value(&self, t: DataType) -> Value {
        match t {
            DataType::Integer => Value::Integer(self.int_value.unwrap_or_default()),
            DataType::UnsignedInteger => Value::UnsignedInteger(self.int_value.unwrap_or_default()),
            DataType::Time => Value::Time(self.int_value.unwrap_or_default()),
            DataType::Boolean => Value::Boolean(self.int_value.unwrap_or_default() != 0),
            DataType::Float => Value::Float(self.float_value.unwrap_or_default()),
            DataType::String => Value::String(self.text_value.clone().unwrap_or_default()),
            DataType::Corelink => Value::Corelink(self.text_value.clone().unwrap_or_default()),
            DataType::Objlnk => {
                let text = self.text_value.clone().unwrap_or_default();
                let (o, i) = text.split_once(':').unwrap_or(("0", "0"));
                Value::Objlnk {
                    object_id: o.parse().unwrap_or_default(),
                    instance_id: i.parse().unwrap_or_default(),
                }
            }
            DataType::Opaque => Value::Opaque(self.bytes_value.clone().unwrap_or_default()),
            DataType::None => Value::None,
        }
    }

    /// The column values of this type are stored in (`NULL` for NONE).
    pub fn column_of(t: DataType) -> &'static str {
        match t {
            DataType::Integer | DataType::UnsignedInteger | DataType::Time | DataType::Boolean => {
                "int_value"
            }
            DataType::Float => "float_value",
            DataType::String | DataType::Corelink | DataType::Objlnk => "text_value",
            DataType::Opaque => "bytes_value",
            DataType::None => "NULL",
        }
    }

    /// Reads a value of type `t` selected alone, as `column_of(t)`, at
    /// position `i`: the inverse of `column_of`, next to it so the two agree.
    /// Generic over the row type: the data API reads through the `Any`
    /// driver on PostgreSQL and through the native one on SQLite.
    fn from_column_at(row: &impl ValueRow, i: usize, t: DataType) -> Result<Columns, sqlx::Error> {
        let mut c = Columns::default();
        match t {
            DataType::Integer | DataType::UnsignedInteger | DataType::Time | DataType::Boolean => {
                c.int_value = row.int_at(i)?
            }
            DataType::Float => c.float_value = row.float_at(i)?,
            DataType::String | DataType::Corelink | DataType::Objlnk => {
                c.text_value = row.text_at(i)?
            }
            DataType::Opaque => c.bytes_value = row.bytes_at(i)?,
            DataType::None => {}
        }
        Ok(c)
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<Columns, sqlx::Error> {
        Ok(Columns {
            int_value: row.try_get("int_value")?,
            float_value: row.try_get("float_value")?,
            text_value: row.try_get("text_value")?,
            bytes_value: row.try_get("bytes_value")?,
        })
    }
}

/// A row of any driver whose columns decode to the storage columns' types:
/// `AnyRow`, and `SqliteRow` for the bulk reads on SQLite
/// (`Db::bulk_reader`). The decoding bounds are stated once, here.
pub trait ValueRow {
    fn int_at(&self, i: usize) -> Result<Option<i64>, sqlx::Error>;
    fn float_at(&self, i: usize) -> Result<Option<f64>, sqlx::Error>;
    fn text_at(&self, i: usize) -> Result<Option<String>, sqlx::Error>;
    fn bytes_at(&self, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

impl<R> ValueRow for R
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn int_at(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(i)
    }
    fn float_at(&self, i: usize) -> Result<Option<f64>, sqlx::Error> {
        self.try_get(i)
    }
    fn text_at(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(i)
    }
    fn bytes_at(&self, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.try_get(i)
    }
}

/// One value to store, with its id already allocated (`store::allocate_ids`).
#[derive(Debug, Clone)]
pub struct NewResource {
    pub id: i64,
    pub endpoint_id: i64,
    pub resource_type_id: i64,
    pub object_instance_id: i64,
    pub resource_instance_id: Option<i64>,
    pub columns: Columns,
    pub received_at: i64,
    /// When the device measured it; the receive time when it did not say.
    pub measured_at: i64,
}

/// Stores values (`rows::push_rows`).
pub fn insert_many<'q>(script: &mut Script<'q>, rows: &'q [NewResource]) {
    let head = format!(
        "INSERT INTO resource (id, endpoint_id, resource_type_id, object_instance_id, \
         resource_instance_id, int_value, float_value, text_value, bytes_value, received_at, \
         measured_at){}",
        store::overriding(script.backend())
    );
    rows::push_rows(script, &head, "", 11, rows, |row, r| {
        row.int(r.id)
            .int(r.endpoint_id)
            .int(r.resource_type_id)
            .int(r.object_instance_id)
            .int(r.resource_instance_id)
            .int(r.columns.int_value)
            .float(r.columns.float_value)
            .text(r.columns.text_value.as_deref())
            .bytes(r.columns.bytes_value.as_deref())
            .int(r.received_at)
            .int(r.measured_at);
    });
}

/// One series of values: an endpoint's resource instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesRow {
    pub endpoint_id: i64,
    pub resource_type_id: i64,
    pub object_instance_id: i64,
    /// The resource instance id, or -1 for a single-instance resource.
    pub resource_instance_key: i64,
}

impl SeriesRow {
    pub fn of(r: &NewResource) -> SeriesRow {
        SeriesRow {
            endpoint_id: r.endpoint_id,
            resource_type_id: r.resource_type_id,
            object_instance_id: r.object_instance_id,
            resource_instance_key: r.resource_instance_id.unwrap_or(-1),
        }
    }
}

/// Lists the series of a batch's values in `resource_series`; a series
/// already listed is left as it is, so only a series' first value writes
/// a row (its newest value is found by index, see the view
/// `resource_latest`).
pub fn add_series_many<'q>(script: &mut Script<'q>, series: &'q [SeriesRow]) {
    rows::push_rows(
        script,
        "INSERT INTO resource_series (endpoint_id, resource_type_id, object_instance_id, \
         resource_instance_key)",
        "ON CONFLICT (endpoint_id, resource_type_id, object_instance_id, resource_instance_key) \
         DO NOTHING",
        4,
        series,
        |row, s| {
            row.int(s.endpoint_id)
                .int(s.resource_type_id)
                .int(s.object_instance_id)
                .int(s.resource_instance_key);
        },
    );
}

/// Deletes up to `batch` values received before `cutoff` (oldest first)
/// and returns how many went; the series of those endpoints that have no
/// value left go from `resource_series` in the same transaction.
pub async fn delete_older_than(
    pool: &store::Pool,
    backend: Backend,
    cutoff: i64,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let mut tx = store::begin_write(pool).await?;
    let mut endpoints: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM resource WHERE id IN \
         (SELECT id FROM resource WHERE received_at < $1 ORDER BY id LIMIT $2) \
         RETURNING endpoint_id",
    )
    .bind(cutoff)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    let deleted = endpoints.len() as u64;
    endpoints.sort_unstable();
    endpoints.dedup();
    if backend == Backend::Postgres && !endpoints.is_empty() {
        // A value the ingest writer has stored but not yet committed is not
        // in the snapshot of the NOT EXISTS below, while the writer's
        // `add_series_many` saw the series row and left it: without a lock
        // the series would lose its row. The writer holds its endpoints'
        // rows (its upsert) until it commits, so taking them here first
        // waits for it, and each delete then sees its values. Locked in the
        // writer's order (names, byte order) so the two never deadlock.
        // SQLite's write lock already keeps the two apart.
        let sql = format!(
            "SELECT id FROM endpoint WHERE id IN ({}) ORDER BY name COLLATE \"C\" FOR UPDATE",
            store::placeholder_list(backend, endpoints.len())
        );
        let mut lock = sqlx::query(&sql);
        for id in &endpoints {
            lock = lock.bind(*id);
        }
        lock.fetch_all(&mut *tx).await?;
    }
    for endpoint_id in endpoints {
        // Two statements, one per spelling of the resource instance, so
        // that each probe is an index lookup on both databases.
        for sql in [
            "DELETE FROM resource_series WHERE endpoint_id = $1 AND resource_instance_key = -1 \
             AND NOT EXISTS (SELECT 1 FROM resource r WHERE r.endpoint_id = $1 \
             AND r.resource_type_id = resource_series.resource_type_id \
             AND r.object_instance_id = resource_series.object_instance_id \
             AND r.resource_instance_id IS NULL)",
            "DELETE FROM resource_series WHERE endpoint_id = $1 AND resource_instance_key >= 0 \
             AND NOT EXISTS (SELECT 1 FROM resource r WHERE r.endpoint_id = $1 \
             AND r.resource_type_id = resource_series.resource_type_id \
             AND r.object_instance_id = resource_series.object_instance_id \
             AND r.resource_instance_id = resource_series.resource_instance_key)",
        ] {
            sqlx::query(sql).bind(endpoint_id).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(deleted)
}

/// The largest resource id stored (0 when there is none): with ids growing
/// in commit order (see `db::rollup`), every row up to it is committed.
pub async fn max_id<'e, E: Executor<'e, Database = Any>>(executor: E) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM resource")
        .fetch_one(executor)
        .await
}

/// The latest value of every resource of one endpoint, in path order.
pub async fn latest_for_endpoint<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
) -> Result<Vec<LatestValue>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT t.object_id, r.object_instance_id, t.resource_id, r.resource_instance_id, \
         t.name, t.unit, t.data_type, r.int_value, r.float_value, r.text_value, r.bytes_value, \
         r.received_at, r.measured_at \
         FROM resource_latest l \
         JOIN resource r ON r.id = l.resource_id \
         JOIN resource_type t ON t.id = l.resource_type_id \
         WHERE l.endpoint_id = $1 \
         ORDER BY t.object_id, r.object_instance_id, t.resource_id, l.resource_instance_key",
    )
    .bind(endpoint_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let data_type: String = row.try_get("data_type")?;
            let data_type = DataType::parse(&data_type).unwrap_or(DataType::String);
            Ok(LatestValue {
                path: ResourcePath {
                    object_id: row.try_get("object_id")?,
                    instance_id: row.try_get("object_instance_id")?,
                    resource_id: row.try_get("resource_id")?,
                    resource_instance_id: row.try_get("resource_instance_id")?,
                },
                name: row.try_get("name")?,
                unit: row.try_get("unit")?,
                data_type,
                value: Columns::from_row(row)?.to_value(data_type).to_string(),
                received_at: row.try_get("received_at")?,
                measured_at: row.try_get("measured_at")?,
            })
        })
        .collect()
}

/// Every stored value of the resource type with this name, oldest first, as
/// (received_at, value). For the compatibility data API.
pub async fn values_by_type_name(
    db: &store::Db,
    name: &str,
) -> Result<Option<(DataType, Vec<(i64, Value)>)>, sqlx::Error> {
    let Some(row) = sqlx::query("SELECT id, data_type FROM resource_type WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(None);
    };
    let type_id: i64 = row.try_get("id")?;
    let data_type: String = row.try_get("data_type")?;
    let data_type = DataType::parse(&data_type).unwrap_or(DataType::String);
    // Served by resource_type_id_idx: no scan, no sort. The writer
    // allocates ids in arrival order, so id order is time order. Only the
    // column this type is stored in is read, by position: this answer can
    // be every value ever stored, so per-row work counts.
    let column = Columns::column_of(data_type);
    let sql = format!(
        "SELECT received_at, {column} FROM resource WHERE resource_type_id = $1 ORDER BY id"
    );
    let values = match &db.bulk_reader {
        Some(sqlite) => timed_values(
            &sqlx::query(&sql).bind(type_id).fetch_all(sqlite).await?,
            data_type,
        )?,
        None => timed_values(
            &sqlx::query(&sql).bind(type_id).fetch_all(&db.pool).await?,
            data_type,
        )?,
    };
    Ok(Some((data_type, values)))
}

/// Decodes `received_at, <the type's column>` rows into (received_at, value).
fn timed_values(
    rows: &[impl ValueRow],
    data_type: DataType,
) -> Result<Vec<(i64, Value)>, sqlx::Error> {
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        let columns = Columns::from_column_at(row, 1, data_type)?;
        let received_at = row.int_at(0)?.ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "received_at".into(),
            source: "NULL in a NOT NULL column".into(),
        })?;
        values.push((received_at, columns.to_value(data_type)));
    }
    Ok(values)
}

// ---------------------------------------------------------------------------
// Data API reads: typed latest values and time series. Shared by the REST
// API and the dashboard's charts.
// In a module of their own with their own imports, so that they merge
// cleanly with changes to the writes above.
pub use reads::*;

mod reads {
    use super::Columns;
    use crate::model::{Bucket, DataType, ResourcePath, ResourceValue, SeriesPoint, Value};
    use futures::{Stream, StreamExt};
    use sqlx::any::{AnyArguments, AnyRow};
    use sqlx::query::Query;
    use sqlx::{Any, Executor, Row};

    /// Decodes a row carrying `object_id, object_instance_id, resource_id,
    /// resource_instance_id, name, unit, data_type, int_value, float_value,
    /// text_value, bytes_value, received_at, measured_at` into a typed value.
    pub fn resource_value_from_row(row: &AnyRow) -> Result<ResourceValue, sqlx::Error> {
        let data_type: String = row.try_get("data_type")?;
        let data_type = DataType::parse(&data_type).unwrap_or(DataType::String);
        let path = ResourcePath {
            object_id: row.try_get("object_id")?,
            instance_id: row.try_get("object_instance_id")?,
            resource_id: row.try_get("resource_id")?,
            resource_instance_id: row.try_get("resource_instance_id")?,
        };
        Ok(ResourceValue {
            path: path.to_string(),
            object_id: path.object_id,
            instance_id: path.instance_id,
            resource_id: path.resource_id,
            resource_instance_id: path.resource_instance_id,
            name: row.try_get("name")?,
            unit: row.try_get("unit")?,
            data_type,
            value: Columns::from_row(row)?.to_value(data_type).to_json(),
            received_at: row.try_get("received_at")?,
            measured_at: row.try_get("measured_at")?,
        })
    }

    /// The latest value of every resource of one endpoint, typed, in path
    /// order. One query over `resource_latest`, however many resources.
    pub async fn latest_values_for_endpoint<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        endpoint_id: i64,
    ) -> Result<Vec<ResourceValue>, sqlx::Error> {
        sqlx::query(
            "SELECT t.object_id, r.object_instance_id, t.resource_id, r.resource_instance_id, \
             t.name, t.unit, t.data_type, r.int_value, r.float_value, r.text_value, r.bytes_value, \
             r.received_at, r.measured_at \
             FROM resource_latest l \
             JOIN resource r ON r.id = l.resource_id \
             JOIN resource_type t ON t.id = l.resource_type_id \
             WHERE l.endpoint_id = $1 \
             ORDER BY t.object_id, r.object_instance_id, t.resource_id, l.resource_instance_key",
        )
        .bind(endpoint_id)
        .fetch_all(executor)
        .await?
        .iter()
        .map(resource_value_from_row)
        .collect()
    }

    /// One stored series, by ids.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SeriesKey {
        pub endpoint_id: i64,
        pub resource_type_id: i64,
        pub instance_id: i64,
        /// Set for an instance of a multi-instance resource.
        pub resource_instance_id: Option<i64>,
    }

    /// The queries over one series.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SeriesSql {
        /// `MIN(received_at)` of the whole series.
        First,
        /// Rows in [from, to].
        Count,
        /// Rows in [from, to], oldest first, at most `limit`.
        Oldest,
        /// Rows in [from, to], newest first, at most `limit`.
        Newest,
        /// Rows in [from, to] grouped into buckets of `width` ms aligned from
        /// the epoch (bucket k covers [k*width, (k+1)*width)).
        Buckets,
        /// Every row in [from, to], oldest first (for streaming).
        All,
    }

    /// Every series query starts with the equality prefix of
    /// `resource_series_idx` (endpoint_id, resource_type_id, object_instance_id,
    /// resource_instance_id) followed by the measured_at range, so both
    /// databases answer it from the index. The resource instance predicate is
    /// spelled `IS NULL` or `= $n` rather than one parameterised `OR`, which a
    /// generic (cached) PostgreSQL plan could not turn into an index condition.
    /// Its placeholder is always the last one, bound only when set, so both
    /// spellings share the numbering of the others.
    ///
    /// The ordered queries sort by resource_instance_id first although it is
    /// fixed: PostgreSQL does not count `IS NULL` as pinning a column, so
    /// without it the index order (…, resource_instance_id, measured_at) does
    /// not look like `ORDER BY measured_at` and it sorted the whole series
    /// (2.4 s for the first 1,441 of 10 million values, 2.5 ms with it).
    macro_rules! series_sql {
        ($select:literal, $ri:literal, $rest:literal) => {
            concat!(
                "SELECT ",
                $select,
                " FROM resource WHERE endpoint_id = $1 AND resource_type_id = $2 \
                 AND object_instance_id = $3 AND resource_instance_id ",
                $ri,
                $rest
            )
        };
    }

    /// The SQL of one series query; `$1..$3` are the key, then the query's own
    /// parameters (see [`SeriesSql`]), then the resource instance id if set.
    pub fn series_sql(which: SeriesSql, resource_instance: bool) -> &'static str {
        use SeriesSql::*;
        match (which, resource_instance) {
            (First, false) => series_sql!("MIN(measured_at) AS first_at", "IS NULL", ""),
            (First, true) => series_sql!("MIN(measured_at) AS first_at", "= $4", ""),
            (Count, false) => series_sql!(
                "COUNT(*) AS n",
                "IS NULL",
                " AND measured_at BETWEEN $4 AND $5"
            ),
            (Count, true) => series_sql!(
                "COUNT(*) AS n",
                "= $6",
                " AND measured_at BETWEEN $4 AND $5"
            ),
            (Oldest, false) => series_sql!(
                "measured_at, received_at, int_value, float_value, text_value, bytes_value",
                "IS NULL",
                " AND measured_at BETWEEN $4 AND $5 ORDER BY resource_instance_id, measured_at, id LIMIT $6"
            ),
            (Oldest, true) => series_sql!(
                "measured_at, received_at, int_value, float_value, text_value, bytes_value",
                "= $7",
                " AND measured_at BETWEEN $4 AND $5 ORDER BY resource_instance_id, measured_at, id LIMIT $6"
            ),
            (Newest, false) => series_sql!(
                "measured_at, received_at, int_value, float_value, text_value, bytes_value",
                "IS NULL",
                " AND measured_at BETWEEN $4 AND $5 ORDER BY resource_instance_id DESC, measured_at DESC, id DESC LIMIT $6"
            ),
            (Newest, true) => series_sql!(
                "measured_at, received_at, int_value, float_value, text_value, bytes_value",
                "= $7",
                " AND measured_at BETWEEN $4 AND $5 ORDER BY resource_instance_id DESC, measured_at DESC, id DESC LIMIT $6"
            ),
            // The cast makes AVG a double on PostgreSQL too (AVG of BIGINT is
            // NUMERIC there, which the Any driver cannot decode). GROUP BY 1:
            // the bucket expression by position, valid on both databases.
            (Buckets, false) => series_sql!(
                "measured_at / $6 AS bucket, \
                 MIN(CAST(COALESCE(float_value, int_value) AS DOUBLE PRECISION)) AS min_v, \
                 MAX(CAST(COALESCE(float_value, int_value) AS DOUBLE PRECISION)) AS max_v, \
                 AVG(CAST(COALESCE(float_value, int_value) AS DOUBLE PRECISION)) AS avg_v, \
                 COUNT(*) AS n",
                "IS NULL",
                " AND measured_at BETWEEN $4 AND $5 GROUP BY 1 ORDER BY 1"
            ),
            (Buckets, true) => series_sql!(
                "measured_at / $6 AS bucket, \
                 MIN(CAST(COALESCE(float_value, int_value) AS DOUBLE PRECISION)) AS min_v, \
                 MAX(CAST(COALESCE(float_value, int_value) AS DOUBLE PRECISION)) AS max_v, \
                 AVG(CAST(COALESCE(float_value, int_value) AS DOUBLE PRECISION)) AS avg_v, \
                 COUNT(*) AS n",
                "= $7",
                " AND measured_at BETWEEN $4 AND $5 GROUP BY 1 ORDER BY 1"
            ),
            (All, false) => series_sql!(
                "measured_at, received_at, int_value, float_value, text_value, bytes_value",
                "IS NULL",
                " AND measured_at BETWEEN $4 AND $5 ORDER BY resource_instance_id, measured_at, id"
            ),
            (All, true) => series_sql!(
                "measured_at, received_at, int_value, float_value, text_value, bytes_value",
                "= $6",
                " AND measured_at BETWEEN $4 AND $5 ORDER BY resource_instance_id, measured_at, id"
            ),
        }
    }

    type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

    fn series_query(which: SeriesSql, key: &SeriesKey) -> AnyQuery<'static> {
        sqlx::query(series_sql(which, key.resource_instance_id.is_some()))
            .bind(key.endpoint_id)
            .bind(key.resource_type_id)
            .bind(key.instance_id)
    }

    fn bind_resource_instance<'q>(q: AnyQuery<'q>, key: &SeriesKey) -> AnyQuery<'q> {
        match key.resource_instance_id {
            Some(ri) => q.bind(ri),
            None => q,
        }
    }

    fn point_from_row(row: &AnyRow, data_type: DataType) -> Result<(i64, Value), sqlx::Error> {
        Ok((
            row.try_get("measured_at")?,
            Columns::from_row(row)?.to_value(data_type),
        ))
    }

    /// When the series' first value was measured, if it has any.
    pub async fn series_first_at<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        key: &SeriesKey,
    ) -> Result<Option<i64>, sqlx::Error> {
        let row = bind_resource_instance(series_query(SeriesSql::First, key), key)
            .fetch_one(executor)
            .await?;
        row.try_get("first_at")
    }

    /// How many values the series has in [from, to].
    pub async fn series_count<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        key: &SeriesKey,
        from: i64,
        to: i64,
    ) -> Result<i64, sqlx::Error> {
        let q = series_query(SeriesSql::Count, key).bind(from).bind(to);
        let row = bind_resource_instance(q, key).fetch_one(executor).await?;
        row.try_get("n")
    }

    /// At most `limit` values of the series in [from, to], returned oldest
    /// first: the oldest ones, or with `newest` the newest ones.
    #[allow(clippy::too_many_arguments)]
    pub async fn series_values<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        key: &SeriesKey,
        data_type: DataType,
        from: i64,
        to: i64,
        limit: i64,
        newest: bool,
    ) -> Result<Vec<SeriesPoint>, sqlx::Error> {
        let which = if newest {
            SeriesSql::Newest
        } else {
            SeriesSql::Oldest
        };
        let q = series_query(which, key).bind(from).bind(to).bind(limit);
        let rows = bind_resource_instance(q, key).fetch_all(executor).await?;
        let mut points = rows
            .iter()
            .map(|row| {
                let (t, v) = point_from_row(row, data_type)?;
                Ok(SeriesPoint {
                    t,
                    received_at: row.try_get("received_at")?,
                    value: v.to_json(),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        if newest {
            points.reverse();
        }
        Ok(points)
    }

    /// The buckets of `rollup::series_buckets` from the stored values alone,
    /// without rollups.
    pub async fn series_buckets_raw<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        key: &SeriesKey,
        from: i64,
        to: i64,
        width: i64,
    ) -> Result<Vec<Bucket>, sqlx::Error> {
        let width = width.max(1);
        let q = series_query(SeriesSql::Buckets, key)
            .bind(from)
            .bind(to)
            .bind(width);
        bind_resource_instance(q, key)
            .fetch_all(executor)
            .await?
            .iter()
            .map(|row| {
                let k: i64 = row.try_get("bucket")?;
                Ok(Bucket {
                    t: k * width,
                    min: row.try_get("min_v")?,
                    max: row.try_get("max_v")?,
                    avg: row.try_get("avg_v")?,
                    count: row.try_get("n")?,
                })
            })
            .collect()
    }

    /// Every value of the series in [from, to], oldest first, as a stream of
    /// (measured_at, received_at, value): rows are decoded as the database sends them, so
    /// a long range never sits in memory.
    pub fn series_stream<'e, E>(
        executor: E,
        key: SeriesKey,
        data_type: DataType,
        from: i64,
        to: i64,
    ) -> impl Stream<Item = Result<(i64, i64, Value), sqlx::Error>> + Send + 'e
    where
        E: Executor<'e, Database = Any> + 'e,
    {
        let q = series_query(SeriesSql::All, &key).bind(from).bind(to);
        bind_resource_instance(q, &key)
            .fetch(executor)
            .map(move |row| {
                let row = row?;
                let (measured_at, value) = point_from_row(&row, data_type)?;
                Ok((measured_at, row.try_get("received_at")?, value))
            })
    }
}
