//! The state every handler shares.
use super::config::Settings;
use super::db::Db;
use super::ingest::TypeCache;
use super::live::LiveHub;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub hub: LiveHub,
    pub types: TypeCache,
    pub leptos_options: LeptosOptions,
}

impl AppState {
    pub async fn new(db: Db, settings: Settings) -> Result<AppState, sqlx::Error> {
        let types = TypeCache::default();
        types.load(&db.pool).await?;
        Ok(AppState {
            leptos_options: settings.leptos_options(),
            db,
            settings: Arc::new(settings),
            hub: LiveHub::new(4096),
            types,
        })
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
