//! The native LwM2M server against LwM2M clients that no one on the team
//! wrote, each run as a separate process on both databases:
//!
//! - `tests/peers/aiocoap_device.py`: an LwM2M 1.1 device on Python's
//!   aiocoap (one context serves its resources and sends its requests from
//!   one port), SenML CBOR throughout;
//! - `tests/peers/node_client.js`: an LwM2M 1.0 client on the npm package
//!   lwm2m-node-lib (run as a process only; it is AGPL).
//!
//! `scripts/setup.sh` installs both (pip: aiocoap, cbor2; npm ci in
//! tests/peers). Every peer prints what it did as JSON lines; the tests
//! compare that with what the server stored.
mod common;

use common::{Backend, TestApp};
use flownexus::server::config::NosecPolicy;
use flownexus::server::db;
use flownexus::server::lwm2m::Lwm2mHandle;
use serde_json::Value as Json;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one condition is polled for at most.
const POLL_LIMIT: Duration = Duration::from_secs(20);

/// A test app with the LwM2M server on a free loopback port, open to any
/// endpoint over plain CoAP.
async fn app(backend: Backend) -> (TestApp, Lwm2mHandle) {
    common::coap::app(backend, NosecPolicy::Open).await
}

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// A peer running as a child process. Its output goes to files (so that
/// a peer that hangs can still be shown); it is killed when dropped.
struct Peer {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// What a peer printed.
struct PeerRun {
    name: String,
    lines: Vec<Json>,
    stdout: String,
    stderr: String,
}

impl Peer {
    fn spawn(app: &TestApp, name: &str, program: &str, args: &[&str]) -> Peer {
        let dir = app.tdb.dir.path();
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(program)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{program} {args:?} does not start ({e}); scripts/setup.sh installs the peers"
                )
            });
        Peer {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    /// The aiocoap device, against the server at `server`.
    fn aiocoap(app: &TestApp, server: &Lwm2mHandle, endpoint: &str, extra: &[&str]) -> Peer {
        let script = peers_dir().join("aiocoap_device.py");
        let addr = server.local_addr.to_string();
        let mut args = vec![
            script.to_str().unwrap(),
            "--server",
            &addr,
            "--ep",
            endpoint,
        ];
        args.extend_from_slice(extra);
        Peer::spawn(app, endpoint, "python3", &args)
    }

    /// The lwm2m-node-lib client, against the server at `server`.
    fn node(app: &TestApp, server: &Lwm2mHandle, endpoint: &str, seconds: &str) -> Peer {
        let dir = peers_dir();
        assert!(
            dir.join("node_modules/lwm2m-node-lib").is_dir(),
            "tests/peers/node_modules is missing: run scripts/setup.sh"
        );
        let script = dir.join("node_client.js");
        let addr = server.local_addr.to_string();
        let args = [
            script.to_str().unwrap(),
            "--server",
            &addr,
            "--ep",
            endpoint,
            "--seconds",
            seconds,
        ];
        Peer::spawn(app, endpoint, "node", &args)
    }

    /// Kills the peer if it still runs, and reaps it.
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn output(&self) -> (String, String) {
        (
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }

    /// Waits (at most `limit`) for the peer to exit successfully; kills it
    /// and fails the test otherwise.
    async fn finish(mut self, limit: Duration) -> PeerRun {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.stop();
                let (stdout, stderr) = self.output();
                panic!(
                    "{} did not exit within {limit:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (stdout, stderr) = self.output();
        assert!(
            status.success(),
            "{} exited with {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.name
        );
        let lines = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .filter(|j| j.get("event").is_some())
            .collect();
        PeerRun {
            name: self.name.clone(),
            lines,
            stdout,
            stderr,
        }
    }
}

/// A peer is never left running: a failing test kills it.
impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl PeerRun {
    fn events(&self, event: &str) -> Vec<&Json> {
        self.lines.iter().filter(|j| j["event"] == event).collect()
    }

    /// The one line of `event`.
    fn one(&self, event: &str) -> &Json {
        match self.events(event).as_slice() {
            [one] => one,
            other => panic!(
                "{}: {} {event:?} lines\n--- stdout\n{}\n--- stderr\n{}",
                self.name,
                other.len(),
                self.stdout,
                self.stderr
            ),
        }
    }

    fn floats(&self, event: &str, field: &str) -> Vec<f64> {
        self.one(event)[field]
            .as_array()
            .unwrap_or_else(|| panic!("{}: {event}.{field} is a list", self.name))
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    }
}

/// Polls `f` until it returns Some (at most `POLL_LIMIT`).
async fn poll<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "still not so after {POLL_LIMIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stored values of `/object/*/resource` of `endpoint`, oldest first:
/// (float, int, text).
async fn stored(
    app: &TestApp,
    endpoint: &str,
    object: i64,
    resource: i64,
) -> Vec<(Option<f64>, Option<i64>, Option<String>)> {
    sqlx::query_as(
        "SELECT r.float_value, r.int_value, r.text_value FROM resource r \
         JOIN endpoint e ON e.id = r.endpoint_id \
         JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE e.name = $1 AND t.object_id = $2 AND t.resource_id = $3 ORDER BY r.id",
    )
    .bind(endpoint)
    .bind(object)
    .bind(resource)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}

async fn floats(app: &TestApp, endpoint: &str, object: i64, resource: i64) -> Vec<f64> {
    stored(app, endpoint, object, resource)
        .await
        .into_iter()
        .filter_map(|(f, _, _)| f)
        .collect()
}

async fn texts(app: &TestApp, endpoint: &str, object: i64, resource: i64) -> Vec<String> {
    stored(app, endpoint, object, resource)
        .await
        .into_iter()
        .filter_map(|(_, _, t)| t)
        .collect()
}

async fn events_of(app: &TestApp, endpoint: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT e.event_type FROM event e JOIN endpoint p ON p.id = e.endpoint_id \
         WHERE p.name = $1 ORDER BY e.id",
    )
    .bind(endpoint)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}

/// Queues a command through the data API; returns its id.
async fn queue_command(app: &TestApp, token: &str, body: Json) -> i64 {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    let req = Request::post("/api/v1/commands")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, answer) = app.request(req).await;
    let answer: Json = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["id"].as_i64().unwrap()
}

