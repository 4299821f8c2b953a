//! SQL for `lwm2m_registration`: an endpoint's registration with the native
//! LwM2M server, as the dashboard shows it. The server's registry in memory
//! is what answers devices; this row is written after each change of it.
use crate::server::store::get_bool;
use sqlx::{Any, Executor, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub endpoint_id: i64,
    pub registration_id: String,
    /// The device's address, `ip:port`.
    pub address: String,
    /// Over DTLS.
    pub secure: bool,
    pub lwm2m_version: String,
    /// As registered (`b`), e.g. "U".
    pub binding: String,
    pub queue_mode: bool,
    pub lifetime_s: i64,
    /// The registered object list in CoRE link format.
    pub object_links: String,
    pub registered_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

/// Records a new registration of the endpoint, replacing an earlier one.
pub async fn upsert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    r: &Registration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lwm2m_registration (endpoint_id, registration_id, address, secure, \
         lwm2m_version, binding, queue_mode, lifetime_s, object_links, registered_at, \
         updated_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (endpoint_id) DO UPDATE SET registration_id = excluded.registration_id, \
         address = excluded.address, secure = excluded.secure, \
         lwm2m_version = excluded.lwm2m_version, binding = excluded.binding, \
         queue_mode = excluded.queue_mode, lifetime_s = excluded.lifetime_s, \
         object_links = excluded.object_links, registered_at = excluded.registered_at, \
         updated_at = excluded.updated_at, expires_at = excluded.expires_at",
    )
    .bind(r.endpoint_id)
    .bind(&r.registration_id)
    .bind(&r.address)
    .bind(r.secure)
    .bind(&r.lwm2m_version)
    .bind(&r.binding)
    .bind(r.queue_mode)
    .bind(r.lifetime_s)
    .bind(&r.object_links)
    .bind(r.registered_at)
    .bind(r.updated_at)
    .bind(r.expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Records a registration update: what it may change, and the new expiry.
/// Whether the registration exists.
pub async fn update<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    r: &Registration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lwm2m_registration SET address = $2, binding = $3, queue_mode = $4, \
         lifetime_s = $5, object_links = $6, updated_at = $7, expires_at = $8 \
         WHERE registration_id = $1",
    )
    .bind(&r.registration_id)
    .bind(&r.address)
    .bind(&r.binding)
    .bind(r.queue_mode)
    .bind(r.lifetime_s)
    .bind(&r.object_links)
    .bind(r.updated_at)
    .bind(r.expires_at)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes a registration (De-register); whether it existed.
pub async fn delete<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    registration_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM lwm2m_registration WHERE registration_id = $1")
        .bind(registration_id)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() > 0)
}

const COLUMNS: &str = "endpoint_id, registration_id, address, secure, lwm2m_version, binding, \
     queue_mode, lifetime_s, object_links, registered_at, updated_at, expires_at";

fn registration(row: &sqlx::any::AnyRow) -> Result<Registration, sqlx::Error> {
    Ok(Registration {
        endpoint_id: row.try_get("endpoint_id")?,
        registration_id: row.try_get("registration_id")?,
        address: row.try_get("address")?,
        secure: get_bool(row, "secure")?,
        lwm2m_version: row.try_get("lwm2m_version")?,
        binding: row.try_get("binding")?,
        queue_mode: get_bool(row, "queue_mode")?,
        lifetime_s: row.try_get("lifetime_s")?,
        object_links: row.try_get("object_links")?,
        registered_at: row.try_get("registered_at")?,
        updated_at: row.try_get("updated_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub async fn find_by_endpoint<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    endpoint_id: i64,
) -> Result<Option<Registration>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM lwm2m_registration WHERE endpoint_id = $1");
    sqlx::query(&sql)
        .bind(endpoint_id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(registration)
        .transpose()
}
