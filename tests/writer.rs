//! The group-commit writer, firmware-update tracking and domain events,
//! against the real router and database.
mod common;

use axum::http::StatusCode;
use common::{Backend, TestApp};
use flownexus::model::FirmwareUpdateState;
use flownexus::server::db;
use flownexus::server::domain::DomainEvent;
use flownexus::server::store;
use serde_json::{json, Value as Json};
use std::sync::atomic::Ordering;

both_databases!(
    concurrent_requests_share_commits_and_every_ack_is_stored,
    a_rejected_request_in_a_batch_leaves_the_others_stored,
    registration_changes_publish_domain_events,
    firmware_update_is_tracked_through_every_state_to_success,
    firmware_result_code_fails_the_update_with_that_code,
    version_before_download_does_not_fail_and_match_after_execute_succeeds,
    firmware_values_without_an_active_update_are_just_stored,
);

fn single(ep: &str, obj: i64, inst: i64, id: i64, t: &str, value: Json) -> String {
    json!({"ep": ep, "obj_id": obj, "val": {"kind": "instance", "id": inst, "resources": [
        {"kind": "singleResource", "id": id, "type": t, "value": value}]}})
    .to_string()
}

fn resource(ep: &str, obj: i64, id: i64, t: &str, value: Json) -> String {
    json!({"ep": ep, "obj_id": obj, "val": {"kind": "singleResource", "id": id, "type": t, "value": value}})
        .to_string()
}

async fn concurrent_requests_share_commits_and_every_ack_is_stored(backend: Backend) {
    let app = TestApp::new(backend).await;
    let posts = (0..300).map(|i| {
        let body = single(
            &format!("dev-{}", i % 30),
            3303,
            0,
            5700,
            "FLOAT",
            json!(format!("{i}.5")),
        );
        let app = &app;
        async move { app.ingest("/leshan_api/resource/single", body).await }
    });
    let answers = futures::future::join_all(posts).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    // Every acknowledged value is stored, once.
    let mut values: Vec<f64> = sqlx::query_scalar("SELECT float_value FROM resource")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|v: Option<f64>| v.unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    let expected: Vec<f64> = (0..300).map(|i| i as f64 + 0.5).collect();
    assert_eq!(values, expected);
    assert_eq!(app.count("endpoint").await, 30);
    // One latest row per endpoint's series, pointing at its newest value:
    // measured last, and of equal times the last stored. Not simply the
    // highest id: a request's receive time is read before it queues, so
    // of two concurrent requests the one received later can commit first.
    assert_eq!(app.count("resource_latest").await, 30);
    let stale: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM resource_latest l JOIN resource v ON v.id = l.resource_id \
         WHERE EXISTS (SELECT 1 FROM resource r WHERE r.endpoint_id = l.endpoint_id \
         AND (r.measured_at > v.measured_at OR (r.measured_at = v.measured_at AND r.id > v.id)))",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(stale, 0);
    let stats = &app.state.writer.stats;
    assert_eq!(stats.requests.load(Ordering::Relaxed), 300);
    assert_eq!(stats.rows.load(Ordering::Relaxed), 300);
    let batches = stats.batches.load(Ordering::Relaxed);
    assert!(
        batches < 300,
        "300 concurrent requests took {batches} commits: no group commit"
    );
}

