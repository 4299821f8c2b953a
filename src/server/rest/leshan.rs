//! `POST /leshan_api/resource/{single,composite}`: telemetry forwarded by the
//! LwM2M server.
use super::{authorize_ingest, read_body};
use crate::error::AppError;
use crate::server::ingest::{self, IngestReceipt, Uplink, UplinkKind};
use crate::server::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

type Receipt = Result<(StatusCode, Json<IngestReceipt>), AppError>;

#[utoipa::path(
    post,
    path = "/leshan_api/resource/single",
    tag = "device",
    summary = "Store telemetry: one node of one object",
    description = "What the LwM2M server posts for an observation or read of one object, instance or \
        resource. Decoded and stored in one transaction: when the request is refused nothing of it is \
        written. Unknown (object, resource) pairs are stored and registered as discovered resource \
        types. Pseudo-object 10240 sets the endpoint's registration state and records `registered`, \
        `registration_update` and `deregistered` events.",
    security(("bearer" = [])),
    request_body(content = super::openapi::SingleUplink, content_type = "application/json",
        description = "One node of one object. At most `max_body_bytes` (default 1 MiB)."),
    responses(
        (status = 201, description = "Stored, in one transaction", body = super::openapi::IngestReceipt),
        (status = 400, description = "Malformed JSON, or not a JSON object", body = super::openapi::ErrorBody),
        (status = 401, description = "No valid token (unless `ingest_auth = \"open\"`)", body = super::openapi::ErrorBody),
        (status = 403, description = "A viewer's session, or a session request from a page of another origin", body = super::openapi::ErrorBody),
        (status = 413, description = "Body larger than `max_body_bytes`", body = super::openapi::ErrorBody),
        (status = 415, description = "A session request whose Content-Type is not application/json", body = super::openapi::ErrorBody),
        (status = 422, description = "Invalid content; `details` names every offending field by JSON path. Nothing was stored.", body = super::openapi::ErrorBody),
    )
)]
pub async fn single(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Receipt {
    accept(&state, &headers, body, UplinkKind::Single).await
}

#[utoipa::path(
    post,
    path = "/leshan_api/resource/composite",
    tag = "device",
    summary = "Store telemetry: several nodes keyed by LwM2M path",
    description = "What the LwM2M server posts for a composite read or observation. Decoded and \
        stored in one transaction; one event per reported object (`device` for object 3, \
        `firmware_update` for 5, `temperature` for 3303, `humidity` for 3304, `object_<id>` \
        otherwise), linking the values stored for it.",
    security(("bearer" = [])),
    request_body(content = super::openapi::CompositeUplink, content_type = "application/json",
        description = "Nodes keyed by LwM2M path. At most `max_body_bytes` (default 1 MiB)."),
    responses(
        (status = 201, description = "Stored, in one transaction", body = super::openapi::IngestReceipt),
        (status = 400, description = "Malformed JSON, or not a JSON object", body = super::openapi::ErrorBody),
        (status = 401, description = "No valid token (unless `ingest_auth = \"open\"`)", body = super::openapi::ErrorBody),
        (status = 403, description = "A viewer's session, or a session request from a page of another origin", body = super::openapi::ErrorBody),
        (status = 413, description = "Body larger than `max_body_bytes`", body = super::openapi::ErrorBody),
        (status = 415, description = "A session request whose Content-Type is not application/json", body = super::openapi::ErrorBody),
        (status = 422, description = "Invalid content; `details` names every offending field by JSON path. Nothing was stored.", body = super::openapi::ErrorBody),
    )
)]
pub async fn composite(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Receipt {
    accept(&state, &headers, body, UplinkKind::Composite).await
}

/// Authorise, read within the size limit, decode, then store through the
/// group-commit writer: answered after the commit that holds the values.
async fn accept(state: &AppState, headers: &HeaderMap, body: Body, kind: UplinkKind) -> Receipt {
    let caller = authorize_ingest(state, headers).await?;
    super::require_json_with_session(&caller, headers)?;
    let bytes = read_body(state, headers, body).await?;
    let uplink: Uplink = match kind {
        UplinkKind::Single => ingest::parse_single(&bytes)?,
        UplinkKind::Composite => ingest::parse_composite(&bytes)?,
    };
    let receipt = state.writer.submit(uplink).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// `GET /leshan_api/data/{resource_name}/`: the original server's data API,
/// every value of the named resource type, oldest first; 404 for an unknown name.
#[utoipa::path(
    get,
    path = "/leshan_api/data/{resource_name}/",
    tag = "compatibility",
    summary = "Every value of a resource type",
    description = "The original server's data API: every stored value of the named resource type, \
        all endpoints, oldest first. A known type without values is an empty list.",
    security(("bearer" = []), ("session" = [])),
    params(("resource_name" = String, Path, description = "Resource type name, e.g. `temperature`")),
    responses(
        (status = 200, description = "Every stored value of the resource type, oldest first, all endpoints", body = Vec<super::openapi::LeshanDataRow>),
        (status = 401, description = "No valid API token or session", body = super::openapi::ErrorBody),
        (status = 403, description = "A device token", body = super::openapi::ErrorBody),
        (status = 404, description = "No resource type with this name", body = super::openapi::ErrorBody),
    )
)]
pub async fn data(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, AppError> {
    super::authorize_api(&state, &headers).await?;
    let name = name.trim_end_matches('/');
    let (data_type, values) = crate::server::db::resource::values_by_type_name(&state.db, name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("resource type {name:?}")))?;
    // Serialized straight from borrowed rows: no JSON map per value.
    #[derive(serde::Serialize)]
    struct Row<'a> {
        timestamp_created: Option<String>,
        value: crate::model::ValueJson<'a>,
        resource_type: &'a str,
        data_type: crate::model::DataType,
    }
    let rows: Vec<Row<'_>> = values
        .iter()
        .map(|(t, v)| Row {
            timestamp_created: chrono::DateTime::from_timestamp_millis(*t)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            value: v.json_form(),
            resource_type: name,
            data_type,
        })
        .collect();
    let body = serde_json::to_vec(&rows).map_err(|e| {
        tracing::error!(error = %e, "serializing the data API answer");
        AppError::Internal
    })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
