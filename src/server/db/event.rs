//! SQL for `event` and `event_resource`.
use super::Backend;
use sqlx::{Any, AnyConnection, Executor};

/// One event to store, with its id already allocated (`db::allocate_ids`).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_type: String,
    pub created_at: i64,
}

/// Stores events with multi-row inserts.
pub async fn insert_many(
    conn: &mut AnyConnection,
    backend: Backend,
    events: &[NewEvent],
) -> Result<(), sqlx::Error> {
    for range in super::chunks(events.len()) {
        let sql = format!(
            "INSERT INTO event (id, endpoint_id, event_type, created_at){} VALUES {}",
            super::overriding(backend),
            super::values_list(4, range.len())
        );
        let mut query = sqlx::query(&sql);
        for e in &events[range] {
            query = query
                .bind(e.id)
                .bind(e.endpoint_id)
                .bind(e.event_type.as_str())
                .bind(e.created_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Links stored values to events: (event id, resource id) pairs.
pub async fn link_many(conn: &mut AnyConnection, links: &[(i64, i64)]) -> Result<(), sqlx::Error> {
    for range in super::chunks(links.len()) {
        let sql = format!(
            "INSERT INTO event_resource (event_id, resource_id) VALUES {}",
            super::values_list(2, range.len())
        );
        let mut query = sqlx::query(&sql);
        for (event_id, resource_id) in &links[range] {
            query = query.bind(*event_id).bind(*resource_id);
        }
        query.execute(&mut *conn).await?;
    }
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
