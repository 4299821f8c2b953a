//! SQL for `api_token`: device and API bearer tokens, stored as hashes.
use sqlx::{Any, Executor, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// May post telemetry (`/leshan_api/resource/*`).
    Device,
    /// May use the whole REST API, including ingest.
    Api,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Device => "device",
            Scope::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "device" => Some(Scope::Device),
            "api" => Some(Scope::Api),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    pub token_prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    name: &str,
    scope: Scope,
    token_prefix: &str,
    token_hash: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO api_token (name, scope, token_prefix, token_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(scope.as_str())
    .bind(token_prefix)
    .bind(token_hash)
    .bind(now)
    .fetch_one(executor)
    .await
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<TokenRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, scope, token_prefix, created_at, last_used_at, revoked_at \
         FROM api_token ORDER BY id",
    )
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let scope: String = row.try_get("scope")?;
            Ok(TokenRow {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                scope: Scope::parse(&scope).unwrap_or(Scope::Device),
                token_prefix: row.try_get("token_prefix")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Looks up a live (unrevoked) token: (id, scope, last_used_at).
pub async fn find_active<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    token_hash: &str,
) -> Result<Option<(i64, Scope, Option<i64>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, scope, last_used_at FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let scope: String = row.try_get("scope")?;
    Ok(Some((
        row.try_get("id")?,
        Scope::parse(&scope).unwrap_or(Scope::Device),
        row.try_get("last_used_at")?,
    )))
}

pub async fn touch<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_token SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

/// Returns whether an unrevoked token with that id existed.
pub async fn revoke<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE api_token SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(executor)
            .await?;
    Ok(done.rows_affected() == 1)
}
