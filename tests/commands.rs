//! Commands and the dispatcher against a fake of the LwM2M server's REST
//! API that follows its documented contract (`common::leshan_fake`), through
//! the real router, service and database: every transition, ordering, no
//! double send with two dispatchers on one database, crash recovery, expiry,
//! queue mode, reads, validation and roles; and the whole firmware flow.
mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::leshan_fake::{FakeLeshan, Mode};
use common::{Backend, TestApp};
use flownexus::model::Role;
use flownexus::server::db::api_token::Scope;
use flownexus::server::store;
use flownexus::server::{auth, dispatch, state::AppState};
use serde_json::{json, Value as Json};
use std::time::Duration;

both_databases!(
    a_write_is_sent_as_the_contract_says_and_confirmed,
    a_device_error_fails_with_its_status_and_can_be_retried,
    not_registered_waits_without_an_attempt_until_the_device_is_heard,
    transient_failures_spend_attempts_then_fail,
    one_endpoint_gets_its_commands_in_order_one_at_a_time,
    two_dispatchers_never_send_a_command_twice,
    a_send_interrupted_by_a_crash_is_recovered,
    queued_commands_expire,
    a_sleeping_device_gets_its_commands_when_it_wakes,
    a_read_stores_what_the_device_answered,
    bad_commands_are_refused_naming_the_field,
    viewers_and_device_tokens_may_not_send,
    cancel_and_retry_only_where_they_apply,
    the_whole_firmware_update_succeeds,
    a_failed_integrity_check_fails_the_update,
    a_stalled_update_times_out_and_can_be_retried,
);

/// An app whose dispatcher talks to a fresh fake; returns an API token too.
async fn app_with_fake(backend: Backend, timeout_secs: u64) -> (TestApp, FakeLeshan, String) {
    let fake = FakeLeshan::start().await;
    let url = fake.url.clone();
    let app = TestApp::with_settings(backend, |s| {
        s.lwm2m_rest_url = url;
        s.command_timeout_secs = timeout_secs;
        s.command_max_attempts = 3;
        s.public_base_url = "https://fx.example.com".into();
    })
    .await;
    dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    (app, fake, token)
}

fn single(ep: &str, obj: i64, id: i64, t: &str, value: Json) -> String {
    json!({"ep": ep, "obj_id": obj, "val": {"kind": "singleResource", "id": id, "type": t, "value": value}})
        .to_string()
}

