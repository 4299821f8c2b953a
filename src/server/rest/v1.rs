//! Our own data API under `/api/v1`. Every handler is documented with
//! `#[utoipa::path]` and registered from that documentation (see
//! `openapi::routes`), so the OpenAPI document lists exactly what is served.
use super::authorize_api;
use super::csv;
use super::openapi::{ErrorBody, Health};
use super::params::{self, documented, Format, Params};
use crate::error::{AppError, FieldError};
use crate::model::{EndpointInfo, EndpointSummary, EventPage, ResourcePath, SeriesData};
use crate::server::db::{self, event::EventFilter, resource::SeriesKey};
use crate::server::live;
use crate::server::state::AppState;
use crate::server::store;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use std::sync::LazyLock;
use utoipa::IntoParams;

type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Points a series answer holds unless `max_points` says otherwise.
pub const DEFAULT_MAX_POINTS: i64 = 1000;
/// The largest `max_points` accepted.
pub const MAX_MAX_POINTS: i64 = 10_000;
/// Events per page unless `limit` says otherwise, and the most accepted.
pub const DEFAULT_EVENT_LIMIT: i64 = 100;
pub const MAX_EVENT_LIMIT: i64 = 1000;
/// Event types are at most this long (the schema's check constraint).
const MAX_EVENT_TYPE_LEN: usize = 100;

/// Liveness and database reachability.
///
/// No authentication: for load balancers and monitoring.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "system",
    responses(
        (status = 200, description = "The server runs and the database answers", body = Health),
        (status = 500, description = "The database does not answer", body = ErrorBody),
    )
)]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, AppError> {
    sqlx::query("SELECT 1").execute(&state.db.pool).await?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// List endpoints.
///
/// Every endpoint with its presence (online, sleeping, offline), last-seen
/// time and number of resources, most recently seen first.
#[utoipa::path(
    get,
    path = "/api/v1/endpoints",
    tag = "endpoints",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Every endpoint, most recently seen first", body = Vec<EndpointSummary>),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token: it may only post telemetry", body = ErrorBody),
    )
)]
pub async fn endpoints(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<EndpointSummary>>, AppError> {
    authorize_api(&state, &headers).await?;
    Ok(Json(db::endpoint::list(&state.db.pool, 10_000).await?))
}

/// One endpoint with the latest value of every resource.
///
/// Presence, last seen, registration facts (last registration and update,
/// lifetime, binding, queue mode) and, in path order, the latest stored
/// value of every resource and resource instance, typed.
#[utoipa::path(
    get,
    path = "/api/v1/endpoints/{name}",
    tag = "endpoints",
    security(("bearer" = []), ("session" = [])),
    params(("name" = String, Path, description = "Endpoint name, e.g. `qemu_x86` or `urn:imei:...` (percent-encoded)")),
    responses(
        (status = 200, description = "The endpoint and its latest values", body = EndpointInfo),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
        (status = 404, description = "No endpoint with this name", body = ErrorBody),
        (status = 422, description = "A query parameter was given (this route takes none)", body = ErrorBody),
    )
)]
pub async fn endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
) -> Result<Json<EndpointInfo>, AppError> {
    authorize_api(&state, &headers).await?;
    let name = params::path_strings(path)?;
    Params::new(query, &[])?.finish()?;
    let pool = &state.db.pool;
    let mut info = db::endpoint::info_by_name(pool, &name)
        .await?
        .ok_or_else(|| endpoint_not_found(&name))?;
    info.resources = db::resource::latest_values_for_endpoint(pool, info.id).await?;
    Ok(Json(info))
}

fn endpoint_not_found(name: &str) -> AppError {
    AppError::NotFound(format!("endpoint {name:?}"))
}

/// Query parameters of the series route.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read through `documented`, never constructed
pub struct SeriesParams {
    /// Resource instance id, for an instance of a multi-instance resource
    /// (e.g. 3/0/7 instance 1). Without it the single-instance series.
    #[param(minimum = 0, maximum = 65535)]
    resource_instance: Option<i64>,
    /// Start of the range, inclusive: epoch milliseconds or RFC 3339
    /// (`2026-11-24T18:00:00Z`). Default: the series' first value.
    #[param(value_type = Option<String>, example = "2026-11-24T00:00:00Z")]
    from: Option<String>,
    /// End of the range, inclusive: epoch milliseconds or RFC 3339.
    /// Default: now.
    #[param(value_type = Option<String>, example = "1795629600000")]
    to: Option<String>,
    /// Most points (or buckets) in the answer; more stored values than this
    /// are downsampled. Default 1000, at most 10000. Ignored for CSV.
    #[param(minimum = 1, maximum = 10000)]
    max_points: Option<i64>,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(value_type = Option<String>, pattern = "^(json|csv)$")]
    format: Option<String>,
}

