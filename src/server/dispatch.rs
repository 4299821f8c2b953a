//! The command dispatcher: sends queued commands through the LwM2M server's
//! REST API (Eclipse Leshan, see the downlink contract) and records how each
//! send ended.
//!
//! - Per endpoint one command at a time, in creation order; a command is
//!   claimed atomically before it is sent (`db::endpoint_operation::
//!   claim_next`), so no two dispatchers, even in two servers sharing one
//!   PostgreSQL, send the same command.
//! - Only `"success": true` confirms. A device-side error (HTTP 200 with
//!   `"success": false`) fails the command with the device's status and
//!   message. "Not registered" or "sleeping" (HTTP 400) puts it back without
//!   spending an attempt, until the device is heard from again. A timeout,
//!   a connection error or a 5xx spends an attempt and retries with backoff;
//!   after `command_max_attempts` the command fails.
//! - A command left `sending` longer than the lease (the server died mid-
//!   send) is recovered as a spent attempt. Expired commands fail.
//! - It acts at once on a registration, a registration update, any uplink of
//!   an endpoint with queued commands (a queue-mode device listens only for
//!   a short while after it reports) and a newly queued command, and polls
//!   once a second besides (a broadcast receiver that lags misses events).
use super::after_commit::AfterCommit;
use super::db::endpoint_operation::{self as ops, Claimed, Settle};
use super::domain::{DomainEvent, DomainEvents};
use super::ingest::{parse_composite, IngestWriter};
use super::state::AppState;
use super::store::{self, Db};
#[cfg(test)]
use crate::model::DataType;
use crate::model::{CommandKind, Value};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value as Json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Endpoints sent to at the same time at most.
const PARALLEL_ENDPOINTS: usize = 32;
/// How often the queue is polled besides the events that wake it.
const POLL: Duration = Duration::from_secs(1);
/// Largest answer read from the LwM2M server.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Backoff after a transient failure: this, doubled per attempt, at most
/// `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: i64 = 2_000;
const MAX_BACKOFF_MS: i64 = 60_000;

/// How the LwM2M server answered one request, in the dispatcher's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `"success": true`; for a read, the node in `content`.
    Success {
        status: String,
        content: Option<Json>,
    },
    /// HTTP 200 with `"success": false`: the device refused.
    DeviceError {
        status: String,
        message: Option<String>,
    },
    /// HTTP 400: the client is not registered or sleeps.
    NotReachable(String),
    /// HTTP 400 for anything else: the request itself is wrong; no retry.
    Invalid(String),
    /// A timeout, a connection error, a 5xx or an answer we cannot read.
    Transient(String),
}

/// Reads the LwM2M server's answer (pure; see the downlink contract).
pub fn classify(status: u16, body: &[u8]) -> Answer {
    let text = || String::from_utf8_lossy(body).trim().to_string();
    match status {
        200..=299 => {
            let Ok(json) = serde_json::from_slice::<Json>(body) else {
                return Answer::Transient(format!("unreadable answer (HTTP {status}): {}", text()));
            };
            let device_status = json
                .get("status")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string();
            if json.get("success").and_then(Json::as_bool) == Some(true) {
                Answer::Success {
                    status: device_status,
                    content: json.get("content").cloned(),
                }
            } else {
                Answer::DeviceError {
                    status: if device_status.is_empty() {
                        "UNKNOWN".into()
                    } else {
                        device_status
                    },
                    message: json
                        .get("errormessage")
                        .and_then(Json::as_str)
                        .filter(|m| !m.is_empty())
                        .map(str::to_string),
                }
            }
        }
        400 => {
            let message = text();
            let lower = message.to_lowercase();
            // Leshan: "no registered client with id ...", "client is
            // sleeping", "not registered", "... is not awake".
            if [
                "registered",
                "sleeping",
                "asleep",
                "not awake",
                "unknown client",
                "no client",
            ]
            .iter()
            .any(|k| lower.contains(k))
            {
                Answer::NotReachable(message)
            } else {
                Answer::Invalid(if message.is_empty() {
                    "the LwM2M server refused the request (HTTP 400)".into()
                } else {
                    message
                })
            }
        }
        504 => Answer::Transient(format!(
            "the device did not answer in time (HTTP 504) {}",
            text()
        )),
        _ => Answer::Transient(format!("HTTP {status} from the LwM2M server: {}", text())),
    }
}

