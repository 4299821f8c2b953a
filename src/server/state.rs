//! The state every handler shares.
use super::auth::TokenCache;
use super::config::Settings;
use super::db::Db;
use super::domain::DomainEvents;
use super::ingest::{IngestWriter, TypeCache};
use super::live::LiveHub;
use super::rest::metrics::Rejections;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
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
    pub leptos_options: LeptosOptions,
}

impl AppState {
    pub async fn new(db: Db, settings: Settings) -> Result<AppState, sqlx::Error> {
        let types = TypeCache::default();
        types.load(&db.pool).await?;
        let hub = LiveHub::new(4096);
        let domain = DomainEvents::new(1024);
        let writer = IngestWriter::start(db.clone(), types.clone(), hub.clone(), domain.clone());
        Ok(AppState {
            leptos_options: settings.leptos_options(),
            db,
            settings: Arc::new(settings),
            hub,
            types,
            writer,
            domain,
            rejections: Arc::default(),
            tokens: Arc::default(),
        })
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
