//! Test harness: the real router over a real database, SQLite (a temporary
//! file) or PostgreSQL (a fresh schema in FLOWNEXUS_TEST_PG_URL, default
//! postgres://postgres@127.0.0.1:5432/test, dropped afterwards).
#![allow(dead_code)]

pub mod coap;
pub mod leshan_fake;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use flownexus::server::config::{IngestAuth, Settings};
use flownexus::server::db::{api_token::Scope, seed};
use flownexus::server::state::AppState;
use flownexus::server::store::{Db, StoreOptions};
use flownexus::server::{auth, router};
use http_body_util::BodyExt;
use serde_json::Value as Json;
use std::sync::atomic::{AtomicU32, Ordering};
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_base_url() -> String {
    std::env::var("FLOWNEXUS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A PostgreSQL schema that lives as long as the test.
pub struct PgSchema {
    pub name: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "fxt_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            flownexus::server::store::now_ms() % 1_000_000
        );
        let admin = Db::connect(&pg_base_url()).await.expect(
            "PostgreSQL must be reachable for the PostgreSQL tests (scripts/test.sh starts it)",
        );
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin.pool)
            .await
            .unwrap();
        admin.pool.close().await;
        PgSchema { name }
    }

    pub fn url(&self) -> String {
        let base = pg_base_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options[search_path]={}", self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async context: use a throw-away runtime on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(db) = Db::connect(&pg_base_url()).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&db.pool)
                        .await;
                    db.pool.close().await;
                }
            });
        })
        .join();
    }
}

/// A database of either kind, alive as long as this value.
pub struct TestDb {
    pub db: Db,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub pg: Option<PgSchema>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        // Errors by default; TEST_LOG=debug (a tracing filter) for more.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("TEST_LOG"))
            .with_thread_names(true)
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("test.db").display()),
                None,
            ),
            Backend::Postgres => {
                let schema = PgSchema::create().await;
                (schema.url(), Some(schema))
            }
        };
        let db = seed::open(&url, StoreOptions::default())
            .await
            .expect("database opens and migrates");
        TestDb { db, url, dir, pg }
    }
}

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    /// A device token for ingest.
    pub device_token: String,
    pub tdb: TestDb,
}

pub const ADMIN_PASSWORD: &str = "test-admin-password";

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_settings(backend, |_| {}).await
    }

    pub async fn with_settings(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let tdb = TestDb::new(backend).await;
        let mut settings = Settings::for_tests(&tdb.url, tdb.dir.path());
        settings.ingest_auth = IngestAuth::Token;
        tweak(&mut settings);
        auth::ensure_admin(&tdb.db.pool, Some(ADMIN_PASSWORD))
            .await
            .unwrap();
        let state = AppState::new(tdb.db.clone(), settings).await.unwrap();
        let mut app = TestApp {
            router: router::build(state.clone()),
            state,
            device_token: String::new(),
            tdb,
        };
        app.device_token = app.token("test device", Scope::Device).await;
        app
    }

    /// Creates an API token; returns its secret.
    pub async fn token(&self, name: &str, scope: Scope) -> String {
        auth::create_token(&self.state.db.pool, name, scope)
            .await
            .unwrap()
            .1
    }

    pub async fn request(
        &self,
        req: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let (method, uri) = (req.method().clone(), req.uri().clone());
        tracing::debug!(%method, %uri, "test request");
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        tracing::debug!(%method, %uri, %status, "test response head");
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        tracing::debug!(%method, %uri, bytes = body.len(), "test response body");
        (status, headers, body)
    }

    /// POSTs a body to an ingest path with the device token.
    pub async fn ingest(&self, path: &str, body: impl Into<Body>) -> (StatusCode, Json) {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.device_token),
            )
            .body(body.into())
            .unwrap();
        let (status, _, body) = self.request(req).await;
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("response is not JSON: {}", String::from_utf8_lossy(&body)));
        (status, json)
    }

    /// Signs in as admin through the login server function; returns the
    /// Cookie header value.
    pub async fn login_cookie(&self) -> String {
        let mut req = sign_in_request("admin", ADMIN_PASSWORD);
        req.headers_mut()
            .insert(header::ACCEPT, "text/html".parse().unwrap());
        let (status, headers, body) = self.request(req).await;
        let cookie = headers
            .get(header::SET_COOKIE)
            .unwrap_or_else(|| {
                panic!(
                    "no session cookie; status {status}: {}",
                    String::from_utf8_lossy(&body)
                )
            })
            .to_str()
            .unwrap()
            .to_string();
        cookie.split(';').next().unwrap().to_string()
    }

    pub async fn get_page(
        &self,
        path: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::get(path).header(header::ACCEPT, "text/html");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let (status, headers, body) = self.request(req.body(Body::empty()).unwrap()).await;
        (status, headers, String::from_utf8(body).unwrap())
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
    }
}

/// The login server function's form post, as the hydrated page sends it
/// (a plain form post also says `Accept: text/html`).
pub fn sign_in_request(user: &str, password: &str) -> Request<Body> {
    Request::post("/sfn/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "localhost:3000")
        .body(Body::from(format!("username={user}&password={password}")))
        .unwrap()
}

/// Opens the live websocket at `addr` for `endpoint` with a session cookie.
pub async fn live_socket(
    addr: std::net::SocketAddr,
    cookie: &str,
    endpoint: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/api/v1/live?endpoint={endpoint}"),
    )
    .unwrap();
    req.headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// The query plan statement for `sql` on this database.
pub fn explain(backend: Backend, sql: &str) -> String {
    match backend {
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        Backend::Postgres => format!("EXPLAIN {sql}"),
    }
}

/// The lines of a plan that `explain` asked for.
pub fn plan_lines(backend: Backend, rows: &[sqlx::any::AnyRow]) -> Vec<String> {
    use sqlx::Row;
    rows.iter()
        .map(|r| match backend {
            Backend::Sqlite => r.get::<String, _>("detail"),
            Backend::Postgres => r.get::<String, _>(0),
        })
        .collect()
}

pub fn payload(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/payloads/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Declares each listed `async fn name(backend: Backend)` as two tests, one
/// per database: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Calls a server function the way a script would (no `Accept: text/html`,
/// so the status is the error's): (status, JSON body).
pub async fn call(
    app: &TestApp,
    cookie: Option<&str>,
    endpoint: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Json) {
    let mut req = Request::post(format!("/sfn/{endpoint}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let (status, _, body) = app
        .request(req.body(Body::from(form(fields))).unwrap())
        .await;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&body).into_owned()));
    (status, json)
}
