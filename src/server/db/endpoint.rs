//! SQL for `endpoint`.
use crate::model::{EndpointDetail, EndpointSummary, PresenceFacts};
use crate::server::store;
use crate::server::store::get_bool;
use crate::server::store::rows;
use crate::server::store::script::Script;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

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

/// How stale `last_seen_at` may be left for an endpoint that is not in
/// queue mode: one heard again within this long of its stored time keeps
/// its row as it is. A fleet reports in no order, so rewriting every
/// reporting endpoint's row put one more page in SQLite's log per value.
/// Such an endpoint's presence follows its registration, not this time;
/// the dashboard shows it as "seconds ago". A queue-mode endpoint's row is
/// always rewritten: whether it is awake (`QUEUE_AWAKE_WINDOW_MS`) is
/// reckoned from it.
pub const LAST_SEEN_RESOLUTION_MS: i64 = 5_000;

/// Creates endpoints on first contact, marks them seen and records binding
/// and lifetime when reported, in one upsert (`rows::push_rows`; one
/// row per endpoint: PostgreSQL refuses to update a row twice in one
/// statement). An endpoint's row is rewritten only when something in it
/// changes that matters: a binding or lifetime reported, queue mode,
/// `last_seen_at` `LAST_SEEN_RESOLUTION_MS` or more behind (or ahead of
/// this time), or a queued command waiting for the device to wake, which
/// goes out once `last_seen_at` passes its `wake_after`. On PostgreSQL
/// every row is locked all the same, so that an endpoint cannot be
/// deleted under the batch's values, and retention takes the rows in this
/// order (names, byte order: the caller sorts them). Then
/// `select_ids_many` reads every id.
pub fn upsert_seen_many<'q>(script: &mut Script<'q>, endpoints: &'q [SeenEndpoint<'q>]) {
    let tail = format!(
        "ON CONFLICT (name) DO UPDATE SET \
         last_seen_at = excluded.last_seen_at, \
         binding = COALESCE(excluded.binding, endpoint.binding), \
         queue_mode = CASE WHEN excluded.binding IS NULL THEN endpoint.queue_mode \
                           ELSE excluded.queue_mode END, \
         lifetime_s = COALESCE(excluded.lifetime_s, endpoint.lifetime_s) \
         WHERE excluded.binding IS NOT NULL OR excluded.lifetime_s IS NOT NULL \
         OR endpoint.queue_mode OR endpoint.last_seen_at IS NULL \
         OR excluded.last_seen_at < endpoint.last_seen_at \
         OR excluded.last_seen_at >= endpoint.last_seen_at + {LAST_SEEN_RESOLUTION_MS} \
         OR EXISTS (SELECT 1 FROM endpoint_operation o WHERE o.status = 'queued' \
                    AND o.endpoint_id = endpoint.id AND o.wake_after IS NOT NULL)"
    );
    rows::push_rows(
        script,
        "INSERT INTO endpoint (name, created_at, last_seen_at, binding, queue_mode, lifetime_s)",
        &tail,
        6,
        endpoints,
        |row, e| {
            row.text(Some(e.name))
                .int(e.seen_at)
                .int(e.seen_at)
                .text(e.binding)
                .boolean(e.binding.is_some_and(|b| b.contains('Q')))
                .int(e.lifetime_s);
        },
    );
}

/// The ids of the endpoints `upsert_seen_many` wrote, as rows of (name,
/// id), read with `seen_id`.
pub fn select_ids_many<'q>(script: &mut Script<'q>, endpoints: &'q [SeenEndpoint<'q>]) {
    rows::push_rows(
        script,
        "SELECT name, id FROM endpoint WHERE name IN (",
        ")",
        1,
        endpoints,
        |row, e| {
            row.text(Some(e.name));
        },
    );
}

/// (name, id) of a row that `select_ids_many` returned.
pub fn seen_id(row: &AnyRow) -> Result<(String, i64), sqlx::Error> {
    Ok((row.try_get("name")?, row.try_get("id")?))
}

/// Registration-related change carried by pseudo-object 10240.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationChange {
    Registered,
    Updated,
    Deregistered,
}

