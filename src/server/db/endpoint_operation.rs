//! SQL for `endpoint_operation`: the durable queue of commands for devices.
//!
//! Life of a command: `queued` -> (claimed by one dispatcher) `sending` ->
//! `confirmed` | `failed` | back to `queued` (device asleep, or a transient
//! failure with backoff). `cancelled` from `queued` only; `failed` can be
//! queued again. Per endpoint, commands go out in id (creation) order, one
//! at a time: only the oldest queued command of an endpoint can be claimed,
//! and only while none of its commands is `sending`.
use super::resource::Columns;
use crate::model::{
    CommandKind, CommandQuery, CommandStatus, CommandView, DataType, PresenceFacts,
};
use crate::server::store;
use crate::server::store::Backend;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};

/// Kept for the ingest writer's firmware Execute: the kind of a command.
pub type OperationType = CommandKind;

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
    enqueue_by(executor, op, None, None).await
}

/// Queues an operation on behalf of `actor`, failing it when not sent
/// before `expires_at`. Returns its id.
pub async fn enqueue_by<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    op: &NewOperation<'_>,
    actor: Option<&str>,
    expires_at: Option<i64>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO endpoint_operation (endpoint_id, resource_type_id, path, operation_type, \
         int_value, float_value, text_value, bytes_value, status, created_by, actor, expires_at, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $11, $12, $12) RETURNING id",
    )
    .bind(op.endpoint_id)
    .bind(op.resource_type_id)
    .bind(op.path)
    .bind(op.operation_type.as_str())
    .bind(op.value.int_value)
    .bind(store::NullableF64(op.value.float_value))
    .bind(op.value.text_value.as_deref())
    .bind(op.value.bytes_value.as_deref())
    .bind(op.created_by)
    .bind(actor)
    .bind(expires_at)
    .bind(op.now)
    .fetch_one(executor)
    .await
}

/// (id, path, kind, status) of an endpoint's commands, oldest first (tests).
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

/// Sets an operation's status directly (tests play the dispatcher with it).
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

// ---------------------------------------------------------------------------
// Views: the Commands page, the endpoint page and the API.

const VIEW_COLUMNS: &str = "o.id, o.endpoint_id, e.name AS endpoint, o.operation_type, o.path, \
     t.name AS type_name, t.data_type, o.int_value, o.float_value, o.text_value, o.bytes_value, \
     o.status, o.attempts, o.last_error, o.device_status, o.answer, o.actor, o.created_at, o.updated_at, \
     o.expires_at, o.wake_after, e.registered, e.last_registration_at, e.last_update_at, e.last_seen_at, \
     e.lifetime_s, e.queue_mode";

const VIEW_FROM: &str = "FROM endpoint_operation o JOIN endpoint e ON e.id = o.endpoint_id \
     LEFT JOIN resource_type t ON t.id = o.resource_type_id";

fn view_from_row(row: &AnyRow, now: i64) -> Result<CommandView, sqlx::Error> {
    let kind: String = row.try_get("operation_type")?;
    let status: String = row.try_get("status")?;
    let status = CommandStatus::parse(&status).unwrap_or(CommandStatus::Queued);
    let data_type: Option<String> = row.try_get("data_type")?;
    let columns = Columns {
        int_value: row.try_get("int_value")?,
        float_value: row.try_get("float_value")?,
        text_value: row.try_get("text_value")?,
        bytes_value: row.try_get("bytes_value")?,
    };
    let kind = CommandKind::parse(&kind).unwrap_or(CommandKind::Read);
    let value = match (kind, data_type.as_deref().and_then(DataType::parse)) {
        (CommandKind::Write, Some(t)) => Some(columns.to_value(t).to_string()),
        _ => columns.text_value.clone(),
    };
    let facts = PresenceFacts {
        registered: store::get_bool(row, "registered")?,
        last_registration_at: row.try_get("last_registration_at")?,
        last_update_at: row.try_get("last_update_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        lifetime_s: row.try_get("lifetime_s")?,
        queue_mode: store::get_bool(row, "queue_mode")?,
    };
    Ok(CommandView {
        id: row.try_get("id")?,
        endpoint: row.try_get("endpoint")?,
        endpoint_id: row.try_get("endpoint_id")?,
        kind,
        path: row.try_get("path")?,
        name: row.try_get("type_name")?,
        value,
        status,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        device_status: row.try_get("device_status")?,
        answer: row.try_get("answer")?,
        created_by: row.try_get("actor")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        expires_at: row.try_get("expires_at")?,
        // Not listening now, or the LwM2M server said it sleeps (or is not
        // registered) and it has not been heard from since.
        waits_for_wake: status == CommandStatus::Queued
            && (facts.presence(now) != crate::model::Presence::Online
                || row
                    .try_get::<Option<i64>, _>("wake_after")?
                    .is_some_and(|w| facts.last_seen_at.is_none_or(|seen| seen <= w))),
    })
}

/// The observations operators made on `endpoint` with observe commands and
/// did not cancel since, as the paths text of each (a composite's paths
/// comma-separated), oldest first: made again after each registration.
pub async fn operator_observations<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT o.operation_type, o.path FROM endpoint_operation o \
         JOIN endpoint e ON e.id = o.endpoint_id \
         WHERE e.name = $1 AND o.status = 'confirmed' \
         AND o.operation_type IN ('observe', 'cancel_observe') ORDER BY o.id",
    )
    .bind(endpoint)
    .fetch_all(executor)
    .await?;
    Ok(still_observed(
        rows.iter().map(|(k, p)| (k.as_str(), p.as_str())),
    ))
}

