//! Cross-site request forgery: a request that a session cookie
//! authenticates must come from one of our own pages.
//!
//! SameSite=Lax keeps the cookie off cross-site posts, but not off
//! same-site ones: a page on another port of this host, or on a sibling
//! subdomain, is "same site" and its posts carry the cookie. So every
//! state-changing request (POST, PUT, PATCH, DELETE) that carries the
//! session cookie, every server-function call, and every websocket upgrade
//! with the cookie must name an allowed origin in `Origin` (or, without
//! it, in `Referer`):
//! - the server's own: the host the browser addressed (the `Host` header),
//!   as Go's `net/http.CrossOriginProtection` compares it, or the origin of
//!   `public_base_url`;
//! - the origins of the `allowed_origins` setting.
//!
//! Requests that authenticate with a bearer token (devices, scripts) are
//! exempt: a browser never adds that header on its own, so no other page
//! can make one ride on an operator's credentials. Server functions read
//! only the cookie, so they are checked even with an Authorization header.
//!
//! A request with neither `Origin` nor `Referer` is let through. The Fetch
//! standard has browsers send `Origin` on every request whose method is not
//! GET or HEAD and on every websocket handshake (the "append a request
//! `Origin` header" steps), so a forged request from another page always
//! carries one; a request without either comes from a client that is not a
//! browser (curl, a script), which can only send a cookie it holds itself.
//! OWASP's CSRF cheat sheet leaves this case to the application; Go's
//! `CrossOriginProtection` decides the same way.
use super::state::AppState;
use crate::error::{AppError, RejectionReason};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origins allowed besides the request's own host.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    pub fn from_settings(settings: &super::config::Settings) -> Self {
        let mut list: Vec<String> = normalize_origin(&settings.public_base_url)
            .into_iter()
            .collect();
        for o in &settings.allowed_origins {
            if !list.contains(o) {
                list.push(o.clone());
            }
        }
        AllowedOrigins(list)
    }

    fn contains(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o == origin)
    }
}

/// `scheme://host[:port]` of an http(s) URL or origin, lower case, without
/// a default port, a path, a query or user information; None for anything
/// else (including the opaque origin `null`).
pub fn normalize_origin(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = match authority.rsplit_once(':') {
        // Not inside an IPv6 literal's brackets.
        Some((host, port)) if !port.contains(']') => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            if port == default_port {
                host.to_string()
            } else {
                authority.clone()
            }
        }
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

/// An origin of the `allowed_origins` setting: `scheme://host[:port]`,
/// nothing after it but an optional `/`.
pub fn parse_allowed_origin(origin: &str) -> Option<String> {
    let (_, rest) = origin.split_once("://")?;
    if rest.trim_end_matches('/').contains(['/', '?', '#']) {
        return None;
    }
    normalize_origin(origin)
}

/// Whether the request must show where it comes from.
fn is_checked(req: &Request) -> bool {
    let path = req.uri().path();
    let server_fn = path.starts_with("/sfn/");
    let has_cookie = super::auth::session_token(req.headers()).is_some();
    // A bearer token authenticates the REST routes instead of the cookie.
    let bearer = !server_fn && req.headers().contains_key(header::AUTHORIZATION);
    let state_changing = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    // Server functions are checked with or without a cookie: the login
    // form is one, and signing a victim in to an attacker's account is a
    // forgery too.
    (server_fn && state_changing) || (has_cookie && !bearer && (state_changing || upgrade))
}

/// Where the request says it comes from: `Origin`, else the origin of
/// `Referer`. Some(None) when a header is there but names no usable origin.
fn claimed_origin(headers: &HeaderMap) -> Option<Option<String>> {
    let value = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))?;
    Some(value.to_str().ok().and_then(normalize_origin))
}

/// Whether `origin` names the host and port this request was sent to
/// (the `Host` header), over either scheme: a proxy in front may speak
/// https for us.
fn is_own_host(origin: &str, host: Option<&str>) -> bool {
    let (Some(host), Some((scheme, _))) = (host, origin.split_once("://")) else {
        return false;
    };
    normalize_origin(&format!("{scheme}://{host}")).as_deref() == Some(origin)
}

/// The `Host` header, or the authority of an absolute request URI.
fn request_host(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// The middleware: refuses a checked request from a foreign origin with a
/// 403 that says so.
pub async fn check_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !is_checked(&req) {
        return next.run(req).await;
    }
    let Some(claimed) = claimed_origin(req.headers()) else {
        return next.run(req).await;
    };
    let allowed = claimed.as_deref().is_some_and(|origin| {
        state.allowed_origins.contains(origin) || is_own_host(origin, request_host(&req))
    });
    if allowed {
        return next.run(req).await;
    }
    let shown = req
        .headers()
        .get(header::ORIGIN)
        .or_else(|| req.headers().get(header::REFERER))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let shown = super::rest::metrics::truncate_for_log(&shown);
    let message = format!(
        "cross-origin request refused: origin {shown} is not allowed (see the allowed_origins setting)"
    );
    let mut response = AppError::Forbidden.into_response();
    *response.body_mut() = axum::body::Body::from(
        serde_json::json!({ "error": message, "details": [{ "path": "Origin", "reason": "not an allowed origin" }] })
            .to_string(),
    );
    response.extensions_mut().insert(RejectionReason(message));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized() {
        assert_eq!(
            normalize_origin("HTTP://Example.COM:80/path?q").as_deref(),
            Some("http://example.com")
        );
        assert_eq!(
            normalize_origin("https://example.com:8443").as_deref(),
            Some("https://example.com:8443")
        );
        assert_eq!(
            normalize_origin("http://[::1]:3000/").as_deref(),
            Some("http://[::1]:3000")
        );
        assert_eq!(
            normalize_origin("http://[::1]").as_deref(),
            Some("http://[::1]")
        );
        for bad in [
            "null",
            "",
            "ftp://x",
            "http://",
            "http://a@b",
            "http://x:y",
            "example.com",
        ] {
            assert_eq!(normalize_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_own_host_matches_by_host_and_port() {
        let host = Some("localhost:3000");
        assert!(is_own_host("http://localhost:3000", host));
        assert!(is_own_host("https://localhost:3000", host));
        assert!(!is_own_host("http://localhost:3001", host));
        assert!(!is_own_host("http://evil.localhost:3000", host));
        assert!(is_own_host("https://example.com", Some("Example.com:443")));
        assert!(!is_own_host(
            "https://example.com:8443",
            Some("example.com")
        ));
        assert!(!is_own_host("http://example.com", None));
    }
}