async fn report(app: &TestApp, ep: &str, obj: i64, id: i64, t: &str, value: Json) {
    let (status, body) = app
        .ingest("/leshan_api/resource/single", single(ep, obj, id, t, value))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Registers `ep` (binding U, or UQ for queue mode).
async fn register(app: &TestApp, ep: &str, queue_mode: bool) {
    report(app, ep, 10240, 0, "TIME", json!(store::now_ms())).await;
    let binding = if queue_mode { "UQ" } else { "U" };
    let body = json!({"ep": ep, "val": {"/3/0/16": {"kind": "singleResource", "id": 16, "type": "STRING", "value": binding}}});
    let (status, body) = app
        .ingest("/leshan_api/resource/composite", body.to_string())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: &str,
    body: Option<Json>,
) -> (StatusCode, Json) {
    let mut req = Request::builder().method(method).uri(path);
    if auth.starts_with("flownexus_session=") {
        req = req.header(header::COOKIE, auth);
    } else if !auth.is_empty() {
        req = req.header(header::AUTHORIZATION, format!("Bearer {auth}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let (status, _, body) = app.request(req).await;
    let json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    (status, json)
}

async fn queue(app: &TestApp, token: &str, body: Json) -> i64 {
    let (status, answer) = call(app, Method::POST, "/api/v1/commands", token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["id"].as_i64().unwrap()
}

async fn command(app: &TestApp, token: &str, id: i64) -> Json {
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/api/v1/commands/{id}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Waits until the command has `status` (at most `secs`).
async fn wait_for(app: &TestApp, token: &str, id: i64, status: &str, secs: u64) -> Json {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let c = command(app, token, id).await;
        if c["status"] == status {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "command {id} did not reach {status} within {secs} s: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events_of(app: &TestApp, token: &str, ep: &str) -> Vec<Json> {
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/api/v1/events?endpoint={ep}&limit=1000"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"].as_array().unwrap().clone()
}

async fn a_write_is_sent_as_the_contract_says_and_confirmed(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    register(&app, "urn:dev 1", false).await;
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "urn:dev 1", "kind": "write", "path": "/3/0/13", "value": "2024-05-31T16:08"}),
    )
    .await;
    let c = wait_for(&app, &token, id, "confirmed", 5).await;
    assert_eq!(c["device_status"], "CHANGED");
    assert_eq!(c["attempts"], 1);
    assert_eq!(c["created_by"], "token ops");
    assert_eq!(c["name"], "current_time");
    let sent = fake.received("urn:dev 1");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, Method::PUT);
    assert_eq!(sent[0].path, "/3/0/13");
    assert_eq!(sent[0].query, "timeout=5&format=CBOR");
    let body: Json = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(
        body,
        json!({"id": 13, "kind": "singleResource", "type": "TIME", "value": 1_717_171_680_000_i64})
    );
    // The audit trail: who queued it, and that it was confirmed.
    let events = events_of(&app, &token, "urn%3Adev%201").await;
    let queued = events
        .iter()
        .find(|e| e["type"] == "command_queued")
        .unwrap();
    assert_eq!(queued["actor"], "token ops");
    assert_eq!(queued["detail"], "write /3/0/13 = 1717171680000");
    assert!(events.iter().any(|e| e["type"] == "command_confirmed"));
}

async fn a_device_error_fails_with_its_status_and_can_be_retried(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    register(&app, "dev-err", false).await;
    fake.set("dev-err", &[Mode::DeviceError, Mode::Success]);
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "dev-err", "kind": "execute", "path": "/3/0/4"}),
    )
    .await;
    let c = wait_for(&app, &token, id, "failed", 5).await;
    assert_eq!(c["device_status"], "NOT_FOUND");
    assert_eq!(c["last_error"], "resource not found on the device");
    assert_eq!(c["attempts"], 1);
    assert_eq!(fake.received("dev-err")[0].method, Method::POST);
    // Only one send: a device error is final, not retried by itself.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.received("dev-err").len(), 1);
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/commands/{id}/retry"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = wait_for(&app, &token, id, "confirmed", 5).await;
    assert_eq!(c["attempts"], 1, "a retry starts with fresh attempts");
    let events = events_of(&app, &token, "dev-err").await;
    assert!(events
        .iter()
        .any(|e| e["type"] == "command_retried" && e["actor"] == "token ops"));
    assert!(events.iter().any(|e| e["type"] == "command_failed"));
}

async fn not_registered_waits_without_an_attempt_until_the_device_is_heard(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    register(&app, "dev-nr", false).await;
    fake.set("dev-nr", &[Mode::NotRegistered, Mode::Success]);
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "dev-nr", "kind": "read", "path": "/3/0"}),
    )
    .await;
    // Sent once, put back without spending an attempt, then left alone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = command(&app, &token, id).await;
    assert_eq!(c["status"], "queued", "{c}");
    assert_eq!(c["attempts"], 0);
    assert!(c["last_error"]
        .as_str()
        .unwrap()
        .contains("No registered client"));
    assert_eq!(fake.received("dev-nr").len(), 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    // The device reports: it listens now.
    report(&app, "dev-nr", 3303, 5700, "FLOAT", json!("21.5")).await;
    wait_for(&app, &token, id, "confirmed", 5).await;
    assert_eq!(fake.received("dev-nr").len(), 2);
}