/// The confirmed write-attributes commands of an endpoint, oldest first:
/// path and canonical query (`pmin=10&pmax`), for
/// `command_args::effective_attributes`.
pub async fn written_attributes<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT path, COALESCE(text_value, '') FROM endpoint_operation \
         WHERE endpoint_id = $1 AND status = 'confirmed' \
         AND operation_type = 'write_attributes' ORDER BY id",
    )
    .bind(endpoint_id)
    .fetch_all(executor)
    .await
}

/// Folds confirmed observe and cancel-observe commands, oldest first, into
/// the paths still observed (pure).
pub fn still_observed<'a>(commands: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for (kind, path) in commands {
        paths.retain(|p| p != path);
        if kind == "observe" {
            paths.push(path.to_string());
        }
    }
    paths
}

/// Keeps what the device answered beyond its status (a Discover's link
/// format, at most 64 KiB of it).
pub async fn set_answer<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    answer: &str,
) -> Result<(), sqlx::Error> {
    let mut end = answer.len().min(64 * 1024);
    while !answer.is_char_boundary(end) {
        end -= 1;
    }
    sqlx::query("UPDATE endpoint_operation SET answer = $2 WHERE id = $1")
        .bind(id)
        .bind(&answer[..end])
        .execute(executor)
        .await?;
    Ok(())
}

/// One command as listed.
pub async fn view<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    now: i64,
) -> Result<Option<CommandView>, sqlx::Error> {
    let sql = format!("SELECT {VIEW_COLUMNS} {VIEW_FROM} WHERE o.id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await?
        .map(|row| view_from_row(&row, now))
        .transpose()
}

/// A page of commands, newest first: `limit` rows with ids below
/// `query.before`, of one endpoint (`endpoint_id`) and status if given.
pub async fn page<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    query: &CommandQuery,
    endpoint_id: Option<i64>,
    limit: i64,
    now: i64,
) -> Result<Vec<CommandView>, sqlx::Error> {
    let mut conditions = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if endpoint_id.is_some() {
        conditions.push(format!("o.endpoint_id = {}", next()));
    }
    if query.status.is_some() {
        conditions.push(format!("o.status = {}", next()));
    }
    if query.before.is_some() {
        conditions.push(format!("o.id < {}", next()));
    }
    let limit_param = next();
    let sql = format!(
        "SELECT {VIEW_COLUMNS} {VIEW_FROM} {} ORDER BY o.id DESC LIMIT {limit_param}",
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        }
    );
    let mut q = sqlx::query(&sql);
    if let Some(id) = endpoint_id {
        q = q.bind(id);
    }
    if let Some(status) = query.status {
        q = q.bind(status.as_str());
    }
    if let Some(before) = query.before {
        q = q.bind(before);
    }
    q.bind(limit)
        .fetch_all(executor)
        .await?
        .iter()
        .map(|row| view_from_row(row, now))
        .collect()
}

/// Cancels a queued command. Returns its endpoint id, or None when it is
/// not queued (any more).
pub async fn cancel<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE endpoint_operation SET status = 'cancelled', finished_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'queued' RETURNING endpoint_id",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(executor)
    .await
}

/// Queues a failed command again with fresh attempts. Returns its endpoint
/// id, or None when it has not failed.
pub async fn requeue_failed<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE endpoint_operation SET status = 'queued', attempts = 0, last_error = NULL, \
         device_status = NULL, not_before = NULL, wake_after = NULL, finished_at = NULL, \
         claimed_at = NULL, expires_at = NULL, updated_at = $2 \
         WHERE id = $1 AND status = 'failed' RETURNING endpoint_id",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(executor)
    .await
}

