use crate::error::AppError;
use crate::model::CurrentUser;
use leptos::prelude::*;

/// The query parameter the login page reads after a failed plain form post.
pub const LOGIN_ERROR_PARAM: &str = "error";

/// Its value when sign-ins are held back after too many failures.
pub const LOGIN_THROTTLED: &str = "throttled";

/// Signs in and redirects to the dashboard. Works as a plain HTML form post
/// too, so login needs no JavaScript.
#[server(prefix = "/sfn", endpoint = "login")]
pub async fn login(username: String, password: String) -> Result<(), AppError> {
    use crate::server::{auth, context};
    context::respond(async {
        let state = context::app_state()?;
        let result = if username.trim().is_empty() {
            Err(AppError::invalid_field("username", "required"))
        } else {
            auth::login(&state, &username, &password, context::client_ip())
                .await
                .map_err(|e| match e {
                    AppError::Unauthorized => {
                        AppError::invalid_field("password", "wrong username or password")
                    }
                    other => other,
                })
        };
        match result {
            Ok((_user, token)) => {
                let response = expect_context::<leptos_axum::ResponseOptions>();
                response.append_header(
                    axum::http::header::SET_COOKIE,
                    auth::session_cookie(&state, &token),
                );
                leptos_axum::redirect("/");
                Ok(())
            }
            Err(e) => {
                if context::is_plain_form_post() {
                    // Without JavaScript the page cannot read the error: send
                    // the browser back to the form with a marker it renders.
                    let marker = match e {
                        AppError::TooManyRequests { .. } => LOGIN_THROTTLED,
                        _ => "invalid",
                    };
                    leptos_axum::redirect(&format!("/login?{LOGIN_ERROR_PARAM}={marker}"));
                }
                Err(e)
            }
        }
    })
    .await
}

/// Ends the session and returns to the login page.
#[server(prefix = "/sfn", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::server::{auth, context, db};
    context::respond(async {
        let state = context::app_state()?;
        let headers: axum::http::HeaderMap = leptos_axum::extract()
            .await
            .map_err(|_| AppError::Internal)?;
        if let Some(token) = auth::session_token(&headers) {
            db::sessions::delete(&state.db.pool, &auth::hash_token(&token)).await?;
        }
        let response = expect_context::<leptos_axum::ResponseOptions>();
        response.append_header(axum::http::header::SET_COOKIE, auth::clear_session_cookie());
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}

/// The signed-in user, if any.
#[server(prefix = "/sfn", endpoint = "whoami")]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    use crate::server::context;
    context::respond(async {
        match context::require_user().await {
            Ok((_, user)) => Ok(Some(user)),
            Err(AppError::Unauthorized) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
}
