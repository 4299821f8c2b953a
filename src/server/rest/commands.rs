//! Commands and firmware updates under `/api/v1`: the same service as the
//! dashboard (`server::commands`). Reads need an API token or any session;
//! actions an API token or an operator's session.
use super::openapi::ErrorBody;
use super::params::{documented, Params};
use super::{authorize_api, authorize_operator, json_body, read_body, require_json_with_session};
use crate::error::AppError;
use crate::model::{
    CommandPage, CommandQuery, CommandStatus, CommandView, NewCommand, NewUpdates, UpdateQuery,
    UpdateStart, UpdateView,
};
use crate::server::commands::{self, Actor};
use crate::server::state::AppState;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use std::sync::LazyLock;
use utoipa::IntoParams;

type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CommandParams {
    /// Only this endpoint's commands (exact name).
    endpoint: Option<String>,
    /// Only commands in this status.
    #[param(value_type = Option<String>, pattern = "^(queued|sending|confirmed|failed|cancelled)$")]
    status: Option<String>,
    /// Keyset cursor: commands with a smaller id (the previous page's
    /// `next_before`).
    #[param(minimum = 1)]
    before: Option<i64>,
}

static COMMAND_PARAMS: LazyLock<Vec<String>> = LazyLock::new(documented::<CommandParams>);

fn id_of(path: Result<Path<i64>, PathRejection>) -> Result<i64, AppError> {
    match path {
        Ok(Path(id)) if id > 0 => Ok(id),
        _ => Err(AppError::invalid_field("id", "must be a positive integer")),
    }
}