async fn transient_failures_spend_attempts_then_fail(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 1).await;
    register(&app, "dev-tr", false).await;
    fake.set(
        "dev-tr",
        &[Mode::DeviceTimeout, Mode::ServerError, Mode::Hang],
    );
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "dev-tr", "kind": "execute", "path": "/3/0/4"}),
    )
    .await;
    // 504, backoff 2 s, 500, backoff 4 s, then no answer within the 1 s timeout.
    let c = wait_for(&app, &token, id, "failed", 15).await;
    assert_eq!(c["attempts"], 3);
    assert!(
        c["last_error"].as_str().unwrap().contains("no answer"),
        "{c}"
    );
    assert_eq!(fake.received("dev-tr").len(), 3);
}

async fn one_endpoint_gets_its_commands_in_order_one_at_a_time(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    // Known but not registered: commands wait.
    report(&app, "dev-ord", 3303, 5700, "FLOAT", json!("1.5")).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            queue(
                &app,
                &token,
                json!({"endpoint": "dev-ord", "kind": "write", "path": "/3/0/14", "value": format!("+0{i}:00")}),
            )
            .await,
        );
    }
    assert!(
        fake.received("dev-ord").is_empty(),
        "nothing goes to an offline device"
    );
    fake.set_delay(Duration::from_millis(100));
    register(&app, "dev-ord", false).await;
    for id in &ids {
        wait_for(&app, &token, *id, "confirmed", 10).await;
    }
    let sent: Vec<String> = fake
        .received("dev-ord")
        .iter()
        .map(|r| {
            serde_json::from_str::<Json>(&r.body).unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        sent,
        (0..6).map(|i| format!("+0{i}:00")).collect::<Vec<_>>()
    );
    assert_eq!(fake.max_in_flight(), 1);
}

async fn two_dispatchers_never_send_a_command_twice(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    // A second server on the same database, with its own pool and dispatcher.
    let second_db = store::Db::connect(&app.tdb.url).await.unwrap();
    let mut settings = app.state.settings.as_ref().clone();
    settings.lwm2m_rest_url = fake.url.clone();
    let second = AppState::new(second_db, settings).await.unwrap();
    dispatch::spawn(&second);
    fake.set_delay(Duration::from_millis(20));
    let endpoints: Vec<String> = (0..8).map(|i| format!("pair-{i}")).collect();
    for ep in &endpoints {
        report(&app, ep, 3303, 5700, "FLOAT", json!("1.5")).await;
    }
    let mut ids = Vec::new();
    for ep in &endpoints {
        for n in 0..3 {
            ids.push(
                queue(&app, &token, json!({"endpoint": ep, "kind": "write", "path": "/3/0/15", "value": format!("tz-{n}")}))
                    .await,
            );
        }
    }
    // All become sendable at once, for both dispatchers.
    for ep in &endpoints {
        register(&app, ep, false).await;
    }
    for id in &ids {
        wait_for(&app, &token, *id, "confirmed", 20).await;
    }
    assert_eq!(
        fake.all_received().len(),
        ids.len(),
        "each command sent exactly once"
    );
    for ep in &endpoints {
        let values: Vec<String> = fake
            .received(ep)
            .iter()
            .map(|r| {
                serde_json::from_str::<Json>(&r.body).unwrap()["value"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(values, ["tz-0", "tz-1", "tz-2"], "{ep} in order");
    }
    assert_eq!(fake.max_in_flight(), 1, "one at a time per endpoint");
}

async fn a_send_interrupted_by_a_crash_is_recovered(backend: Backend) {
    let fake = FakeLeshan::start().await;
    let url = fake.url.clone();
    let app = TestApp::with_settings(backend, |s| {
        s.lwm2m_rest_url = url;
        s.command_timeout_secs = 1;
    })
    .await;
    let token = app.token("ops", Scope::Api).await;
    register(&app, "dev-crash", false).await;
    // Queued and claimed by a server that then died (no dispatcher ran yet):
    // 'sending' with a claim an hour old.
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "dev-crash", "kind": "execute", "path": "/3/0/4"}),
    )
    .await;
    let hour_ago = store::now_ms() - 3_600_000;
    sqlx::query("UPDATE endpoint_operation SET status = 'sending', claimed_at = $1 WHERE id = $2")
        .bind(hour_ago)
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    dispatch::spawn(&app.state);
    // Recovered as a spent attempt, retried after its backoff, confirmed.
    let c = wait_for(&app, &token, id, "confirmed", 8).await;
    assert_eq!(
        c["attempts"], 2,
        "the interrupted send counts as an attempt: {c}"
    );
    assert_eq!(fake.received("dev-crash").len(), 1);
}

