//! Device management over CoAP through the command queue, on both
//! databases: a simulated LwM2M 1.1 device (`flownexus simulate`) is
//! discovered, gets notification attributes (shown on its page), is observed with an
//! observe-composite whose notifications are stored and which is made again
//! after the device registers anew, has the observation cancelled, and has
//! an instance created and deleted. Arguments that
//! break the LwM2M rules are refused when queued, naming the field; a
//! device behind Leshan is not sent what the Leshan contract lacks.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::coap::{app_with, one_simulated_device, queue_command, settled};
use common::{Backend, TestApp};
use flownexus::server::config::NosecPolicy;
use flownexus::server::db::api_token::Scope;
use flownexus::server::lwm2m::format::LwPath;
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
    let simulator = one_simulated_device(
        &lwm2m,
        Duration::from_secs(20),
        |o| o.notify_every = Duration::from_millis(200),
        |l| l.registration("sim-0").is_some() && !l.observations("sim-0").is_empty(),
    )
    .await;
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
    // The endpoint page lists them beside the observation they govern,
    // with a form to change them.
    let cookie = app.login_cookie().await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM endpoint WHERE name = 'sim-0'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let (status, _, html) = app
        .get_page(&format!("/endpoints/{id}"), Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::OK);
    let observed = html
        .split(r#"aria-label="Observed paths""#)
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .unwrap_or("");
    assert!(
        observed.contains("/3303/0/5700") && observed.contains("pmin=0 pmax=1"),
        "{observed}"
    );
    assert!(
        observed.contains(r#"aria-label="New attributes of /3303/0/5700""#),
        "{observed}"
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

/// A device that takes its onboarding (answering 4.04, so that nothing is
/// left in flight) and then never answers a Write: when the command's
/// timeout ends the wait, the request stops too. Its first retransmission
/// would come 2 to 3 s after it was sent (RFC 7252 §4.2); none may come.
async fn a_request_given_up_is_not_retransmitted(backend: Backend) {
    use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
    let (app, lwm2m) = app_with(backend, |s| {
        s.lwm2m_nosec = NosecPolicy::Open;
        s.command_timeout_secs = 1;
    })
    .await;
    flownexus::server::dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    let device = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut register = Packet::new();
    register.header.set_type(MessageType::Confirmable);
    register.header.code = MessageClass::Request(RequestType::Post);
    register.header.message_id = 1;
    register.set_token(vec![1]);
    register.add_option(CoapOption::UriPath, b"rd".to_vec());
    for q in ["ep=silent-1", "lt=300", "lwm2m=1.1", "b=U"] {
        register.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
    }
    register.payload = b"</3/0>".to_vec();
    device
        .send_to(&register.to_bytes().unwrap(), lwm2m.local_addr)
        .await
        .unwrap();
    // (arrival, message id) of every Write the device is sent.
    let mut writes: Vec<(Instant, u16)> = Vec::new();
    let mut buf = [0u8; 2048];
    let mut queued = false;
    let deadline = Instant::now() + Duration::from_secs(12);
    while Instant::now() < deadline {
        if !queued && lwm2m.registration("silent-1").is_some() {
            queue_command(
                &app,
                &token,
                json!({"endpoint": "silent-1", "kind": "write", "path": "/3/0/13", "value": "2024-05-31T16:08"}),
            )
            .await;
            queued = true;
        }
        let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_millis(100), device.recv_from(&mut buf)).await
        else {
            continue;
        };
        let p = Packet::from_bytes(&buf[..n]).unwrap();
        match p.header.code {
            MessageClass::Request(RequestType::Put) => {
                writes.push((Instant::now(), p.header.message_id));
            }
            MessageClass::Request(_) if p.header.get_type() == MessageType::Confirmable => {
                let mut answer = Packet::new();
                answer.header.set_type(MessageType::Acknowledgement);
                answer.header.message_id = p.header.message_id;
                answer.header.code = MessageClass::Response(ResponseType::NotFound);
                answer.set_token(p.get_token().to_vec());
                device
                    .send_to(&answer.to_bytes().unwrap(), from)
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    assert!(queued, "silent-1 registered");
    let Some(&(first_at, first_mid)) = writes.first() else {
        panic!("the Write was sent");
    };
    assert!(
        deadline - first_at > Duration::from_secs(6),
        "watched long enough after the first Write"
    );
    let again = writes.iter().filter(|(_, mid)| *mid == first_mid).count();
    assert_eq!(
        again, 1,
        "the Write was not retransmitted after its command gave up: {writes:?}"
    );
}

both_databases!(
    management_commands_reach_a_native_device,
    bad_management_arguments_are_refused_naming_the_field,
    a_request_given_up_is_not_retransmitted,
);
