//! The live hub: ingest publishes after commit; websocket clients subscribe
//! to topics (an endpoint's values, events, fleet changes) and the hub sends
//! each message only to that topic's subscribers. Nothing here can block
//! ingest: publishing is a non-blocking broadcast, and a client that falls
//! behind is disconnected with a warning (its page reconnects and refetches).
use super::auth;
use super::state::AppState;
use crate::model::{
    ClientMessage, CommandNotice, EventNotice, FleetNotice, LiveMessage, LiveValue, Topic,
};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, Notify};

/// Messages a connection may have queued for its socket before it counts
/// as too slow and is dropped.
const OUTBOX: usize = 1024;
/// Topics one connection may hold (a page needs a handful).
const MAX_TOPICS: usize = 64;
/// How often fleet subscribers hear that telemetry arrived.
const INGEST_TICK: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    /// Every value, for clients of the original single-stream protocol
    /// without an endpoint filter.
    all_values: broadcast::Sender<Arc<LiveValue>>,
    /// One channel per endpoint somebody watches; created on the first
    /// subscription and removed once nobody listens.
    endpoints: RwLock<HashMap<String, broadcast::Sender<Arc<LiveMessage>>>>,
    events: broadcast::Sender<Arc<LiveMessage>>,
    fleet: broadcast::Sender<Arc<LiveMessage>>,
    commands: broadcast::Sender<Arc<LiveMessage>>,
    /// Values stored since start, for the fleet tick.
    ingested: AtomicU64,
}

impl LiveHub {
    /// A hub whose channels buffer `capacity` messages per subscriber. Call
    /// inside the runtime: it starts the fleet tick.
    pub fn new(capacity: usize) -> LiveHub {
        let inner = Arc::new(Inner {
            capacity,
            all_values: broadcast::channel(capacity).0,
            endpoints: RwLock::default(),
            events: broadcast::channel(capacity).0,
            fleet: broadcast::channel(capacity).0,
            commands: broadcast::channel(capacity).0,
            ingested: AtomicU64::new(0),
        });
        tokio::spawn(tick(Arc::downgrade(&inner)));
        LiveHub { inner }
    }

    /// Publishes one endpoint's stored values. The values are only built
    /// when somebody listens, since ingest calls this for every request.
    pub fn publish<I: IntoIterator<Item = LiveValue>>(
        &self,
        endpoint: &str,
        values: impl FnOnce() -> I,
    ) {
        let inner = &self.inner;
        let to_all = inner.all_values.receiver_count() > 0;
        let to_endpoint = {
            let map = inner.endpoints.read().unwrap_or_else(|e| e.into_inner());
            map.get(endpoint)
                .filter(|s| s.receiver_count() > 0)
                .cloned()
        };
        if !to_all && to_endpoint.is_none() {
            return;
        }
        for v in values() {
            if to_all {
                let _ = inner.all_values.send(Arc::new(v.clone()));
            }
            if let Some(sender) = &to_endpoint {
                // An error only means the last subscriber just left.
                let _ = sender.send(Arc::new(LiveMessage::Value(v)));
            }
        }
    }

    /// Counts stored values for the fleet tick.
    pub fn count_ingested(&self, values: usize) {
        self.inner
            .ingested
            .fetch_add(values as u64, Ordering::Relaxed);
    }

    /// Whether anybody listens for events (so ingest can skip building them).
    pub fn wants_events(&self) -> bool {
        self.inner.events.receiver_count() > 0
    }

    pub fn publish_events(&self, events: impl IntoIterator<Item = EventNotice>) {
        for e in events {
            let _ = self.inner.events.send(Arc::new(LiveMessage::Event(e)));
        }
    }

    pub fn publish_fleet(&self, notice: FleetNotice) {
        if self.inner.fleet.receiver_count() > 0 {
            let _ = self.inner.fleet.send(Arc::new(LiveMessage::Fleet(notice)));
        }
    }

    /// A command or firmware update changed (published after its commit).
    pub fn publish_command(&self, notice: CommandNotice) {
        if self.inner.commands.receiver_count() > 0 {
            let _ = self
                .inner
                .commands
                .send(Arc::new(LiveMessage::Command(notice)));
        }
    }

    /// Every value of every endpoint (the original protocol without a filter).
    pub fn subscribe_all_values(&self) -> broadcast::Receiver<Arc<LiveValue>> {
        self.inner.all_values.subscribe()
    }

