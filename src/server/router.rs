//! The HTTP router: the documented REST routes (`/leshan_api`, `/api/v1`,
//! the live websocket, `/api/openapi.json`; see `rest::openapi::routes`)
//! and the Leptos app with its server functions, behind the session check.
use super::rest::openapi;
use super::state::AppState;
use super::{auth, origin_check, security_headers};
use crate::app::{shell, App};
use crate::error::AppError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{middleware, Router};
use leptos::server_fn::error::SERVER_FN_ERROR_HEADER;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::timeout::{ResponseBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

/// How long a page or a server function may take to start its answer, and
/// how long a streamed page may then go without sending more. A render
/// that stalls would otherwise hold the request for ever: a `Suspense`
/// task that panics never finishes its part of the page (seen with
/// reactive_graph 0.2.16, see `ui::components::layout`). Past the deadline
/// the answer is a 503, or the stream ends with an error, which the trace
/// layer logs. No page comes near it: the slowest renders in the tests take
/// milliseconds.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(30);

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
    let pages = Router::new().leptos_routes_with_context(
        &state,
        routes,
        || {},
        move || shell(leptos_options.clone()),
    );
    let app = Router::new()
        .merge(api)
        .merge(with_deadline(pages, PAGE_DEADLINE))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state.clone());
    // The middleware wraps the router once, outermost first. Not with
    // `Router::layer`, which wraps every route in every layer: calling a
    // route then clones its boxed stack at each level (a clone of a boxed
    // service clones all it boxes), about 40 allocations per request with
    // six layers, and a quarter more CPU per request on a trivial route.
    let edge = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(security_headers::add_security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::rest::metrics::log_rejections,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            origin_check::check_origin,
        ))
        .layer(middleware::from_fn_with_state(state, auth::require_session))
        .layer(middleware::from_fn(server_fn_status))
        .service(app);
    Router::new().fallback_service(edge)
}

/// The largest server-function error answer read back by `server_fn_status`;
/// an AppError is a few hundred bytes.
const MAX_SERVER_FN_ERROR_BYTES: usize = 64 * 1024;

/// Gives a server function's error answer the status of its error when the
/// call failed before its body ran. server_fn answers every error with 500,
/// and a call whose arguments cannot be decoded never reaches the body
/// (where `context::respond` sets the status): without this, `POST
/// /sfn/tokens/create` with no arguments is a 500 "missing field". Such an
/// answer becomes the REST API's JSON error with its 4xx status; a 500 that
/// is one (AppError::Internal, a transport failure) stays as it is.
async fn server_fn_status(req: axum::extract::Request, next: middleware::Next) -> Response {
    let server_fn = req.uri().path().starts_with("/sfn/");
    let response = next.run(req).await;
    if !server_fn
        || response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SERVER_FN_ERROR_BYTES).await else {
        return AppError::Internal.into_response();
    };
    match serde_json::from_slice::<AppError>(&bytes) {
        Ok(error) if error.status_code() < 500 => error.into_response(),
        _ => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// Puts `deadline` on the routes' answers: on the time to the response
/// head, then between the chunks of a streamed body.
pub fn with_deadline<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    deadline: Duration,
) -> Router<S> {
    routes
        .layer(ResponseBodyTimeoutLayer::new(deadline))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            deadline,
        ))
}

#[cfg(test)]
mod tests {
    use super::with_deadline;
    use axum::body::{Body, Bytes};
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use futures::StreamExt;
    use http_body_util::BodyExt;
    use std::convert::Infallible;
    use std::time::Duration;
    use tower::ServiceExt;

    const DEADLINE: Duration = Duration::from_millis(200);

    fn get_root() -> Request<Body> {
        Request::get("/").body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn an_answer_that_never_starts_is_a_503() {
        let routes = Router::new().route("/", get(std::future::pending::<&'static str>));
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            with_deadline(routes, DEADLINE).oneshot(get_root()),
        )
        .await
        .expect("the deadline cut the wait short")
        .unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_stream_that_stalls_ends_with_an_error() {
        // The page's head and first chunk, then nothing: what a render with
        // a dead Suspense task sends.
        let stalled = || async {
            let first = futures::stream::once(async { Ok::<_, Infallible>(Bytes::from("<html>")) });
            Body::from_stream(first.chain(futures::stream::pending()))
        };
        let routes = Router::new().route("/", get(stalled));
        let answer = with_deadline(routes, DEADLINE)
            .oneshot(get_root())
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let body = tokio::time::timeout(Duration::from_secs(10), answer.into_body().collect())
            .await
            .expect("the deadline cut the wait short");
        assert!(body.is_err(), "a stalled body must end with an error");
    }

    #[tokio::test]
    async fn a_slow_but_steady_stream_is_not_cut() {
        // Chunks come more often than the deadline, for longer than it in
        // all: the deadline is between chunks, not on the whole page.
        let steady = || async {
            let chunks = futures::stream::iter(0..6).then(|i| async move {
                tokio::time::sleep(DEADLINE / 4).await;
                Ok::<_, Infallible>(Bytes::from(format!("chunk {i};")))
            });
            Body::from_stream(chunks)
        };
        let routes = Router::new().route("/", get(steady));
        let answer = with_deadline(routes, DEADLINE)
            .oneshot(get_root())
            .await
            .unwrap();
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            body,
            Bytes::from("chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;chunk 5;")
        );
    }
}