async fn queued_commands_expire(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    report(&app, "dev-exp", 3303, 5700, "FLOAT", json!("1.5")).await;
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "dev-exp", "kind": "execute", "path": "/3/0/4", "expires_in_s": 1}),
    )
    .await;
    let c = wait_for(&app, &token, id, "failed", 5).await;
    assert!(c["last_error"].as_str().unwrap().contains("expired"), "{c}");
    assert_eq!(c["attempts"], 0);
    register(&app, "dev-exp", false).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        fake.received("dev-exp").is_empty(),
        "an expired command is never sent"
    );
}

async fn a_sleeping_device_gets_its_commands_when_it_wakes(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    register(&app, "dev-q", true).await;
    // Its listening window after the registration is over: it sleeps.
    let long_ago = store::now_ms() - 120_000;
    sqlx::query(
        "UPDATE endpoint SET last_registration_at = $1, last_update_at = $1, last_seen_at = $1 \
         WHERE name = 'dev-q'",
    )
    .bind(long_ago)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "dev-q", "kind": "execute", "path": "/3/0/4"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = command(&app, &token, id).await;
    assert_eq!(c["status"], "queued");
    assert_eq!(c["waits_for_wake"], true);
    assert!(fake.received("dev-q").is_empty());
    // Registration update (10240/2): the device listens now.
    let woke = std::time::Instant::now();
    report(&app, "dev-q", 10240, 2, "TIME", json!(long_ago)).await;
    wait_for(&app, &token, id, "confirmed", 5).await;
    let sent = fake.received("dev-q");
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].at.duration_since(woke) < Duration::from_secs(2),
        "sent within the device's listening window"
    );
}

async fn a_read_stores_what_the_device_answered(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    register(&app, "dev-rd", false).await;
    fake.set_read_content(
        "dev-rd",
        json!({"kind": "instance", "id": 0, "resources": [
            {"kind": "singleResource", "id": 0, "type": "STRING", "value": "ACME"},
            {"kind": "singleResource", "id": 9, "type": "INTEGER", "value": 87}
        ]}),
    );
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "dev-rd", "kind": "read", "path": "/3/0"}),
    )
    .await;
    let c = wait_for(&app, &token, id, "confirmed", 5).await;
    assert_eq!(c["device_status"], "CONTENT");
    assert_eq!(fake.received("dev-rd")[0].method, Method::GET);
    assert_eq!(fake.received("dev-rd")[0].path, "/3/0");
    // The answer is stored like a report (it may take a writer round).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let (_, detail) = call(&app, Method::GET, "/api/v1/endpoints/dev-rd", &token, None).await;
        let values = detail["resources"].as_array().cloned().unwrap_or_default();
        let battery = values.iter().find(|r| r["path"] == "/3/0/9");
        if let Some(b) = battery {
            assert_eq!(b["value"], 87);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "read values stored: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn bad_commands_are_refused_naming_the_field(backend: Backend) {
    let (app, _fake, token) = app_with_fake(backend, 5).await;
    register(&app, "dev-bad", false).await;
    let cases = [
        (
            json!({"endpoint": "nope", "kind": "read", "path": "/3"}),
            "endpoint",
        ),
        (
            json!({"endpoint": "dev-bad", "kind": "read", "path": "3/0"}),
            "path",
        ),
        (
            json!({"endpoint": "dev-bad", "kind": "write", "path": "/3/0/0", "value": "x"}),
            "path",
        ),
        (
            json!({"endpoint": "dev-bad", "kind": "write", "path": "/3/0/13", "value": "soon"}),
            "value",
        ),
        (
            json!({"endpoint": "dev-bad", "kind": "write", "path": "/3/0/13"}),
            "value",
        ),
        (
            json!({"endpoint": "dev-bad", "kind": "execute", "path": "/3/0/13"}),
            "path",
        ),
        (
            json!({"endpoint": "dev-bad", "kind": "execute", "path": "/3/0/4", "value": 5}),
            "value",
        ),
        (
            json!({"endpoint": "dev-bad", "kind": "poke", "path": "/3"}),
            "kind",
        ),
        (json!({"endpoint": "dev-bad", "path": "/3"}), "kind"),
        (
            json!({"endpoint": "dev-bad", "kind": "read", "path": "/3", "expires_in_s": 0}),
            "expires_in_s",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = call(
            &app,
            Method::POST,
            "/api/v1/commands",
            &token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {answer}"
        );
        assert_eq!(answer["details"][0]["path"], field, "{body} -> {answer}");
    }
    let req = Request::post("/api/v1/commands")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, _, _) = app.request(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.count("endpoint_operation").await,
        0,
        "nothing refused was queued"
    );
}

