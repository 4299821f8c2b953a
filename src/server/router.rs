//! The HTTP router: REST routes, the live websocket, and the Leptos app
//! with its server functions, behind the session check.
use super::state::AppState;
use super::{auth, live, rest};
use crate::app::{shell, App};
use crate::model::LIVE_WS_PATH;
use axum::routing::{get, post};
use axum::{middleware, Router};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

pub fn build(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let leptos_options = state.leptos_options.clone();
    Router::new()
        .route("/leshan_api/resource/single", post(rest::leshan::single))
        .route(
            "/leshan_api/resource/composite",
            post(rest::leshan::composite),
        )
        .route("/leshan_api/data/{resource_name}", get(rest::leshan::data))
        .route("/leshan_api/data/{resource_name}/", get(rest::leshan::data))
        .route("/api/v1/health", get(rest::v1::health))
        .route("/api/v1/endpoints", get(rest::v1::endpoints))
        .route("/api/v1/metrics", get(rest::metrics::metrics))
        .route(LIVE_WS_PATH, get(live::ws_handler))
        .leptos_routes_with_context(&state, routes, || {}, move || shell(leptos_options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_session,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rest::metrics::log_rejections,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
