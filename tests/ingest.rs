//! The device REST API against the real router and database.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{payload, Backend, TestApp};
use flownexus::server::db::api_token::Scope;
use serde_json::json;

both_databases!(
    temperature_post_is_stored_and_echoed,
    composite_read_stores_every_instance_and_one_event,
    registration_events_set_presence_fields,
    presence_follows_registration_binding_and_lifetime,
    bad_input_is_a_4xx_naming_the_field_and_writes_nothing,
    type_mismatch_rolls_back_the_whole_request,
    unknown_resource_types_are_discovered,
    ingest_needs_a_token_unless_opened,
    oversized_bodies_are_refused_with_413,
    compatibility_data_api_lists_values_by_resource_name,
    compatibility_data_api_returns_every_type_as_stored,
    retention_deletes_old_values_with_their_latest_rows,
    retention_keeps_a_series_that_gets_a_value_while_it_runs,
    last_seen_is_rewritten_when_stale_in_queue_mode_or_for_a_waiting_command,
);

async fn temperature_post_is_stored_and_echoed(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/single",
            payload("single__test_temperature_3303_0_5700.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["endpoint"], "qemu_x86");
    assert_eq!(body["stored"], 1);
    assert_eq!(body["resources"][0]["path"], "/3303/0/5700");
    assert_eq!(body["resources"][0]["type"], "FLOAT");
    assert_eq!(body["resources"][0]["value"], json!(24.899181214836236));

    let (value, instance): (f64, i64) =
        sqlx::query_as("SELECT float_value, object_instance_id FROM resource")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(value, 24.899181214836236);
    assert_eq!(instance, 0);
    let last_seen: Option<i64> =
        sqlx::query_scalar("SELECT last_seen_at FROM endpoint WHERE name = 'qemu_x86'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert!(last_seen.is_some());
}

async fn composite_read_stores_every_instance_and_one_event(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/composite",
            payload("composite__onboarding_read_object3.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["stored"], 22);
    assert_eq!(body["events"], json!(["device"]));
    // 3/0/7 has two resource instances, stored as two rows.
    let rows: Vec<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT r.resource_instance_id, r.int_value FROM resource r \
         JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE t.object_id = 3 AND t.resource_id = 7 ORDER BY r.resource_instance_id",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(rows, vec![(Some(0), Some(3800)), (Some(1), Some(5000))]);
    assert_eq!(app.count("event").await, 1);
    assert_eq!(app.count("event_resource").await, 22);
    assert_eq!(app.count("resource_latest").await, 22);

    // A second read moves the latest pointers instead of adding series.
    app.ingest(
        "/leshan_api/resource/composite",
        payload("composite__onboarding_read_object3.json"),
    )
    .await;
    assert_eq!(app.count("resource").await, 44);
    assert_eq!(app.count("resource_latest").await, 22);
}

async fn registration_events_set_presence_fields(backend: Backend) {
    let app = TestApp::new(backend).await;
    let presence = || async {
        let row: (i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT CASE WHEN registered THEN 1 ELSE 0 END, last_registration_at, last_update_at \
             FROM endpoint WHERE name = 'urn:imei:100000000000000'",
        )
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        row
    };
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/single",
            payload("single__registered_10240_0.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["events"], json!(["registered"]));
    let (registered, reg_at, _) = presence().await;
    assert_eq!(registered, 1);
    assert!(reg_at.is_some());

    app.ingest(
        "/leshan_api/resource/single",
        payload("single__registration_update_10240_2.json"),
    )
    .await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__unregistered_10240_1.json"),
    )
    .await;
    let (registered, _, upd_at) = presence().await;
    assert_eq!(registered, 0);
    assert!(upd_at.is_some());
    let types: Vec<String> = sqlx::query_scalar("SELECT event_type FROM event ORDER BY id")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(types, ["registered", "registration_update", "deregistered"]);
}

async fn bad_input_is_a_4xx_naming_the_field_and_writes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("single", "{not json".into(), "$"),
        ("single", "[]".into(), "$"),
        ("single", json!({"ep": "", "obj_id": 3303, "val": {}}).to_string(), "ep"),
        ("single", json!({"ep": 5, "obj_id": 3303, "val": {}}).to_string(), "ep"),
        ("single", json!({"ep": "x".repeat(300), "obj_id": 3303, "val": {}}).to_string(), "ep"),
        ("single", json!({"ep": "e", "obj_id": "3303", "val": {}}).to_string(), "obj_id"),
        (
            "single",
            json!({"ep": "e", "obj_id": 3303, "val": {"kind": "singleResource", "id": 5700, "type": "FLOAT", "value": "warm"}}).to_string(),
            "val.value",
        ),
        (
            "single",
            json!({"ep": "e", "obj_id": 3303, "val": {"kind": "nope", "id": 5700}}).to_string(),
            "val.kind",
        ),
        (
            "single",
            json!({"ep": "e", "obj_id": 3303, "val": {"kind": "singleResource", "id": 5700, "type": "REAL", "value": 1}}).to_string(),
            "val.type",
        ),
        ("composite", json!({"ep": "e", "val": []}).to_string(), "val"),
        (
            "composite",
            json!({"ep": "e", "val": {"/3/0": {"kind": "instance", "id": 0, "resources": [
                {"kind": "singleResource", "id": 9, "type": "INTEGER", "value": "95"},
                {"kind": "singleResource", "id": 10, "type": "INTEGER", "value": "lots"}]}}})
            .to_string(),
            "val./3/0.resources[1].value",
        ),
    ];
    for (kind, body, field) in cases {
        let (status, json) = app
            .ingest(&format!("/leshan_api/resource/{kind}"), body.clone())
            .await;
        assert!(status.is_client_error(), "{body} -> {status}");
        assert!(json["error"].is_string(), "{json}");
        let details = json["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|d| d["path"] == field && d["reason"].is_string()),
            "{body}: expected a detail for {field}, got {json}"
        );
    }
    assert_eq!(app.count("endpoint").await, 0);
    assert_eq!(app.count("resource").await, 0);
}

async fn type_mismatch_rolls_back_the_whole_request(backend: Backend) {
    let app = TestApp::new(backend).await;
    // The first value is fine, the second contradicts the seeded FLOAT type.
    let body = json!({"ep": "mismatch", "val": {
        "/3/0/9": {"kind": "singleResource", "id": 9, "type": "INTEGER", "value": "95"},
        "/3303/0/5700": {"kind": "singleResource", "id": 5700, "type": "STRING", "value": "hot"}
    }});
    let (status, json) = app
        .ingest("/leshan_api/resource/composite", body.to_string())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(json["details"][0]["path"], "val./3303/0/5700.value");
    assert!(json["details"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("FLOAT"));
    assert_eq!(
        app.count("endpoint").await,
        0,
        "endpoint upsert must roll back"
    );
    assert_eq!(app.count("resource").await, 0);
}

async fn unknown_resource_types_are_discovered(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = json!({"ep": "custom", "obj_id": 33000, "val": {
        "kind": "singleResource", "id": 7, "type": "BOOLEAN", "value": true}});
    let (status, json) = app
        .ingest("/leshan_api/resource/single", body.to_string())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["discovered_types"], 1);
    let (name, data_type, origin): (String, String, String) = sqlx::query_as(
        "SELECT name, data_type, origin FROM resource_type WHERE object_id = 33000 AND resource_id = 7",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), data_type.as_str(), origin.as_str()),
        ("/33000/7", "BOOLEAN", "discovered")
    );
    // The discovered type is now known: a contradicting type is refused.
    let body = json!({"ep": "custom", "obj_id": 33000, "val": {
        "kind": "singleResource", "id": 7, "type": "STRING", "value": "x"}});
    let (status, _) = app
        .ingest("/leshan_api/resource/single", body.to_string())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn ingest_needs_a_token_unless_opened(backend: Backend) {
    let app = TestApp::new(backend).await;
    let post = |auth: Option<String>| {
        let mut req = Request::post("/leshan_api/resource/single")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        req.body(Body::from(payload(
            "single__test_temperature_3303_0_5700.json",
        )))
        .unwrap()
    };
    let (status, headers, body) = app.request(post(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&body).contains("authentication required"));
    let _ = headers;
    let (status, _, _) = app
        .request(post(Some("Bearer fxd_not_a_real_token".into())))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("resource").await, 0);

    // A revoked token stops working.
    let id: i64 = sqlx::query_scalar("SELECT id FROM api_token")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    // Revoked elsewhere (the CLI, another process): refused once the
    // verified-token cache entry expires.
    flownexus::server::db::api_token::revoke(&app.state.db.pool, id, 1)
        .await
        .unwrap();
    tokio::time::sleep(
        flownexus::server::auth::TOKEN_CACHE_TTL + std::time::Duration::from_millis(100),
    )
    .await;
    let (status, _, _) = app
        .request(post(Some(format!("Bearer {}", app.device_token))))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Revoked in this server: refused at once.
    let other = app.token("d3", Scope::Device).await;
    let (status, _, _) = app.request(post(Some(format!("Bearer {other}")))).await;
    assert_eq!(status, StatusCode::CREATED);
    let other_id: i64 = sqlx::query_scalar("SELECT id FROM api_token WHERE name = 'd3'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(flownexus::server::auth::revoke_token(&app.state, other_id)
        .await
        .unwrap());
    let (status, _, _) = app.request(post(Some(format!("Bearer {other}")))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Device tokens cannot read the data API.
    let token = app.token("d2", Scope::Device).await;
    let req = Request::get("/api/v1/endpoints")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.request(req).await.0, StatusCode::FORBIDDEN);

    let open = TestApp::with_settings(backend, |s| {
        s.ingest_auth = flownexus::server::config::IngestAuth::Open
    })
    .await;
    let (status, _, _) = open.request(post(None)).await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn oversized_bodies_are_refused_with_413(backend: Backend) {
    let app = TestApp::with_settings(backend, |s| s.max_body_bytes = 4096).await;
    let big = json!({"ep": "big", "obj_id": 3, "val": {"kind": "singleResource", "id": 0,
        "type": "STRING", "value": "x".repeat(10_000)}});
    let (status, json) = app
        .ingest("/leshan_api/resource/single", big.to_string())
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(json["error"].as_str().unwrap().contains("4096"));
    // Without a Content-Length the streamed body is cut off at the limit too.
    let stream = futures::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 1024]))),
    );
    let (status, _) = app
        .ingest("/leshan_api/resource/single", Body::from_stream(stream))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("resource").await, 0);
}

