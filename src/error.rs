//! The one error type used at every boundary: REST handlers, server
//! functions and the UI's error boundaries.
use serde::{Deserialize, Serialize};

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where in the input the problem is, e.g. `val.value` or `username`.
    pub path: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The request is malformed (400).
    #[error("{message}")]
    BadRequest {
        message: String,
        details: Vec<FieldError>,
    },
    /// The request is well-formed but its content is not acceptable (422).
    #[error("{message}")]
    Unprocessable {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("authentication required")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Anything on our side. The detail was logged; the client only learns
    /// that something went wrong.
    #[error("internal error")]
    Internal,
    /// A failure of the server-function transport itself (network, codec).
    #[error("{0}")]
    Transport(String),
}

impl AppError {
    pub fn bad_request(message: impl Into<String>, details: Vec<FieldError>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details,
        }
    }

    pub fn invalid_field(path: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = FieldError::new(path, reason);
        Self::Unprocessable {
            message: format!("invalid field {}: {}", field.path, field.reason),
            details: vec![field],
        }
    }

    pub fn status_code(&self) -> u16 {
        match self {
            AppError::BadRequest { .. } => 400,
            AppError::Unprocessable { .. } => 422,
            AppError::Unauthorized => 401,
            AppError::Forbidden => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::PayloadTooLarge(_) => 413,
            AppError::Internal => 500,
            AppError::Transport(_) => 502,
        }
    }

    pub fn details(&self) -> &[FieldError] {
        match self {
            AppError::BadRequest { details, .. } | AppError::Unprocessable { details, .. } => {
                details
            }
            _ => &[],
        }
    }
}

impl leptos::server_fn::error::FromServerFnError for AppError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
pub use server_impls::RejectionReason;

#[cfg(feature = "ssr")]
mod server_impls {
    use super::AppError;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};

    /// Why a request was answered with an `AppError`, for the log line.
    #[derive(Debug, Clone)]
    pub struct RejectionReason(pub String);

    impl From<sqlx::Error> for AppError {
        /// Database errors are logged here, once, and never reach a client
        /// as SQL text.
        fn from(err: sqlx::Error) -> Self {
            tracing::error!(error = %err, "database error");
            AppError::Internal
        }
    }

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let status = StatusCode::from_u16(self.status_code())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({
                "error": self.to_string(),
                "details": self.details(),
            });
            let mut response = (status, axum::Json(body)).into_response();
            // The router's rejection layer logs and counts client errors
            // with the request's path; it reads the reason from here.
            response
                .extensions_mut()
                .insert(RejectionReason(self.to_string()));
            response
        }
    }
}