/// Waits until command `id` is settled; returns (status, device status).
async fn settled(app: &TestApp, id: i64) -> (String, Option<String>) {
    poll(&format!("command {id} is settled"), || async {
        let (status, device_status): (String, Option<String>) =
            sqlx::query_as("SELECT status, device_status FROM endpoint_operation WHERE id = $1")
                .bind(id)
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        (status == "confirmed" || status == "failed").then_some((status, device_status))
    })
    .await
}

/// Waits until `endpoint` is registered and observed at /3303/0/5700.
async fn onboarded(lwm2m: &Lwm2mHandle, endpoint: &str) {
    poll(&format!("{endpoint} registered and observed"), || async {
        (lwm2m.registration(endpoint).is_some()
            && lwm2m
                .observations(endpoint)
                .contains(&"/3303/0/5700".to_string()))
        .then_some(())
    })
    .await
}

/// The aiocoap device registers, its Device object is read (in SenML
/// CBOR, the format its root link announces), its temperature is observed
/// and every notification it sent is stored, its Send (SenML CBOR with a
/// base time) is stored, and it de-registers.
async fn aiocoap_device_is_read_observed_and_sends(backend: Backend) {
    let (app, lwm2m) = app(backend).await;
    let started = Instant::now();
    let run = Peer::aiocoap(&app, &lwm2m, "aio-1", &["--seconds", "5"])
        .finish(Duration::from_secs(60))
        .await;
    let elapsed = started.elapsed();

    assert_eq!(run.one("registered")["code"], "2.01 Created");
    assert_eq!(run.one("send")["code"], "2.04 Changed");
    assert_eq!(run.one("deregistered")["code"], "2.02 Deleted");
    let read = run.one("read");
    assert_eq!(
        (&read["path"], &read["accept"]),
        (&Json::from("/3"), &Json::from(112)),
        "the Device object is read once, in SenML CBOR"
    );
    let observe = run.one("observe");
    assert_eq!(
        (&observe["path"], &observe["accept"]),
        (&Json::from("/3303/0/5700"), &Json::from(112))
    );
    assert!(
        run.events("not_found").is_empty(),
        "the server asked only for what the device registered: {:?}",
        run.events("not_found")
    );
    let notified = run.floats("deregistered", "notified");
    assert!(
        notified.len() >= 3,
        "the device notified a few times in 5 s: {notified:?} ({elapsed:?})"
    );

    // The first answer to the Observe (20.5), the Send's 36.75, and the
    // notifications that reached the server. A device may skip states
    // while a confirmable notification is unacknowledged (RFC 7641 §4.5.2:
    // aiocoap does, and the server acknowledges after the commit), so not
    // every state it logged is sent; at least two are.
    let temperatures = poll("the notifications are stored", || async {
        let t = floats(&app, "aio-1", 3303, 5700).await;
        let notifications = notified.iter().filter(|v| t.contains(v)).count();
        let all = [20.5, 36.75].iter().all(|v| t.contains(v)) && notifications >= 2;
        all.then_some(t)
    })
    .await;
    for t in &temperatures {
        assert!(
            *t == 20.5 || *t == 36.75 || notified.contains(t),
            "{t} was never reported: {temperatures:?}"
        );
    }
    assert_eq!(texts(&app, "aio-1", 3, 0).await, vec!["aiocoap peer"]);
    assert_eq!(texts(&app, "aio-1", 3, 1).await, vec!["aio-model"]);
    assert_eq!(
        texts(&app, "aio-1", 3, 3).await,
        vec!["1.0.0", "send-fw-2.1"],
        "/3/0/3 read, then sent"
    );
    let battery: Vec<Option<i64>> = stored(&app, "aio-1", 3, 9)
        .await
        .into_iter()
        .map(|(_, i, _)| i)
        .collect();
    assert_eq!(battery, vec![Some(87)]);

    let events = events_of(&app, "aio-1").await;
    assert_eq!(events.first().map(String::as_str), Some("registered"));
    assert!(events.contains(&"deregistered".to_string()), "{events:?}");
    assert!(lwm2m.registration("aio-1").is_none());
    let endpoint_id = db::endpoint::id_by_name(&app.state.db.pool, "aio-1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        db::lwm2m_registration::find_by_endpoint(&app.state.db.pool, endpoint_id)
            .await
            .unwrap()
            .is_none()
    );
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert_eq!(
        (
            counters.registrations,
            counters.deregistrations,
            counters.sends
        ),
        (1, 1, 1),
        "{counters:?}"
    );
    assert!(counters.notifications >= 2, "{counters:?}");
    assert_eq!(counters.client_errors, 0, "{counters:?}");
}

