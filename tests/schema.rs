//! Both dialects' schemas, migrations and seeding.
mod common;

use common::{Backend, TestDb};
use flownexus::server::db::seed;
use flownexus::server::store::{Db, StoreOptions};

#[tokio::test]
async fn sqlite_and_postgres_schemas_have_the_same_tables_and_columns() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    let postgres = TestDb::new(Backend::Postgres).await;
    let a = sqlite.db.schema_columns().await.unwrap();
    let b = postgres.db.schema_columns().await.unwrap();
    assert!(
        a.len() >= 13,
        "expected the whole data model, got {:?}",
        a.keys()
    );
    assert_eq!(a, b);
}

both_databases!(
    migrations_and_seeding_are_idempotent,
    sqlite_file_is_created_in_wal_mode
);

async fn migrations_and_seeding_are_idempotent(backend: Backend) {
    let t = TestDb::new(backend).await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM resource_type")
            .fetch_one(&t.db.pool)
            .await
            .unwrap()
    };
    assert_eq!(count().await, seed::SEED_TYPES.len() as i64);
    // Re-opening migrates nothing and duplicates nothing.
    let again = seed::open(&t.url, StoreOptions::default()).await.unwrap();
    assert_eq!(count().await, seed::SEED_TYPES.len() as i64);
    // A renamed row stays renamed; a missing seed row comes back.
    sqlx::query(
        "UPDATE resource_type SET name = 'kitchen' WHERE object_id = 3303 AND resource_id = 5700",
    )
    .execute(&again.pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM resource_type WHERE object_id = 5 AND resource_id = 9")
        .execute(&again.pool)
        .await
        .unwrap();
    assert_eq!(seed::seed_resource_types(&again.pool).await.unwrap(), 1);
    assert_eq!(count().await, seed::SEED_TYPES.len() as i64);
    let name: String = sqlx::query_scalar(
        "SELECT name FROM resource_type WHERE object_id = 3303 AND resource_id = 5700",
    )
    .fetch_one(&again.pool)
    .await
    .unwrap();
    assert_eq!(name, "kitchen");
}

async fn sqlite_file_is_created_in_wal_mode(backend: Backend) {
    if backend != Backend::Sqlite {
        // WAL is a SQLite property; the PostgreSQL half checks that the
        // active-update constraint holds there too.
        let t = TestDb::new(backend).await;
        one_active_update_per_endpoint(&t.db).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/dir/flownexus.db");
    let db = seed::open(
        &format!("sqlite://{}", file.display()),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(file.exists(), "database file created with its directories");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    one_active_update_per_endpoint(&db).await;
}

/// The database itself refuses a second active firmware update.
async fn one_active_update_per_endpoint(db: &Db) {
    let pool = &db.pool;
    sqlx::query("INSERT INTO endpoint (name, created_at) VALUES ('fw', 0)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO firmware (version, file_name, size_bytes, sha256, stored_file, created_at) \
         VALUES ('1.1', 'fw.bin', 1, $1, 'fw.bin', 0)",
    )
    .bind("0".repeat(64))
    .execute(pool)
    .await
    .unwrap();
    let insert = |state: &'static str| async move {
        sqlx::query(
            "INSERT INTO firmware_update (endpoint_id, firmware_id, state, created_at, updated_at) \
             SELECT e.id, f.id, $1, 0, 0 FROM endpoint e, firmware f",
        )
        .bind(state)
        .execute(pool)
        .await
    };
    insert("succeeded").await.unwrap();
    insert("downloading").await.unwrap();
    let err = insert("pending").await.unwrap_err();
    assert!(
        err.as_database_error()
            .is_some_and(|e| e.is_unique_violation()),
        "{err}"
    );
    // The check constraint rejects unknown states.
    assert!(insert("exploded").await.is_err());
}
