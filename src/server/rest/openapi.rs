//! The OpenAPI 3 document of `/leshan_api` and `/api/v1`, and the one table
//! of their routes. Each handler carries its documentation
//! (`#[utoipa::path]`); `routes()` registers every handler at the path and
//! method its documentation names and collects the same documentation into
//! the document, so a route cannot be served without being documented, nor
//! documented at another path than the one served.
use super::{commands, leshan, v1};
use crate::error::AppError;
use crate::model::{DataType, LiveValue, ResourcePath};
use crate::server::state::AppState;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// Every `/leshan_api` and `/api/v1` route, with its documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(leshan::single))
        .routes(routes!(leshan::composite))
        .routes(routes!(leshan::data))
        .routes(routes!(data_without_slash))
        .routes(routes!(v1::health))
        .routes(routes!(super::metrics::metrics))
        .routes(routes!(v1::endpoints))
        .routes(routes!(v1::endpoint))
        .routes(routes!(v1::series))
        .routes(routes!(v1::events))
        .routes(routes!(v1::live))
        .routes(routes!(commands::list, commands::create))
        .routes(routes!(commands::one))
        .routes(routes!(commands::cancel))
        .routes(routes!(commands::retry))
        .routes(routes!(commands::updates, commands::start))
        .routes(routes!(commands::cancel_update))
        .routes(routes!(commands::retry_update))
        .routes(routes!(openapi_json))
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| routes().into_openapi());
    &DOC
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "flownexus API",
        description = "LwM2M telemetry: the device API that the LwM2M server (Eclipse Leshan) posts to \
            under `/leshan_api`, the original server's data API, and the data API under `/api/v1`. \
            Times are epoch milliseconds unless a field says otherwise. Every error answer is JSON \
            `{\"error\", \"details\": [{\"path\", \"reason\"}]}`, where `path` names the offending \
            field or parameter.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&Security),
    components(schemas(LiveValue, ResourcePath, ErrorBody)),
    tags(
        (name = "device", description = "Telemetry posted by the LwM2M server on behalf of devices (the Leshan contract)"),
        (name = "compatibility", description = "The original server's data API"),
        (name = "endpoints", description = "Devices, their presence and latest values"),
        (name = "series", description = "Time series of one resource, downsampled on the server; CSV export"),
        (name = "events", description = "Registration and report events; CSV export"),
        (name = "live", description = "Values as they are stored, over a websocket"),
        (name = "commands", description = "Writes, executes and reads queued for devices and sent \
            through the LwM2M server's REST API; a sleeping device gets them when it wakes"),
        (name = "firmware updates", description = "Over-the-air updates: started here, moved along \
            by the device's reports of object 5"),
        (name = "system", description = "Health and this document"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `flownexus token create --name <n> [--scope device|api]`. \
                         Device tokens (`fxd_...`) may only post telemetry; API tokens (`fxa_...`) \
                         may also read the data API.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "flownexus_session",
                "The dashboard's session cookie, so the dashboard's own pages can read the API.",
            ))),
        );
    }
}

/// This OpenAPI document.
///
/// Generated from the handlers and types that serve the API. No
/// authentication.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "system",
    responses((status = 200, description = "This OpenAPI document", content(("application/json"))))
)]
pub async fn openapi_json() -> Result<Response, AppError> {
    static JSON: LazyLock<Result<String, String>> =
        LazyLock::new(|| document().to_pretty_json().map_err(|e| e.to_string()));
    match &*JSON {
        Ok(json) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json.clone(),
        )
            .into_response()),
        Err(e) => {
            tracing::error!(error = %e, "OpenAPI document does not serialise");
            Err(AppError::Internal)
        }
    }
}

/// Every value of a resource type (without the trailing slash).
///
/// Same as `/leshan_api/data/{resource_name}/`: the original server's URLs
/// end in `/`; clients that drop it get the same answer.
#[utoipa::path(
    get,
    path = "/leshan_api/data/{resource_name}",
    tag = "compatibility",
    security(("bearer" = []), ("session" = [])),
    params(("resource_name" = String, Path, description = "Resource type name, e.g. `temperature`")),
    responses(
        (status = 200, description = "Same as `/leshan_api/data/{resource_name}/`", body = Vec<LeshanDataRow>),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
        (status = 404, description = "No resource type with this name", body = ErrorBody),
    )
)]
pub async fn data_without_slash(
    state: axum::extract::State<AppState>,
    path: axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    leshan::data(state, path, headers).await
}

/// Any other path under `/api/` or `/leshan_api/`: a JSON 404 rather than
/// the dashboard's HTML page.
pub async fn no_such_route(uri: Uri) -> AppError {
    AppError::NotFound(format!("API route {}", uri.path()))
}

/// A known API path with a method it does not serve: a JSON 405.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({
            "error": "method not allowed",
            "details": [],
        })),
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Schemas of answers and bodies whose Rust types live where this module
// cannot derive on them (the ingest decoder works on raw JSON, errors are
// serialised by hand). tests/data_api.rs checks real answers against them.

