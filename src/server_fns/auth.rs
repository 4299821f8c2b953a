use crate::error::AppError;
use crate::model::CurrentUser;
use leptos::prelude::*;

/// Signs in and redirects to the dashboard. Works as a plain HTML form post
/// too, so login needs no JavaScript.
#[server(prefix = "/sfn", endpoint = "login")]
pub async fn login(username: String, password: String) -> Result<(), AppError> {
    use crate::server::{auth, context::app_state};
    let state = app_state()?;
    if username.trim().is_empty() {
        return Err(AppError::invalid_field("username", "required"));
    }
    let (_user, token) = match auth::login(&state, &username, &password).await {
        Ok(ok) => ok,
        Err(AppError::Unauthorized) => {
            return Err(AppError::invalid_field("password", "wrong username or password"))
        }
        Err(e) => return Err(e),
    };
    let response = expect_context::<leptos_axum::ResponseOptions>();
    response.append_header(axum::http::header::SET_COOKIE, auth::session_cookie(&state, &token));
    leptos_axum::redirect("/");
    Ok(())
}

/// Ends the session and returns to the login page.
#[server(prefix = "/sfn", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::server::{auth, context::app_state, db};
    let state = app_state()?;
    let headers: axum::http::HeaderMap = leptos_axum::extract().await.map_err(|_| AppError::Internal)?;
    if let Some(token) = auth::session_token(&headers) {
        db::sessions::delete(&state.db.pool, &auth::hash_token(&token)).await?;
    }
    let response = expect_context::<leptos_axum::ResponseOptions>();
    response.append_header(axum::http::header::SET_COOKIE, auth::clear_session_cookie());
    leptos_axum::redirect("/login");
    Ok(())
}

/// The signed-in user, if any.
#[server(prefix = "/sfn", endpoint = "current_user")]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    use crate::server::context::require_user;
    match require_user().await {
        Ok((_, user)) => Ok(Some(user)),
        Err(AppError::Unauthorized) => Ok(None),
        Err(e) => Err(e),
    }
}