async fn presence_follows_registration_binding_and_lifetime(backend: Backend) {
    use flownexus::model::Presence;
    let app = TestApp::new(backend).await;
    let presence = || async {
        let list = flownexus::server::db::endpoint::list(&app.state.db.pool, 10)
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        list[0].presence
    };
    let ep = "urn:imei:100000000000000";
    // Telemetry alone does not make a device registered.
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__observe_humidity_3304_0_5700.json"),
    )
    .await;
    assert_eq!(presence().await, Presence::Offline);
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__registered_10240_0.json"),
    )
    .await;
    assert_eq!(presence().await, Presence::Online);

    // The device reports queue-mode binding and a 300 s lifetime.
    let body = json!({"ep": ep, "val": {
        "/3/0/16": {"kind": "singleResource", "id": 16, "type": "STRING", "value": "UQ"},
        "/1/0/1": {"kind": "singleResource", "id": 1, "type": "INTEGER", "value": "300"}}});
    let (status, json) = app
        .ingest("/leshan_api/resource/composite", body.to_string())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let (binding, lifetime): (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT binding, lifetime_s FROM endpoint")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!((binding.as_deref(), lifetime), (Some("UQ"), Some(300)));
    assert_eq!(
        presence().await,
        Presence::Online,
        "awake right after speaking"
    );

    // A minute of silence: asleep, still registered.
    let now = flownexus::server::store::now_ms();
    sqlx::query(
        "UPDATE endpoint SET last_seen_at = $1, last_registration_at = $1, last_update_at = $1",
    )
    .bind(now - 60_000)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(presence().await, Presence::Sleeping);
    // Past its lifetime without an update: offline.
    sqlx::query(
        "UPDATE endpoint SET last_seen_at = $1, last_registration_at = $1, last_update_at = $1",
    )
    .bind(now - 301_000)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(presence().await, Presence::Offline);
    // A registration update wakes it.
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__registration_update_10240_2.json"),
    )
    .await;
    assert_eq!(presence().await, Presence::Online);
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__unregistered_10240_1.json"),
    )
    .await;
    assert_eq!(presence().await, Presence::Offline);
}