/// Commands from the data API reach the aiocoap device over CoAP: a write
/// (in SenML CBOR, the format it announced), a read of what was written
/// (stored), and a write to a resource it does not have (its 4.04).
async fn aiocoap_device_takes_commands_from_the_api(backend: Backend) {
    use flownexus::server::db::api_token::Scope;
    let (app, lwm2m) = app(backend).await;
    flownexus::server::dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    let peer = Peer::aiocoap(&app, &lwm2m, "aio-cmd", &["--seconds", "10"]);
    onboarded(&lwm2m, "aio-cmd").await;

    let write = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "aio-cmd", "kind": "write", "path": "/3/0/15", "value": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(
        settled(&app, write).await,
        ("confirmed".into(), Some("CHANGED".into()))
    );
    let read = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "aio-cmd", "kind": "read", "path": "/3/0/15"}),
    )
    .await;
    assert_eq!(
        settled(&app, read).await,
        ("confirmed".into(), Some("CONTENT".into()))
    );
    assert_eq!(
        texts(&app, "aio-cmd", 3, 15)
            .await
            .last()
            .map(String::as_str),
        Some("Europe/Berlin"),
        "the written timezone, read back and stored"
    );
    let refused = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "aio-cmd", "kind": "write", "path": "/3/0/14", "value": "+02:00"}),
    )
    .await;
    assert_eq!(
        settled(&app, refused).await,
        ("failed".into(), Some("NOT_FOUND".into())),
        "the device has no /3/0/14"
    );

    let run = peer.finish(Duration::from_secs(60)).await;
    let writes = run.events("write");
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0]["path"], "/3/0/15");
    assert_eq!(writes[0]["value"], "Europe/Berlin");
    assert_eq!(
        writes[0]["content_format"], 112,
        "written in the format the device announced"
    );
    let reads: Vec<&Json> = run
        .events("read")
        .into_iter()
        .filter(|r| r["path"] == "/3/0/15")
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["accept"], 112);
    let not_found = run.one("not_found");
    assert_eq!(
        (&not_found["path"], &not_found["method"]),
        (&Json::from("/3/0/14"), &Json::from("PUT"))
    );
    assert_eq!(run.one("deregistered")["code"], "2.02 Deleted");
}