static SERIES_PARAMS: LazyLock<Vec<String>> = LazyLock::new(documented::<SeriesParams>);

/// A time series of one resource, downsampled on the server.
///
/// The values of one resource (or resource instance) of one endpoint in
/// `[from, to]`. When the range holds more than `max_points` values, a
/// numeric series is returned as at most `max_points` buckets of equal
/// width, aligned from the epoch, with min, max, avg and count each (empty
/// buckets are left out; widths of a minute or more are whole minutes, of
/// an hour or more whole hours); a
/// non-numeric one as its newest `max_points` values. `format=csv` streams
/// every value in the range instead.
#[utoipa::path(
    get,
    path = "/api/v1/endpoints/{name}/series/{object}/{instance}/{resource}",
    tag = "series",
    security(("bearer" = []), ("session" = [])),
    params(
        ("name" = String, Path, description = "Endpoint name"),
        ("object" = i64, Path, minimum = 0, maximum = 65535, description = "LwM2M object id, e.g. 3303"),
        ("instance" = i64, Path, minimum = 0, maximum = 65535, description = "Object instance id"),
        ("resource" = i64, Path, minimum = 0, maximum = 65535, description = "Resource id, e.g. 5700"),
        SeriesParams,
    ),
    responses(
        (status = 200, description = "The series. JSON: raw `points` when the range holds at most \
            `max_points` values; otherwise, for numeric types, `buckets` of equal width (min, max, avg, \
            count; `downsampled` is true) and, for other types, the newest `max_points` values \
            (`truncated` is true). CSV (`format=csv` or `Accept: text/csv`): every value in the range, \
            ordered by the time the device measured each value, streamed, columns `received_at` \
            (RFC 3339), `received_at_ms`, `value`, `measured_at` (RFC 3339), `measured_at_ms` (the \
            receive time when the device gave no time).",
            headers(("Content-Disposition" = String, description = "CSV only: `attachment; filename=...`")),
            content(
                (SeriesData = "application/json"),
                (String = "text/csv", example = "received_at,received_at_ms,value,measured_at,measured_at_ms\r\n2026-11-24T18:00:00.000Z,1795543200000,24.9,2026-11-24T17:59:58.000Z,1795543198000\r\n"),
            )),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
        (status = 404, description = "Unknown endpoint or resource type", body = ErrorBody),
        (status = 422, description = "A parameter is invalid; `details` names it", body = ErrorBody),
    )
)]
pub async fn series(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
    query: RawQuery,
) -> Result<Response, AppError> {
    authorize_api(&state, &headers).await?;
    let (name, object, instance, resource) = params::path_strings(path)?;
    let mut ids = Vec::new();
    let object_id = params::lwm2m_id("object", &object, &mut ids);
    let instance_id = params::lwm2m_id("instance", &instance, &mut ids);
    let resource_id = params::lwm2m_id("resource", &resource, &mut ids);
    let mut q = Params::new(query, &SERIES_PARAMS)?;
    for p in ids {
        q.problem(&p.path, p.reason);
    }
    let resource_instance = q.int("resource_instance", 0, 65535);
    let from = q.time("from");
    let to = q.time("to");
    let max_points = q
        .int("max_points", 1, MAX_MAX_POINTS)
        .unwrap_or(DEFAULT_MAX_POINTS);
    let format = params::format(&mut q, &headers);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            q.problem("from", format!("must not be after to ({f} > {t})"));
        }
    }
    q.finish()?;

    let pool = &state.db.pool;
    let endpoint_id = db::endpoint::id_by_name(pool, &name)
        .await?
        .ok_or_else(|| endpoint_not_found(&name))?;
    let rtype = db::resource_type::find(pool, object_id, resource_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("resource type {object_id}/{resource_id}")))?;
    let key = SeriesKey {
        endpoint_id,
        resource_type_id: rtype.id,
        instance_id,
        resource_instance_id: resource_instance,
    };
    let path = ResourcePath {
        object_id,
        instance_id,
        resource_id,
        resource_instance_id: resource_instance,
    };
    let to = to.unwrap_or_else(store::now_ms);
    let from = match from {
        Some(f) => f,
        // The whole series by default; an empty series reads an empty range.
        None => db::resource::series_first_at(pool, &key)
            .await?
            .unwrap_or(to)
            .min(to),
    };
    if from > to {
        return Err(AppError::invalid_field(
            "from",
            format!("must not be after to ({from} > {to}; to defaults to now)"),
        ));
    }

    if format == Format::Csv {
        let file = csv::file_name(&[
            &name,
            &path.to_string().trim_start_matches('/').replace('/', "-"),
        ]);
        let pool = pool.clone();
        let data_type = rtype.data_type;
        return Ok(csv::stream(
            &file,
            // The device's time last: readers that take the first three
            // columns by position keep working.
            &[
                "received_at",
                "received_at_ms",
                "value",
                "measured_at",
                "measured_at_ms",
            ],
            move |mut sink| async move {
                let mut rows = db::resource::series_stream(&pool, key, data_type, from, to);
                while let Some((measured, received, v)) = rows.try_next().await? {
                    sink.row([
                        csv::rfc3339(received),
                        received.to_string(),
                        v.to_string(),
                        csv::rfc3339(measured),
                        measured.to_string(),
                    ])
                    .await?;
                }
                Ok(sink)
            },
        ));
    }

    let mut data = SeriesData {
        endpoint: name,
        path: path.to_string(),
        object_id,
        instance_id,
        resource_id,
        resource_instance_id: resource_instance,
        name: rtype.name,
        unit: rtype.unit,
        data_type: rtype.data_type,
        from,
        to,
        max_points,
        total: 0,
        downsampled: false,
        bucket_ms: None,
        truncated: false,
        points: Vec::new(),
        buckets: Vec::new(),
    };
    crate::server::series::read(pool, &key, rtype.data_type, &mut data).await?;
    Ok(Json(data).into_response())
}