/// Cancels the queued commands of a firmware update (its URI write and
/// Execute). Returns how many.
pub async fn cancel_for_update<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    update_id: i64,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE endpoint_operation SET status = 'cancelled', finished_at = $2, updated_at = $2 \
         WHERE status = 'queued' AND id IN (SELECT send_uri_operation_id FROM firmware_update \
         WHERE id = $1 UNION SELECT execute_operation_id FROM firmware_update WHERE id = $1)",
    )
    .bind(update_id)
    .bind(now)
    .execute(executor)
    .await?
    .rows_affected())
}

// ---------------------------------------------------------------------------
// The dispatcher's side.

/// A claimed command: everything needed to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: i64,
    pub endpoint_id: i64,
    pub endpoint: String,
    pub kind: CommandKind,
    pub path: String,
    /// The resource type's data type (writes need it).
    pub data_type: Option<DataType>,
    pub value: Columns,
    /// Attempts before this one.
    pub attempts: i64,
}

/// Endpoints whose oldest queued command may go out now: the device
/// listens (presence online, the SQL form of the Rust rule), the command is
/// not backing off, was not refused as asleep since the device was last
/// heard, and nothing of the endpoint is being sent.
pub async fn ready_endpoints<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    now: i64,
    limit: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let presence = super::endpoint::presence_sql("$1");
    let sql = format!(
        "SELECT o.endpoint_id FROM endpoint_operation o JOIN endpoint e ON e.id = o.endpoint_id \
         WHERE o.status = 'queued' \
         AND o.id = (SELECT MIN(h.id) FROM endpoint_operation h \
                     WHERE h.endpoint_id = o.endpoint_id AND h.status = 'queued') \
         AND (o.not_before IS NULL OR o.not_before <= $1) \
         AND (o.wake_after IS NULL OR e.last_seen_at > o.wake_after) \
         AND (o.expires_at IS NULL OR o.expires_at > $1) \
         AND NOT EXISTS (SELECT 1 FROM endpoint_operation s \
                         WHERE s.endpoint_id = o.endpoint_id AND s.status = 'sending') \
         AND {presence} = 'online' \
         ORDER BY o.id LIMIT $2"
    );
    sqlx::query_scalar(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// Endpoints with queued commands (the dispatcher acts on their uplinks).
pub async fn endpoints_with_queued<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT endpoint_id FROM endpoint_operation WHERE status = 'queued'",
    )
    .fetch_all(executor)
    .await
}

/// Claims the oldest queued command of an endpoint for sending, if it may
/// go out now and none of the endpoint's commands is being sent. Atomic
/// across dispatchers: on PostgreSQL the endpoint's row is locked first
/// (`FOR UPDATE`), so two servers sharing the database serialise here and
/// the second sees the first one's `sending`; the command row itself is
/// taken with `FOR UPDATE SKIP LOCKED`. On SQLite the one statement runs
/// under the database's single write lock.
pub async fn claim_next(
    conn: &mut AnyConnection,
    backend: Backend,
    endpoint_id: i64,
    now: i64,
) -> Result<Option<Claimed>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let skip_locked = match backend {
        Backend::Postgres => {
            sqlx::query("SELECT id FROM endpoint WHERE id = $1 FOR UPDATE")
                .bind(endpoint_id)
                .fetch_optional(&mut *tx)
                .await?;
            "FOR UPDATE SKIP LOCKED"
        }
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE endpoint_operation SET status = 'sending', claimed_at = $2, updated_at = $2 \
         WHERE id = (SELECT o.id FROM endpoint_operation o WHERE o.endpoint_id = $1 \
                     AND o.status = 'queued' ORDER BY o.id LIMIT 1 {skip_locked}) \
         AND (not_before IS NULL OR not_before <= $2) \
         AND (expires_at IS NULL OR expires_at > $2) \
         AND (wake_after IS NULL OR wake_after < \
              (SELECT COALESCE(last_seen_at, 0) FROM endpoint WHERE id = $1)) \
         AND NOT EXISTS (SELECT 1 FROM endpoint_operation s \
                         WHERE s.endpoint_id = $1 AND s.status = 'sending') \
         RETURNING id, path, operation_type, resource_type_id, int_value, float_value, \
         text_value, bytes_value, attempts"
    );
    let row = sqlx::query(&sql)
        .bind(endpoint_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        tx.commit().await?;
        return Ok(None);
    };
    let type_id: Option<i64> = row.try_get("resource_type_id")?;
    let data_type = match type_id {
        Some(type_id) => super::resource_type::find_by_id(&mut *tx, type_id)
            .await?
            .map(|t| t.data_type),
        None => None,
    };
    let endpoint: String = sqlx::query_scalar("SELECT name FROM endpoint WHERE id = $1")
        .bind(endpoint_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let kind: String = row.try_get("operation_type")?;
    Ok(Some(Claimed {
        id: row.try_get("id")?,
        endpoint_id,
        endpoint,
        kind: CommandKind::parse(&kind).unwrap_or(CommandKind::Read),
        path: row.try_get("path")?,
        data_type,
        value: Columns {
            int_value: row.try_get("int_value")?,
            float_value: row.try_get("float_value")?,
            text_value: row.try_get("text_value")?,
            bytes_value: row.try_get("bytes_value")?,
        },
        attempts: row.try_get("attempts")?,
    }))
}

