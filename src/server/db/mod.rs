//! The database layer. One pool type (sqlx's `Any`) serves SQLite and
//! PostgreSQL; the SQL is shared wherever the two dialects agree and every
//! function takes an executor, so callers choose a pool or a transaction.
//! Placeholders are `$1`-style, which both drivers accept.
pub mod api_token;
pub mod endpoint;
pub mod event;
pub mod resource;
pub mod resource_type;
pub mod seed;
pub mod sessions;
pub mod users;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

pub type Pool = AnyPool;
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// The pool plus which database it talks to, for the few places where the
/// dialects differ.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: Pool,
    pub backend: Backend,
}

#[derive(Debug, thiserror::Error)]
pub enum DbInitError {
    #[error("unsupported database URL {0:?}: use sqlite://<file> or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot create the database directory {0}: {1}")]
    CreateDir(String, std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("seeding resource types failed: {0}")]
    Seed(sqlx::Error),
}

static INSTALL_DRIVERS: Once = Once::new();

impl Db {
    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Db, DbInitError> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend =
            Backend::from_url(url).ok_or_else(|| DbInitError::UnsupportedUrl(url.to_string()))?;
        let mut url = url.to_string();
        let options = match backend {
            Backend::Sqlite => {
                if let Some(file) = sqlite_file(&url) {
                    if let Some(dir) = Path::new(&file).parent() {
                        if !dir.as_os_str().is_empty() {
                            std::fs::create_dir_all(dir).map_err(|e| {
                                DbInitError::CreateDir(dir.display().to_string(), e)
                            })?;
                        }
                    }
                }
                if !url.contains("mode=") {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str("mode=rwc");
                }
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // WAL lets the dashboard read while ingest writes;
                            // NORMAL sync is durable across process crashes in WAL mode.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(16),
        };
        let pool = options
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .map_err(DbInitError::Connect)?;
        Ok(Db { pool, backend })
    }

    /// Connects, applies pending migrations and seeds the resource types.
    /// Any failure is returned: the server refuses to start on it.
    pub async fn open(url: &str) -> Result<Db, DbInitError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        seed::seed_resource_types(&db.pool)
            .await
            .map_err(DbInitError::Seed)?;
        Ok(db)
    }

    pub async fn migrate(&self) -> Result<(), DbInitError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Table name -> sorted column names, read from the live schema.
    pub async fn schema_columns(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, sqlx::Error> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT m.name AS table_name, p.name AS column_name \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'"
            }
            Backend::Postgres => {
                "SELECT table_name::text AS table_name, column_name::text AS column_name \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'"
            }
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
        for row in rows {
            let table: String = row.try_get("table_name")?;
            let column: String = row.try_get("column_name")?;
            out.entry(table).or_default().push(column);
        }
        for cols in out.values_mut() {
            cols.sort();
        }
        Ok(out)
    }
}

/// The file path of a `sqlite://` URL, or None for in-memory databases.
fn sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(path.to_string())
    }
}

/// Reads a boolean column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
pub fn get_bool(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

/// The current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_is_taken_from_the_url() {
        assert_eq!(sqlite_file("sqlite://data/x.db"), Some("data/x.db".into()));
        assert_eq!(
            sqlite_file("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db".into())
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(Backend::from_url("mysql://x"), None);
        assert_eq!(
            Backend::from_url("postgresql://h/db"),
            Some(Backend::Postgres)
        );
    }
}
