//! The live hub: ingest publishes stored values after commit; websocket
//! clients subscribe. A slow client lags behind the broadcast buffer and
//! skips ahead with a warning; it can never block ingest.
use super::auth;
use super::state::AppState;
use crate::model::LiveValue;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct LiveHub {
    sender: broadcast::Sender<Arc<LiveValue>>,
}

impl LiveHub {
    pub fn new(capacity: usize) -> LiveHub {
        LiveHub {
            sender: broadcast::channel(capacity).0,
        }
    }

    pub fn publish(&self, values: impl IntoIterator<Item = LiveValue>) {
        // Without listeners, skip building the values: ingest calls this for
        // every request.
        if self.sender.receiver_count() == 0 {
            return;
        }
        for v in values {
            // An error only means nobody is listening.
            let _ = self.sender.send(Arc::new(v));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveValue>> {
        self.sender.subscribe()
    }
}

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    /// Only values of this endpoint; all endpoints when absent.
    pub endpoint: Option<String>,
}

/// `GET /api/v1/live?endpoint=<name>`: a websocket of JSON `LiveValue`s.
/// Needs a dashboard session or an API token.
pub async fn ws_handler(
    State(state): State<AppState>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    match auth::api_caller(&state, &headers).await {
        Ok(Some(_)) => {}
        Ok(None) => return auth::unauthorized(),
        Err(e) => return e.into_response(),
    }
    let receiver = state.hub.subscribe();
    upgrade.on_upgrade(move |socket| pump(socket, receiver, query.endpoint))
}

async fn pump(
    mut socket: WebSocket,
    mut receiver: broadcast::Receiver<Arc<LiveValue>>,
    endpoint: Option<String>,
) {
    loop {
        tokio::select! {
            msg = receiver.recv() => match msg {
                Ok(value) => {
                    if endpoint.as_deref().is_some_and(|e| e != value.endpoint) {
                        continue;
                    }
                    let text = match serde_json::to_string(&*value) {
                        Ok(t) => t,
                        Err(_) => continue,
                    };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "live websocket client lagged; values skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // The client sends nothing we act on; a close or error ends the pump.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
