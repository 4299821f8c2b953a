//! SQL for `endpoint_operation`: the durable queue of commands for devices.
use super::resource::Columns;
use sqlx::{Any, Executor, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationType {
    Write,
    Execute,
    Read,
}

impl OperationType {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::Write => "write",
            OperationType::Execute => "execute",
            OperationType::Read => "read",
        }
    }
}

pub struct NewOperation<'a> {
    pub endpoint_id: i64,
    pub resource_type_id: Option<i64>,
    /// LwM2M path, e.g. "/5/0/2".
    pub path: &'a str,
    pub operation_type: OperationType,
    pub value: Columns,
    pub created_by: Option<i64>,
    pub now: i64,
}

/// Queues an operation. Returns its id.
pub async fn enqueue<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    op: &NewOperation<'_>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO endpoint_operation (endpoint_id, resource_type_id, path, operation_type, \
         int_value, float_value, text_value, bytes_value, status, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $10) RETURNING id",
    )
    .bind(op.endpoint_id)
    .bind(op.resource_type_id)
    .bind(op.path)
    .bind(op.operation_type.as_str())
    .bind(op.value.int_value)
    .bind(super::NullableF64(op.value.float_value))
    .bind(op.value.text_value.as_deref())
    .bind(op.value.bytes_value.as_deref())
    .bind(op.created_by)
    .bind(op.now)
    .fetch_one(executor)
    .await
}

/// A queued operation as listed for an endpoint: (id, path, type, status).
pub async fn list_for_endpoint<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
) -> Result<Vec<(i64, String, String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, path, operation_type, status FROM endpoint_operation \
         WHERE endpoint_id = $1 ORDER BY id",
    )
    .bind(endpoint_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                row.try_get("path")?,
                row.try_get("operation_type")?,
                row.try_get("status")?,
            ))
        })
        .collect()
}

/// Marks an operation's outcome (the dispatcher's job; tests use it too).
pub async fn set_status<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    status: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE endpoint_operation SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

/// Operations waiting to go out or on their way (queued or sending).
pub async fn count_pending<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM endpoint_operation WHERE status IN ('queued', 'sending')",
    )
    .fetch_one(executor)
    .await
}
