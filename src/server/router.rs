//! The HTTP router: the documented REST routes (`/leshan_api`, `/api/v1`,
//! the live websocket, `/api/openapi.json`; see `rest::openapi::routes`)
//! and the Leptos app with its server functions, behind the session check.
use super::auth;
use super::rest::openapi;
use super::state::AppState;
use crate::app::{shell, App};
use axum::routing::any;
use axum::{middleware, Router};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

pub fn build(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let leptos_options = state.leptos_options.clone();
    let (api, _doc) = openapi::routes().split_for_parts();
    // API clients get JSON for unknown API paths and methods, not the
    // dashboard's HTML 404 page or an empty 405.
    let api = api
        .route("/api/{*rest}", any(openapi::no_such_route))
        .route("/leshan_api/{*rest}", any(openapi::no_such_route))
        // Deeper paths under /binaries/ are never images: JSON 404 too.
        .route("/binaries/", any(openapi::no_such_route))
        .route("/binaries/{file}/{*rest}", any(openapi::no_such_route))
        .method_not_allowed_fallback(openapi::method_not_allowed);
    Router::new()
        .merge(api)
        .leptos_routes_with_context(&state, routes, || {}, move || shell(leptos_options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_session,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::rest::metrics::log_rejections,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