/// The value of a write as the LwM2M server's JSON wants it.
pub fn wire_value(value: &Value) -> Json {
    match value {
        Value::String(s) | Value::Corelink(s) => json!(s),
        Value::Integer(i) | Value::UnsignedInteger(i) | Value::Time(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Boolean(b) => json!(b),
        Value::Opaque(bytes) => json!(hex::encode(bytes)),
        Value::Objlnk { .. } => json!(value.to_string()),
        Value::None => Json::Null,
    }
}

/// One request to the LwM2M server.
#[derive(Debug, Clone, PartialEq)]
pub struct Lwm2mRequest {
    pub method: http::Method,
    pub uri: String,
    pub body: Option<(String, &'static str)>,
}

/// Builds the request for a claimed command (pure).
pub fn request_for(base: &str, command: &Claimed) -> Result<Lwm2mRequest, String> {
    if !command.kind.via_leshan() {
        return Err(leshan_refusal(command.kind));
    }
    let ep = percent_encoding::utf8_percent_encode(
        &command.endpoint,
        percent_encoding::NON_ALPHANUMERIC,
    );
    let path = command.path.trim_end_matches('/');
    let segments: Vec<i64> = super::ingest::parse::parse_lwm2m_path(path)
        .ok_or_else(|| format!("{path:?} is not an LwM2M path"))?;
    let target = format!("{base}/api/clients/{ep}{path}");
    match command.kind {
        CommandKind::Write => {
            let [_, _, resource_id] = segments[..] else {
                return Err("a write needs an /object/instance/resource path".into());
            };
            let data_type = command
                .data_type
                .ok_or_else(|| "the resource's data type is unknown".to_string())?;
            let value = command.value.to_value(data_type);
            let body = json!({
                "id": resource_id,
                "kind": "singleResource",
                "type": data_type.as_str(),
                "value": wire_value(&value),
            });
            Ok(Lwm2mRequest {
                method: http::Method::PUT,
                uri: format!("{target}?timeout=5&format=CBOR"),
                body: Some((body.to_string(), "application/json")),
            })
        }
        CommandKind::Execute => Ok(Lwm2mRequest {
            method: http::Method::POST,
            uri: format!("{target}?timeout=5"),
            body: command
                .value
                .text_value
                .clone()
                .filter(|a| !a.is_empty())
                .map(|a| (a, "text/plain")),
        }),
        CommandKind::Read => Ok(Lwm2mRequest {
            method: http::Method::GET,
            uri: format!("{target}?timeout=5"),
            body: None,
        }),
        other => Err(leshan_refusal(other)),
    }
}

/// Why a command of `kind` does not go through a Leshan server: its REST
/// contract (docs/api.md) carries read, write and execute only.
fn leshan_refusal(kind: CommandKind) -> String {
    format!(
        "{kind} goes to devices registered with flownexus itself; through a Leshan \
         server only read, write and execute are sent"
    )
}

/// Backoff before the next try after `attempts` spent attempts.
pub fn backoff_ms(attempts: i64) -> i64 {
    let shift = attempts.clamp(1, 16) - 1;
    (FIRST_BACKOFF_MS << shift).min(MAX_BACKOFF_MS)
}

/// What the database should record for an answer (pure).
pub fn settle_for(
    answer: &Answer,
    attempts_before: i64,
    max_attempts: i64,
    now: i64,
) -> Settle<'_> {
    match answer {
        Answer::Success { status, .. } => Settle::Confirmed {
            device_status: status,
        },
        Answer::DeviceError { status, message } => Settle::Failed {
            device_status: Some(status),
            error: message
                .as_deref()
                .unwrap_or("the device refused the command"),
            attempts: attempts_before + 1,
        },
        Answer::Invalid(message) => Settle::Failed {
            device_status: None,
            error: message,
            attempts: attempts_before + 1,
        },
        Answer::NotReachable(message) => Settle::AwaitWake { error: message },
        Answer::Transient(message) => {
            let attempts = attempts_before + 1;
            if attempts >= max_attempts {
                Settle::Failed {
                    device_status: None,
                    error: message,
                    attempts,
                }
            } else {
                Settle::Retry {
                    error: message,
                    attempts,
                    not_before: now + backoff_ms(attempts),
                }
            }
        }
    }
}

/// The dispatcher's HTTP client.
#[derive(Clone)]
struct Lwm2mClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Lwm2mClient {
    fn new(base: &str, timeout: Duration) -> Lwm2mClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Lwm2mClient {
            base: base.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    async fn send(&self, command: &Claimed) -> Answer {
        let request = match request_for(&self.base, command) {
            Ok(r) => r,
            Err(reason) => return Answer::Invalid(reason),
        };
        let mut builder = http::Request::builder()
            .method(request.method)
            .uri(&request.uri)
            .header(http::header::ACCEPT, "application/json");
        let body = match request.body {
            Some((body, content_type)) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let http_request = match builder.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => return Answer::Invalid(format!("cannot build the request: {e}")),
        };
        let call = async {
            let response = self
                .client
                .request(http_request)
                .await
                .map_err(|e| format!("cannot reach the LwM2M server: {e}"))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| format!("cannot read the LwM2M server's answer: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Answer::Transient(format!(
                "no answer from the LwM2M server within {} s",
                self.timeout.as_secs()
            )),
            Ok(Err(reason)) => Answer::Transient(reason),
            Ok(Ok((status, body))) => classify(status, &body),
        }
    }
}

/// The running dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    db: Db,
    /// Publishes settled commands as the writer and the command service
    /// publish their changes.
    after_commit: AfterCommit,
    domain: DomainEvents,
    writer: IngestWriter,
    client: Lwm2mClient,
    /// For the native LwM2M server (`state.lwm2m`), started after the
    /// dispatcher: commands for the endpoints registered there go over
    /// CoAP, the rest through the Leshan REST API.
    state: AppState,
    max_attempts: i64,
    lease_ms: i64,
    update_timeout_ms: i64,
    /// Endpoints being sent to by this dispatcher now.
    busy: Arc<Mutex<HashSet<i64>>>,
    slots: Arc<tokio::sync::Semaphore>,
}

