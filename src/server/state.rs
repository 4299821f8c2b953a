//! The state every handler shares.
use super::after_commit::AfterCommit;
use super::auth::TokenCache;
use super::config::Settings;
use super::domain::DomainEvents;
use super::http_server::ConnectionStats;
use super::ingest::{IngestWriter, TypeCache};
use super::live::LiveHub;
use super::login_throttle::LoginThrottle;
use super::origin_check::AllowedOrigins;
use super::rest::metrics::Rejections;
use super::rollup::Feed;
use super::store::Db;
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
    /// Publishes what a transaction committed to `domain` and `hub`.
    pub after_commit: AfterCommit,
    /// What the writer committed, for the rollup worker (`rollup::spawn`).
    pub rollup_feed: Arc<Feed>,
    /// Rejected API requests by status, for `/api/v1/metrics`.
    pub rejections: Arc<Rejections>,
    /// Verified API tokens (see `auth::TokenCache`).
    pub tokens: Arc<TokenCache>,
    /// Failed sign-ins by username and address (see `login_throttle`).
    pub login_throttle: LoginThrottle,
    /// The origins a cookie-authenticated request may come from, besides
    /// the server's own (see `origin_check`).
    pub allowed_origins: AllowedOrigins,
    /// Connections the HTTP server loop refused or timed out.
    pub connections: Arc<ConnectionStats>,
    /// The native LwM2M server, once started (`lwm2m::start`); unset when
    /// `lwm2m_coap_addr` is off.
    pub lwm2m: std::sync::OnceLock<super::lwm2m::Lwm2mHandle>,
    pub leptos_options: LeptosOptions,
}

impl AppState {
    pub async fn new(db: Db, settings: Settings) -> Result<AppState, sqlx::Error> {
        let types = TypeCache::default();
        types.load(&db.pool).await?;
        let hub = LiveHub::new(4096);
        let domain = DomainEvents::new(1024);
        let after_commit = AfterCommit::new(hub.clone(), domain.clone());
        // One feed, shared by the writer and the rollup worker
        // (`rollup::spawn`, started beside this state).
        let rollup_feed = Arc::new(Feed::default());
        let writer = IngestWriter::start(
            db.clone(),
            types.clone(),
            after_commit.clone(),
            rollup_feed.clone(),
        );
        Ok(AppState(Arc::new(SharedState {
            leptos_options: settings.leptos_options(),
            db,
            hub,
            types,
            writer,
            domain,
            after_commit,
            rollup_feed,
            rejections: Arc::default(),
            tokens: Arc::default(),
            login_throttle: LoginThrottle::default(),
            allowed_origins: AllowedOrigins::from_settings(&settings),
            settings: Arc::new(settings),
            connections: Arc::default(),
            lwm2m: std::sync::OnceLock::new(),
        })))
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