async fn compatibility_data_api_lists_values_by_resource_name(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__observe_humidity_3304_0_5700.json"),
    )
    .await;
    let api_token = app.token("reader", Scope::Api).await;
    let get = |path: &'static str, token: Option<String>| {
        let mut req = Request::get(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(Body::empty()).unwrap()
    };
    let (status, _, body) = app
        .request(get(
            "/leshan_api/data/temperature/",
            Some(api_token.clone()),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let rows: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["value"], json!(24.899181214836236));
    assert_eq!(rows[0]["resource_type"], "temperature");
    assert!(rows[0]["timestamp_created"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    // A known type without values is an empty list; an unknown name is 404.
    let (status, _, body) = app
        .request(get("/leshan_api/data/reboot/", Some(api_token.clone())))
        .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"[]"[..]));
    let (status, _, _) = app
        .request(get("/leshan_api/data/no_such_thing/", Some(api_token)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Reading needs an API token, not a device token or nothing.
    assert_eq!(
        app.request(get("/leshan_api/data/temperature/", None))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let device = Some(app.device_token.clone());
    assert_eq!(
        app.request(get("/leshan_api/data/temperature/", device))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

/// Every data type comes back from the compatibility data API as ingest
/// echoed it, floats to the last bit, in arrival order. On SQLite this read
/// goes through the native driver (`Db::bulk_reader`), elsewhere through
/// `Any`: this holds both to the values ingest stored.
async fn compatibility_data_api_returns_every_type_as_stored(backend: Backend) {
    let app = TestApp::new(backend).await;
    let samples: [(&str, Vec<serde_json::Value>); 9] = [
        (
            "INTEGER",
            vec![json!(-9_223_372_036_854_775_807_i64), json!("42")],
        ),
        ("UNSIGNED_INTEGER", vec![json!(7), json!("4294967296")]),
        (
            "FLOAT",
            vec![
                json!("24.899181214836236"),
                json!(0.1),
                json!("3.0000000000000004"),
                json!(-2.2250738585072014e-308),
                json!(1.7976931348623157e308),
                json!("5e-324"),
                // SQLite's own decimal parsing reads these one unit in
                // the last place off (see `store::json_rows`).
                json!(-3.444418313650998e-109),
                json!("-2.268960681969623e176"),
                json!(1.676302631222865e-140),
            ],
        ),
        ("BOOLEAN", vec![json!(true), json!(false)]),
        ("STRING", vec![json!("ünïcode \"quoted\""), json!("")]),
        ("OPAQUE", vec![json!("00ff10AB"), json!("")]),
        ("TIME", vec![json!(1_717_171_680_000_i64)]),
        (
            "OBJLNK",
            vec![json!("3:0"), json!({"objectId": 5, "objectInstanceId": 1})],
        ),
        ("CORELINK", vec![json!("</3/0>;rt=\"oma.lwm2m\"")]),
    ];
    let token = app.token("reader", Scope::Api).await;
    for (resource_id, (data_type, values)) in samples.iter().enumerate() {
        let mut echoed = Vec::new();
        for value in values {
            let body = json!({"ep": "typed", "obj_id": 33001, "val": {
                "kind": "singleResource", "id": resource_id, "type": data_type, "value": value}});
            let (status, receipt) = app
                .ingest("/leshan_api/resource/single", body.to_string())
                .await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{data_type} {value}: {receipt}"
            );
            echoed.push(receipt["resources"][0]["value"].clone());
        }
        let type_id: i64 = sqlx::query_scalar(
            "SELECT id FROM resource_type WHERE object_id = 33001 AND resource_id = $1",
        )
        .bind(resource_id as i64)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        let name = format!("typed_{}", data_type.to_lowercase());
        assert!(flownexus::server::db::resource_type::update_name_unit(
            &app.state.db.pool,
            type_id,
            &name,
            None
        )
        .await
        .unwrap());
        let (status, _, body) = app
            .request(
                Request::get(format!("/leshan_api/data/{name}/"))
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        let served: Vec<serde_json::Value> = rows.iter().map(|r| r["value"].clone()).collect();
        assert_eq!(served, echoed, "{data_type}");
        if *data_type == "FLOAT" {
            // Compared as the doubles themselves, not only as JSON text.
            let bits = |v: &serde_json::Value| v.as_f64().map(f64::to_bits);
            // Not -0.0: SQLite stores a whole REAL as an integer, which
            // drops the sign of zero (it compares equal to 0.0).
            let expected: [f64; 9] = [
                24.899181214836236,
                0.1,
                3.0000000000000004,
                -2.2250738585072014e-308,
                1.7976931348623157e308,
                5e-324,
                -3.444418313650998e-109,
                -2.268960681969623e176,
                1.676302631222865e-140,
            ];
            assert_eq!(
                served.iter().map(bits).collect::<Vec<_>>(),
                expected
                    .iter()
                    .map(|f| Some(f.to_bits()))
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Retention deletes values older than the limit, the series left without
/// a value (`resource_series`, which the view `resource_latest` lists) and
/// the rollup buckets as old; newer values, their series and buckets stay.
async fn retention_deletes_old_values_with_their_latest_rows(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (ep, value) in [
        ("old-dev", "20.5"),
        ("old-dev", "21.5"),
        ("new-dev", "22.5"),
    ] {
        post_temperature(&app, ep, value).await;
    }
    // Age the old device's values past a 30-day retention.
    let forty_days_ago = flownexus::server::store::now_ms() - 40 * 86_400_000;
    sqlx::query(
        "UPDATE resource SET received_at = $1, measured_at = $1 WHERE endpoint_id = \
         (SELECT id FROM endpoint WHERE name = 'old-dev')",
    )
    .bind(forty_days_ago)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    // The values changed behind the ingest writer's back, which the server
    // never does: drop what the writer fed the rollup worker, so that the
    // worker reads them back as they are now.
    app.state.rollup_feed.restart_above(0);
    // Rolled up after the aging: old-dev's values in 40-day-old buckets.
    assert_eq!(
        flownexus::server::rollup::run_once(&app.state.db, &app.state.rollup_feed)
            .await
            .unwrap(),
        3
    );
    let rollup_tables = [
        "resource_rollup_minute",
        "resource_rollup_hour",
        "ingest_minute",
    ];
    for table in rollup_tables {
        assert_eq!(app.count(table).await, 2, "{table}");
    }
    let deleted = flownexus::server::retention::prune_once(&app.state.db, 30)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(app.count("resource").await, 1);
    assert_eq!(app.count("resource_latest").await, 1);
    assert_eq!(app.count("resource_series").await, 1);
    // The old buckets went with the values, the new ones stay.
    for table in rollup_tables {
        assert_eq!(app.count(table).await, 1, "{table}");
    }
    let new_minute: i64 = sqlx::query_scalar("SELECT bucket_start FROM ingest_minute")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(new_minute > forty_days_ago + 86_400_000, "{new_minute}");
    let old_id: i64 = sqlx::query_scalar("SELECT id FROM endpoint WHERE name = 'old-dev'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let latest = flownexus::server::db::resource::latest_for_endpoint(&app.state.db.pool, old_id)
        .await
        .unwrap();
    assert!(latest.is_empty(), "{latest:?}");
    // Nothing left to delete.
    let deleted = flownexus::server::retention::prune_once(&app.state.db, 30)
        .await
        .unwrap();
    assert_eq!(deleted, 0);
}

/// A series whose stored values are all past retention gets a new value in
/// a transaction that is still open when retention runs (the ingest
/// writer's statements: the endpoint's row, then the value, the series row
/// already there). Retention must wait for it and keep the series; on
/// PostgreSQL its NOT EXISTS would otherwise not see the uncommitted value.
async fn retention_keeps_a_series_that_gets_a_value_while_it_runs(backend: Backend) {
    let app = TestApp::new(backend).await;
    post_temperature(&app, "dev", "20.5").await;
    let forty_days_ago = flownexus::server::store::now_ms() - 40 * 86_400_000;
    sqlx::query("UPDATE resource SET received_at = $1, measured_at = $1")
        .bind(forty_days_ago)
        .execute(&app.state.db.pool)
        .await
        .unwrap();

    let now = flownexus::server::store::now_ms();
    let mut writer = flownexus::server::store::begin_write(&app.state.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE endpoint SET last_seen_at = $1 WHERE name = 'dev'")
        .bind(now)
        .execute(&mut *writer)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO resource (endpoint_id, resource_type_id, object_instance_id, \
         resource_instance_id, float_value, received_at, measured_at) \
         SELECT endpoint_id, resource_type_id, object_instance_id, resource_instance_id, \
         21.5, $1, $1 FROM resource",
    )
    .bind(now)
    .execute(&mut *writer)
    .await
    .unwrap();

    let db = app.state.db.clone();
    let retention =
        tokio::spawn(async move { flownexus::server::retention::prune_once(&db, 30).await });
    // Long enough for retention to reach the series, were it not waiting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    writer.commit().await.unwrap();
    assert_eq!(retention.await.unwrap().unwrap(), 1);

    assert_eq!(app.count("resource").await, 1);
    assert_eq!(app.count("resource_series").await, 1);
    let endpoint_id: i64 = sqlx::query_scalar("SELECT id FROM endpoint WHERE name = 'dev'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let latest =
        flownexus::server::db::resource::latest_for_endpoint(&app.state.db.pool, endpoint_id)
            .await
            .unwrap();
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert_eq!(latest[0].value, "21.5");
}

/// An endpoint heard again within `LAST_SEEN_RESOLUTION_MS` of its stored
/// `last_seen_at` keeps its row; older, in queue mode, or with a queued
/// command waiting for the device to wake, the row moves to the new time.
async fn last_seen_is_rewritten_when_stale_in_queue_mode_or_for_a_waiting_command(
    backend: Backend,
) {
    use flownexus::server::db;
    let app = TestApp::new(backend).await;
    let post = || post_temperature(&app, "dev", "20.5");
    let pool = &app.state.db.pool;
    let set_last_seen = |at: i64| async move {
        sqlx::query("UPDATE endpoint SET last_seen_at = $1 WHERE name = 'dev'")
            .bind(at)
            .execute(pool)
            .await
            .unwrap();
    };
    let last_seen = || async {
        let at: i64 = sqlx::query_scalar("SELECT last_seen_at FROM endpoint WHERE name = 'dev'")
            .fetch_one(pool)
            .await
            .unwrap();
        at
    };
    post().await;
    let now = flownexus::server::store::now_ms;

    // Heard again at once: the row stays (the stored time is moved back
    // a little, far less than the resolution).
    let kept = now() - 10;
    set_last_seen(kept).await;
    post().await;
    assert_eq!(last_seen().await, kept);
    assert_eq!(app.count("resource").await, 2);

    // Posted now, the stored time moves to at least now.
    let moves = || async {
        let before = now();
        post().await;
        assert!(last_seen().await >= before);
    };
    let set_queue_mode = |on: bool| async move {
        sqlx::query("UPDATE endpoint SET queue_mode = ($1 = 1) WHERE name = 'dev'")
            .bind(i64::from(on))
            .execute(pool)
            .await
            .unwrap();
    };

    // Heard well past the resolution: the row moves.
    set_last_seen(now() - 5 * db::endpoint::LAST_SEEN_RESOLUTION_MS).await;
    moves().await;

    // In queue mode the row always moves: whether the device is awake is
    // reckoned from it.
    set_last_seen(now() - 10).await;
    set_queue_mode(true).await;
    moves().await;
    set_queue_mode(false).await;

    // A command waits for the device to wake: its next report writes the
    // time at once, so that the command can go.
    let recent = now() - 10;
    set_last_seen(recent).await;
    sqlx::query(
        "INSERT INTO endpoint_operation (endpoint_id, path, operation_type, status, \
         created_at, updated_at, wake_after) \
         SELECT id, '/3/0/4', 'execute', 'queued', $1, $1, $1 FROM endpoint WHERE name = 'dev'",
    )
    .bind(recent)
    .execute(pool)
    .await
    .unwrap();
    moves().await;
}

/// Posts one 3303/0/5700 value of `endpoint` through the router.
async fn post_temperature(app: &TestApp, endpoint: &str, value: &str) {
    let body = json!({"ep": endpoint, "obj_id": 3303, "val": {"kind": "instance", "id": 0,
        "resources": [{"kind": "singleResource", "id": 5700, "type": "FLOAT", "value": value}]}});
    let (status, body) = app
        .ingest("/leshan_api/resource/single", body.to_string())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
