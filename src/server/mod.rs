//! Everything that only runs on the server.
pub mod after_commit;
pub mod auth;
pub mod cli;
pub mod command_args;
pub mod commands;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod domain;
pub mod firmware_store;
pub mod http_server;
pub mod ingest;
pub mod live;
pub mod login_throttle;
pub mod lwm2m;
pub mod origin_check;
pub mod rest;
pub mod retention;
pub mod rollup;
pub mod router;
pub mod security_headers;
pub mod series;
pub mod simulate;
pub mod state;
pub mod store;

/// Helpers for server functions: the shared state and the signed-in user.
pub mod context {
    use super::state::AppState;
    use crate::error::AppError;
    use crate::model::{CurrentUser, Role};
    use axum::http::HeaderMap;
    use leptos::prelude::use_context;

    pub fn app_state() -> Result<AppState, AppError> {
        use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the server function context");
            AppError::Internal
        })
    }

    /// Whether the request is a plain HTML form post (no JavaScript): then
    /// leptos_axum answers with a redirect and the status must stay as is.
    pub fn is_plain_form_post() -> bool {
        use_context::<axum::http::request::Parts>().is_some_and(|parts| {
            parts
                .headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
        })
    }

    /// Runs a server function body and gives a failed call the HTTP status
    /// of its error (server functions answer 500 for every error otherwise).
    /// A plain form post keeps leptos_axum's redirect back to the form,
    /// except when it is refused (401, 403): a forged post gets its status,
    /// and so does a page whose data the user may not see.
    pub async fn respond<T>(
        body: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let result = body.await;
        if let Err(e) = &result {
            let refused = matches!(e, AppError::Unauthorized | AppError::Forbidden);
            if refused || !is_plain_form_post() {
                if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
                    let status = axum::http::StatusCode::from_u16(e.status_code())
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
                    options.set_status(status);
                    if let AppError::TooManyRequests { retry_after_secs } = e {
                        options.insert_header(
                            axum::http::header::RETRY_AFTER,
                            axum::http::HeaderValue::from(*retry_after_secs),
                        );
                    }
                }
            }
            if e.status_code() < 500 {
                tracing::warn!(error = %e, "server function refused the request");
            }
        }
        result
    }

    /// The client's address, when the server was started with it (the
    /// connection's peer; a proxy in front makes it the proxy's).
    pub fn client_ip() -> Option<std::net::IpAddr> {
        use_context::<axum::http::request::Parts>().and_then(|parts| {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip())
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

    /// The state and the user of the request's session if their role is at
    /// least `least`: Unauthorized without a session, Forbidden (403) when
    /// the role is too low. Every server function calls this (or
    /// `require_user`, which is `require_role(Role::Viewer)`).
    pub async fn require_role(least: Role) -> Result<(AppState, CurrentUser), AppError> {
        let (state, user) = require_user().await?;
        if !user.role.allows(least) {
            tracing::warn!(
                username = user.username,
                role = user.role.as_str(),
                needed = least.as_str(),
                "role too low"
            );
            return Err(AppError::Forbidden);
        }
        Ok((state, user))
    }

    /// The hash of the request's session token (to keep that session when
    /// others end).
    pub async fn session_token_hash() -> Result<Option<String>, AppError> {
        let headers: HeaderMap = leptos_axum::extract().await.map_err(|e| {
            tracing::error!(error = %e, "cannot read request headers");
            AppError::Internal
        })?;
        Ok(super::auth::session_token(&headers).map(|t| super::auth::hash_token(&t)))
    }
}