async fn a_rejected_request_in_a_batch_leaves_the_others_stored(backend: Backend) {
    let app = TestApp::new(backend).await;
    // 3303/5700 is FLOAT; every tenth request claims INTEGER and is refused,
    // along with the discovered type it alone carries.
    let posts = (0..100).map(|i| {
        let body = if i % 10 == 0 {
            json!({"ep": format!("dev-{i}"), "val": {"/3303/0": {"kind": "instance", "id": 0, "resources": [
                {"kind": "singleResource", "id": 9999, "type": "STRING", "value": "new type"},
                {"kind": "singleResource", "id": 5700, "type": "INTEGER", "value": "1"}]}}})
            .to_string()
        } else {
            json!({"ep": format!("dev-{i}"), "val": {"/3303/0/5700": {"kind": "singleResource", "id": 5700, "type": "FLOAT", "value": 1.5}}})
                .to_string()
        };
        let app = &app;
        async move { (i, app.ingest("/leshan_api/resource/composite", body).await) }
    });
    for (i, (status, body)) in futures::future::join_all(posts).await {
        if i % 10 == 0 {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(body["details"][0]["path"]
                .as_str()
                .unwrap()
                .ends_with("resources[1].value"));
        } else {
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    assert_eq!(app.count("resource").await, 90);
    assert_eq!(app.count("endpoint").await, 90);
    assert_eq!(app.count("event").await, 90);
    let discovered: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM resource_type WHERE object_id = 3303 AND resource_id = 9999",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(discovered, 0, "a refused request registers no type");
}

async fn registration_changes_publish_domain_events(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut events = app.state.domain.subscribe();
    for (id, value) in [(0, 1_717_000_000_000_i64), (2, 1_717_000_000_000), (1, 0)] {
        let (status, body) = app
            .ingest(
                "/leshan_api/resource/single",
                resource("sleepy", 10240, id, "TIME", json!(value)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(2), events.recv())
            .await
            .expect("a domain event within 2 s")
            .unwrap();
        // Every commit also says which endpoints were heard from.
        if matches!(event, DomainEvent::EndpointsHeard { .. }) {
            continue;
        }
        seen.push(match event {
            DomainEvent::DeviceAwake {
                endpoint,
                registered,
                ..
            } => format!("awake {endpoint} registered={registered}"),
            DomainEvent::DeviceDeregistered { endpoint, .. } => format!("gone {endpoint}"),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        seen,
        [
            "awake sleepy registered=true",
            "awake sleepy registered=false",
            "gone sleepy"
        ]
    );
}

/// An endpoint with an active update to version 2.0.0 whose package URI
/// write reached the device. Returns (endpoint id, update id).
async fn start_update(app: &TestApp, ep: &str) -> (i64, i64) {
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/single",
            resource(ep, 3, 3, "STRING", json!("1.0.0")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let pool = &app.state.db.pool;
    let endpoint_id: i64 = sqlx::query_scalar("SELECT id FROM endpoint WHERE name = $1")
        .bind(ep)
        .fetch_one(pool)
        .await
        .unwrap();
    let now = store::now_ms();
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM firmware WHERE version = '2.0.0'")
            .fetch_optional(pool)
            .await
            .unwrap();
    let firmware_id = match existing {
        Some(id) => id,
        None => db::firmware::insert(
            pool,
            "2.0.0",
            "fw.bin",
            10,
            &"a".repeat(64),
            "2.0.0.bin",
            now,
        )
        .await
        .unwrap(),
    };
    let update_id = db::firmware_update::create(pool, endpoint_id, firmware_id, None, now)
        .await
        .unwrap();
    let write = db::endpoint_operation::enqueue(
        pool,
        &db::endpoint_operation::NewOperation {
            endpoint_id,
            resource_type_id: None,
            path: "/5/0/1",
            operation_type: db::endpoint_operation::OperationType::Write,
            value: db::resource::Columns {
                text_value: Some("http://fw/2.0.0".into()),
                ..Default::default()
            },
            created_by: None,
            now,
        },
    )
    .await
    .unwrap();
    db::endpoint_operation::set_status(pool, write, "confirmed", now)
        .await
        .unwrap();
    db::firmware_update::set_send_uri_operation(pool, update_id, write)
        .await
        .unwrap();
    (endpoint_id, update_id)
}

async fn report(app: &TestApp, ep: &str, obj: i64, id: i64, t: &str, value: Json) -> Json {
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/single",
            resource(ep, obj, id, t, value),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn progress(
    app: &TestApp,
    update_id: i64,
) -> (FirmwareUpdateState, Option<i64>, Option<i64>) {
    db::firmware_update::progress(&app.state.db.pool, update_id)
        .await
        .unwrap()
        .unwrap()
}

async fn firmware_update_is_tracked_through_every_state_to_success(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (endpoint_id, update_id) = start_update(&app, "ota-1").await;
    let mut domain = app.state.domain.subscribe();

    let body = report(&app, "ota-1", 5, 3, "INTEGER", json!("1")).await;
    assert_eq!(body["events"], json!(["firmware_downloading"]));
    assert_eq!(
        progress(&app, update_id).await.0,
        FirmwareUpdateState::Downloading
    );

    let body = report(&app, "ota-1", 5, 3, "INTEGER", json!("2")).await;
    assert_eq!(body["events"], json!(["firmware_downloaded"]));
    let (state, _, execute) = progress(&app, update_id).await;
    assert_eq!(state, FirmwareUpdateState::Downloaded);
    let execute = execute.expect("5/0/3 = 2 queues the Execute of 5/0/2");
    let ops = db::endpoint_operation::list_for_endpoint(&app.state.db.pool, endpoint_id)
        .await
        .unwrap();
    assert!(ops.contains(&(execute, "/5/0/2".into(), "execute".into(), "queued".into())));

    // A repeated report neither adds a step nor queues a second Execute.
    let body = report(&app, "ota-1", 5, 3, "INTEGER", json!("2")).await;
    assert_eq!(body["events"], json!([]));
    assert_eq!(
        db::endpoint_operation::list_for_endpoint(&app.state.db.pool, endpoint_id)
            .await
            .unwrap()
            .len(),
        2
    );

    report(&app, "ota-1", 5, 3, "INTEGER", json!("3")).await;
    assert_eq!(
        progress(&app, update_id).await.0,
        FirmwareUpdateState::Updating
    );
    let body = report(&app, "ota-1", 5, 5, "INTEGER", json!("1")).await;
    assert_eq!(body["events"], json!(["firmware_succeeded"]));
    assert_eq!(
        progress(&app, update_id).await,
        (FirmwareUpdateState::Succeeded, Some(1), Some(execute))
    );

    // Every step is an event linked to the value that caused it.
    let steps: Vec<String> = sqlx::query_scalar(
        "SELECT e.event_type FROM event e JOIN event_resource er ON er.event_id = e.id \
         WHERE e.event_type LIKE 'firmware_%' ORDER BY e.id",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(
        steps,
        [
            "firmware_downloading",
            "firmware_downloaded",
            "firmware_updating",
            "firmware_succeeded"
        ]
    );
    // The dispatcher learns of the queued Execute.
    let mut queued = false;
    while let Ok(event) = domain.try_recv() {
        queued |= matches!(event, DomainEvent::OperationQueued { operation_id, .. } if operation_id == execute);
    }
    assert!(queued);
}

async fn firmware_result_code_fails_the_update_with_that_code(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, update_id) = start_update(&app, "ota-2").await;
    report(&app, "ota-2", 5, 3, "INTEGER", json!("1")).await;
    let body = report(&app, "ota-2", 5, 5, "INTEGER", json!("5")).await;
    assert_eq!(body["events"], json!(["firmware_failed"]));
    let (state, result, _) = progress(&app, update_id).await;
    assert_eq!((state, result), (FirmwareUpdateState::Failed, Some(5)));
    // Finished updates are no longer active: a new one may start.
    let (_, second) = start_update(&app, "ota-2").await;
    assert_ne!(second, update_id);
}

async fn version_before_download_does_not_fail_and_match_after_execute_succeeds(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, update_id) = start_update(&app, "ota-3").await;
    // The /3 read after registration reports the old version: no change.
    let body = report(&app, "ota-3", 3, 3, "STRING", json!("1.0.0")).await;
    assert_eq!(body["events"], json!([]));
    // Even the target version before the Execute proves nothing.
    report(&app, "ota-3", 3, 3, "STRING", json!("2.0.0")).await;
    assert_eq!(
        progress(&app, update_id).await.0,
        FirmwareUpdateState::Pending
    );

    report(&app, "ota-3", 5, 3, "INTEGER", json!("2")).await;
    let (_, _, execute) = progress(&app, update_id).await;
    db::endpoint_operation::set_status(&app.state.db.pool, execute.unwrap(), "confirmed", 1)
        .await
        .unwrap();
    // The device rebooted into the new firmware and reports it in a /3 read.
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/composite",
            json!({"ep": "ota-3", "val": {"/3/0": {"kind": "instance", "id": 0, "resources": [
                {"kind": "singleResource", "id": 3, "type": "STRING", "value": "2.0.0"},
                {"kind": "singleResource", "id": 9, "type": "INTEGER", "value": "80"}]}}})
            .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["events"], json!(["firmware_succeeded", "device"]));
    assert_eq!(
        progress(&app, update_id).await.0,
        FirmwareUpdateState::Succeeded
    );
}

async fn firmware_values_without_an_active_update_are_just_stored(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (id, value) in [(3, "2"), (5, "8"), (3, "3")] {
        let body = report(&app, "plain", 5, id, "INTEGER", json!(value)).await;
        assert_eq!(body["events"], json!([]));
    }
    report(&app, "plain", 3, 3, "STRING", json!("9.9.9")).await;
    assert_eq!(app.count("resource").await, 4);
    assert_eq!(app.count("endpoint_operation").await, 0);
    assert_eq!(app.count("firmware_update").await, 0);
}

/// On one pooled connection, a batch without a float value and then one
/// with: the cached prepared statement must take both (sqlx's Any driver
/// once typed a float NULL as float4 on PostgreSQL, failing the second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn float_values_after_a_float_null_on_postgres() {
    let app = TestApp::with_settings(Backend::Postgres, |_| {}).await;
    // Enough rounds that every pooled connection sees both orders.
    for round in 0..80 {
        let (t, v) = if round % 2 == 0 {
            ("INTEGER", json!("5"))
        } else {
            ("FLOAT", json!("1.5"))
        };
        let id = if t == "FLOAT" { 5700 } else { 5750 };
        let (status, body) = app
            .ingest("/leshan_api/resource/single", resource("f", 3303, id, t, v))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(app.count("resource").await, 80);
}