/// How a send ended, as the database records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle<'a> {
    Confirmed {
        device_status: &'a str,
    },
    /// Final: the device refused, the request was invalid, or the attempts
    /// are used up.
    Failed {
        device_status: Option<&'a str>,
        error: &'a str,
        attempts: i64,
    },
    /// The device sleeps or is not registered: wait until it is heard from
    /// again; no attempt spent.
    AwaitWake {
        error: &'a str,
    },
    /// A transient failure: an attempt spent, retried from `not_before`.
    Retry {
        error: &'a str,
        attempts: i64,
        not_before: i64,
    },
}

/// Records how the send of a claimed command ended. Only a command this
/// dispatcher still holds (`sending`) changes. Returns whether it did.
pub async fn settle<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    outcome: &Settle<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let q = match outcome {
        Settle::Confirmed { device_status } => sqlx::query(
            "UPDATE endpoint_operation SET status = 'confirmed', device_status = $2, \
             attempts = attempts + 1, last_attempt_at = $3, last_error = NULL, \
             finished_at = $3, claimed_at = NULL, updated_at = $3 \
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(*device_status)
        .bind(now),
        Settle::Failed {
            device_status,
            error,
            attempts,
        } => sqlx::query(
            "UPDATE endpoint_operation SET status = 'failed', device_status = $2, last_error = $3, \
             attempts = $4, last_attempt_at = $5, finished_at = $5, claimed_at = NULL, \
             updated_at = $5 WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(*device_status)
        .bind(*error)
        .bind(*attempts)
        .bind(now),
        Settle::AwaitWake { error } => sqlx::query(
            "UPDATE endpoint_operation SET status = 'queued', last_error = $2, wake_after = $3, \
             last_attempt_at = $3, claimed_at = NULL, updated_at = $3 \
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(*error)
        .bind(now),
        Settle::Retry {
            error,
            attempts,
            not_before,
        } => sqlx::query(
            "UPDATE endpoint_operation SET status = 'queued', last_error = $2, attempts = $3, \
             not_before = $4, last_attempt_at = $5, claimed_at = NULL, updated_at = $5 \
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(*error)
        .bind(*attempts)
        .bind(*not_before)
        .bind(now),
    };
    Ok(q.execute(executor).await?.rows_affected() == 1)
}

/// Commands left in `sending` longer than the lease: the server that
/// claimed them died (or lost its database) mid-send. Returns (id, attempts
/// before that send) of each, for the dispatcher to settle as a transient
/// failure. They are not claimed here: `settle` only changes `sending` rows.
pub async fn stale_sending<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    claimed_before: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, attempts FROM endpoint_operation \
         WHERE status = 'sending' AND (claimed_at IS NULL OR claimed_at < $1) ORDER BY id",
    )
    .bind(claimed_before)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("attempts")?)))
        .collect()
}

/// Whether a queued command's expiry has passed: a read, which on SQLite
/// never waits for the write lock, so that the dispatcher takes the lock
/// only when `expire` has something to do.
pub async fn any_expired<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let first: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM endpoint_operation \
         WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(executor)
    .await?;
    Ok(first.is_some())
}

/// Fails queued commands whose expiry passed. Returns (id, endpoint id).
pub async fn expire<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    now: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE endpoint_operation SET status = 'failed', \
         last_error = 'expired before it could be sent', finished_at = $1, updated_at = $1 \
         WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= $1 \
         RETURNING id, endpoint_id",
    )
    .bind(now)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("endpoint_id")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cancelled_observations_are_not_made_again() {
        let folded = super::still_observed([
            ("observe", "/3303/0/5700"),
            ("observe", "/3304/0/5700,/3303/0/5701"),
            ("observe", "/3/0/9"),
            ("cancel_observe", "/3303/0/5700"),
            ("observe", "/3/0/9"),
        ]);
        assert_eq!(folded, vec!["/3304/0/5700,/3303/0/5701", "/3/0/9"]);
    }
}
