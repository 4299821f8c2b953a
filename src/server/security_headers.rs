//! Security headers: a Content-Security-Policy for the pages, built around
//! the nonce leptos_axum gives each render, and framing, sniffing and
//! referrer rules on every answer.
use axum::extract::Request;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The policy of everything that is not a page (JSON, CSV, images,
/// scripts): nothing may run or load in its context, nor frame it.
const NOT_A_PAGE_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of a page rendered with `nonce`, served from `host`.
///
/// - scripts: the page's own files (`'self'`: the hydration module and the
///   wasm-bindgen glue it imports) and the inline scripts leptos writes
///   with the nonce (the hydration call and the resources' data);
///   `'wasm-unsafe-eval'` lets the glue compile the wasm module, without
///   allowing `eval` of JavaScript;
/// - styles: the site's stylesheet, and inline `<style>` with the nonce;
///   there are no `style=` attributes (the battery bar is an SVG);
/// - connections: server functions (`'self'`) and the live websocket, named
///   with its ws/wss scheme because browsers older than CSP 3 do not count
///   a websocket to the same host as `'self'`;
/// - never framed (`frame-ancestors`, and X-Frame-Options for browsers
///   without CSP 2); forms post only here.
pub fn page_policy(nonce: &str, host: Option<&str>) -> String {
    let sockets = host
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    // `cargo leptos watch` reloads the page through its own websocket.
    let reload = std::env::var("LEPTOS_WATCH")
        .ok()
        .and_then(|_| std::env::var("LEPTOS_RELOAD_PORT").ok())
        .map(|port| format!(" ws://127.0.0.1:{port} ws://localhost:{port}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; \
         script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; \
         connect-src 'self'{sockets}{reload}; \
         object-src 'none'; \
         base-uri 'self'; \
         form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Called while a page renders on the server: sends the page's policy with
/// the nonce of this render. Without a nonce (never in practice) the
/// middleware's strict default stays, which is safe if unhelpful.
pub fn set_page_policy() {
    use leptos::prelude::use_context;
    let Some(nonce) = leptos::nonce::use_nonce() else {
        return;
    };
    let Some(options) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let host = use_context::<axum::http::request::Parts>().and_then(|parts| {
        parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    if let Ok(value) = HeaderValue::from_str(&page_policy(&nonce, host.as_deref())) {
        options.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}

/// The middleware: framing, sniffing and referrer rules on every answer,
/// and the strict policy on answers that did not set their own.
pub async fn add_security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(NOT_A_PAGE_POLICY));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::page_policy;

    #[test]
    fn the_page_policy_names_the_nonce_and_the_socket() {
        let p = page_policy("abc123", Some("localhost:3000"));
        assert!(
            p.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'"),
            "{p}"
        );
        assert!(
            p.contains("connect-src 'self' ws://localhost:3000 wss://localhost:3000"),
            "{p}"
        );
        assert!(p.contains("frame-ancestors 'none'"), "{p}");
        assert!(!p.contains("unsafe-inline"), "{p}");
        // A Host header that is not a host adds nothing to the policy.
        let p = page_policy("n", Some("evil; script-src *"));
        assert!(p.contains("connect-src 'self';"), "{p}");
    }
}