    pub fn subscribe(&self, topic: &Topic) -> broadcast::Receiver<Arc<LiveMessage>> {
        match topic {
            Topic::Events => self.inner.events.subscribe(),
            Topic::Fleet => self.inner.fleet.subscribe(),
            Topic::Commands => self.inner.commands.subscribe(),
            Topic::Endpoint { name } => {
                let mut map = self
                    .inner
                    .endpoints
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                map.entry(name.clone())
                    .or_insert_with(|| broadcast::channel(self.inner.capacity).0)
                    .subscribe()
            }
        }
    }

    /// Endpoint channels somebody listens to (for tests and metrics).
    pub fn watched_endpoints(&self) -> usize {
        let map = self
            .inner
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner());
        map.values().filter(|s| s.receiver_count() > 0).count()
    }
}

/// Once a second: tell fleet subscribers how many values have been stored
/// (when that changed), and drop endpoint channels nobody listens to.
async fn tick(hub: Weak<Inner>) {
    let mut last = 0;
    let mut interval = tokio::time::interval(INGEST_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        let Some(inner) = hub.upgrade() else {
            return;
        };
        let total = inner.ingested.load(Ordering::Relaxed);
        if total != last && inner.fleet.receiver_count() > 0 {
            let _ = inner
                .fleet
                .send(Arc::new(LiveMessage::Fleet(FleetNotice::Ingested {
                    total_values: total,
                })));
        }
        last = total;
        let mut map = inner.endpoints.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.receiver_count() > 0);
    }
}

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    /// Only values of this endpoint; all endpoints when absent (original
    /// protocol).
    pub endpoint: Option<String>,
    /// `1`: the multiplexed protocol (see `ClientMessage`, `LiveMessage`).
    pub mux: Option<String>,
}

/// `GET /api/v1/live`: a websocket. Needs a dashboard session or an API
/// token. Without `mux`, one JSON `LiveValue` per message (of one endpoint
/// with `endpoint=`); with `mux=1`, the page subscribes to topics.
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
    let hub = state.hub.clone();
    if query.mux.as_deref() == Some("1") {
        return upgrade.on_upgrade(move |socket| pump_mux(socket, hub));
    }
    match query.endpoint {
        Some(name) => {
            let receiver = hub.subscribe(&Topic::Endpoint { name });
            upgrade.on_upgrade(move |socket| pump_one_endpoint(socket, receiver))
        }
        None => {
            let receiver = hub.subscribe_all_values();
            upgrade.on_upgrade(move |socket| pump_all_values(socket, receiver))
        }
    }
}

fn warn_lagged(skipped: u64) {
    tracing::warn!(
        skipped,
        "live websocket client fell behind; disconnecting it (it reconnects and refetches)"
    );
}

/// What the client sent: true to go on, false when it closed.
fn client_still_open(incoming: Option<Result<Message, axum::Error>>) -> bool {
    !matches!(incoming, Some(Ok(Message::Close(_))) | None | Some(Err(_)))
}

async fn send_json<T: serde::Serialize>(socket: &mut WebSocket, value: &T) -> bool {
    match serde_json::to_string(value) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => true,
    }
}

