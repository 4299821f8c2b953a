//! Plain axum routes with stable paths: `/leshan_api/...` for compatibility
//! with the LwM2M server's forwarder, `/api/v1/...` for ours.
//!
//! Who may call what (checked here, in every handler, not by the UI):
//!
//! | route                                  | device token | API token | session            |
//! |----------------------------------------|--------------|-----------|--------------------|
//! | `POST /leshan_api/resource/*` (ingest) | yes          | yes       | operator or admin  |
//! | every read (`/api/v1/*`, data API)     | no (403)     | yes       | any role           |
//! | `POST`/`DELETE /api/v1/firmware`       | no (403)     | yes       | admin              |
//! | `/api/v1/health`, `/api/openapi.json`  | public       | public    | public             |
//! | `/binaries/{file}` (firmware download) | public       | public    | public             |
//!
//! A deactivated user has no session (see `db::sessions::find_user`).
pub mod commands;
pub mod csv;
pub mod firmware;
pub mod leshan;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod v1;

use super::auth::{self, Caller};
use super::config::IngestAuth;
use super::state::AppState;
use crate::error::AppError;
use crate::model::Role;
use axum::body::{Body, Bytes};
use axum::http::HeaderMap;

/// Reads the whole body, refusing more than the configured limit with a 413
/// JSON error (axum's own limit answers in plain text).
pub async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, AppError> {
    let limit = state.settings.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(AppError::PayloadTooLarge(limit));
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge(limit))
}

/// Authorises a device ingest request under the configured policy: a token
/// of either scope, or the session of an operator or admin (ingest writes,
/// and a viewer only reads).
pub async fn authorize_ingest(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    match auth::api_caller(state, headers).await? {
        Some(Caller::User(user)) if !user.role.allows(Role::Operator) => Err(AppError::Forbidden),
        Some(caller) => Ok(caller),
        None if state.settings.ingest_auth == IngestAuth::Open => Ok(Caller::Anonymous),
        None => Err(AppError::Unauthorized),
    }
}

/// Authorises a data API request (a read): an API token or the session of a
/// user of any role; a device token may only post telemetry.
pub async fn authorize_api(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    match auth::api_caller(state, headers).await? {
        Some(Caller::Token {
            scope: super::db::api_token::Scope::Device,
            ..
        }) => Err(AppError::Forbidden),
        Some(caller) => Ok(caller),
        None => Err(AppError::Unauthorized),
    }
}

/// Authorises a request that acts on devices (commands, updates): an API
/// token, or the session of an operator or admin. Viewers and device tokens
/// get 403.
pub async fn authorize_operator(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    let caller = authorize_api(state, headers).await?;
    if let Caller::User(user) = &caller {
        if !user.role.allows(Role::Operator) {
            return Err(AppError::Forbidden);
        }
    }
    Ok(caller)
}

/// A JSON body sent with a dashboard session must say so in its
/// Content-Type (415 otherwise). A page of another origin can post
/// `text/plain` or a form without the browser asking first (no CORS
/// preflight), but not `application/json`; with this, such a post never
/// reaches a handler even where the Origin check would let it through.
/// Token callers are not browsers and keep the lenient reading.
pub fn require_json_with_session(caller: &Caller, headers: &HeaderMap) -> Result<(), AppError> {
    if !matches!(caller, Caller::User(_)) {
        return Ok(());
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "Content-Type must be application/json, not {:?}",
            crate::server::rest::metrics::truncate_for_log(content_type)
        )))
    }
}

/// Reads a JSON request body: malformed JSON is a 400, JSON of the wrong
/// shape a 422 naming the offending field by its path.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        use serde_json::error::Category;
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = inner.to_string();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => AppError::bad_request(
                "malformed JSON",
                vec![crate::error::FieldError::new("body", reason)],
            ),
            Category::Data => {
                // A missing field is reported at its parent; name the field.
                let path = match crate::error::missing_field_name(&reason) {
                    Some(field) => {
                        if path == "." || path.is_empty() {
                            field.to_string()
                        } else {
                            format!("{path}.{field}")
                        }
                    }
                    None if path == "." || path.is_empty() => "body".to_string(),
                    None => path,
                };
                AppError::invalid_field(path, reason)
            }
        }
    })
}
