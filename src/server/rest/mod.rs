//! Plain axum routes with stable paths: `/leshan_api/...` for compatibility
//! with the LwM2M server's forwarder, `/api/v1/...` for ours.
pub mod csv;
pub mod leshan;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod v1;

use super::auth::{self, Caller};
use super::config::IngestAuth;
use super::state::AppState;
use crate::error::AppError;
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

/// Authorises a device ingest request under the configured policy.
pub async fn authorize_ingest(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    match auth::api_caller(state, headers).await? {
        Some(caller) => Ok(caller),
        None if state.settings.ingest_auth == IngestAuth::Open => Ok(Caller::Anonymous),
        None => Err(AppError::Unauthorized),
    }
}

/// Authorises a data API request: an API token or a dashboard session.
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
