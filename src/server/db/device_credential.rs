//! SQL for `device_credential`: how an endpoint may reach the native LwM2M
//! server. Keyed by endpoint name, since an operator provisions a device
//! before it first registers.
use sqlx::{Any, Executor, Row};

/// The security modes of the LwM2M Security object (0/x/2) that the server
/// knows. Only `NoSec` is served today; `Psk` is for DTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    NoSec,
    Psk,
}

impl SecurityMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityMode::NoSec => "nosec",
            SecurityMode::Psk => "psk",
        }
    }

    pub fn parse(s: &str) -> Option<SecurityMode> {
        match s {
            "nosec" => Some(SecurityMode::NoSec),
            "psk" => Some(SecurityMode::Psk),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub endpoint_name: String,
    pub security_mode: SecurityMode,
    pub psk_identity: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Provisions `endpoint_name` for plain CoAP, replacing what it had.
pub async fn set_nosec<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_name: &str,
    created_by: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO device_credential \
         (endpoint_name, security_mode, psk_identity, psk_key, created_by, created_at, updated_at) \
         VALUES ($1, 'nosec', NULL, NULL, $2, $3, $3) \
         ON CONFLICT (endpoint_name) DO UPDATE SET security_mode = 'nosec', \
         psk_identity = NULL, psk_key = NULL, updated_at = excluded.updated_at",
    )
    .bind(endpoint_name)
    .bind(created_by)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

fn credential(row: &sqlx::any::AnyRow) -> Result<Credential, sqlx::Error> {
    let mode: String = row.try_get("security_mode")?;
    Ok(Credential {
        endpoint_name: row.try_get("endpoint_name")?,
        security_mode: SecurityMode::parse(&mode).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "security_mode".into(),
            source: format!("unknown security mode {mode:?}").into(),
        })?,
        psk_identity: row.try_get("psk_identity")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "endpoint_name, security_mode, psk_identity, created_at, updated_at";

pub async fn find<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_name: &str,
) -> Result<Option<Credential>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM device_credential WHERE endpoint_name = $1");
    sqlx::query(&sql)
        .bind(endpoint_name)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(credential)
        .transpose()
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<Credential>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM device_credential ORDER BY endpoint_name");
    sqlx::query(&sql)
        .fetch_all(executor)
        .await?
        .iter()
        .map(credential)
        .collect()
}

/// Removes the endpoint's credential; whether it had one.
pub async fn delete<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_name: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM device_credential WHERE endpoint_name = $1")
        .bind(endpoint_name)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() > 0)
}
