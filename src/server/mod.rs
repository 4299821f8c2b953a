//! Everything that only runs on the server.
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod ingest;
pub mod live;
pub mod rest;
pub mod retention;
pub mod router;
pub mod state;

/// Helpers for server functions: the shared state and the signed-in user.
pub mod context {
    use super::state::AppState;
    use crate::error::AppError;
    use crate::model::CurrentUser;
    use axum::http::HeaderMap;
    use leptos::prelude::use_context;

    pub fn app_state() -> Result<AppState, AppError> {
        use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the server function context");
            AppError::Internal
        })
    }

    /// The state and the user of the request's session, or Unauthorized.
    pub async fn require_user() -> Result<(AppState, CurrentUser), AppError> {
        let state = app_state()?;
        let headers: HeaderMap = leptos_axum::extract().await.map_err(|e| {
            tracing::error!(error = %e, "cannot read request headers");
            AppError::Internal
        })?;
        let user = super::auth::session_user(&state, &headers)
            .await?
            .ok_or(AppError::Unauthorized)?;
        Ok((state, user))
    }
}