/// Records a registration change. Each placeholder appears once, in bind
/// order, because on SQLite the statement may be one of several in a script
/// (where numbered placeholders would count across all of them). Not kept
/// prepared: a batch holds any number of these, so a script holding them
/// has a text of its own (see `Script::push`).
pub fn apply_registration(
    script: &mut Script<'_>,
    endpoint_id: i64,
    change: RegistrationChange,
    now: i64,
) {
    let p = store::placeholder_list(script.backend(), 3);
    let p: Vec<&str> = p.split(", ").collect();
    match change {
        RegistrationChange::Registered => script
            .push(
                &format!(
                    "UPDATE endpoint SET registered = TRUE, last_registration_at = {}, \
                     last_update_at = {} WHERE id = {}",
                    p[0], p[1], p[2]
                ),
                false,
            )
            .bind(now)
            .bind(now)
            .bind(endpoint_id),
        RegistrationChange::Updated => script
            .push(
                &format!(
                    "UPDATE endpoint SET registered = TRUE, last_update_at = {} WHERE id = {}",
                    p[0], p[1]
                ),
                false,
            )
            .bind(now)
            .bind(endpoint_id),
        RegistrationChange::Deregistered => script
            .push(
                &format!("UPDATE endpoint SET registered = FALSE WHERE id = {}", p[0]),
                false,
            )
            .bind(endpoint_id),
    };
}

const SUMMARY_COLUMNS: &str = "e.id, e.name, e.registered, e.last_seen_at, \
     e.last_registration_at, e.last_update_at, e.lifetime_s, e.queue_mode, \
     (SELECT COUNT(*) FROM resource_series s WHERE s.endpoint_id = e.id) AS resource_count";

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
        presence: facts.presence(store::now_ms()),
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
        charts: Vec::new(),
        uncharted: Vec::new(),
        range: Default::default(),
        from: 0,
        to: 0,
        events: Vec::new(),
        commands: Vec::new(),
        firmware_updates: Vec::new(),
        command_targets: Vec::new(),
        native: None,
    }))
}

// ---------------------------------------------------------------------------
// Data API reads.
// In a module of their own with their own imports, so that they merge
// cleanly with changes to the writes above.
pub use reads::*;

mod reads {
    use crate::model::{EndpointInfo, PresenceFacts};
    use crate::server::store::{get_bool, now_ms};
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

// ---------------------------------------------------------------------------
// The dashboard's endpoint table.
pub use table::*;

mod table {
    use crate::model::{
        DataType, EndpointListPage, EndpointListQuery, EndpointRow, EndpointSort, Presence,
        PresenceCounts, DEFAULT_LIFETIME_S, QUEUE_AWAKE_WINDOW_MS,
    };
    use crate::server::db::resource::Columns;
    use sqlx::{Any, AnyConnection, Executor, Row};

    /// Presence in SQL: the rule of `PresenceFacts::presence`, which a test
    /// checks it against on both databases. `now` names the parameter that
    /// holds the current time. The lifetime is compared in seconds so that
    /// no device-reported lifetime can overflow a multiplication.
    pub fn presence_sql(now: &str) -> String {
        let renewed = "(CASE WHEN e.last_update_at IS NULL THEN e.last_registration_at \
             WHEN e.last_registration_at IS NULL OR e.last_update_at > e.last_registration_at \
             THEN e.last_update_at ELSE e.last_registration_at END)";
        format!(
            "(CASE WHEN NOT e.registered OR {renewed} IS NULL THEN 'offline' \
             WHEN ({now} - {renewed}) / 1000.0 > COALESCE(e.lifetime_s, {DEFAULT_LIFETIME_S}) \
             THEN 'offline' \
             WHEN e.queue_mode AND {now} - (CASE WHEN e.last_seen_at > {renewed} \
             THEN e.last_seen_at ELSE {renewed} END) > {QUEUE_AWAKE_WINDOW_MS} THEN 'sleeping' \
             ELSE 'online' END)"
        )
    }

    /// `LIKE` pattern for a case-insensitive substring search, with the
    /// wildcards in the search text escaped.
    fn like_pattern(search: &str) -> String {
        let mut p = String::from("%");
        for c in search.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        p
    }

    /// The condition on `e.name` for `search`, whose pattern is bound as $2.
    /// Without a search it only compares the bound "%%" with itself:
    /// `lower()` on every name of a large fleet cost PostgreSQL 13 ms per
    /// 10,000 endpoints, for a condition that matches all of them.
    fn name_filter(search: &str) -> &'static str {
        if search.is_empty() {
            "$2 = '%%'"
        } else {
            "lower(e.name) LIKE $2 ESCAPE '\\'"
        }
    }