async fn viewers_and_device_tokens_may_not_send(backend: Backend) {
    let (app, _fake, _token) = app_with_fake(backend, 5).await;
    register(&app, "dev-role", false).await;
    auth::create_user(
        &app.state.db.pool,
        "vera",
        "viewer-password-1",
        Role::Viewer,
    )
    .await
    .unwrap();
    let login = Request::post("/sfn/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .body(Body::from("username=vera&password=viewer-password-1"))
        .unwrap();
    let (_, headers, _) = app.request(login).await;
    let viewer = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body = json!({"endpoint": "dev-role", "kind": "execute", "path": "/3/0/4"});
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/commands",
        &viewer,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/commands",
        &app.device_token,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/commands",
        "",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The dashboard's server function refuses a forged post from a viewer.
    let forged = Request::post("/sfn/commands/send")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &viewer)
        .body(Body::from(
            "endpoint=dev-role&kind=execute&path=%2F3%2F0%2F4",
        ))
        .unwrap();
    let (status, _, _) = app.request(forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Viewers still read.
    let (status, _) = call(&app, Method::GET, "/api/v1/commands", &viewer, None).await;
    assert_eq!(status, StatusCode::OK);
    // An operator's session may send, through the server function too.
    auth::create_user(
        &app.state.db.pool,
        "otto",
        "operator-password-1",
        Role::Operator,
    )
    .await
    .unwrap();
    let login = Request::post("/sfn/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .body(Body::from("username=otto&password=operator-password-1"))
        .unwrap();
    let (_, headers, _) = app.request(login).await;
    let operator = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let sent = Request::post("/sfn/commands/send")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &operator)
        .body(Body::from(
            "endpoint=dev-role&kind=execute&path=%2F3%2F0%2F4",
        ))
        .unwrap();
    let (status, _, body) = app.request(sent).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (_, page) = call(
        &app,
        Method::GET,
        "/api/v1/commands?endpoint=dev-role",
        &operator,
        None,
    )
    .await;
    assert_eq!(page["commands"][0]["created_by"], "otto");
    assert_eq!(app.count("endpoint_operation").await, 1);
}

async fn cancel_and_retry_only_where_they_apply(backend: Backend) {
    let (app, _fake, token) = app_with_fake(backend, 5).await;
    report(&app, "dev-cx", 3303, 5700, "FLOAT", json!("1.5")).await;
    let id = queue(
        &app,
        &token,
        json!({"endpoint": "dev-cx", "kind": "execute", "path": "/3/0/4"}),
    )
    .await;
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/commands/{id}/retry"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/commands/{id}/cancel"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/commands/{id}/cancel"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/commands/999999/cancel",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let events = events_of(&app, &token, "dev-cx").await;
    assert!(events
        .iter()
        .any(|e| e["type"] == "command_cancelled" && e["actor"] == "token ops"));
    // Filters of the list.
    let (_, page) = call(
        &app,
        Method::GET,
        "/api/v1/commands?status=cancelled",
        &token,
        None,
    )
    .await;
    assert_eq!(page["commands"].as_array().unwrap().len(), 1);
    let (status, page) = call(
        &app,
        Method::GET,
        "/api/v1/commands?status=done",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page["details"][0]["path"], "status");
}

/// A firmware image in the database (the upload route stores the file).
async fn firmware(app: &TestApp, version: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO firmware (version, file_name, size_bytes, sha256, stored_file, created_at) \
         VALUES ($1, 'fw.bin', 3, $2, $3, 0) RETURNING id",
    )
    .bind(version)
    .bind("a".repeat(64))
    .bind(format!("fw-{version}.bin"))
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap()
}

