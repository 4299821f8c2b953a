//! SQL for `firmware_update`, as far as ingest needs it: the active update
//! of an endpoint and its progress. (The images themselves: `db::firmware`.)
use crate::model::FirmwareUpdateState;
use crate::server::store;
use crate::server::store::get_bool;
use sqlx::{Any, Executor, Row};

/// An active update as ingest tracks it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveUpdate {
    pub id: i64,
    pub endpoint_id: i64,
    pub state: FirmwareUpdateState,
    pub result: Option<i64>,
    pub target_version: String,
    /// The package URI write (5/0/1) reached the device.
    pub uri_written: bool,
    pub execute_operation_id: Option<i64>,
    /// The Execute of 5/0/2 reached the device.
    pub executed: bool,
}

/// The active update of each of these endpoints, if any.
pub async fn active_for_endpoints<C>(
    conn: &mut C,
    backend: store::Backend,
    endpoint_ids: &[i64],
) -> Result<Vec<ActiveUpdate>, sqlx::Error>
where
    for<'e> &'e mut C: Executor<'e, Database = Any>,
{
    let mut out = Vec::new();
    for range in store::chunks(endpoint_ids.len()) {
        let sql = format!(
            "SELECT u.id, u.endpoint_id, u.state, u.result, f.version, u.execute_operation_id, \
             CASE WHEN s.status = 'confirmed' THEN 1 ELSE 0 END AS uri_written, \
             CASE WHEN x.status = 'confirmed' THEN 1 ELSE 0 END AS executed \
             FROM firmware_update u JOIN firmware f ON f.id = u.firmware_id \
             LEFT JOIN endpoint_operation s ON s.id = u.send_uri_operation_id \
             LEFT JOIN endpoint_operation x ON x.id = u.execute_operation_id \
             WHERE u.state IN ('pending', 'downloading', 'downloaded', 'updating') \
             AND u.endpoint_id IN ({})",
            store::placeholder_list(backend, range.len())
        );
        let mut query = sqlx::query(&sql).persistent(store::keep_prepared(range.len()));
        for id in &endpoint_ids[range] {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let state: String = row.try_get("state")?;
            out.push(ActiveUpdate {
                id: row.try_get("id")?,
                endpoint_id: row.try_get("endpoint_id")?,
                state: FirmwareUpdateState::parse(&state).unwrap_or(FirmwareUpdateState::Pending),
                result: row.try_get("result")?,
                target_version: row.try_get("version")?,
                uri_written: get_bool(&row, "uri_written")?,
                execute_operation_id: row.try_get("execute_operation_id")?,
                executed: get_bool(&row, "executed")?,
            });
        }
    }
    Ok(out)
}

/// Writes an update's tracked progress back.
pub async fn save_progress<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    update: &ActiveUpdate,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE firmware_update SET state = $2, result = $3, execute_operation_id = $4, \
         updated_at = $5 WHERE id = $1",
    )
    .bind(update.id)
    .bind(update.state.as_str())
    .bind(update.result)
    .bind(update.execute_operation_id)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// Starts an update of an endpoint to a firmware. Fails with a unique
/// violation when the endpoint already has an active update.
pub async fn create<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
    firmware_id: i64,
    created_by: Option<i64>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO firmware_update (endpoint_id, firmware_id, state, created_by, created_at, \
         updated_at) VALUES ($1, $2, 'pending', $3, $4, $4) RETURNING id",
    )
    .bind(endpoint_id)
    .bind(firmware_id)
    .bind(created_by)
    .bind(now)
    .fetch_one(executor)
    .await
}

/// The package URI an update wrote (or queued), if it has one.
pub async fn package_uri<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    update_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT o.text_value FROM firmware_update u \
         JOIN endpoint_operation o ON o.id = u.send_uri_operation_id WHERE u.id = $1",
    )
    .bind(update_id)
    .fetch_optional(executor)
    .await
    .map(Option::flatten)
}

/// Links the operation that writes the package URI (5/0/1) to the update.
pub async fn set_send_uri_operation<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    update_id: i64,
    operation_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE firmware_update SET send_uri_operation_id = $2 WHERE id = $1")
        .bind(update_id)
        .bind(operation_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// (state, result, execute operation id) of one update.
pub async fn progress<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    update_id: i64,
) -> Result<Option<(FirmwareUpdateState, Option<i64>, Option<i64>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT state, result, execute_operation_id FROM firmware_update WHERE id = $1",
    )
    .bind(update_id)
    .fetch_optional(executor)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.try_get("state")?;
    Ok(Some((
        FirmwareUpdateState::parse(&state).unwrap_or(FirmwareUpdateState::Pending),
        row.try_get("result")?,
        row.try_get("execute_operation_id")?,
    )))
}

