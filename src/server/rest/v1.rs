//! Our own data API under `/api/v1`.
use super::authorize_api;
use crate::error::AppError;
use crate::model::EndpointSummary;
use crate::server::db;
use crate::server::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;

/// `GET /api/v1/health`: liveness and database reachability, no auth.
pub async fn health(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    sqlx::query("SELECT 1").execute(&state.db.pool).await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// `GET /api/v1/endpoints`: every endpoint with its last-seen time.
pub async fn endpoints(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<EndpointSummary>>, AppError> {
    authorize_api(&state, &headers).await?;
    Ok(Json(db::endpoint::list(&state.db.pool, 10_000).await?))
}