/// The original protocol, every endpoint: one `LiveValue` per message.
async fn pump_all_values(mut socket: WebSocket, mut receiver: broadcast::Receiver<Arc<LiveValue>>) {
    loop {
        tokio::select! {
            msg = receiver.recv() => match msg {
                Ok(value) => if !send_json(&mut socket, &*value).await { return },
                Err(broadcast::error::RecvError::Lagged(skipped)) => return warn_lagged(skipped),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => if !client_still_open(incoming) { return },
        }
    }
}

/// The original protocol, one endpoint: one `LiveValue` per message.
async fn pump_one_endpoint(
    mut socket: WebSocket,
    mut receiver: broadcast::Receiver<Arc<LiveMessage>>,
) {
    loop {
        tokio::select! {
            msg = receiver.recv() => match msg {
                Ok(message) => {
                    if let LiveMessage::Value(value) = &*message {
                        if !send_json(&mut socket, value).await { return }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => return warn_lagged(skipped),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => if !client_still_open(incoming) { return },
        }
    }
}

/// Copies one topic's messages into the connection's outbox; a full outbox
/// or a lagging receiver means the client is too slow.
async fn forward(
    mut receiver: broadcast::Receiver<Arc<LiveMessage>>,
    outbox: mpsc::Sender<Arc<LiveMessage>>,
    too_slow: Arc<Notify>,
) {
    loop {
        match receiver.recv().await {
            Ok(message) => match outbox.try_send(message) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn_lagged(OUTBOX as u64);
                    too_slow.notify_one();
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            },
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                warn_lagged(skipped);
                too_slow.notify_one();
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The multiplexed protocol: the client subscribes and unsubscribes with
/// `ClientMessage`s; the server sends `LiveMessage`s of those topics.
async fn pump_mux(mut socket: WebSocket, hub: LiveHub) {
    let (outbox, mut pending) = mpsc::channel::<Arc<LiveMessage>>(OUTBOX);
    let too_slow = Arc::new(Notify::new());
    let mut topics: HashMap<Topic, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        tokio::select! {
            Some(message) = pending.recv() => {
                if !send_json(&mut socket, &*message).await { break }
            }
            _ = too_slow.notified() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    other => if client_still_open(other) { continue } else { break },
                };
                match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Subscribe { topics: wanted }) => {
                        for topic in wanted {
                            if topics.len() >= MAX_TOPICS || topics.contains_key(&topic) {
                                continue;
                            }
                            let receiver = hub.subscribe(&topic);
                            let task = tokio::spawn(forward(receiver, outbox.clone(), too_slow.clone()));
                            topics.insert(topic, task);
                        }
                    }
                    Ok(ClientMessage::Unsubscribe { topics: unwanted }) => {
                        for topic in unwanted {
                            if let Some(task) = topics.remove(&topic) {
                                task.abort();
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live websocket: unreadable client message");
                    }
                }
            }
        }
    }
    for task in topics.into_values() {
        task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick_message(n: u64) -> Arc<LiveMessage> {
        Arc::new(LiveMessage::Fleet(FleetNotice::Ingested {
            total_values: n,
        }))
    }

    #[tokio::test]
    async fn a_client_whose_outbox_fills_is_dropped() {
        let (sender, receiver) = broadcast::channel(16);
        let (outbox, _never_read) = mpsc::channel(2);
        let too_slow = Arc::new(Notify::new());
        let task = tokio::spawn(forward(receiver, outbox, too_slow.clone()));
        for n in 0..3 {
            sender.send(tick_message(n)).unwrap();
        }
        tokio::time::timeout(Duration::from_secs(1), too_slow.notified())
            .await
            .expect("the slow client is flagged");
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the forwarder stops")
            .unwrap();
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_dropped_and_publishing_never_waits() {
        let (sender, receiver) = broadcast::channel(2);
        // Publishing far past the buffer returns at once.
        for n in 0..100 {
            sender.send(tick_message(n)).unwrap();
        }
        let (outbox, _rx) = mpsc::channel(OUTBOX);
        let too_slow = Arc::new(Notify::new());
        forward(receiver, outbox, too_slow.clone()).await;
        tokio::time::timeout(Duration::from_secs(1), too_slow.notified())
            .await
            .expect("lag is reported");
    }

    #[tokio::test]
    async fn endpoint_channels_exist_only_while_watched() {
        let hub = LiveHub::new(8);
        let topic = Topic::Endpoint { name: "a".into() };
        let mut rx = hub.subscribe(&topic);
        assert_eq!(hub.watched_endpoints(), 1);
        let built = std::cell::Cell::new(0);
        let value = |n: f64| LiveValue {
            endpoint: "a".into(),
            path: crate::model::ResourcePath {
                object_id: 3303,
                instance_id: 0,
                resource_id: 5700,
                resource_instance_id: None,
            },
            value: n.to_string(),
            numeric: Some(n),
            received_at: 0,
            measured_at: 0,
        };
        hub.publish("b", || {
            built.set(built.get() + 1);
            [value(1.0)]
        });
        assert_eq!(
            built.get(),
            0,
            "values of an unwatched endpoint are not built"
        );
        hub.publish("a", || [value(2.0)]);
        match &*rx.recv().await.unwrap() {
            LiveMessage::Value(v) => assert_eq!(v.numeric, Some(2.0)),
            other => panic!("{other:?}"),
        }
        drop(rx);
        assert_eq!(hub.watched_endpoints(), 0);
    }
}
