//! SQL for `event` and `event_resource`.
use sqlx::{Any, Executor};

pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
    event_type: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO event (endpoint_id, event_type, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(endpoint_id)
    .bind(event_type)
    .bind(now)
    .fetch_one(executor)
    .await
}

pub async fn link_resource<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    event_id: i64,
    resource_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO event_resource (event_id, resource_id) VALUES ($1, $2)")
        .bind(event_id)
        .bind(resource_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Event types per endpoint, newest first: (type, time).
pub async fn recent_for_endpoint<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_type, created_at FROM event WHERE endpoint_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(executor)
    .await
}