/// Updates in an active state (the partial unique index covers them).
pub async fn count_active<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<i64, sqlx::Error> {
    let states = FirmwareUpdateState::ACTIVE
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM firmware_update WHERE state IN ({states})"
    ))
    .fetch_one(executor)
    .await
}

// ---------------------------------------------------------------------------
// Starting, cancelling and listing updates (the commands service).

/// Starts an update on behalf of `actor`. Fails with a unique violation
/// when the endpoint already has an active update.
pub async fn create_by<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
    firmware_id: i64,
    created_by: Option<i64>,
    actor: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO firmware_update (endpoint_id, firmware_id, state, created_by, actor, \
         created_at, updated_at) VALUES ($1, $2, 'pending', $3, $4, $5, $5) RETURNING id",
    )
    .bind(endpoint_id)
    .bind(firmware_id)
    .bind(created_by)
    .bind(actor)
    .bind(now)
    .fetch_one(executor)
    .await
}

/// (endpoint id, firmware id, state) of one update.
pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    update_id: i64,
) -> Result<Option<(i64, i64, FirmwareUpdateState)>, sqlx::Error> {
    let row =
        sqlx::query("SELECT endpoint_id, firmware_id, state FROM firmware_update WHERE id = $1")
            .bind(update_id)
            .fetch_optional(executor)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.try_get("state")?;
    Ok(Some((
        row.try_get("endpoint_id")?,
        row.try_get("firmware_id")?,
        FirmwareUpdateState::parse(&state).unwrap_or(FirmwareUpdateState::Pending),
    )))
}

/// Ends an active update in `state` (failed, timed out, cancelled) with a
/// reason. Returns the endpoint id, or None when it was not active.
pub async fn finish<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    update_id: i64,
    state: FirmwareUpdateState,
    error: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE firmware_update SET state = $2, error = $3, updated_at = $4 \
         WHERE id = $1 AND state IN ('pending', 'downloading', 'downloaded', 'updating') \
         RETURNING endpoint_id",
    )
    .bind(update_id)
    .bind(state.as_str())
    .bind(error)
    .bind(now)
    .fetch_optional(executor)
    .await
}

/// Active updates without progress since `cutoff`: (id, endpoint id).
pub async fn stalled<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cutoff: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, endpoint_id FROM firmware_update \
         WHERE state IN ('pending', 'downloading', 'downloaded', 'updating') AND updated_at < $1",
    )
    .bind(cutoff)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("endpoint_id")?)))
        .collect()
}

/// The update a command belongs to, and whether it is the package URI
/// write (else the Execute).
pub async fn of_operation<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    operation_id: i64,
) -> Result<Option<(i64, bool)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, CASE WHEN send_uri_operation_id = $1 THEN 1 ELSE 0 END AS is_uri \
         FROM firmware_update WHERE send_uri_operation_id = $1 OR execute_operation_id = $1",
    )
    .bind(operation_id)
    .fetch_optional(executor)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, get_bool(&r, "is_uri")?)))
        .transpose()
}

/// Updates as listed (without their steps), newest first.
pub async fn list_views<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: Option<i64>,
    active_only: bool,
    limit: i64,
) -> Result<Vec<crate::model::UpdateView>, sqlx::Error> {
    let mut conditions = Vec::new();
    if endpoint_id.is_some() {
        conditions.push("u.endpoint_id = $2".to_string());
    }
    if active_only {
        conditions.push("u.state IN ('pending', 'downloading', 'downloaded', 'updating')".into());
    }
    let sql = format!(
        "SELECT u.id, u.endpoint_id, e.name AS endpoint, u.firmware_id, f.version, u.state, \
         u.result, u.error, u.actor, u.created_at, u.updated_at \
         FROM firmware_update u JOIN firmware f ON f.id = u.firmware_id \
         JOIN endpoint e ON e.id = u.endpoint_id {} \
         ORDER BY u.id DESC LIMIT $1",
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        }
    );
    let mut q = sqlx::query(&sql).bind(limit);
    if let Some(id) = endpoint_id {
        q = q.bind(id);
    }
    q.fetch_all(executor)
        .await?
        .iter()
        .map(|row| {
            let state: String = row.try_get("state")?;
            let state = FirmwareUpdateState::parse(&state).unwrap_or(FirmwareUpdateState::Pending);
            let result: Option<i64> = row.try_get("result")?;
            let mut error: Option<String> = row.try_get("error")?;
            if error.is_none() && state == FirmwareUpdateState::Failed {
                error = result.map(|r| crate::model::update_result_text(r).to_string());
            }
            Ok(crate::model::UpdateView {
                id: row.try_get("id")?,
                endpoint: row.try_get("endpoint")?,
                endpoint_id: row.try_get("endpoint_id")?,
                firmware_id: row.try_get("firmware_id")?,
                version: row.try_get("version")?,
                state,
                result,
                error,
                created_by: row.try_get("actor")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                steps: Vec::new(),
            })
        })
        .collect()
}