/// After a De-register the server ends the registration's observations
/// (as it does when a registration expires or is replaced): a device that
/// goes on notifying gets a reset (RFC 7641 §3.6) and nothing more is
/// stored for the de-registered endpoint.
async fn no_notification_is_stored_after_the_deregistration(backend: Backend) {
    let (app, lwm2m) = app(backend).await;
    let run = Peer::aiocoap(
        &app,
        &lwm2m,
        "aio-gone",
        &["--seconds", "2", "--linger", "2.5"],
    )
    .finish(Duration::from_secs(60))
    .await;
    assert_eq!(run.one("deregistered")["code"], "2.02 Deleted");
    let before = run.floats("deregistered", "notified");
    let after: Vec<f64> = run.floats("lingered", "notified")[before.len()..].to_vec();
    // Let the server handle what the device sent last.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let temperatures = floats(&app, "aio-gone", 3303, 5700).await;
    let late: Vec<f64> = after
        .iter()
        .copied()
        .filter(|v| temperatures.contains(v))
        .collect();
    assert!(
        late.is_empty(),
        "notifications sent after the De-register were stored: {late:?} (all stored: {temperatures:?}, notified after: {after:?})"
    );
    assert_eq!(
        lwm2m.observations("aio-gone"),
        Vec::<String>::new(),
        "observations of a de-registered endpoint"
    );
    assert!(
        after.len() <= 1,
        "the device was told (reset) to stop notifying, yet notified {after:?}"
    );
}

/// A Device object larger than one block: the device answers the read of
/// /3 block-wise (RFC 7959 §2.4), and the server fetches the other blocks
/// and stores the whole object.
async fn a_block_wise_answer_is_reassembled(backend: Backend) {
    let (app, lwm2m) = app(backend).await;
    let run = Peer::aiocoap(&app, &lwm2m, "aio-big", &["--seconds", "2", "--big"])
        .finish(Duration::from_secs(60))
        .await;
    assert_eq!(run.one("deregistered")["code"], "2.02 Deleted");
    let manufacturer = poll("/3/0/0 stored", || async {
        texts(&app, "aio-big", 3, 0).await.pop()
    })
    .await;
    assert!(manufacturer.starts_with("aiocoap peer xxx"));
    assert_eq!(manufacturer.len(), "aiocoap peer ".len() + 3000);
    assert_eq!(texts(&app, "aio-big", 3, 1).await, vec!["aio-model"]);
}

/// Notifications larger than one block (2.5 KB of SenML CBOR) are stored
/// whole. aiocoap 0.4.17 sends such a notification block-wise or, on
/// loopback, as one datagram; either way every record must arrive whole.
/// The reassembly the server uses for block-wise notifications (RFC 7959
/// §2.6), `coap::block::Block2Download`, is unit-tested with the blocks
/// spelled out; no peer here sends one block-wise.
async fn large_notifications_are_stored_whole(backend: Backend) {
    let (app, lwm2m) = app(backend).await;
    let run = Peer::aiocoap(
        &app,
        &lwm2m,
        "aio-bign",
        &["--seconds", "4", "--big-notify"],
    )
    .finish(Duration::from_secs(60))
    .await;
    assert_eq!(run.one("deregistered")["code"], "2.02 Deleted");
    let notified = run.floats("deregistered", "notified");
    let temperatures = poll("block-wise notifications stored", || async {
        let t = floats(&app, "aio-bign", 3303, 5700).await;
        (notified.iter().filter(|v| t.contains(v)).count() >= 2).then_some(t)
    })
    .await;
    assert_eq!(
        temperatures[0], 20.5,
        "the Observe's block-wise first answer"
    );
    let units = texts(&app, "aio-bign", 3303, 5701).await;
    assert!(units.len() >= 3, "{} units stored", units.len());
    assert!(units.iter().all(|u| u.len() == 2503), "whole records");
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert_eq!(counters.block_errors, 0, "{counters:?}");
}

