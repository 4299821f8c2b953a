//! SQL for `endpoint_chart`: an operator's pinned and hidden charts per
//! endpoint (one row per resource; no row is the page's own choice).
use crate::model::ChartChoice;
use sqlx::{Any, Executor, Row};

/// The choices made for one endpoint, as ((object id, resource id), choice).
pub async fn for_endpoint<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
) -> Result<Vec<((i64, i64), ChartChoice)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT object_id, resource_id, choice FROM endpoint_chart \
         WHERE endpoint_id = $1 ORDER BY object_id, resource_id",
    )
    .bind(endpoint_id)
    .fetch_all(executor)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let choice: String = row.try_get("choice")?;
        // The schema's check admits only the two known values.
        let Some(choice) = ChartChoice::parse(&choice) else {
            continue;
        };
        out.push((
            (row.try_get("object_id")?, row.try_get("resource_id")?),
            choice,
        ));
    }
    Ok(out)
}

/// Sets (or with None clears) the choice for one chart of an endpoint.
pub async fn set<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
    (object_id, resource_id): (i64, i64),
    choice: Option<ChartChoice>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let query = match choice {
        Some(choice) => sqlx::query(
            "INSERT INTO endpoint_chart (endpoint_id, object_id, resource_id, choice, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (endpoint_id, object_id, resource_id) \
             DO UPDATE SET choice = excluded.choice, updated_at = excluded.updated_at",
        )
        .bind(endpoint_id)
        .bind(object_id)
        .bind(resource_id)
        .bind(choice.as_str())
        .bind(now),
        None => sqlx::query(
            "DELETE FROM endpoint_chart \
             WHERE endpoint_id = $1 AND object_id = $2 AND resource_id = $3",
        )
        .bind(endpoint_id)
        .bind(object_id)
        .bind(resource_id),
    };
    query.execute(executor).await?;
    Ok(())
}