pub use crate::server::series::bucket_width;

/// Query parameters of the events route.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read through `documented`, never constructed
pub struct EventParams {
    /// Only events of this endpoint (404 if there is none by that name).
    endpoint: Option<String>,
    /// Only events of these types: repeat the parameter or separate with
    /// commas, e.g. `registered,deregistered`.
    #[param(rename = "type", value_type = Option<String>, example = "registered,deregistered")]
    event_type: Option<String>,
    /// Only events at or after this time: epoch milliseconds or RFC 3339.
    #[param(value_type = Option<String>)]
    from: Option<String>,
    /// Only events at or before this time: epoch milliseconds or RFC 3339.
    #[param(value_type = Option<String>)]
    to: Option<String>,
    /// Events per page, default 100, at most 1000. Ignored for CSV, which
    /// holds every matching event.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Keyset cursor: only events with an id below this. Pass the previous
    /// page's `next_before` to read the next (older) page.
    #[param(minimum = 1)]
    before: Option<i64>,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(value_type = Option<String>, pattern = "^(json|csv)$")]
    format: Option<String>,
}

static EVENT_PARAMS: LazyLock<Vec<String>> = LazyLock::new(documented::<EventParams>);

/// Events, newest first, filtered and paged.
///
/// Registration events and reports of the endpoints, each with the values
/// it recorded. Paging is by keyset (`before` = the previous page's
/// `next_before`), so pages stay stable while new events arrive.
/// `format=csv` streams every matching event instead.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    security(("bearer" = []), ("session" = [])),
    params(EventParams),
    responses(
        (status = 200, description = "JSON: one page of events, newest first, each with the values it \
            recorded (two queries per page). CSV (`format=csv` or `Accept: text/csv`): every matching \
            event, newest first, streamed, one row per (event, value) and one row with empty value \
            columns for an event without values; columns `event_id`, `created_at` (RFC 3339), \
            `created_at_ms`, `endpoint`, `type`, `path`, `name`, `data_type`, `value`.",
            headers(("Content-Disposition" = String, description = "CSV only: `attachment; filename=...`")),
            content(
                (EventPage = "application/json"),
                (String = "text/csv"),
            )),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
        (status = 404, description = "Unknown endpoint", body = ErrorBody),
        (status = 422, description = "A parameter is invalid; `details` names it", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
) -> Result<Response, AppError> {
    authorize_api(&state, &headers).await?;
    let mut q = Params::new(query, &EVENT_PARAMS)?;
    let endpoint = q.one("endpoint");
    let mut types: Vec<String> = Vec::new();
    let given: Vec<String> = q.all("type").into_iter().map(String::from).collect();
    for value in &given {
        for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if t.len() > MAX_EVENT_TYPE_LEN {
                q.problem("type", format!("longer than {MAX_EVENT_TYPE_LEN} bytes"));
            } else if !types.iter().any(|x| x == t) {
                types.push(t.to_string());
            }
        }
    }
    let from = q.time("from");
    let to = q.time("to");
    let limit = q
        .int("limit", 1, MAX_EVENT_LIMIT)
        .unwrap_or(DEFAULT_EVENT_LIMIT);
    let before = q.int("before", 1, i64::MAX);
    let format = params::format(&mut q, &headers);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            q.problem("from", format!("must not be after to ({f} > {t})"));
        }
    }
    q.finish()?;

    let pool = &state.db.pool;
    let endpoint_id = match &endpoint {
        Some(name) => Some(
            db::endpoint::id_by_name(pool, name)
                .await?
                .ok_or_else(|| endpoint_not_found(name))?,
        ),
        None => None,
    };
    let filter = EventFilter {
        endpoint_id,
        types,
        from,
        to,
        before,
    };

    if format == Format::Csv {
        let file = csv::file_name(&["events", endpoint.as_deref().unwrap_or("all")]);
        let pool = pool.clone();
        let query = db::event::with_resources_sql(&filter);
        return Ok(csv::stream(
            &file,
            &[
                "event_id",
                "created_at",
                "created_at_ms",
                "endpoint",
                "type",
                "path",
                "name",
                "data_type",
                "value",
            ],
            move |mut sink| async move {
                let mut rows = query.query().fetch(&pool);
                while let Some(row) = rows.try_next().await? {
                    let e = db::event::event_row(&row)?;
                    let (path, name, data_type, value) = match &e.resource {
                        Some(r) => (
                            r.path.as_str(),
                            r.name.as_str(),
                            r.data_type.as_str(),
                            json_text(&r.value),
                        ),
                        None => ("", "", "", String::new()),
                    };
                    sink.row([
                        e.event_id.to_string().as_str(),
                        &csv::rfc3339(e.created_at),
                        &e.created_at.to_string(),
                        &e.endpoint,
                        &e.event_type,
                        path,
                        name,
                        data_type,
                        &value,
                    ])
                    .await?;
                }
                Ok(sink)
            },
        ));
    }

    Ok(Json(db::event::page(pool, &filter, limit).await?).into_response())
}

