//! SQL for `resource` (stored values) and `resource_latest`.
use super::Backend;
use crate::model::{DataType, LatestValue, Point, ResourcePath, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};

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

    fn from_row(row: &AnyRow) -> Result<Columns, sqlx::Error> {
        Ok(Columns {
            int_value: row.try_get("int_value")?,
            float_value: row.try_get("float_value")?,
            text_value: row.try_get("text_value")?,
            bytes_value: row.try_get("bytes_value")?,
        })
    }
}

/// One value to store, with its id already allocated (`db::allocate_ids`).
#[derive(Debug, Clone)]
pub struct NewResource {
    pub id: i64,
    pub endpoint_id: i64,
    pub resource_type_id: i64,
    pub object_instance_id: i64,
    pub resource_instance_id: Option<i64>,
    pub columns: Columns,
    pub received_at: i64,
}

/// Stores values with multi-row inserts, a few statements per batch.
pub async fn insert_many(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: &[NewResource],
) -> Result<(), sqlx::Error> {
    for range in super::chunks(rows.len()) {
        let sql = format!(
            "INSERT INTO resource (id, endpoint_id, resource_type_id, object_instance_id, \
             resource_instance_id, int_value, float_value, text_value, bytes_value, received_at){} \
             VALUES {}",
            super::overriding(backend),
            super::values_list(10, range.len())
        );
        let mut query = sqlx::query(&sql);
        for r in &rows[range] {
            query = query
                .bind(r.id)
                .bind(r.endpoint_id)
                .bind(r.resource_type_id)
                .bind(r.object_instance_id)
                .bind(r.resource_instance_id)
                .bind(r.columns.int_value)
                .bind(super::NullableF64(r.columns.float_value))
                .bind(r.columns.text_value.as_deref())
                .bind(r.columns.bytes_value.as_deref())
                .bind(r.received_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Points `resource_latest` at the newest stored value of each series.
/// The caller passes at most one row per series (PostgreSQL refuses to
/// update one row twice in a statement) and only the newest value of each.
pub async fn set_latest_many(
    conn: &mut AnyConnection,
    rows: &[&NewResource],
) -> Result<(), sqlx::Error> {
    for range in super::chunks(rows.len()) {
        let sql = format!(
            "INSERT INTO resource_latest (endpoint_id, resource_type_id, object_instance_id, \
             resource_instance_key, resource_id, received_at) VALUES {} \
             ON CONFLICT (endpoint_id, resource_type_id, object_instance_id, resource_instance_key) \
             DO UPDATE SET resource_id = excluded.resource_id, received_at = excluded.received_at",
            super::values_list(6, range.len())
        );
        let mut query = sqlx::query(&sql);
        for r in &rows[range] {
            query = query
                .bind(r.endpoint_id)
                .bind(r.resource_type_id)
                .bind(r.object_instance_id)
                .bind(r.resource_instance_id.unwrap_or(-1))
                .bind(r.id)
                .bind(r.received_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The latest value of every resource of one endpoint, in path order.
pub async fn latest_for_endpoint<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
) -> Result<Vec<LatestValue>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT t.object_id, r.object_instance_id, t.resource_id, r.resource_instance_id, \
         t.name, t.unit, t.data_type, r.int_value, r.float_value, r.text_value, r.bytes_value, \
         r.received_at \
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
            })
        })
        .collect()
}

/// Numeric points of one series in [from, to], oldest first, at most `limit`
/// (the newest ones when there are more).
pub async fn series_points<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
    resource_type_id: i64,
    path: &ResourcePath,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<Point>, sqlx::Error> {
    // The resource_instance_id predicate is written so that both the NULL
    // (single resource) and the set case use resource_series_idx.
    let rows = sqlx::query(
        "SELECT received_at, int_value, float_value FROM resource \
         WHERE endpoint_id = $1 AND resource_type_id = $2 AND object_instance_id = $3 \
         AND ((resource_instance_id IS NULL AND $4 = -1) OR resource_instance_id = $4) \
         AND received_at BETWEEN $5 AND $6 \
         ORDER BY received_at DESC LIMIT $7",
    )
    .bind(endpoint_id)
    .bind(resource_type_id)
    .bind(path.instance_id)
    .bind(path.resource_instance_id.unwrap_or(-1))
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    let mut points = rows
        .iter()
        .filter_map(|row| {
            let t: i64 = row.try_get("received_at").ok()?;
            let f: Option<f64> = row.try_get("float_value").ok()?;
            let i: Option<i64> = row.try_get("int_value").ok()?;
            let v = f.or(i.map(|i| i as f64))?;
            Some(Point { t, v })
        })
        .collect::<Vec<_>>();
    points.reverse();
    Ok(points)
}

/// Every stored value of the resource type with this name, oldest first, as
/// (received_at, value). For the compatibility data API.
pub async fn values_by_type_name<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    name: &str,
) -> Result<Option<(DataType, Vec<(i64, Value)>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT t.data_type, r.received_at, r.int_value, r.float_value, r.text_value, r.bytes_value \
         FROM resource_type t LEFT JOIN resource r ON r.resource_type_id = t.id \
         WHERE t.name = $1 ORDER BY r.received_at, r.id",
    )
    .bind(name)
    .fetch_all(executor)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let data_type: String = first.try_get("data_type")?;
    let data_type = DataType::parse(&data_type).unwrap_or(DataType::String);
    let mut values = Vec::with_capacity(rows.len());
    for row in &rows {
        // The LEFT JOIN yields one row without a value for a type with no data.
        let Some(t) = row.try_get::<Option<i64>, _>("received_at")? else {
            continue;
        };
        values.push((t, Columns::from_row(row)?.to_value(data_type)));
    }
    Ok(Some((data_type, values)))
}