/// The lwm2m-node-lib client (LwM2M 1.0) registers, its temperature is
/// observed in the format it answers (text, with no Content-Format) and
/// stored, a write and a read from the data API reach it, and it
/// de-registers.
async fn lwm2m_node_lib_client_is_observed_and_written(backend: Backend) {
    use flownexus::server::db::api_token::Scope;
    let (app, lwm2m) = app(backend).await;
    flownexus::server::dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    let peer = Peer::node(&app, &lwm2m, "node-1", "10");
    onboarded(&lwm2m, "node-1").await;
    let registration = lwm2m.registration("node-1").unwrap();
    assert_eq!(
        (
            registration.lwm2m_version.as_str(),
            registration.binding.as_str()
        ),
        ("1.0", "U")
    );
    assert!(
        registration.object_links.contains("</3303/0>"),
        "{}",
        registration.object_links
    );
    // The first answer to the Observe and a few notifications.
    poll("three temperatures stored", || async {
        (floats(&app, "node-1", 3303, 5700).await.len() >= 3).then_some(())
    })
    .await;

    let write = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "node-1", "kind": "write", "path": "/3/0/15", "value": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(
        settled(&app, write).await,
        ("confirmed".into(), Some("CHANGED".into()))
    );
    let read = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "node-1", "kind": "read", "path": "/3/0/0"}),
    )
    .await;
    assert_eq!(
        settled(&app, read).await,
        ("confirmed".into(), Some("CONTENT".into()))
    );
    assert_eq!(
        texts(&app, "node-1", 3, 0).await,
        vec!["lwm2m-node-lib peer"]
    );

    let run = peer.finish(Duration::from_secs(60)).await;
    let writes = run.events("write");
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0]["path"], "/3/0/15");
    // The server writes TLV to a 1.0 client; lwm2m-node-lib hands its
    // handler the payload as UTF-8 text whatever its Content-Format, so
    // the TLV header comes first.
    let value = writes[0]["value"].as_str().unwrap();
    assert!(value.ends_with("Europe/Berlin"), "{value:?}");
    let changed = run.floats("deregistered", "changed");
    assert!(changed.len() >= 3, "{changed:?}");
    let temperatures = poll("the notifications are stored", || async {
        let t = floats(&app, "node-1", 3303, 5700).await;
        (changed.iter().filter(|v| t.contains(v)).count() >= 3).then_some(t)
    })
    .await;
    // The Observe's first answer is stored; it may commit after the first
    // notification, which the client sends as soon as it counts the
    // observer (each goes to the writer on its own task).
    assert_eq!(
        temperatures.iter().filter(|t| **t == 18.5).count(),
        1,
        "the Observe's first answer: {temperatures:?}"
    );
    for t in temperatures.iter().filter(|t| **t != 18.5) {
        assert!(
            changed.contains(t),
            "{t} was never reported: {temperatures:?}"
        );
    }
    let events = events_of(&app, "node-1").await;
    assert_eq!(events.first().map(String::as_str), Some("registered"));
    assert_eq!(events.last().map(String::as_str), Some("deregistered"));
    assert!(lwm2m.registration("node-1").is_none());
}

/// A write larger than one block reaches the aiocoap device block-wise
/// (RFC 7959 Block1; aiocoap's own Block1 spool reassembles it): a
/// 5000-byte package written to /5/0/0 arrives whole, and the command is
/// confirmed with the answer to the last block.
async fn a_large_write_reaches_the_aiocoap_device_block_wise(backend: Backend) {
    use flownexus::server::db::api_token::Scope;
    use sha2::{Digest, Sha256};
    let (app, lwm2m) = app(backend).await;
    flownexus::server::dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    let peer = Peer::aiocoap(&app, &lwm2m, "aio-pkg", &["--seconds", "8", "--package"]);
    onboarded(&lwm2m, "aio-pkg").await;
    let image: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    let write = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "aio-pkg", "kind": "write", "path": "/5/0/0", "value": hex::encode(&image)}),
    )
    .await;
    assert_eq!(
        settled(&app, write).await,
        ("confirmed".into(), Some("CHANGED".into()))
    );
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert!(counters.block_transfers >= 1, "{counters:?}");
    assert_eq!(counters.block_errors, 0, "{counters:?}");
    let run = peer.finish(Duration::from_secs(30)).await;
    let package = run.one("package");
    assert_eq!(package["size"], 5000, "{package}");
    assert_eq!(
        package["sha256"],
        hex::encode(Sha256::digest(&image)),
        "the device took the whole image"
    );
    assert_eq!(package["content_format"], 112, "SenML CBOR, as announced");
}

both_databases!(
    a_large_write_reaches_the_aiocoap_device_block_wise,
    a_block_wise_answer_is_reassembled,
    large_notifications_are_stored_whole,
    aiocoap_device_is_read_observed_and_sends,
    aiocoap_device_takes_commands_from_the_api,
    lwm2m_node_lib_client_is_observed_and_written,
    no_notification_is_stored_after_the_deregistration,
);