    /// Endpoints by presence, among those whose name contains `search`.
    pub async fn presence_counts<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        search: &str,
        now: i64,
    ) -> Result<PresenceCounts, sqlx::Error> {
        let sql = format!(
            "SELECT {} AS presence, COUNT(*) AS n FROM endpoint e WHERE {} GROUP BY 1",
            presence_sql("$1"),
            name_filter(search)
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(like_pattern(search))
            .fetch_all(executor)
            .await?;
        let mut counts = PresenceCounts::default();
        for row in rows {
            let presence: String = row.try_get("presence")?;
            if let Some(p) = Presence::parse(&presence) {
                counts.add(p, row.try_get("n")?);
            }
        }
        Ok(counts)
    }

    /// One page of the endpoint table: filtered, sorted and counted in the
    /// database, with firmware version (3/0/3) and battery (3/0/9) read for
    /// the page's rows only.
    pub async fn list_page(
        conn: &mut AnyConnection,
        query: &EndpointListQuery,
        now: i64,
    ) -> Result<EndpointListPage, sqlx::Error> {
        let counts = presence_counts(&mut *conn, &query.search, now).await?;
        let total = match query.presence {
            Some(p) => counts.get(p),
            None => counts.total(),
        };
        let presence = presence_sql("$1");
        let name_filter = name_filter(&query.search);
        let dir = if query.descending { "DESC" } else { "ASC" };
        // Ties (and NULL last-seen times) fall back to the name, so pages
        // never overlap.
        let order = match query.sort {
            EndpointSort::Name => format!("p.name {dir}"),
            EndpointSort::LastSeen => format!(
                "CASE WHEN p.last_seen_at IS NULL THEN 1 ELSE 0 END, p.last_seen_at {dir}, p.name"
            ),
            // "Most present" first when descending.
            EndpointSort::Presence => format!(
                "CASE p.presence WHEN 'online' THEN 2 WHEN 'sleeping' THEN 1 ELSE 0 END {dir}, \
                 p.name"
            ),
        };
        let sql = format!(
            "SELECT p.*, (SELECT COUNT(*) FROM resource_series s WHERE s.endpoint_id = p.id) \
             AS resource_count FROM ( \
               SELECT * FROM (SELECT e.id, e.name, e.registered, e.last_seen_at, \
                 e.last_registration_at, e.last_update_at, e.lifetime_s, e.queue_mode, \
                 {presence} AS presence FROM endpoint e \
                 WHERE {name_filter}) p \
               WHERE ($3 = '' OR p.presence = $3) ORDER BY {order} LIMIT $4 OFFSET $5) p \
             ORDER BY {order}"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(like_pattern(&query.search))
            .bind(query.presence.map(|p| p.as_str()).unwrap_or(""))
            .bind(i64::from(query.per_page))
            .bind(i64::try_from(query.offset()).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await?;
        let mut out: Vec<EndpointRow> = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(EndpointRow {
                summary: super::summary_from_row(row)?,
                firmware_version: None,
                battery_level: None,
            });
        }
        if !out.is_empty() {
            let ids: Vec<i64> = out.iter().map(|r| r.summary.id).collect();
            let sql = format!(
                "SELECT l.endpoint_id, t.resource_id AS rid, t.data_type, r.int_value, \
                 r.float_value, r.text_value, r.bytes_value FROM resource_latest l \
                 JOIN resource_type t ON t.id = l.resource_type_id \
                 JOIN resource r ON r.id = l.resource_id \
                 WHERE t.object_id = 3 AND t.resource_id IN (3, 9) \
                 AND l.object_instance_id = 0 AND l.resource_instance_key = -1 \
                 AND l.endpoint_id IN ({})",
                (1..=ids.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in &ids {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&mut *conn).await? {
                let endpoint_id: i64 = row.try_get("endpoint_id")?;
                let rid: i64 = row.try_get("rid")?;
                let data_type: String = row.try_get("data_type")?;
                let data_type = DataType::parse(&data_type).unwrap_or(DataType::String);
                let value = Columns::from_row(&row)?.to_value(data_type);
                let Some(target) = out.iter_mut().find(|r| r.summary.id == endpoint_id) else {
                    continue;
                };
                match rid {
                    3 => target.firmware_version = Some(value.to_string()),
                    _ => target.battery_level = value.as_f64().map(|v| v.round() as i64),
                }
            }
        }
        Ok(EndpointListPage {
            rows: out,
            total,
            counts,
        })
    }
}
