//! SQL for `endpoint`.
use super::get_bool;
use crate::model::{EndpointDetail, EndpointSummary, PresenceFacts};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};

/// What one ingest batch learned about an endpoint.
#[derive(Debug, Clone)]
pub struct SeenEndpoint<'a> {
    pub name: &'a str,
    pub seen_at: i64,
    /// 3/0/16 as last reported in the batch, e.g. "UQ" (Q: queue mode).
    pub binding: Option<&'a str>,
    /// 1/x/1 as last reported in the batch.
    pub lifetime_s: Option<i64>,
}

/// Creates endpoints on first contact, marks them seen and records binding
/// and lifetime when reported, with multi-row upserts (one row per endpoint:
/// PostgreSQL refuses to update a row twice in one statement). Returns
/// (name, id) pairs.
pub async fn upsert_seen_many(
    conn: &mut AnyConnection,
    backend: super::Backend,
    endpoints: &[SeenEndpoint<'_>],
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let mut ids = Vec::with_capacity(endpoints.len());
    for range in super::chunks(endpoints.len()) {
        let sql = format!(
            "INSERT INTO endpoint (name, created_at, last_seen_at, binding, queue_mode, lifetime_s) \
             VALUES {} ON CONFLICT (name) DO UPDATE SET \
             last_seen_at = excluded.last_seen_at, \
             binding = COALESCE(excluded.binding, endpoint.binding), \
             queue_mode = CASE WHEN excluded.binding IS NULL THEN endpoint.queue_mode \
                               ELSE excluded.queue_mode END, \
             lifetime_s = COALESCE(excluded.lifetime_s, endpoint.lifetime_s) \
             RETURNING name, id",
            super::values_list(backend, 6, range.len())
        );
        let mut query = sqlx::query(&sql).persistent(super::keep_prepared(range.len()));
        for e in &endpoints[range] {
            query = query
                .bind(e.name)
                .bind(e.seen_at)
                .bind(e.seen_at)
                .bind(e.binding)
                .bind(e.binding.is_some_and(|b| b.contains('Q')))
                .bind(e.lifetime_s);
        }
        for row in query.fetch_all(&mut *conn).await? {
            ids.push((row.try_get("name")?, row.try_get("id")?));
        }
    }
    Ok(ids)
}

/// Registration-related change carried by pseudo-object 10240.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationChange {
    Registered,
    Updated,
    Deregistered,
}

pub async fn apply_registration<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
    change: RegistrationChange,
    now: i64,
) -> Result<(), sqlx::Error> {
    let query = match change {
        RegistrationChange::Registered => sqlx::query(
            "UPDATE endpoint SET registered = $2, last_registration_at = $3, last_update_at = $3 \
             WHERE id = $1",
        )
        .bind(endpoint_id)
        .bind(true)
        .bind(now),
        RegistrationChange::Updated => {
            sqlx::query("UPDATE endpoint SET registered = $2, last_update_at = $3 WHERE id = $1")
                .bind(endpoint_id)
                .bind(true)
                .bind(now)
        }
        RegistrationChange::Deregistered => {
            sqlx::query("UPDATE endpoint SET registered = $2 WHERE id = $1")
                .bind(endpoint_id)
                .bind(false)
        }
    };
    query.execute(executor).await?;
    Ok(())
}

const SUMMARY_COLUMNS: &str = "e.id, e.name, e.registered, e.last_seen_at, \
     e.last_registration_at, e.last_update_at, e.lifetime_s, e.queue_mode, \
     (SELECT COUNT(*) FROM resource_latest l WHERE l.endpoint_id = e.id) AS resource_count";

fn summary_from_row(row: &AnyRow) -> Result<EndpointSummary, sqlx::Error> {
    let facts = PresenceFacts {
        registered: get_bool(row, "registered")?,
        last_registration_at: row.try_get("last_registration_at")?,
        last_update_at: row.try_get("last_update_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        lifetime_s: row.try_get("lifetime_s")?,
        queue_mode: get_bool(row, "queue_mode")?,
    };
    Ok(EndpointSummary {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        registered: facts.registered,
        presence: facts.presence(super::now_ms()),
        last_seen_at: facts.last_seen_at,
        resource_count: row.try_get("resource_count")?,
    })
}

/// All endpoints, most recently seen first.
pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    limit: i64,
) -> Result<Vec<EndpointSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM endpoint e \
         ORDER BY e.last_seen_at DESC, e.name LIMIT $1"
    );
    sqlx::query(&sql)
        .bind(limit)
        .fetch_all(executor)
        .await?
        .iter()
        .map(summary_from_row)
        .collect()
}

/// One endpoint, without its values (see `resource::latest_for_endpoint`).
pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<EndpointDetail>, sqlx::Error> {
    let sql = format!("SELECT {SUMMARY_COLUMNS}, e.binding FROM endpoint e WHERE e.id = $1");
    let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(executor).await? else {
        return Ok(None);
    };
    Ok(Some(EndpointDetail {
        summary: summary_from_row(&row)?,
        lifetime_s: row.try_get("lifetime_s")?,
        binding: row.try_get("binding")?,
        queue_mode: get_bool(&row, "queue_mode")?,
        last_registration_at: row.try_get("last_registration_at")?,
        last_update_at: row.try_get("last_update_at")?,
        latest: Vec::new(),
        series: Vec::new(),
    }))
}

// ---------------------------------------------------------------------------
// Data API reads.
// In a module of their own with their own imports, so that they merge
// cleanly with changes to the writes above.
pub use reads::*;

mod reads {
    use crate::model::{EndpointInfo, PresenceFacts};
    use crate::server::db::{get_bool, now_ms};
    use sqlx::{Any, Executor, Row};

    /// The id of the endpoint with this name.
    pub async fn id_by_name<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        name: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM endpoint WHERE name = $1")
            .bind(name)
            .fetch_optional(executor)
            .await
    }

    /// One endpoint by name with its registration facts and presence, without
    /// its values (see `resource::latest_values_for_endpoint`).
    pub async fn info_by_name<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        name: &str,
    ) -> Result<Option<EndpointInfo>, sqlx::Error> {
        let Some(row) = sqlx::query(
            "SELECT id, name, registered, last_seen_at, last_registration_at, last_update_at, \
             lifetime_s, binding, queue_mode, created_at FROM endpoint WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(executor)
        .await?
        else {
            return Ok(None);
        };
        let facts = PresenceFacts {
            registered: get_bool(&row, "registered")?,
            last_registration_at: row.try_get("last_registration_at")?,
            last_update_at: row.try_get("last_update_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            lifetime_s: row.try_get("lifetime_s")?,
            queue_mode: get_bool(&row, "queue_mode")?,
        };
        Ok(Some(EndpointInfo {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            presence: facts.presence(now_ms()),
            registered: facts.registered,
            last_seen_at: facts.last_seen_at,
            last_registration_at: facts.last_registration_at,
            last_update_at: facts.last_update_at,
            lifetime_s: facts.lifetime_s,
            binding: row.try_get("binding")?,
            queue_mode: facts.queue_mode,
            created_at: row.try_get("created_at")?,
            resources: Vec::new(),
        }))
    }
}