async fn start_update(app: &TestApp, token: &str, ep: &str, firmware_id: i64) -> i64 {
    let (status, body) = call(
        app,
        Method::POST,
        "/api/v1/updates",
        token,
        Some(json!({"endpoints": [ep], "firmware_id": firmware_id})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body[0]["update_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{body}"))
}

async fn update(app: &TestApp, token: &str, ep: &str) -> Json {
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/api/v1/updates?endpoint={ep}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body[0].clone()
}

async fn wait_update(app: &TestApp, token: &str, ep: &str, state: &str) -> Json {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        let u = update(app, token, ep).await;
        if u["state"] == state {
            return u;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "update of {ep} not {state}: {u}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the newest command of `ep` has `status` (and `path`).
async fn wait_newest(app: &TestApp, token: &str, ep: &str, path: &str, status: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, page) = call(
            app,
            Method::GET,
            &format!("/api/v1/commands?endpoint={ep}"),
            token,
            None,
        )
        .await;
        if page["commands"][0]["status"] == status && page["commands"][0]["path"] == path {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} {status}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the fake has received `n` requests for `ep`.
async fn wait_received(fake: &FakeLeshan, ep: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fake.received(ep).len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} requests for {ep}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_whole_firmware_update_succeeds(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    register(&app, "ota-ok", false).await;
    report(&app, "ota-ok", 3, 3, "STRING", json!("1.0.0")).await;
    let fw = firmware(&app, "2.0.0").await;
    start_update(&app, &token, "ota-ok", fw).await;
    // A second start while it is active is refused for that endpoint.
    let (_, again) = call(
        &app,
        Method::POST,
        "/api/v1/updates",
        &token,
        Some(json!({"endpoints": ["ota-ok"], "firmware_id": fw})),
    )
    .await;
    assert_eq!(again[0]["error"], "an update is already active");
    // The server writes the absolute package URI.
    wait_received(&fake, "ota-ok", 1).await;
    let write = &fake.received("ota-ok")[0];
    assert_eq!(
        (write.method.clone(), write.path.as_str()),
        (Method::PUT, "/5/0/1")
    );
    let body: Json = serde_json::from_str(&write.body).unwrap();
    assert_eq!(
        body["value"],
        "https://fx.example.com/binaries/fw-2.0.0.bin"
    );
    assert_eq!(body["type"], "STRING");
    // Let the write's confirmation land before the device reports.
    wait_newest(&app, &token, "ota-ok", "/5/0/1", "confirmed").await;
    // The device downloads ...
    report(&app, "ota-ok", 5, 3, "INTEGER", json!("1")).await;
    assert_eq!(update(&app, &token, "ota-ok").await["state"], "downloading");
    report(&app, "ota-ok", 5, 3, "INTEGER", json!("2")).await;
    // ... and the server executes 5/0/2.
    wait_received(&fake, "ota-ok", 2).await;
    let execute = &fake.received("ota-ok")[1];
    assert_eq!(
        (execute.method.clone(), execute.path.as_str()),
        (Method::POST, "/5/0/2")
    );
    wait_newest(&app, &token, "ota-ok", "/5/0/2", "confirmed").await;
    report(&app, "ota-ok", 5, 3, "INTEGER", json!("3")).await;
    assert_eq!(update(&app, &token, "ota-ok").await["state"], "updating");
    // It reboots, registers again and reports the new version and result.
    register(&app, "ota-ok", false).await;
    let composite = json!({"ep": "ota-ok", "val": {
        "/3/0/3": {"kind": "singleResource", "id": 3, "type": "STRING", "value": "2.0.0"},
        "/5/0/5": {"kind": "singleResource", "id": 5, "type": "INTEGER", "value": "1"}}});
    let (status, body) = app
        .ingest("/leshan_api/resource/composite", composite.to_string())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let u = wait_update(&app, &token, "ota-ok", "succeeded").await;
    assert_eq!(u["result"], 1);
    let steps: Vec<&str> = u["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event_type"].as_str().unwrap())
        .collect();
    for step in [
        "firmware_update_started",
        "command_confirmed",
        "firmware_downloading",
        "firmware_downloaded",
        "firmware_updating",
        "firmware_succeeded",
    ] {
        assert!(steps.contains(&step), "{step} in {steps:?}");
    }
    assert_eq!(u["steps"][0]["actor"], "token ops");
    assert_eq!(u["created_by"], "token ops");
}

async fn a_failed_integrity_check_fails_the_update(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    register(&app, "ota-bad", false).await;
    let fw = firmware(&app, "3.0.0").await;
    start_update(&app, &token, "ota-bad", fw).await;
    wait_newest(&app, &token, "ota-bad", "/5/0/1", "confirmed").await;
    assert_eq!(fake.received("ota-bad").len(), 1);
    report(&app, "ota-bad", 5, 3, "INTEGER", json!("1")).await;
    report(&app, "ota-bad", 5, 5, "INTEGER", json!("5")).await;
    let u = wait_update(&app, &token, "ota-bad", "failed").await;
    assert_eq!(u["result"], 5);
    assert_eq!(u["error"], "integrity check failed");
    // A failed update can be retried, as a new update.
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/updates/{}/retry", u["id"]),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "pending");
    assert_ne!(body["id"], u["id"]);
}

async fn a_stalled_update_times_out_and_can_be_retried(backend: Backend) {
    let (app, fake, token) = app_with_fake(backend, 5).await;
    // Offline: the URI write waits.
    report(&app, "ota-slow", 3303, 5700, "FLOAT", json!("1.5")).await;
    let fw = firmware(&app, "4.0.0").await;
    let update_id = start_update(&app, &token, "ota-slow", fw).await;
    // No progress for longer than the timeout (60 min by default).
    sqlx::query("UPDATE firmware_update SET updated_at = $1 WHERE id = $2")
        .bind(store::now_ms() - 61 * 60_000)
        .bind(update_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let u = wait_update(&app, &token, "ota-slow", "timed_out").await;
    assert_eq!(u["error"], "no progress for 60 min");
    let (_, page) = call(
        &app,
        Method::GET,
        "/api/v1/commands?endpoint=ota-slow",
        &token,
        None,
    )
    .await;
    assert_eq!(
        page["commands"][0]["status"], "cancelled",
        "its queued write is cancelled"
    );
    // Cancel only applies to active updates; retry starts a new one.
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/updates/{update_id}/cancel"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/updates/{update_id}/retry"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/updates/{}/cancel", body["id"]),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled");
    assert!(fake.received("ota-slow").is_empty());
}
