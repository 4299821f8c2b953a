//! The signed-in user's own account.
use crate::error::AppError;
use leptos::prelude::*;

/// The query parameter the account page reads after a plain form post.
pub const CHANGED_PARAM: &str = "changed";

/// Changes the caller's own password; needs the current one. Any role.
#[server(prefix = "/sfn", endpoint = "account/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{auth, context};
    context::respond(async move {
        let (state, me) = context::require_role(Role::Viewer).await?;
        let keep = context::session_token_hash()
            .await?
            .ok_or(AppError::Unauthorized)?;
        auth::change_own_password(
            &state.db.pool,
            me.id,
            &keep,
            &current_password,
            &new_password,
        )
        .await?;
        if context::is_plain_form_post() {
            leptos_axum::redirect(&format!("/account?{CHANGED_PARAM}=1"));
        }
        Ok(())
    })
    .await
}
