//! Device management over CoAP through the command queue, on both
//! databases: a simulated LwM2M 1.1 device (`flownexus simulate`) is
//! discovered, gets notification attributes, is observed with an
//! observe-composite whose notifications are stored and which is made again
//! after the device registers anew, has the observation cancelled, and has
//! an instance created and deleted. Arguments that
//! break the LwM2M rules are refused when queued, naming the field; a
//! device behind Leshan is not sent what the Leshan contract lacks.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::coap::{app_with, queue_command, settled};
use common::{Backend, TestApp};
use flownexus::server::config::NosecPolicy;
use flownexus::server::db::api_token::Scope;
use flownexus::server::lwm2m::format::LwPath;
use flownexus::server::simulate::{run, SimOptions};
use serde_json::json;
use std::time::{Duration, Instant};

async fn humidity_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM resource r JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE t.object_id = 3304 AND t.resource_id = 5700",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap()
}

async fn answer_of(app: &TestApp, id: i64) -> Option<String> {
    sqlx::query_scalar("SELECT answer FROM endpoint_operation WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

async fn management_commands_reach_a_native_device(backend: Backend) {
    // Only temperature is observed on registration, so that humidity
    // values come from the composite observation alone.
    let (app, lwm2m) = app_with(backend, |s| {
        s.lwm2m_nosec = NosecPolicy::Open;
        s.lwm2m_observe = vec![LwPath::parse("/3303/0/5700").unwrap()];
    })
    .await;
    flownexus::server::dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    let options = SimOptions {
        devices: 1,
        server: lwm2m.local_addr,
        bind: Some("127.0.0.1".parse().unwrap()),
        notify_every: Duration::from_millis(200),
        duration: Some(Duration::from_secs(20)),
        ..SimOptions::default()
    };
    let simulator = tokio::spawn(run(options, std::future::pending::<()>()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while lwm2m.registration("sim-0").is_none() || lwm2m.observations("sim-0").is_empty() {
        assert!(Instant::now() < deadline, "sim-0 registers and is observed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queue = |kind: &str, path: &str, value: Option<&str>| json!({"endpoint": "sim-0", "kind": kind, "path": path, "value": value});

    // Discover: the link format is kept as the command's answer.
    let discover = queue_command(&app, &token, queue("discover", "/3303/0", None)).await;
    assert_eq!(
        settled(&app, discover).await,
        ("confirmed".into(), Some("CONTENT".into()))
    );
    let links = answer_of(&app, discover).await.unwrap_or_default();
    assert!(links.contains("</3303/0/5700>"), "{links}");

    // Write-Attributes.
    let attributes = queue_command(
        &app,
        &token,
        queue("write_attributes", "/3303/0/5700", Some("pmin=0&pmax=1")),
    )
    .await;
    assert_eq!(
        settled(&app, attributes).await,
        ("confirmed".into(), Some("CHANGED".into()))
    );

    // Observe-Composite of temperature and humidity: the first answer and
    // the notifications that follow are stored.
    let before = humidity_rows(&app).await;
    let composite = "/3303/0/5700,/3304/0/5700";
    let observe = queue_command(&app, &token, queue("observe", composite, None)).await;
    assert_eq!(
        settled(&app, observe).await,
        ("confirmed".into(), Some("CONTENT".into()))
    );
    assert!(lwm2m.observations("sim-0").contains(&composite.to_string()));
    let deadline = Instant::now() + Duration::from_secs(8);
    while humidity_rows(&app).await < before + 3 {
        assert!(
            Instant::now() < deadline,
            "humidity notifications of the composite observation are stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A Reboot makes the device register again, which ends its
    // observations on the device: the server makes the operator's again.
    let first_registration = lwm2m.registration("sim-0").unwrap().id;
    let reboot = queue_command(&app, &token, queue("execute", "/3/0/4", None)).await;
    assert_eq!(
        settled(&app, reboot).await,
        ("confirmed".into(), Some("CHANGED".into()))
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while lwm2m
        .registration("sim-0")
        .is_none_or(|r| r.id == first_registration)
        || !lwm2m.observations("sim-0").contains(&composite.to_string())
    {
        assert!(
            Instant::now() < deadline,
            "registered again and observed again: {:?}",
            lwm2m.observations("sim-0")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Cancel it: the observation is gone; cancelling again finds none.
    let cancel = queue_command(&app, &token, queue("cancel_observe", composite, None)).await;
    assert_eq!(
        settled(&app, cancel).await,
        ("confirmed".into(), Some("CANCELLED".into()))
    );
    assert!(!lwm2m.observations("sim-0").contains(&composite.to_string()));
    let again = queue_command(&app, &token, queue("cancel_observe", composite, None)).await;
    assert_eq!(
        settled(&app, again).await,
        ("failed".into(), Some("NOT_FOUND".into()))
    );

    // Create and Delete an instance of the temperature object.
    let create = queue_command(
        &app,
        &token,
        json!({"endpoint": "sim-0", "kind": "create", "path": "/3303/7", "value": {"5700": 30.5}}),
    )
    .await;
    assert_eq!(
        settled(&app, create).await,
        ("confirmed".into(), Some("CREATED".into()))
    );
    let delete = queue_command(&app, &token, queue("delete", "/3303/7", None)).await;
    assert_eq!(
        settled(&app, delete).await,
        ("confirmed".into(), Some("DELETED".into()))
    );
    let missing = queue_command(&app, &token, queue("delete", "/3303/7", None)).await;
    assert_eq!(
        settled(&app, missing).await,
        ("failed".into(), Some("NOT_FOUND".into()))
    );

    let report = simulator.await.unwrap().unwrap();
    assert_eq!(
        (
            report.discovers,
            report.write_attributes,
            report.creates,
            report.deletes
        ),
        (1, 1, 1, 2),
        "both deletes reached the device (the second answered 4.04): {report}"
    );
}

/// Posts a command; (status, answer).
async fn post_command(app: &TestApp, token: &str, body: serde_json::Value) -> (StatusCode, String) {
    let req = Request::post("/api/v1/commands")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, answer) = app.request(req).await;
    (status, String::from_utf8(answer).unwrap())
}

async fn bad_management_arguments_are_refused_naming_the_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Registered through Leshan just now, so the dispatcher sends to it.
    let mut registered: serde_json::Value =
        serde_json::from_str(&common::payload("single__registered_10240_0.json")).unwrap();
    registered["ep"] = json!("qemu_x86");
    registered["val"]["value"] = json!(flownexus::server::store::now_ms());
    let (status, body) = app
        .ingest("/leshan_api/resource/single", registered.to_string())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/single",
            common::payload("single__test_temperature_3303_0_5700.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = app.token("ops", Scope::Api).await;
    for (body, field) in [
        (
            json!({"kind": "write_attributes", "path": "/3303/0/5700", "value": "pmin=60&pmax=10"}),
            "value",
        ),
        (
            json!({"kind": "write_attributes", "path": "/3303/0/5700", "value": "speed=1"}),
            "value",
        ),
        (
            json!({"kind": "write_attributes", "path": "/3303/0/5700"}),
            "value",
        ),
        (
            json!({"kind": "observe", "path": "/3303/0/5700,/3303/0/5700"}),
            "path",
        ),
        (
            json!({"kind": "observe", "path": "/3303/0/5700,nope"}),
            "path",
        ),
        (json!({"kind": "delete", "path": "/3303"}), "path"),
        (
            json!({"kind": "create", "path": "/3303/0/5700", "value": {"5700": 1}}),
            "path",
        ),
        (
            json!({"kind": "create", "path": "/3303", "value": {"5700": "hot"}}),
            "value.5700",
        ),
        (
            json!({"kind": "create", "path": "/3303", "value": {"99999": 1}}),
            "value.99999",
        ),
        (json!({"kind": "create", "path": "/3303"}), "value"),
        (
            json!({"kind": "discover", "path": "/3303", "value": "x"}),
            "value",
        ),
    ] {
        let mut body = body;
        body["endpoint"] = json!("qemu_x86");
        let (status, answer) = post_command(&app, &token, body.clone()).await;
        assert!(status.is_client_error(), "{body}: {status} {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["details"][0]["path"], field, "{body}: {answer}");
    }
    assert_eq!(app.count("endpoint_operation").await, 0);

    // A well-formed observe for a device behind Leshan is queued, and then
    // fails: the Leshan contract carries only read, write and execute.
    flownexus::server::dispatch::spawn(&app.state);
    let id = queue_command(
        &app,
        &token,
        json!({"endpoint": "qemu_x86", "kind": "observe", "path": "/3303/0/5700"}),
    )
    .await;
    let (status, _) = settled(&app, id).await;
    assert_eq!(status, "failed");
    let error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM endpoint_operation WHERE id = $1")
            .bind(id)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert!(
        error
            .unwrap_or_default()
            .contains("only read, write and execute"),
        "refused for Leshan"
    );
}

both_databases!(
    management_commands_reach_a_native_device,
    bad_management_arguments_are_refused_naming_the_field,
);