/// Starts the dispatcher task (it runs until the domain event bus closes).
pub fn spawn(state: &AppState) -> Dispatcher {
    let settings = &state.settings;
    let timeout = Duration::from_secs(settings.command_timeout_secs);
    let dispatcher = Dispatcher {
        db: state.db.clone(),
        after_commit: state.after_commit.clone(),
        domain: state.domain.clone(),
        writer: state.writer.clone(),
        client: Lwm2mClient::new(&settings.lwm2m_rest_url, timeout),
        state: state.clone(),
        max_attempts: i64::from(settings.command_max_attempts),
        // A claim outlives one call's timeout by a margin before it counts
        // as abandoned.
        lease_ms: (timeout.as_millis() as i64) + 10_000,
        update_timeout_ms: (settings.firmware_update_timeout_minutes as i64) * 60_000,
        busy: Arc::default(),
        slots: Arc::new(tokio::sync::Semaphore::new(PARALLEL_ENDPOINTS)),
    };
    tokio::spawn(dispatcher.clone().run());
    dispatcher
}

impl Dispatcher {
    async fn run(self) {
        let mut events = self.domain.subscribe();
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut waiting: HashSet<i64> = HashSet::new();
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    if let Err(e) = self.housekeeping().await {
                        tracing::error!(error = %e, "command dispatcher housekeeping failed");
                    }
                    match ops::endpoints_with_queued(&self.db.pool).await {
                        Ok(ids) => waiting = ids.into_iter().collect(),
                        Err(e) => tracing::error!(error = %e, "command dispatcher cannot read the queue"),
                    }
                }
                event = events.recv() => {
                    let relevant = match event {
                        Ok(DomainEvent::DeviceAwake { .. } | DomainEvent::OperationQueued { .. }) => true,
                        Ok(DomainEvent::EndpointsHeard { endpoint_ids }) => {
                            endpoint_ids.iter().any(|id| waiting.contains(id))
                        }
                        Ok(_) => false,
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => return,
                    };
                    if !relevant {
                        continue;
                    }
                    // Take what else has arrived, so a burst is one round.
                    while events.try_recv().is_ok() {}
                    if let Ok(ids) = ops::endpoints_with_queued(&self.db.pool).await {
                        waiting = ids.into_iter().collect();
                    }
                }
            }
            if let Err(e) = self.dispatch_ready().await {
                tracing::error!(error = %e, "command dispatcher cannot read the queue");
            }
        }
    }

    /// Recovers abandoned sends, expires old commands and times out stalled
    /// firmware updates.
    pub async fn housekeeping(&self) -> Result<(), sqlx::Error> {
        let now = store::now_ms();
        for (id, attempts) in ops::stale_sending(&self.db.pool, now - self.lease_ms).await? {
            let answer = Answer::Transient(
                "the send was interrupted (server restart or lost database connection)".into(),
            );
            tracing::warn!(operation = id, "recovering a command left in sending");
            self.record(id, &answer, attempts, now).await?;
        }
        // An UPDATE takes SQLite's write lock even when it changes nothing,
        // and a pooled connection's wait for it sleeps the ingest writer
        // in SQLite's busy handler when the two meet: so the expiry is
        // looked for first, and written at the write gate.
        if ops::any_expired(&self.db.pool, now).await? {
            let mut tx = self.db.begin_gated().await?;
            let expired = ops::expire(&mut tx.conn(), now).await?;
            tx.commit().await?;
            for (id, endpoint_id) in expired {
                tracing::warn!(operation = id, "command expired before it could be sent");
                self.after_settle(id, endpoint_id).await;
            }
        }
        let timed_out = super::commands::time_out_updates(
            &self.db,
            &self.after_commit,
            now,
            now - self.update_timeout_ms,
        )
        .await?;
        if timed_out > 0 {
            tracing::warn!(count = timed_out, "firmware updates timed out");
        }
        Ok(())
    }

    /// Sends what may go out now, one task per endpoint.
    pub async fn dispatch_ready(&self) -> Result<(), sqlx::Error> {
        let ready = ops::ready_endpoints(&self.db.pool, store::now_ms(), 256).await?;
        for endpoint_id in ready {
            if !self
                .busy
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(endpoint_id)
            {
                continue;
            }
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.drain_endpoint(endpoint_id).await {
                    tracing::error!(error = %e, endpoint_id, "command dispatch failed");
                }
                this.busy
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&endpoint_id);
                drop(permit);
            });
        }
        Ok(())
    }

    /// Sends an endpoint's commands one after the other while they may go.
    async fn drain_endpoint(&self, endpoint_id: i64) -> Result<(), sqlx::Error> {
        loop {
            let claimed = {
                let mut conn = self.db.pool.acquire().await?;
                ops::claim_next(&mut conn, self.db.backend, endpoint_id, store::now_ms()).await?
            };
            let Some(command) = claimed else {
                return Ok(());
            };
            self.publish(&command.endpoint, command.id, None, "sending");
            tracing::info!(
                operation = command.id,
                endpoint = command.endpoint,
                kind = command.kind.as_str(),
                path = command.path,
                "sending command"
            );
            let native = match self.state.lwm2m.get() {
                // Bounded like a call to Leshan, within the claim's lease.
                Some(lwm2m) => {
                    match tokio::time::timeout(self.client.timeout, lwm2m.command(&command)).await {
                        Ok(answer) => answer,
                        Err(_) => lwm2m.registration(&command.endpoint).map(|r| {
                            crate::server::lwm2m::command::answer_to_silence(
                                &crate::server::lwm2m::downlink::DownlinkError::Timeout,
                                r.queue_mode,
                            )
                        }),
                    }
                }
                None => None,
            };
            let answer = match native {
                Some(answer) => answer,
                None => self.client.send(&command).await,
            };
            let stop = !matches!(answer, Answer::Success { .. } | Answer::DeviceError { .. });
            // What the answer carries is kept before the command settles, so
            // whoever sees it confirmed also finds its value or links.
            if let (
                Answer::Success {
                    content: Some(content),
                    ..
                },
                CommandKind::Read,
            ) = (&answer, command.kind)
            {
                self.store_read(&command, content).await;
            }
            if let (
                Answer::Success {
                    content: Some(Json::String(links)),
                    ..
                },
                CommandKind::Discover,
            ) = (&answer, command.kind)
            {
                ops::set_answer(&self.db.pool, command.id, links).await?;
            }
            self.record(command.id, &answer, command.attempts, store::now_ms())
                .await?;
            // Not reachable or a transient failure: the rest of this
            // endpoint's queue waits behind the head command.
            if stop {
                return Ok(());
            }
        }
    }

    /// Records the outcome of a send and what follows from it.
    async fn record(
        &self,
        id: i64,
        answer: &Answer,
        attempts_before: i64,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let settle = settle_for(answer, attempts_before, self.max_attempts, now);
        match &settle {
            Settle::Confirmed { .. } => tracing::info!(operation = id, "command confirmed"),
            Settle::Failed { error, .. } => tracing::warn!(operation = id, error, "command failed"),
            Settle::AwaitWake { error } => {
                tracing::info!(
                    operation = id,
                    reason = error,
                    "device not listening; command waits"
                )
            }
            Settle::Retry {
                error, attempts, ..
            } => {
                tracing::warn!(
                    operation = id,
                    error,
                    attempts,
                    "command send failed; will retry"
                )
            }
        }
        let endpoint_id = super::commands::settle_command(&self.db, id, &settle, now).await?;
        if let Some(endpoint_id) = endpoint_id {
            self.after_settle(id, endpoint_id).await;
        }
        Ok(())
    }

    /// Tells the pages (and a waiting firmware update) that a command moved.
    async fn after_settle(&self, id: i64, endpoint_id: i64) {
        match ops::view(&self.db.pool, id, store::now_ms()).await {
            Ok(Some(view)) => {
                let update_id = super::commands::update_of_command(&self.db.pool, id)
                    .await
                    .unwrap_or(None);
                self.publish(&view.endpoint, id, update_id, view.status.as_str());
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, endpoint_id, "cannot read a settled command"),
        }
    }

    fn publish(&self, endpoint: &str, command_id: i64, update_id: Option<i64>, status: &str) {
        self.after_commit
            .domain_events([super::commands::status_changed(
                endpoint,
                Some(command_id),
                update_id,
                status,
            )]);
    }

    /// A read's answer is stored like a report of the device, through the
    /// ingest writer (same validation, events and live updates).
    async fn store_read(&self, command: &Claimed, content: &Json) {
        let body = json!({
            "ep": command.endpoint,
            "val": { command.path.clone(): content },
        });
        let stored = match serde_json::to_vec(&body) {
            Ok(bytes) => match parse_composite(&bytes) {
                Ok(uplink) => self.writer.submit(uplink).await,
                Err(e) => Err(e),
            },
            Err(_) => return,
        };
        if let Err(e) = stored {
            tracing::warn!(
                operation = command.id,
                error = %e,
                "the read's answer could not be stored"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::resource::Columns;

    fn claimed(
        kind: CommandKind,
        path: &str,
        data_type: Option<DataType>,
        value: Columns,
    ) -> Claimed {
        Claimed {
            id: 1,
            endpoint_id: 1,
            endpoint: "urn:imei:1 x/y".into(),
            kind,
            path: path.into(),
            data_type,
            value,
            attempts: 0,
        }
    }

    #[test]
    fn only_success_true_confirms() {
        let ok = br#"{"status":"CHANGED","valid":true,"success":true,"failure":false}"#;
        assert_eq!(
            classify(200, ok),
            Answer::Success {
                status: "CHANGED".into(),
                content: None
            }
        );
        let refused = br#"{"status":"NOT_FOUND","valid":true,"success":false,"failure":true,"errormessage":"no such resource"}"#;
        assert_eq!(
            classify(200, refused),
            Answer::DeviceError {
                status: "NOT_FOUND".into(),
                message: Some("no such resource".into())
            }
        );
        assert!(matches!(classify(200, b"not json"), Answer::Transient(_)));
        let read = br#"{"status":"CONTENT","success":true,"content":{"kind":"singleResource","id":0,"type":"STRING","value":"x"}}"#;
        assert!(matches!(
            classify(200, read),
            Answer::Success {
                content: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn http_errors_are_told_apart() {
        assert!(matches!(
            classify(400, b"no registered client with id 'x'"),
            Answer::NotReachable(_)
        ));
        assert!(matches!(
            classify(400, b"Client is sleeping"),
            Answer::NotReachable(_)
        ));
        assert!(matches!(classify(400, b"invalid path"), Answer::Invalid(_)));
        assert!(matches!(classify(504, b"timeout"), Answer::Transient(_)));
        assert!(matches!(classify(500, b"boom"), Answer::Transient(_)));
    }

    #[test]
    fn transient_failures_spend_attempts_and_back_off() {
        let t = Answer::Transient("x".into());
        assert_eq!(
            settle_for(&t, 0, 3, 1000),
            Settle::Retry {
                error: "x",
                attempts: 1,
                not_before: 1000 + FIRST_BACKOFF_MS
            }
        );
        assert!(matches!(
            settle_for(&t, 2, 3, 0),
            Settle::Failed { attempts: 3, .. }
        ));
        assert_eq!(
            settle_for(&Answer::NotReachable("asleep".into()), 2, 3, 0),
            Settle::AwaitWake { error: "asleep" }
        );
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
    }

    #[test]
    fn requests_follow_the_downlink_contract() {
        let write = claimed(
            CommandKind::Write,
            "/5/0/1",
            Some(DataType::String),
            Columns {
                text_value: Some("http://fx/binaries/fw.bin".into()),
                ..Default::default()
            },
        );
        let r = request_for("http://leshan:8080", &write).unwrap();
        assert_eq!(r.method, http::Method::PUT);
        assert_eq!(
            r.uri,
            "http://leshan:8080/api/clients/urn%3Aimei%3A1%20x%2Fy/5/0/1?timeout=5&format=CBOR"
        );
        let body: Json = serde_json::from_str(&r.body.unwrap().0).unwrap();
        assert_eq!(
            body,
            json!({"id": 1, "kind": "singleResource", "type": "STRING", "value": "http://fx/binaries/fw.bin"})
        );
        let boolean = claimed(
            CommandKind::Write,
            "/1/0/6",
            Some(DataType::Boolean),
            Columns {
                int_value: Some(1),
                ..Default::default()
            },
        );
        let body: Json =
            serde_json::from_str(&request_for("http://l", &boolean).unwrap().body.unwrap().0)
                .unwrap();
        assert_eq!(body["value"], json!(true));
        let exec = claimed(CommandKind::Execute, "/3/0/4", None, Columns::default());
        let r = request_for("http://l", &exec).unwrap();
        assert_eq!(r.method, http::Method::POST);
        assert!(r.uri.ends_with("/3/0/4?timeout=5"));
        assert_eq!(r.body, None);
        let read = claimed(CommandKind::Read, "/3", None, Columns::default());
        let r = request_for("http://l", &read).unwrap();
        assert_eq!(r.method, http::Method::GET);
        assert!(r.uri.ends_with("/3?timeout=5"));
        let bad = claimed(
            CommandKind::Write,
            "/3",
            Some(DataType::String),
            Columns::default(),
        );
        assert!(request_for("http://l", &bad).is_err());
        // The contract has no discover, create, delete, attributes or observe.
        for kind in CommandKind::ALL.into_iter().filter(|k| !k.via_leshan()) {
            let c = claimed(kind, "/3303/0", None, Columns::default());
            let e = request_for("http://l", &c).unwrap_err();
            assert!(e.contains("only read, write and execute"), "{kind}: {e}");
        }
    }
}
