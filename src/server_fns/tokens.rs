//! Device and API tokens (admin only). A secret is shown once, when its
//! token is created, and never stored in clear.
use crate::error::AppError;
use crate::model::{CreatedToken, TokenList};
use leptos::prelude::*;

/// The cookie that carries a new secret from a plain form post (no
/// JavaScript) to the tokens page that shows it, once.
#[cfg(feature = "ssr")]
const NEW_TOKEN_COOKIE: &str = "flownexus_new_token";

#[server(prefix = "/sfn", endpoint = "tokens/list")]
pub async fn list_tokens() -> Result<TokenList, AppError> {
    use crate::model::{Role, TokenInfo};
    use crate::server::{context, db};
    context::respond(async {
        let (state, _me) = context::require_role(Role::Admin).await?;
        let tokens = db::api_token::list(&state.db.pool)
            .await?
            .into_iter()
            .map(|t| TokenInfo {
                id: t.id,
                name: t.name,
                scope: t.scope.as_str().to_string(),
                prefix: t.token_prefix,
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                revoked_at: t.revoked_at,
            })
            .collect();
        let headers: axum::http::HeaderMap = leptos_axum::extract()
            .await
            .map_err(|_| AppError::Internal)?;
        let new_secret = crate::server::auth::cookie_value(&headers, NEW_TOKEN_COOKIE);
        if new_secret.is_some() {
            set_secret_cookie(&state, "", 0);
        }
        Ok(TokenList { tokens, new_secret })
    })
    .await
}

/// Creates a token of scope `device` (may post telemetry) or `api` (the
/// whole REST API) and returns its secret, this once.
#[server(prefix = "/sfn", endpoint = "tokens/create")]
pub async fn create_token(name: String, scope: String) -> Result<CreatedToken, AppError> {
    use crate::model::Role;
    use crate::server::db::api_token::Scope;
    use crate::server::{auth, context};
    context::respond(async move {
        let (state, me) = context::require_role(Role::Admin).await?;
        let scope = Scope::parse(scope.trim())
            .ok_or_else(|| AppError::invalid_field("scope", "must be device or api"))?;
        let (id, secret) = auth::create_token(&state.db.pool, &name, scope).await?;
        tracing::info!(
            id,
            name,
            scope = scope.as_str(),
            by = me.username,
            "token created"
        );
        if context::is_plain_form_post() {
            // The browser is redirected back to the page: hand it the
            // secret in a short-lived cookie the page reads and clears.
            set_secret_cookie(&state, &secret, 120);
        }
        Ok(CreatedToken {
            id,
            name: name.trim().to_string(),
            secret,
        })
    })
    .await
}

/// Revokes a token with immediate effect.
#[server(prefix = "/sfn", endpoint = "tokens/revoke")]
pub async fn revoke_token(id: i64) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{auth, context};
    context::respond(async move {
        let (state, me) = context::require_role(Role::Admin).await?;
        if !auth::revoke_token(&state, id).await? {
            return Err(AppError::NotFound(format!("active token {id}")));
        }
        tracing::info!(id, by = me.username, "token revoked");
        Ok(())
    })
    .await
}

#[cfg(feature = "ssr")]
fn set_secret_cookie(state: &crate::server::state::AppState, value: &str, max_age: u32) {
    let secure = if state.settings.https() {
        "; Secure"
    } else {
        ""
    };
    let header = format!(
        "{NEW_TOKEN_COOKIE}={value}; Path=/tokens; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    if let (Some(options), Ok(value)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        axum::http::HeaderValue::from_str(&header),
    ) {
        options.append_header(axum::http::header::SET_COOKIE, value);
    }
}
