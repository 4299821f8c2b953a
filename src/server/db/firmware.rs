//! SQL for `firmware`: uploaded images. The files live in `firmware_dir`
//! under their `stored_file` name; these rows are the only way a file is
//! served or referenced.
use sqlx::{Any, AnyConnection, Executor, Row};

/// One image with the number of firmware updates that reference it.
#[derive(Debug, Clone, PartialEq)]
pub struct FirmwareRow {
    pub id: i64,
    pub version: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub stored_file: String,
    pub created_at: i64,
    pub updates_count: i64,
}

/// The columns every read selects; `f` is `firmware`, `c` the per-image
/// update counts (one aggregate over `firmware_update`, joined once, so a
/// list costs one scan rather than one count per image).
const SELECT: &str = "SELECT f.id, f.version, f.file_name, f.size_bytes, f.sha256, \
     f.stored_file, f.created_at, COALESCE(c.n, 0) AS updates_count \
     FROM firmware f LEFT JOIN (SELECT firmware_id, COUNT(*) AS n FROM firmware_update \
     GROUP BY firmware_id) c ON c.firmware_id = f.id";

fn from_row(row: &sqlx::any::AnyRow) -> Result<FirmwareRow, sqlx::Error> {
    Ok(FirmwareRow {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        file_name: row.try_get("file_name")?,
        size_bytes: row.try_get("size_bytes")?,
        sha256: row.try_get("sha256")?,
        stored_file: row.try_get("stored_file")?,
        created_at: row.try_get("created_at")?,
        updates_count: row.try_get("updates_count")?,
    })
}

/// Registers an uploaded image. Returns its id; a duplicate version (or
/// stored file name) is a unique violation.
pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    version: &str,
    file_name: &str,
    size_bytes: i64,
    sha256: &str,
    stored_file: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO firmware (version, file_name, size_bytes, sha256, stored_file, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(version)
    .bind(file_name)
    .bind(size_bytes)
    .bind(sha256)
    .bind(stored_file)
    .bind(now)
    .fetch_one(executor)
    .await
}

/// Every image, newest first, with its update count, in one query.
pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<FirmwareRow>, sqlx::Error> {
    sqlx::query(&format!("{SELECT} ORDER BY f.created_at DESC, f.id DESC"))
        .fetch_all(executor)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn find_by_id<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<FirmwareRow>, sqlx::Error> {
    sqlx::query(&format!("{SELECT} WHERE f.id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The image stored under this file name (what `/binaries/{file}` serves).
pub async fn find_by_stored_file<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    stored_file: &str,
) -> Result<Option<FirmwareRow>, sqlx::Error> {
    sqlx::query(&format!("{SELECT} WHERE f.stored_file = $1"))
        .bind(stored_file)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// What `delete_unused` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// The row is gone; remove this file once the transaction commits.
    Removed {
        stored_file: String,
    },
    /// Refused: this many firmware updates reference the image.
    InUse(i64),
    NotFound,
}

/// Deletes an image unless a firmware update references it. The refusal is
/// part of the DELETE itself (`NOT EXISTS`), so an update created at the
/// same moment cannot be left pointing at nothing (the foreign key would
/// refuse it anyway). Run it in a transaction and remove the file after
/// the commit: a rolled-back delete must not lose the file.
pub async fn delete_unused(conn: &mut AnyConnection, id: i64) -> Result<Deleted, sqlx::Error> {
    let stored: Option<String> = sqlx::query_scalar(
        "DELETE FROM firmware WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM firmware_update WHERE firmware_id = $1) \
         RETURNING stored_file",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(stored_file) = stored {
        return Ok(Deleted::Removed { stored_file });
    }
    // Nothing deleted: say why.
    Ok(match find_by_id(&mut *conn, id).await? {
        Some(row) => Deleted::InUse(row.updates_count),
        None => Deleted::NotFound,
    })
}
