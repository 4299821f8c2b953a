//! User administration (admin only): create users, reset passwords, change
//! roles, deactivate and reactivate. An admin cannot deactivate or demote
//! themselves, so there is always an admin who can undo a mistake.
use crate::error::AppError;
use crate::model::UserList;
use leptos::prelude::*;

#[server(prefix = "/sfn", endpoint = "users/list")]
pub async fn list_users() -> Result<UserList, AppError> {
    use crate::model::Role;
    use crate::server::{context, db};
    context::respond(async {
        let (state, me) = context::require_role(Role::Admin).await?;
        Ok(UserList {
            users: db::users::list(&state.db.pool).await?,
            me: me.id,
        })
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "users/create")]
pub async fn create_user(username: String, password: String, role: String) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{auth, context};
    context::respond(async move {
        let (state, me) = context::require_role(Role::Admin).await?;
        let role = parse_role(&role)?;
        auth::create_user(&state.db.pool, &username, &password, role).await?;
        tracing::info!(
            username,
            by = me.username,
            "user created from the dashboard"
        );
        Ok(())
    })
    .await
}

/// Sets a new password and ends the user's sessions.
#[server(prefix = "/sfn", endpoint = "users/reset_password")]
pub async fn reset_user_password(id: i64, password: String) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{auth, context};
    context::respond(async move {
        let (state, _me) = context::require_role(Role::Admin).await?;
        auth::reset_password(&state.db.pool, id, &password).await
    })
    .await
}

#[server(prefix = "/sfn", endpoint = "users/set_role")]
pub async fn set_user_role(id: i64, role: String) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{context, db, store};
    context::respond(async move {
        let (state, me) = context::require_role(Role::Admin).await?;
        let role = parse_role(&role)?;
        if id == me.id && role != Role::Admin {
            return Err(AppError::invalid_field(
                "role",
                "you cannot demote yourself",
            ));
        }
        if !db::users::set_role(&state.db.pool, id, role, store::now_ms()).await? {
            return Err(AppError::NotFound(format!("user {id}")));
        }
        tracing::info!(id, role = role.as_str(), by = me.username, "role changed");
        Ok(())
    })
    .await
}

/// Deactivating signs the user out at once; they cannot sign in again
/// until reactivated.
#[server(prefix = "/sfn", endpoint = "users/set_active")]
pub async fn set_user_active(id: i64, active: bool) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{auth, context};
    context::respond(async move {
        let (state, me) = context::require_role(Role::Admin).await?;
        if id == me.id && !active {
            return Err(AppError::invalid_field(
                "active",
                "you cannot deactivate yourself",
            ));
        }
        auth::set_user_active(&state.db.pool, id, active).await
    })
    .await
}

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<crate::model::Role, AppError> {
    crate::model::Role::parse(role.trim())
        .ok_or_else(|| AppError::invalid_field("role", "must be admin, operator or viewer"))
}
