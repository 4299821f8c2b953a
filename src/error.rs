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
    /// The body's Content-Type is not the one the route reads (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many failed sign-ins: the next attempt is accepted after
    /// `retry_after_secs` (429 with Retry-After).
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
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
            AppError::UnsupportedMediaType(_) => 415,
            AppError::TooManyRequests { .. } => 429,
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

    /// On the server, the errors of decoding a call's arguments are the
    /// caller's mistake: a 400 naming the argument when serde names it (the
    /// router's `sfn_status` layer gives the answer that status). Everything
    /// else is the transport's.
    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr;
        match value {
            ServerFnErrorErr::Args(reason) | ServerFnErrorErr::MissingArg(reason) => {
                AppError::bad_arguments(reason)
            }
            // On the browser's side this is an answer it cannot read.
            ServerFnErrorErr::Deserialization(reason) if cfg!(feature = "ssr") => {
                AppError::bad_arguments(reason)
            }
            other => AppError::Transport(other.to_string()),
        }
    }
}

impl AppError {
    /// A server function's arguments that cannot be decoded: 400, with the
    /// argument named when the decoder says which one is missing.
    fn bad_arguments(reason: String) -> Self {
        let field = missing_field_name(&reason)
            .unwrap_or("arguments")
            .to_string();
        AppError::bad_request(
            "invalid server function arguments",
            vec![FieldError::new(field, reason)],
        )
    }
}

/// The field serde names in "missing field `name`" (quoted with backticks),
/// if the message is of that kind.
pub fn missing_field_name(reason: &str) -> Option<&str> {
    let rest = &reason[reason.find("missing field `")? + "missing field `".len()..];
    rest.split('`').next().filter(|f| !f.is_empty())
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
            if let AppError::TooManyRequests { retry_after_secs } = &self {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(*retry_after_secs),
                );
            }
            // The router's rejection layer logs and counts client errors
            // with the request's path; it reads the reason from here.
            response
                .extensions_mut()
                .insert(RejectionReason(self.to_string()));
            response
        }
    }
}