/// `GET /api/v1/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// The body of every error answer (4xx and 5xx).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "error": "invalid field max_points: must be between 1 and 10000",
    "details": [{"path": "max_points", "reason": "must be between 1 and 10000"}]
}))]
pub struct ErrorBody {
    /// What went wrong, for people. `internal error` for anything on the
    /// server's side (the detail is logged, never sent).
    pub error: String,
    /// One entry per offending field or parameter (empty when none applies).
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The field or parameter: a JSON path into the body such as
    /// `val.value`, or a query or path parameter name such as `max_points`.
    pub path: String,
    pub reason: String,
}

/// Node kinds of the Leshan JSON.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum UplinkNodeKind {
    Obj,
    Instance,
    SingleResource,
    MultiResource,
    ResourceInstance,
}

/// One node of the Leshan JSON: an object (`obj`, with `instances`), an
/// object instance (`instance`, with `resources`), a resource
/// (`singleResource` with `value`, `multiResource` with `values`) or a
/// resource instance (`resourceInstance` with `value`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct UplinkNode {
    /// Optional for the nodes of an object or instance key in a composite body.
    kind: Option<UplinkNodeKind>,
    /// The object, instance, resource or resource instance id (0..65535);
    /// optional where the key already gives it.
    #[schema(minimum = 0, maximum = 65535)]
    id: Option<i64>,
    /// Resource nodes: the LwM2M data type of the value(s).
    #[serde(rename = "type")]
    data_type: Option<DataType>,
    /// `singleResource` and `resourceInstance`: INTEGER, UNSIGNED_INTEGER,
    /// TIME and FLOAT as a JSON number or decimal string; BOOLEAN as
    /// true/false; OPAQUE as hex; OBJLNK as `"3:0"`; STRING and CORELINK as
    /// strings; NONE absent or null.
    value: Option<serde_json::Value>,
    /// `multiResource`: resource instance id (`"0"`..`"65535"`) to value.
    values: Option<BTreeMap<String, serde_json::Value>>,
    /// `instance`: its resource nodes.
    #[schema(no_recursion)]
    resources: Option<Vec<UplinkNode>>,
    /// `obj`: its instance nodes (each with an `id`).
    #[schema(no_recursion)]
    instances: Option<Vec<UplinkNode>>,
}

/// `POST /leshan_api/resource/single`: one node of one object, as the LwM2M
/// server forwards an observation or read. Values of a `singleResource` or
/// `multiResource` node belong to instance 0.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(dead_code)] // a schema only
#[schema(example = json!({
    "ep": "qemu_x86", "obj_id": 3303,
    "val": {"kind": "singleResource", "id": 5700, "type": "FLOAT", "value": "24.9"}
}))]
pub struct SingleUplink {
    /// Endpoint name: 1 to 255 bytes, no control characters.
    #[schema(min_length = 1, max_length = 255)]
    ep: String,
    /// LwM2M object id.
    #[schema(minimum = 0, maximum = 65535)]
    obj_id: i64,
    /// An `obj`, `instance`, `singleResource` or `multiResource` node.
    val: UplinkNode,
}

/// `POST /leshan_api/resource/composite`: several nodes keyed by LwM2M
/// path: `/3` an `obj`, `/3/0` an `instance`, `/3/0/1` a `singleResource`
/// or `multiResource`, `/3/0/7/1` a `resourceInstance`. One event per
/// object.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(dead_code)] // a schema only
#[schema(example = json!({
    "ep": "qemu_x86",
    "val": {
        "/3/0/16": {"kind": "singleResource", "id": 16, "type": "STRING", "value": "UQ"},
        "/3/0/7/1": {"kind": "resourceInstance", "id": 1, "type": "INTEGER", "value": "5000"}
    }
}))]
pub struct CompositeUplink {
    /// Endpoint name: 1 to 255 bytes, no control characters.
    #[schema(min_length = 1, max_length = 255)]
    ep: String,
    val: BTreeMap<String, UplinkNode>,
}

/// One stored value in the answer to an uplink.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct StoredValue {
    #[schema(example = "/3303/0/5700")]
    path: String,
    #[serde(rename = "type")]
    data_type: DataType,
    /// Typed: numbers and booleans as JSON, the rest as wire text.
    value: serde_json::Value,
}

/// The 201 answer to an uplink: what was stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct IngestReceipt {
    endpoint: String,
    /// Values stored.
    stored: i64,
    /// Resource types first seen in this request, registered as discovered.
    discovered_types: i64,
    /// Event types recorded, e.g. `registered`, `device`.
    events: Vec<String>,
    resources: Vec<StoredValue>,
}

/// One value in the original server's data API.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct LeshanDataRow {
    /// When it was stored, RFC 3339 UTC with milliseconds.
    #[schema(format = DateTime, example = "2026-11-24T18:00:00.000Z")]
    timestamp_created: Option<String>,
    /// Typed: numbers and booleans as JSON, the rest as wire text.
    value: serde_json::Value,
    /// The resource type's name, as in the URL.
    resource_type: String,
    data_type: DataType,
}