/// A typed JSON value as CSV text: strings without JSON quotes.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Live values over a websocket.
///
/// Every value stored from the moment of connecting, one JSON `LiveValue`
/// per text message, optionally of one endpoint only. Authorised like the
/// rest of the data API (an API token or a session; device tokens are
/// refused).
#[utoipa::path(
    get,
    path = "/api/v1/live",
    tag = "live",
    security(("bearer" = []), ("session" = [])),
    params(("endpoint" = Option<String>, Query, description = "Only values of this endpoint; all endpoints when absent")),
    responses(
        (status = 101, description = "Switching to a websocket that carries one JSON `LiveValue` per \
            text message, for every value stored from then on"),
        (status = 400, description = "Not a websocket upgrade request", body = ErrorBody),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
    )
)]
pub async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<live::LiveQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    authorize_api(&state, &headers).await?;
    let query = query.map_err(|e| {
        AppError::bad_request(
            "malformed query string",
            vec![FieldError::new("query", e.body_text())],
        )
    })?;
    let upgrade = upgrade.map_err(|e| {
        AppError::bad_request(
            "not a websocket upgrade request",
            vec![FieldError::new("Upgrade", e.body_text())],
        )
    })?;
    Ok(live::ws_handler(State(state), query, headers, upgrade).await)
}
