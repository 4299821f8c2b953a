//! SQL for `event` and `event_resource`.
use crate::server::store;
use crate::server::store::rows;
use crate::server::store::script::Script;
use sqlx::{Any, Executor};

/// One event to store, with its id already allocated (`store::allocate_ids`).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_type: String,
    pub created_at: i64,
}

/// Stores events (`rows::push_rows`).
pub fn insert_many<'q>(script: &mut Script<'q>, events: &'q [NewEvent]) {
    let head = format!(
        "INSERT INTO event (id, endpoint_id, event_type, created_at){}",
        store::overriding(script.backend())
    );
    rows::push_rows(script, &head, "", 4, events, |row, e| {
        row.int(e.id)
            .int(e.endpoint_id)
            .text(Some(&e.event_type))
            .int(e.created_at);
    });
}

/// Links stored values to events: (event id, resource id) pairs.
pub fn link_many<'q>(script: &mut Script<'q>, links: &'q [(i64, i64)]) {
    rows::push_rows(
        script,
        "INSERT INTO event_resource (event_id, resource_id)",
        "",
        2,
        links,
        |row, (event_id, resource_id)| {
            row.int(*event_id).int(*resource_id);
        },
    );
}

/// Records an event the application adds itself: an audit entry (who
/// queued, cancelled or retried a command, started an update) or a step of
/// a firmware update. Returns its id.
pub async fn insert_audit<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
    event_type: &str,
    actor: Option<&str>,
    detail: Option<&str>,
    firmware_update_id: Option<i64>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO event (endpoint_id, event_type, created_at, actor, detail, \
         firmware_update_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(endpoint_id)
    .bind(event_type)
    .bind(now)
    .bind(actor)
    .bind(detail)
    .bind(firmware_update_id)
    .fetch_one(executor)
    .await
}

/// Firmware-update steps of these endpoints since `since`, oldest first:
/// (endpoint id, update id if linked, type, detail, actor, time). Steps the
/// ingest tracker records (`firmware_*`) are not linked to their update;
/// the caller places them by time (one active update per endpoint).
pub async fn update_steps<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_ids: &[i64],
    since: i64,
) -> Result<
    Vec<(
        i64,
        Option<i64>,
        String,
        Option<String>,
        Option<String>,
        i64,
    )>,
    sqlx::Error,
> {
    if endpoint_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = (2..endpoint_ids.len() + 2)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT endpoint_id, firmware_update_id, event_type, detail, actor, created_at FROM event \
         WHERE endpoint_id IN ({list}) AND created_at >= $1 \
         AND (firmware_update_id IS NOT NULL OR event_type LIKE 'firmware%') \
         ORDER BY created_at, id"
    );
    let mut q = sqlx::query(&sql).bind(since);
    for id in endpoint_ids {
        q = q.bind(*id);
    }
    q.fetch_all(executor)
        .await?
        .iter()
        .map(|r| {
            use sqlx::Row;
            Ok((
                r.try_get("endpoint_id")?,
                r.try_get("firmware_update_id")?,
                r.try_get("event_type")?,
                r.try_get("detail")?,
                r.try_get("actor")?,
                r.try_get("created_at")?,
            ))
        })
        .collect()
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

// ---------------------------------------------------------------------------
// Data API reads: filtered, keyset-paged event lists with their values.
// In a module of their own with their own imports, so that they merge
// cleanly with changes to the writes above.
pub use reads::*;

mod reads {
    use crate::model::{EventPage, EventView, ResourceValue};
    use sqlx::any::{AnyArguments, AnyRow};
    use sqlx::query::Query;
    use sqlx::{Any, Executor, Row};
    use std::collections::BTreeMap;

    /// Which events to read. Every field narrows the selection.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct EventFilter {
        pub endpoint_id: Option<i64>,
        /// Any of these types; all types when empty.
        pub types: Vec<String>,
        /// created_at >= from (epoch ms).
        pub from: Option<i64>,
        /// created_at <= to (epoch ms).
        pub to: Option<i64>,
        /// Only events with a smaller id: the keyset cursor of the next page.
        pub before: Option<i64>,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Arg {
        Int(i64),
        Text(String),
    }

    /// A query with SQL built for a filter, owning its SQL and arguments;
    /// `query()` borrows them for as long as the rows are read, so a caller can
    /// stream the rows (see `with_resources_sql`).
    #[derive(Debug, Clone, PartialEq)]
    pub struct EventQuery {
        sql: String,
        args: Vec<Arg>,
    }

    impl EventQuery {
        pub fn sql(&self) -> &str {
            &self.sql
        }

        pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
            self.args
                .iter()
                .fold(sqlx::query(&self.sql), |q, arg| match arg {
                    Arg::Int(i) => q.bind(*i),
                    Arg::Text(s) => q.bind(s.as_str()),
                })
        }
    }

    impl EventFilter {
        /// ` WHERE ...` over `event ev` (empty when nothing is filtered), with
        /// `$1..` placeholders and the arguments to bind in order.
        fn where_clause(&self) -> (String, Vec<Arg>) {
            let mut conds = Vec::new();
            let mut args = Vec::new();
            let mut push = |cond: &str, arg: Arg| {
                args.push(arg);
                conds.push(cond.replace('?', &format!("${}", args.len())));
            };
            if let Some(id) = self.endpoint_id {
                push("ev.endpoint_id = ?", Arg::Int(id));
            }
            if let Some(from) = self.from {
                push("ev.created_at >= ?", Arg::Int(from));
            }
            if let Some(to) = self.to {
                push("ev.created_at <= ?", Arg::Int(to));
            }
            if let Some(before) = self.before {
                push("ev.id < ?", Arg::Int(before));
            }
            if !self.types.is_empty() {
                let first = args.len() + 1;
                let list = (first..first + self.types.len())
                    .map(|n| format!("${n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                conds.push(format!("ev.event_type IN ({list})"));
                args.extend(self.types.iter().cloned().map(Arg::Text));
            }
            if conds.is_empty() {
                (String::new(), args)
            } else {
                (format!(" WHERE {}", conds.join(" AND ")), args)
            }
        }
    }

    /// One page of events, newest (highest id) first, without their values.
    pub async fn list<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        filter: &EventFilter,
        limit: i64,
    ) -> Result<Vec<EventView>, sqlx::Error> {
        let (clause, mut args) = filter.where_clause();
        args.push(Arg::Int(limit));
        let q = EventQuery {
            sql: format!(
                "SELECT ev.id, e.name AS endpoint, ev.event_type, ev.created_at, ev.actor, \
                 ev.detail FROM event ev JOIN endpoint e ON e.id = ev.endpoint_id{clause} \
                 ORDER BY ev.id DESC LIMIT ${}",
                args.len()
            ),
            args,
        };
        q.query()
            .fetch_all(executor)
            .await?
            .iter()
            .map(|row| {
                Ok(EventView {
                    id: row.try_get("id")?,
                    endpoint: row.try_get("endpoint")?,
                    event_type: row.try_get("event_type")?,
                    created_at: row.try_get("created_at")?,
                    resources: Vec::new(),
                    actor: row.try_get("actor")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    /// One page of events (newest first) with their values: two queries.
    pub async fn page(
        pool: &crate::server::store::Pool,
        filter: &EventFilter,
        limit: i64,
    ) -> Result<EventPage, sqlx::Error> {
        let mut events = list(pool, filter, limit + 1).await?;
        let next_before = if events.len() as i64 > limit {
            events.truncate(limit as usize);
            events.last().map(|e| e.id)
        } else {
            None
        };
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let mut linked: BTreeMap<i64, Vec<_>> = BTreeMap::new();
        for (event_id, value) in resources_of(pool, &ids).await? {
            linked.entry(event_id).or_default().push(value);
        }
        for e in &mut events {
            e.resources = linked.remove(&e.id).unwrap_or_default();
        }
        Ok(EventPage {
            events,
            next_before,
        })
    }

    /// The values linked to these events, as (event id, value), in path order
    /// within an event: one query for a whole page.
    pub async fn resources_of<'e, E: Executor<'e, Database = Any>>(
        executor: E,
        event_ids: &[i64],
    ) -> Result<Vec<(i64, ResourceValue)>, sqlx::Error> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = (1..=event_ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let q = EventQuery {
            sql: format!(
                "SELECT er.event_id, t.object_id, r.object_instance_id, t.resource_id, \
                 r.resource_instance_id, t.name, t.unit, t.data_type, r.int_value, r.float_value, \
                 r.text_value, r.bytes_value, r.received_at, r.measured_at \
                 FROM event_resource er \
                 JOIN resource r ON r.id = er.resource_id \
                 JOIN resource_type t ON t.id = r.resource_type_id \
                 WHERE er.event_id IN ({list}) \
                 ORDER BY er.event_id, t.object_id, r.object_instance_id, t.resource_id, \
                 r.resource_instance_id"
            ),
            args: event_ids.iter().copied().map(Arg::Int).collect(),
        };
        q.query()
            .fetch_all(executor)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("event_id")?,
                    crate::server::db::resource::resource_value_from_row(row)?,
                ))
            })
            .collect()
    }

    /// Every event matching the filter joined with its values: one row per
    /// (event, value), and one row without a value for an event that has none.
    /// Newest event first. Read the rows with `EventQuery::query().fetch(..)`
    /// and decode them with `event_row`.
    pub fn with_resources_sql(filter: &EventFilter) -> EventQuery {
        let (clause, args) = filter.where_clause();
        EventQuery {
            sql: format!(
                "SELECT ev.id AS event_id, ev.created_at AS event_at, e.name AS endpoint, \
                 ev.event_type, t.object_id, r.object_instance_id, t.resource_id, \
                 r.resource_instance_id, t.name, t.unit, t.data_type, r.int_value, r.float_value, \
                 r.text_value, r.bytes_value, r.received_at, r.measured_at \
                 FROM event ev JOIN endpoint e ON e.id = ev.endpoint_id \
                 LEFT JOIN event_resource er ON er.event_id = ev.id \
                 LEFT JOIN resource r ON r.id = er.resource_id \
                 LEFT JOIN resource_type t ON t.id = r.resource_type_id{clause} \
                 ORDER BY ev.id DESC, t.object_id, r.object_instance_id, t.resource_id, \
                 r.resource_instance_id"
            ),
            args,
        }
    }

    /// One row of `with_resources_sql`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct EventRow {
        pub event_id: i64,
        pub created_at: i64,
        pub endpoint: String,
        pub event_type: String,
        pub resource: Option<ResourceValue>,
    }

    pub fn event_row(row: &AnyRow) -> Result<EventRow, sqlx::Error> {
        let linked = row.try_get::<Option<i64>, _>("object_id")?.is_some();
        Ok(EventRow {
            event_id: row.try_get("event_id")?,
            created_at: row.try_get("event_at")?,
            endpoint: row.try_get("endpoint")?,
            event_type: row.try_get("event_type")?,
            resource: if linked {
                Some(crate::server::db::resource::resource_value_from_row(row)?)
            } else {
                None
            },
        })
    }
}
