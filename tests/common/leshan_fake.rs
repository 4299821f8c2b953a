//! A fake of the LwM2M server's REST API (Eclipse Leshan), the one outside
//! system the tests cannot run. It follows the downlink contract in
//! `shared/notes/leshan-contract.md`: Write = PUT, Execute = POST, Read =
//! GET on `/api/clients/{ep}/{path}`; 200 with `"success"` true or false
//! (a device-side error is still HTTP 200), 400 text when the client is not
//! registered or sleeps, 504 text when the device did not answer, 500 text
//! otherwise. Each endpoint's behaviour is set per test.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Value as Json_};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the fake answers requests for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// 200, `"success": true` (CHANGED, or CONTENT with `content` for reads).
    Success,
    /// 200, `"success": false`, status NOT_FOUND and an error message.
    DeviceError,
    /// 400 "No registered client with id '<ep>'".
    NotRegistered,
    /// 400: the client sleeps (queue mode).
    Sleeping,
    /// 504: the device did not answer in time.
    DeviceTimeout,
    /// 500.
    ServerError,
    /// No answer at all for a minute (the caller's own timeout must fire).
    Hang,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub endpoint: String,
    /// `/3/0/13`
    pub path: String,
    pub query: String,
    pub body: String,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    modes: HashMap<String, Vec<Mode>>,
    received: Vec<Received>,
    in_flight: HashMap<String, usize>,
    max_in_flight: usize,
    delay: Duration,
    read_content: HashMap<String, Json_>,
}

#[derive(Clone, Default)]
pub struct FakeLeshan {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl FakeLeshan {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> FakeLeshan {
        let mut fake = FakeLeshan::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        fake.url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/api/clients", get(|| async { Json(json!([])) }))
            .route("/api/clients/{ep}/{*path}", any(answer))
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        fake
    }

    /// Answers for `ep` in these modes, one per request, the last one for
    /// every request after (default: Success).
    pub fn set(&self, ep: &str, modes: &[Mode]) {
        self.inner
            .lock()
            .unwrap()
            .modes
            .insert(ep.to_string(), modes.to_vec());
    }

    /// What a read of `ep` answers in `content`.
    pub fn set_read_content(&self, ep: &str, content: Json_) {
        self.inner
            .lock()
            .unwrap()
            .read_content
            .insert(ep.to_string(), content);
    }

    /// Every answer waits this long (to catch overlapping sends).
    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    pub fn received(&self, ep: &str) -> Vec<Received> {
        self.inner
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.endpoint == ep)
            .cloned()
            .collect()
    }

    pub fn all_received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The most requests for one endpoint that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }
}

async fn answer(
    State(fake): State<FakeLeshan>,
    Path((ep, path)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    body: Bytes,
) -> Response {
    let (mode, delay, content) = {
        let mut inner = fake.inner.lock().unwrap();
        inner.received.push(Received {
            method: method.clone(),
            endpoint: ep.clone(),
            path: format!("/{path}"),
            query: query.unwrap_or_default(),
            body: String::from_utf8_lossy(&body).to_string(),
            at: Instant::now(),
        });
        let n = inner.in_flight.entry(ep.clone()).or_default();
        *n += 1;
        let now_in_flight = *n;
        inner.max_in_flight = inner.max_in_flight.max(now_in_flight);
        let mode = match inner.modes.get_mut(&ep) {
            Some(modes) if modes.len() > 1 => modes.remove(0),
            Some(modes) => modes.first().cloned().unwrap_or(Mode::Success),
            None => Mode::Success,
        };
        (mode, inner.delay, inner.read_content.get(&ep).cloned())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = match mode {
        Mode::Success => {
            let status = match method {
                Method::GET => "CONTENT",
                Method::POST => "CHANGED",
                _ => "CHANGED",
            };
            let mut body =
                json!({"status": status, "valid": true, "success": true, "failure": false});
            if method == Method::GET {
                body["content"] = content.unwrap_or(json!({
                    "kind": "singleResource", "id": 0, "type": "STRING", "value": "fake"
                }));
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Mode::DeviceError => (
            StatusCode::OK,
            Json(json!({
                "status": "NOT_FOUND", "valid": true, "success": false, "failure": true,
                "errormessage": "resource not found on the device"
            })),
        )
            .into_response(),
        Mode::NotRegistered => (
            StatusCode::BAD_REQUEST,
            format!("No registered client with id '{ep}'"),
        )
            .into_response(),
        Mode::Sleeping => (
            StatusCode::BAD_REQUEST,
            "The destination client is sleeping, request cannot be sent.",
        )
            .into_response(),
        Mode::DeviceTimeout => (StatusCode::GATEWAY_TIMEOUT, "Request timed out.").into_response(),
        Mode::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal failure").into_response()
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            (StatusCode::OK, "too late").into_response()
        }
    };
    let mut inner = fake.inner.lock().unwrap();
    if let Some(n) = inner.in_flight.get_mut(&ep) {
        *n -= 1;
    }
    response
}