/// List commands, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/commands",
    tag = "commands",
    security(("bearer" = []), ("session" = [])),
    params(CommandParams),
    responses(
        (status = 200, description = "One page of commands, newest first", body = CommandPage),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
        (status = 422, description = "A parameter is invalid; `details` names it", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
) -> Result<Json<CommandPage>, AppError> {
    authorize_api(&state, &headers).await?;
    let mut params = Params::new(query, &COMMAND_PARAMS)?;
    let endpoint = params.one("endpoint").unwrap_or_default();
    let status = match params.one("status") {
        Some(s) => match CommandStatus::parse(&s) {
            Some(status) => Some(status),
            None => {
                params.problem(
                    "status",
                    format!("{s:?}: use queued, sending, confirmed, failed or cancelled"),
                );
                None
            }
        },
        None => None,
    };
    let before = params.int("before", 1, i64::MAX);
    params.finish()?;
    let query = CommandQuery {
        endpoint,
        status,
        before,
    };
    Ok(Json(commands::list(&state, &query).await?))
}

/// Queue a command.
///
/// A write (`value` read as the resource type's data type), an execute
/// (`value`: optional arguments) or a read of an object, instance or
/// resource (the answer is stored like a report). It is sent at once when
/// the device listens, else when it next registers or reports.
#[utoipa::path(
    post,
    path = "/api/v1/commands",
    tag = "commands",
    security(("bearer" = []), ("session" = [])),
    request_body = NewCommand,
    responses(
        (status = 201, description = "Queued", body = CommandView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token, a viewer, or a session request from a page of \
            another origin", body = ErrorBody),
        (status = 415, description = "A session request whose Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Unknown endpoint, a path that is not writable or \
            executable, or a value that is not of the resource's type; `details` names the field",
            body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<CommandView>), AppError> {
    let caller = authorize_operator(&state, &headers).await?;
    require_json_with_session(&caller, &headers)?;
    let body = read_body(&state, &headers, body).await?;
    let new: NewCommand = json_body(&body)?;
    let actor = Actor::of_caller(&state, &caller).await?;
    let view = commands::create(&state, &actor, &new).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One command.
#[utoipa::path(
    get,
    path = "/api/v1/commands/{id}",
    tag = "commands",
    security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The command's id")),
    responses(
        (status = 200, description = "The command", body = CommandView),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
        (status = 404, description = "No such command", body = ErrorBody),
    )
)]
pub async fn one(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<CommandView>, AppError> {
    authorize_api(&state, &headers).await?;
    Ok(Json(commands::get(&state, id_of(id)?).await?))
}

/// Cancel a queued command.
#[utoipa::path(
    post,
    path = "/api/v1/commands/{id}/cancel",
    tag = "commands",
    security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The command's id")),
    responses(
        (status = 200, description = "Cancelled", body = CommandView),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token or a viewer", body = ErrorBody),
        (status = 404, description = "No such command", body = ErrorBody),
        (status = 409, description = "Not queued (any more)", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<CommandView>, AppError> {
    let caller = authorize_operator(&state, &headers).await?;
    let actor = Actor::of_caller(&state, &caller).await?;
    Ok(Json(commands::cancel(&state, &actor, id_of(id)?).await?))
}

/// Queue a failed command again.
#[utoipa::path(
    post,
    path = "/api/v1/commands/{id}/retry",
    tag = "commands",
    security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The command's id")),
    responses(
        (status = 200, description = "Queued again with fresh attempts", body = CommandView),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token or a viewer", body = ErrorBody),
        (status = 404, description = "No such command", body = ErrorBody),
        (status = 409, description = "Not failed", body = ErrorBody),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<CommandView>, AppError> {
    let caller = authorize_operator(&state, &headers).await?;
    let actor = Actor::of_caller(&state, &caller).await?;
    Ok(Json(commands::retry(&state, &actor, id_of(id)?).await?))
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UpdateParams {
    /// Only this endpoint's updates (exact name).
    endpoint: Option<String>,
    /// `true`: only active updates (pending, downloading, downloaded,
    /// updating).
    active: Option<bool>,
}

static UPDATE_PARAMS: LazyLock<Vec<String>> = LazyLock::new(documented::<UpdateParams>);

/// List firmware updates, newest first, each with its timeline.
#[utoipa::path(
    get,
    path = "/api/v1/updates",
    tag = "firmware updates",
    security(("bearer" = []), ("session" = [])),
    params(UpdateParams),
    responses(
        (status = 200, description = "The newest 100 updates with their steps", body = Vec<UpdateView>),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
        (status = 422, description = "A parameter is invalid; `details` names it", body = ErrorBody),
    )
)]
pub async fn updates(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
) -> Result<Json<Vec<UpdateView>>, AppError> {
    authorize_api(&state, &headers).await?;
    let mut params = Params::new(query, &UPDATE_PARAMS)?;
    let endpoint = params.one("endpoint").unwrap_or_default();
    let active = match params.one("active").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            params.problem("active", format!("{other:?}: use true or false"));
            false
        }
    };
    params.finish()?;
    let query = UpdateQuery { endpoint, active };
    Ok(Json(commands::list_updates(&state, &query).await?))
}

/// Start firmware updates.
///
/// For each endpoint: creates an update to the firmware and queues the write
/// of its absolute package URI (5/0/1): `http` (the default) points the
/// device at `/binaries/<file>`, `coap` at `coap://…/fw/<file>` on the
/// native LwM2M server (Block2). The device's reports then move it
/// along. An endpoint with an active update is reported and skipped.
#[utoipa::path(
    post,
    path = "/api/v1/updates",
    tag = "firmware updates",
    security(("bearer" = []), ("session" = [])),
    request_body = NewUpdates,
    responses(
        (status = 201, description = "What happened to each endpoint", body = Vec<UpdateStart>),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token, a viewer, or a session request from a page of \
            another origin", body = ErrorBody),
        (status = 415, description = "A session request whose Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "No endpoints, an unknown firmware, or `transport: \"coap\"` \
            without the native LwM2M server", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Vec<UpdateStart>>), AppError> {
    let caller = authorize_operator(&state, &headers).await?;
    require_json_with_session(&caller, &headers)?;
    let body = read_body(&state, &headers, body).await?;
    let new: NewUpdates = json_body(&body)?;
    let actor = Actor::of_caller(&state, &caller).await?;
    let started = commands::start_updates(&state, &actor, &new).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

/// Cancel an active firmware update (and its queued commands).
#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/cancel",
    tag = "firmware updates",
    security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The update's id")),
    responses(
        (status = 200, description = "Cancelled", body = UpdateView),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token or a viewer", body = ErrorBody),
        (status = 404, description = "No such update", body = ErrorBody),
        (status = 409, description = "Not active", body = ErrorBody),
    )
)]
pub async fn cancel_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<UpdateView>, AppError> {
    let caller = authorize_operator(&state, &headers).await?;
    let actor = Actor::of_caller(&state, &caller).await?;
    Ok(Json(
        commands::cancel_update(&state, &actor, id_of(id)?).await?,
    ))
}

/// Start a failed, timed-out or cancelled update again (as a new update).
#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/retry",
    tag = "firmware updates",
    security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The update's id")),
    responses(
        (status = 200, description = "The new update", body = UpdateView),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token or a viewer", body = ErrorBody),
        (status = 404, description = "No such update", body = ErrorBody),
        (status = 409, description = "Still active, or another update is", body = ErrorBody),
    )
)]
pub async fn retry_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<UpdateView>, AppError> {
    let caller = authorize_operator(&state, &headers).await?;
    let actor = Actor::of_caller(&state, &caller).await?;
    Ok(Json(
        commands::retry_update(&state, &actor, id_of(id)?).await?,
    ))
}
