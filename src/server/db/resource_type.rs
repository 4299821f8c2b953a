//! SQL for `resource_type`: the LwM2M object/resource model.
use crate::model::DataType;
use crate::server::store::get_bool;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Seeded,
    Discovered,
    Custom,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Seeded => "seeded",
            Origin::Discovered => "discovered",
            Origin::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        [Origin::Seeded, Origin::Discovered, Origin::Custom]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

pub struct NewResourceType<'a> {
    pub object_id: i64,
    pub resource_id: i64,
    pub name: &'a str,
    pub data_type: DataType,
    pub unit: Option<&'a str>,
    pub writable: bool,
    pub executable: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub id: i64,
    pub object_id: i64,
    pub resource_id: i64,
    pub name: String,
    pub data_type: DataType,
    pub unit: Option<String>,
    pub writable: bool,
    pub executable: bool,
    pub origin: Origin,
}

const COLUMNS: &str =
    "id, object_id, resource_id, name, data_type, unit, writable, executable, origin";

fn from_row(row: &AnyRow) -> Result<ResourceType, sqlx::Error> {
    let data_type: String = row.try_get("data_type")?;
    let origin: String = row.try_get("origin")?;
    Ok(ResourceType {
        id: row.try_get("id")?,
        object_id: row.try_get("object_id")?,
        resource_id: row.try_get("resource_id")?,
        name: row.try_get("name")?,
        data_type: DataType::parse(&data_type).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "data_type".into(),
            source: format!("unknown data type {data_type:?}").into(),
        })?,
        unit: row.try_get("unit")?,
        writable: get_bool(row, "writable")?,
        executable: get_bool(row, "executable")?,
        origin: Origin::parse(&origin).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "origin".into(),
            source: format!("unknown origin {origin:?}").into(),
        })?,
    })
}

/// Inserts the type unless (object_id, resource_id) exists. Returns the
/// number of rows added (0 or 1).
pub async fn insert_if_missing<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    t: &NewResourceType<'_>,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO resource_type \
         (object_id, resource_id, name, data_type, unit, writable, executable, origin) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (object_id, resource_id) DO NOTHING",
    )
    .bind(t.object_id)
    .bind(t.resource_id)
    .bind(t.name)
    .bind(t.data_type.as_str())
    .bind(t.unit)
    .bind(t.writable)
    .bind(t.executable)
    .bind(t.origin.as_str())
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

pub async fn find<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    object_id: i64,
    resource_id: i64,
) -> Result<Option<ResourceType>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM resource_type WHERE object_id = $1 AND resource_id = $2");
    sqlx::query(&sql)
        .bind(object_id)
        .bind(resource_id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<ResourceType>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM resource_type ORDER BY object_id, resource_id");
    sqlx::query(&sql)
        .fetch_all(executor)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn find_by_id<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<ResourceType>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM resource_type WHERE id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The id of the type with this name, if any (names identify types in the
/// data API, so they are kept unique).
pub async fn id_by_name<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    name: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM resource_type WHERE name = $1")
        .bind(name)
        .fetch_optional(executor)
        .await
}

/// Renames a type and sets its unit. Returns whether the type existed.
pub async fn update_name_unit<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    name: &str,
    unit: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE resource_type SET name = $2, unit = $3 WHERE id = $1")
        .bind(id)
        .bind(name)
        .bind(unit)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The writable and executable resources of the object instances an
/// endpoint has reported, in path order: (object, instance, type).
pub async fn command_targets<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
) -> Result<Vec<(i64, ResourceType)>, sqlx::Error> {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT i.object_instance_id, {columns} FROM resource_type t \
         JOIN (SELECT DISTINCT rt.object_id, l.object_instance_id FROM resource_series l \
               JOIN resource_type rt ON rt.id = l.resource_type_id WHERE l.endpoint_id = $1) i \
         ON i.object_id = t.object_id \
         WHERE t.writable OR t.executable \
         ORDER BY t.object_id, i.object_instance_id, t.resource_id"
    );
    sqlx::query(&sql)
        .bind(endpoint_id)
        .fetch_all(executor)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("object_instance_id")?, from_row(row)?)))
        .collect()
}
