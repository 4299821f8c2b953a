//! SQL for `users`.
use crate::model::Role;
use crate::server::store::get_bool;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub active: bool,
}

pub(super) fn from_row(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(&role).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "role".into(),
            source: format!("unknown role {role:?}").into(),
        })?,
        active: get_bool(row, "active")?,
    })
}

pub async fn count<'e, E: Executor<'e, Database = Any>>(executor: E) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(executor)
        .await
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    username: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(true)
    .bind(now)
    .fetch_one(executor)
    .await
}

pub async fn find_by_username<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    username: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query("SELECT id, username, password_hash, role, active FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Every user, by name, for the users page.
pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<crate::model::UserInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, username, password_hash, role, active, created_at FROM users ORDER BY username",
    )
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let user = from_row(row)?;
            Ok(crate::model::UserInfo {
                id: user.id,
                username: user.username,
                role: user.role,
                active: user.active,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

pub async fn find_by_id<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query("SELECT id, username, password_hash, role, active FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Returns whether a user with that id existed.
pub async fn set_password<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    password_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Returns whether a user with that id existed.
pub async fn set_role<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    role: Role,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET role = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(role.as_str())
        .bind(now)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Returns whether a user with that id existed.
pub async fn set_active<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    active: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET active = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(active)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}
