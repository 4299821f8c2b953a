//! The state every handler shares.
use super::auth::TokenCache;
use super::config::Settings;
use super::db::Db;
use super::domain::DomainEvents;
use super::http_server::ConnectionStats;
use super::ingest::{IngestWriter, TypeCache};
use super::live::LiveHub;
use super::rest::metrics::Rejections;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// A handle to the shared state: one `Arc`, because axum clones the state
/// for every request (router, each middleware, the handler), and cloning
/// the fields one by one showed up in the ingest profile (the Leptos
/// options alone are a dozen strings).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub struct SharedState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub hub: LiveHub,
    pub types: TypeCache,
    /// Every telemetry write goes through this one group-commit writer.
    pub writer: IngestWriter,
    pub domain: DomainEvents,
    /// Rejected API requests by status, for `/api/v1/metrics`.
    pub rejections: Arc<Rejections>,
    /// Verified API tokens (see `auth::TokenCache`).
    pub tokens: Arc<TokenCache>,
    /// Connections the HTTP server loop refused or timed out.
    pub connections: Arc<ConnectionStats>,
    pub leptos_options: LeptosOptions,
}

impl AppState {
    pub async fn new(db: Db, settings: Settings) -> Result<AppState, sqlx::Error> {
        let types = TypeCache::default();
        types.load(&db.pool).await?;
        let hub = LiveHub::new(4096);
        let domain = DomainEvents::new(1024);
        let writer = IngestWriter::start(db.clone(), types.clone(), hub.clone(), domain.clone());
        Ok(AppState(Arc::new(SharedState {
            leptos_options: settings.leptos_options(),
            db,
            settings: Arc::new(settings),
            hub,
            types,
            writer,
            domain,
            rejections: Arc::default(),
            tokens: Arc::default(),
            connections: Arc::default(),
        })))
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
