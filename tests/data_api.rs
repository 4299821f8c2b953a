//! The data API under /api/v1, CSV export and the OpenAPI document, against
//! the real router on both databases.
mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use common::{payload, Backend, TestApp};
use flownexus::server::db::api_token::Scope;
use http_body_util::BodyExt;
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;
use tower::ServiceExt;

both_databases!(
    endpoint_detail_has_typed_latest_values,
    series_is_raw_when_it_fits_and_bucketed_when_not,
    series_of_100k_rows_is_downsampled_and_streams_as_csv,
    non_numeric_series_are_truncated_to_the_newest_values,
    series_of_a_resource_instance,
    series_queries_use_the_series_index,
    bad_parameters_are_422_naming_the_field,
    events_are_filtered_and_keyset_paged,
    csv_exports_escape_fields_and_list_event_values,
    openapi_document_covers_every_route,
    data_api_needs_an_api_token_or_session,
    metrics_count_what_was_stored_and_refused,
);

const T0: i64 = 1_700_000_000_000;

async fn api_token(app: &TestApp) -> String {
    app.token("reader", Scope::Api).await
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    app.request(req.body(Body::empty()).unwrap()).await
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> (StatusCode, Json) {
    let (status, headers, body) = get(app, path, Some(token)).await;
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| {
        panic!(
            "{path}: {status} {headers:?} not JSON: {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, json)
}

async fn exec(app: &TestApp, sql: &str) {
    sqlx::query(sql)
        .execute(&app.state.db.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Creates an endpoint directly; returns its id.
async fn endpoint(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("INSERT INTO endpoint (name, created_at) VALUES ($1, 0) RETURNING id")
        .bind(name)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

async fn type_id(app: &TestApp, object: i64, resource: i64) -> i64 {
    scalar(
        app,
        &format!(
            "SELECT id FROM resource_type WHERE object_id = {object} AND resource_id = {resource}"
        ),
    )
    .await
}

/// Inserts `n` values of one series in one statement: value i is stored at
/// T0 + i * step ms; `column` gets the SQL expression `value` of i.
#[allow(clippy::too_many_arguments)]
async fn bulk(
    app: &TestApp,
    endpoint_id: i64,
    type_id: i64,
    instance: i64,
    resource_instance: Option<i64>,
    n: i64,
    step: i64,
    column: &str,
    value: &str,
) {
    let ri = resource_instance.map_or("NULL".to_string(), |r| r.to_string());
    exec(
        app,
        &format!(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {last}) \
             INSERT INTO resource (endpoint_id, resource_type_id, object_instance_id, \
             resource_instance_id, {column}, received_at, measured_at) \
             SELECT {endpoint_id}, {type_id}, {instance}, {ri}, {value}, \
             {T0} + CAST(i AS BIGINT) * {step}, {T0} + CAST(i AS BIGINT) * {step} FROM s",
            last = n - 1
        ),
    )
    .await;
}

/// The smallest width, in steps of `unit` ms from the even split of the
/// range, whose buckets aligned from the epoch cover [from, to] in at most
/// `max_points` buckets: what the server must choose, found by trying.
fn smallest_width(from: i64, to: i64, max_points: i64, unit: i64) -> i64 {
    let even = (to - from + 1 + max_points - 1) / max_points;
    let first = (even + unit - 1) / unit * unit;
    (0..)
        .map(|i| first + i * unit)
        .find(|w| to / w - from / w < max_points)
        .unwrap()
}

/// What the server must answer for values i*0.5 stored at T0 + i*step,
/// i in 0..n, read over [from, to] in buckets of `width` aligned from the
/// epoch.
fn expected_buckets(
    n: i64,
    step: i64,
    from: i64,
    to: i64,
    width: i64,
) -> Vec<(i64, f64, f64, f64, i64)> {
    let mut out: Vec<(i64, f64, f64, f64, i64)> = Vec::new();
    let mut sums: Vec<f64> = Vec::new();
    for i in 0..n {
        let t = T0 + i * step;
        if t < from || t > to {
            continue;
        }
        let v = i as f64 * 0.5;
        let start = t / width * width;
        match out.last_mut() {
            Some(b) if b.0 == start => {
                b.1 = b.1.min(v);
                b.2 = b.2.max(v);
                b.4 += 1;
                *sums.last_mut().unwrap() += v;
            }
            _ => {
                out.push((start, v, v, 0.0, 1));
                sums.push(v);
            }
        }
    }
    for (b, s) in out.iter_mut().zip(sums) {
        b.3 = s / b.4 as f64;
    }
    out
}

fn assert_buckets(json: &Json, expected: &[(i64, f64, f64, f64, i64)]) {
    let got = json["buckets"].as_array().unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g["t"], e.0, "{g}");
        assert_eq!(g["min"].as_f64().unwrap(), e.1, "{g}");
        assert_eq!(g["max"].as_f64().unwrap(), e.2, "{g}");
        let avg = g["avg"].as_f64().unwrap();
        assert!(
            (avg - e.3).abs() <= 1e-9 * e.3.abs().max(1.0),
            "{g} vs {e:?}"
        );
        assert_eq!(g["count"], e.4, "{g}");
    }
}

async fn endpoint_detail_has_typed_latest_values(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    // A newer temperature replaces the latest value.
    let newer = json!({"ep": "qemu_x86", "obj_id": 3303,
        "val": {"kind": "singleResource", "id": 5700, "type": "FLOAT", "value": "21.5"}});
    for (path, body) in [
        (
            "/leshan_api/resource/single",
            payload("single__test_temperature_3303_0_5700.json"),
        ),
        ("/leshan_api/resource/single", newer.to_string()),
        (
            "/leshan_api/resource/composite",
            payload("composite__onboarding_read_object3.json"),
        ),
    ] {
        let (status, body) = app.ingest(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let (status, ep) = get_json(&app, "/api/v1/endpoints/qemu_x86", &token).await;
    assert_eq!(status, StatusCode::OK, "{ep}");
    assert_eq!(ep["name"], "qemu_x86");
    assert_eq!(ep["presence"], "offline", "never registered");
    assert_eq!(ep["registered"], false);
    assert!(ep["last_seen_at"].as_i64().unwrap() > T0);
    assert!(ep["created_at"].as_i64().unwrap() > T0);
    let resources = ep["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 23, "22 of object 3 and one temperature");
    let by_path = |p: &str| {
        resources
            .iter()
            .find(|r| r["path"] == p)
            .unwrap_or_else(|| panic!("{p} missing from {ep}"))
    };
    let t = by_path("/3303/0/5700");
    assert_eq!(t["value"], json!(21.5));
    assert_eq!(t["name"], "temperature");
    assert_eq!(t["unit"], "Cel");
    assert_eq!(t["data_type"], "FLOAT");
    assert_eq!(
        (
            t["object_id"].clone(),
            t["instance_id"].clone(),
            t["resource_id"].clone()
        ),
        (json!(3303), json!(0), json!(5700))
    );
    assert_eq!(t["resource_instance_id"], Json::Null);
    let ri = by_path("/3/0/7/1");
    assert_eq!(ri["value"], json!(5000), "integers are JSON numbers");
    assert_eq!(ri["resource_instance_id"], 1);
    assert_eq!(by_path("/3/0/0")["value"], "Zephyr");
    // Path order.
    let paths: Vec<(i64, i64, i64, i64)> = resources
        .iter()
        .map(|r| {
            (
                r["object_id"].as_i64().unwrap(),
                r["instance_id"].as_i64().unwrap(),
                r["resource_id"].as_i64().unwrap(),
                r["resource_instance_id"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);

    // Registration facts; a name that needs percent-encoding.
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__registered_10240_0.json"),
    )
    .await;
    let (status, ep) = get_json(
        &app,
        "/api/v1/endpoints/urn%3Aimei%3A100000000000000",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ep}");
    assert_eq!(ep["name"], "urn:imei:100000000000000");
    assert_eq!(ep["registered"], true);
    assert_eq!(ep["presence"], "online");
    assert!(ep["last_registration_at"].is_i64());
    assert_eq!(ep["queue_mode"], false);
    assert_eq!(ep["binding"], Json::Null);
    assert_eq!(ep["resources"][0]["data_type"], "TIME");
    assert_eq!(ep["resources"][0]["value"], json!(1717171717171i64));

    let (status, body) = get_json(&app, "/api/v1/endpoints/nobody", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("nobody"), "{body}");
    let (status, body) = get_json(&app, "/api/v1/endpoints/qemu_x86?verbose=1", &token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "verbose");
}

async fn series_is_raw_when_it_fits_and_bucketed_when_not(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let ep = endpoint(&app, "sensor").await;
    let temp = type_id(&app, 3303, 5700).await;
    bulk(&app, ep, temp, 0, None, 10, 1000, "float_value", "i * 0.5").await;
    // Another instance and another endpoint must not leak in.
    bulk(&app, ep, temp, 1, None, 10, 1000, "float_value", "1000.0").await;
    let other = endpoint(&app, "other").await;
    bulk(
        &app,
        other,
        temp,
        0,
        None,
        10,
        1000,
        "float_value",
        "1000.0",
    )
    .await;

    let base = format!(
        "/api/v1/endpoints/sensor/series/3303/0/5700?from={T0}&to={}",
        T0 + 9000
    );
    let (status, s) = get_json(&app, &format!("{base}&max_points=10"), &token).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["downsampled"], false);
    assert_eq!(s["truncated"], false);
    assert_eq!(s["bucket_ms"], Json::Null);
    assert_eq!(s["total"], 10);
    assert_eq!(s["buckets"], json!([]));
    assert_eq!(s["path"], "/3303/0/5700");
    assert_eq!(s["name"], "temperature");
    assert_eq!(s["unit"], "Cel");
    assert_eq!(s["data_type"], "FLOAT");
    assert_eq!(
        (s["from"].as_i64(), s["to"].as_i64()),
        (Some(T0), Some(T0 + 9000))
    );
    let points = s["points"].as_array().unwrap();
    assert_eq!(points.len(), 10);
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p["t"], T0 + i as i64 * 1000);
        assert_eq!(p["value"].as_f64().unwrap(), i as f64 * 0.5);
    }

    // At most five buckets over the 9001 ms range: 1801 ms would split it
    // evenly from T0, but aligned from the epoch (T0 is 32 ms into a
    // 1816 ms bucket) the first width that needs no sixth bucket is 1816.
    let (status, s) = get_json(&app, &format!("{base}&max_points=5"), &token).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["downsampled"], true);
    assert_eq!(s["bucket_ms"], smallest_width(T0, T0 + 9000, 5, 1));
    assert_eq!(s["bucket_ms"], 1816);
    assert_eq!(s["total"], 10);
    assert_eq!(s["points"], json!([]));
    assert_buckets(&s, &expected_buckets(10, 1000, T0, T0 + 9000, 1816));
    assert_eq!(
        s["buckets"][0],
        json!({"t": T0 - 32, "min": 0.0, "max": 0.5, "avg": 0.25, "count": 2})
    );

    // Inclusive bounds; RFC 3339 is accepted.
    let (_, s) = get_json(
        &app,
        "/api/v1/endpoints/sensor/series/3303/0/5700?from=2023-11-14T22:13:21Z&to=2023-11-14T22:13:23.000Z",
        &token,
    )
    .await;
    let ts: Vec<i64> = s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["t"].as_i64().unwrap())
        .collect();
    assert_eq!(ts, [T0 + 1000, T0 + 2000, T0 + 3000]);

    // Without from and to: from the first value to now.
    let (_, s) = get_json(&app, "/api/v1/endpoints/sensor/series/3303/0/5700", &token).await;
    assert_eq!(s["from"], T0);
    assert!(s["to"].as_i64().unwrap() > T0 + 9000);
    assert_eq!(s["total"], 10);
    // A known resource type the endpoint never reported: an empty series.
    let (status, s) = get_json(&app, "/api/v1/endpoints/sensor/series/3304/0/5700", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (s["total"].clone(), s["points"].clone()),
        (json!(0), json!([]))
    );
    // Unknown endpoint or resource type: 404.
    let (status, body) = get_json(&app, "/api/v1/endpoints/ghost/series/3303/0/5700", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = get_json(&app, "/api/v1/endpoints/sensor/series/9999/0/1", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("9999/1"), "{body}");
}

async fn series_of_100k_rows_is_downsampled_and_streams_as_csv(backend: Backend) {
    const N: i64 = 100_000;
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let ep = endpoint(&app, "bulk:1").await;
    let temp = type_id(&app, 3303, 5700).await;
    bulk(&app, ep, temp, 0, None, N, 1000, "float_value", "i * 0.5").await;
    let to = T0 + (N - 1) * 1000;

    let path = "/api/v1/endpoints/bulk%3A1/series/3303/0/5700";
    let (status, s) = get_json(&app, &format!("{path}?from={T0}&to={to}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["downsampled"], true);
    assert_eq!(s["max_points"], 1000, "the default");
    assert_eq!(s["total"], N);
    let width = s["bucket_ms"].as_i64().unwrap();
    // 100 s would split the range evenly; from a minute on widths are whole
    // minutes (so the minute rollups can answer), hence 2 min: 834 buckets.
    assert_eq!(width, smallest_width(T0, to, 1000, 60_000));
    assert_eq!(width, 120_000);
    assert_eq!(s["buckets"].as_array().unwrap().len(), 834);
    assert_buckets(&s, &expected_buckets(N, 1000, T0, to, width));

    // A sub-range with an odd bucket count.
    let (from, to2) = (T0 + 12_345_678, T0 + 54_321_000);
    let (_, s) = get_json(
        &app,
        &format!("{path}?from={from}&to={to2}&max_points=777"),
        &token,
    )
    .await;
    let width = s["bucket_ms"].as_i64().unwrap();
    assert_eq!(width, smallest_width(from, to2, 777, 1));
    assert!(s["buckets"].as_array().unwrap().len() <= 777);
    assert_buckets(&s, &expected_buckets(N, 1000, from, to2, width));

    // CSV: every row, streamed in chunks without a Content-Length.
    let req = Request::get(format!("{path}?from={T0}&to={to}&format=csv"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        resp.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"bulk_1_3303-0-5700.csv\""
    );
    assert!(resp.headers().get(header::CONTENT_LENGTH).is_none());
    let mut body = resp.into_body();
    let (mut frames, mut largest, mut csv) = (0, 0, Vec::new());
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        frames += 1;
        largest = largest.max(data.len());
        csv.extend_from_slice(&data);
    }
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(lines.len() as i64, N + 1);
    assert_eq!(
        lines[0],
        "received_at,received_at_ms,value,measured_at,measured_at_ms"
    );
    // Stored without a device time: measured when received.
    assert_eq!(
        lines[1],
        "2023-11-14T22:13:20.000Z,1700000000000,0,2023-11-14T22:13:20.000Z,1700000000000"
    );
    assert_eq!(
        lines[2],
        "2023-11-14T22:13:21.000Z,1700000001000,0.5,2023-11-14T22:13:21.000Z,1700000001000"
    );
    assert_eq!(
        lines[N as usize],
        format!("2023-11-16T01:59:59.000Z,{to},49999.5,2023-11-16T01:59:59.000Z,{to}")
    );
    assert!(
        frames >= csv.len() / (80 * 1024),
        "{frames} frames for {} bytes",
        csv.len()
    );
    assert!(largest <= 80 * 1024, "chunks stay small: {largest}");
    // max_points does not cap an export; Accept: text/csv selects CSV too.
    let req = Request::get(format!("{path}?from={T0}&to={}&max_points=5", T0 + 9000))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "text/csv")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = app.request(req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), 11);
}

async fn non_numeric_series_are_truncated_to_the_newest_values(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let ep = endpoint(&app, "dev").await;
    let manufacturer = type_id(&app, 3, 0).await;
    bulk(
        &app,
        ep,
        manufacturer,
        0,
        None,
        20,
        1000,
        "text_value",
        "'v' || i",
    )
    .await;
    let (status, s) = get_json(
        &app,
        &format!("/api/v1/endpoints/dev/series/3/0/0?from={T0}&max_points=5"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["data_type"], "STRING");
    assert_eq!(s["downsampled"], false);
    assert_eq!(s["truncated"], true);
    assert_eq!(s["total"], 20);
    let values: Vec<&str> = s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["v15", "v16", "v17", "v18", "v19"]);
    let (_, s) = get_json(
        &app,
        &format!("/api/v1/endpoints/dev/series/3/0/0?from={T0}&max_points=20"),
        &token,
    )
    .await;
    assert_eq!(
        (s["truncated"].clone(), s["total"].clone()),
        (json!(false), json!(20))
    );
}

async fn series_of_a_resource_instance(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let (status, _) = app
        .ingest(
            "/leshan_api/resource/composite",
            payload("composite__onboarding_read_object3.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let base = "/api/v1/endpoints/qemu_x86/series/3/0/7";
    let (_, s) = get_json(&app, &format!("{base}?resource_instance=1"), &token).await;
    assert_eq!(s["path"], "/3/0/7/1");
    assert_eq!(s["resource_instance_id"], 1);
    let values: Vec<Json> = s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].clone())
        .collect();
    assert_eq!(values, [json!(5000)]);
    let (_, s) = get_json(&app, &format!("{base}?resource_instance=0"), &token).await;
    assert_eq!(s["points"][0]["value"], 3800);
    // Without resource_instance: the single-instance series, which 3/0/7 has not.
    let (_, s) = get_json(&app, base, &token).await;
    assert_eq!(s["total"], 0);
    // Many values in one instance, bucketed, and none of the other's.
    let ep = scalar(&app, "SELECT id FROM endpoint WHERE name = 'qemu_x86'").await;
    let t = type_id(&app, 3, 7).await;
    bulk(&app, ep, t, 0, Some(1), 50, 1000, "int_value", "i").await;
    bulk(&app, ep, t, 0, Some(2), 50, 1000, "int_value", "1000000").await;
    bulk(&app, ep, t, 0, None, 50, 1000, "int_value", "1000000").await;
    let (_, s) = get_json(
        &app,
        &format!(
            "{base}?resource_instance=1&from={T0}&to={}&max_points=10",
            T0 + 49_999
        ),
        &token,
    )
    .await;
    assert_eq!(s["downsampled"], true, "{s}");
    assert_eq!(s["bucket_ms"], 5000);
    assert_eq!(s["total"], 50);
    assert_eq!(
        s["buckets"][9],
        json!({"t": T0 + 45_000, "min": 45.0, "max": 49.0, "avg": 47.0, "count": 5})
    );
}

/// The series queries are answered from resource_series_idx on both
/// databases, with and without a resource instance.
async fn series_queries_use_the_series_index(backend: Backend) {
    use flownexus::server::db::resource::{series_sql, SeriesSql};
    let app = TestApp::new(backend).await;
    let ep = endpoint(&app, "idx").await;
    let temp = type_id(&app, 3303, 5700).await;
    let multi = type_id(&app, 3, 7).await;
    // Enough rows over several series that a scan would cost more.
    bulk(
        &app,
        ep,
        temp,
        0,
        None,
        20_000,
        1000,
        "float_value",
        "i * 0.5",
    )
    .await;
    bulk(&app, ep, multi, 0, Some(0), 20_000, 1000, "int_value", "i").await;
    bulk(&app, ep, multi, 0, Some(1), 20_000, 1000, "int_value", "i").await;
    if backend == Backend::Postgres {
        exec(&app, "ANALYZE resource").await;
    }
    let kinds = [
        SeriesSql::First,
        SeriesSql::Count,
        SeriesSql::Oldest,
        SeriesSql::Newest,
        SeriesSql::Buckets,
        SeriesSql::All,
    ];
    for kind in kinds {
        for with_ri in [false, true] {
            let sql = series_sql(kind, with_ri);
            let explain = common::explain(backend, sql);
            let mut q = sqlx::query(&explain)
                .bind(ep)
                .bind(if with_ri { multi } else { temp })
                .bind(0i64);
            // The ordered queries with a limit get the whole series, where
            // sorting it all would show; the others a narrow range.
            let ordered = matches!(kind, SeriesSql::Oldest | SeriesSql::Newest);
            if ordered {
                q = q.bind(T0).bind(T0 + 1_000_000_000);
            } else if kind != SeriesSql::First {
                q = q.bind(T0 + 100_000).bind(T0 + 110_000);
            }
            if matches!(
                kind,
                SeriesSql::Oldest | SeriesSql::Newest | SeriesSql::Buckets
            ) {
                q = q.bind(10i64);
            }
            if with_ri {
                q = q.bind(1i64);
            }
            let rows = q.fetch_all(&app.state.db.pool).await.unwrap();
            let plan = common::plan_lines(backend, &rows);
            assert!(
                plan.iter().any(|l| l.contains("resource_series_idx")),
                "{kind:?} (resource instance: {with_ri}) does not use the index:\n{}\n{sql}",
                plan.join("\n")
            );
            // The index order must serve ORDER BY: a full sort of the series
            // (PostgreSQL: a plain Sort node; SQLite: a temp b-tree for the
            // whole ORDER BY) made the first page of a 10 M series take 2.4 s.
            // Sorting ties on id within one timestamp (Incremental Sort,
            // "RIGHT PART OF ORDER BY") is fine.
            if ordered {
                let full_sort = plan.iter().any(|l| {
                    let l = l.trim_start().trim_start_matches("->").trim_start();
                    // A node line ("Sort  (cost=…"), not a "Sort Key:" one.
                    l.starts_with("Sort  (") || l.contains("USE TEMP B-TREE FOR ORDER BY")
                });
                assert!(
                    !full_sort,
                    "{kind:?} (resource instance: {with_ri}) sorts the whole range:\n{}\n{sql}",
                    plan.join("\n")
                );
            }
        }
    }
}

async fn bad_parameters_are_422_naming_the_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    endpoint(&app, "sensor").await;
    let s = "/api/v1/endpoints/sensor/series/3303/0/5700";
    let cases: Vec<(String, &str)> = vec![
        (format!("{s}?from=abc"), "from"),
        (format!("{s}?to=2026-13-01T00:00:00Z"), "to"),
        (format!("{s}?from=2000&to=1000"), "from"),
        (format!("{s}?from=-5"), "from"),
        (format!("{s}?to=99999999999999999999"), "to"),
        (format!("{s}?from=1&from=2"), "from"),
        (format!("{s}?max_points=0"), "max_points"),
        (format!("{s}?max_points=10001"), "max_points"),
        (format!("{s}?max_points=1.5"), "max_points"),
        (format!("{s}?max_points=lots"), "max_points"),
        (format!("{s}?resource_instance=65536"), "resource_instance"),
        (format!("{s}?format=xml"), "format"),
        (format!("{s}?max_point=10"), "max_point"),
        (
            "/api/v1/endpoints/sensor/series/70000/0/5700".into(),
            "object",
        ),
        (
            "/api/v1/endpoints/sensor/series/3303/x/5700".into(),
            "instance",
        ),
        (
            "/api/v1/endpoints/sensor/series/3303/0/-1".into(),
            "resource",
        ),
        ("/api/v1/events?limit=0".into(), "limit"),
        ("/api/v1/events?limit=1001".into(), "limit"),
        ("/api/v1/events?before=first".into(), "before"),
        ("/api/v1/events?from=tomorrow".into(), "from"),
        ("/api/v1/events?from=3000&to=2000".into(), "from"),
        (format!("/api/v1/events?type={}", "x".repeat(101)), "type"),
        ("/api/v1/events?format=pdf".into(), "format"),
        ("/api/v1/events?page=2".into(), "page"),
    ];
    for (path, field) in cases {
        let (status, body) = get_json(&app, &path, &token).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        let details = body["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|d| d["path"] == field && d["reason"].is_string()),
            "{path}: expected a detail for {field}, got {body}"
        );
        assert!(body["error"].is_string());
    }
    // Several problems are reported together.
    let (status, body) =
        get_json(&app, &format!("{s}?from=x&max_points=0&format=xml"), &token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: BTreeSet<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(fields, BTreeSet::from(["from", "max_points", "format"]));
    // An unencoded '+' in an RFC 3339 offset arrives as a space and is accepted.
    let (status, body) =
        get_json(&app, &format!("{s}?from=2023-11-14T23:13:20+01:00"), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["from"], T0);
    // Malformed percent-encoding in the query: a JSON 400.
    let (status, body) = get_json(&app, &format!("{s}?from=%FF%FE"), &token).await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status} {body}"
    );
    assert!(body["error"].is_string());
}

async fn events_are_filtered_and_keyset_paged(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    for p in [
        "single__registered_10240_0.json",
        "single__registration_update_10240_2.json",
        "single__unregistered_10240_1.json",
    ] {
        app.ingest("/leshan_api/resource/single", payload(p)).await;
    }
    app.ingest(
        "/leshan_api/resource/composite",
        payload("composite__onboarding_read_object3.json"),
    )
    .await;
    exec(&app, "UPDATE event SET created_at = id * 1000").await;

    let (status, page) = get_json(&app, "/api/v1/events", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["next_before"], Json::Null);
    let events = page["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "device",
            "deregistered",
            "registration_update",
            "registered"
        ]
    );
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let device = &events[0];
    assert_eq!(device["endpoint"], "qemu_x86");
    assert_eq!(device["created_at"], ids[0] * 1000);
    let resources = device["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 22);
    assert_eq!(resources[0]["path"], "/3/0/0");
    assert_eq!(resources[0]["value"], "Zephyr");
    assert!(resources
        .iter()
        .any(|r| r["path"] == "/3/0/7/1" && r["value"] == 5000));
    let registered = &events[3];
    assert_eq!(registered["endpoint"], "urn:imei:100000000000000");
    assert_eq!(registered["resources"][0]["path"], "/10240/0/0");
    assert_eq!(registered["resources"][0]["value"], json!(1717171717171i64));

    let types_of = |page: &Json| -> Vec<String> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, page) = get_json(&app, "/api/v1/events?endpoint=qemu_x86", &token).await;
    assert_eq!(types_of(&page), ["device"]);
    let (_, page) = get_json(
        &app,
        "/api/v1/events?endpoint=urn%3Aimei%3A100000000000000&type=registered,deregistered",
        &token,
    )
    .await;
    assert_eq!(types_of(&page), ["deregistered", "registered"]);
    let (_, page) = get_json(&app, "/api/v1/events?type=registered&type=device", &token).await;
    assert_eq!(types_of(&page), ["device", "registered"]);
    let (_, page) = get_json(&app, "/api/v1/events?type=nothing", &token).await;
    assert_eq!(page["events"], json!([]));
    let (from, to) = (ids[2] * 1000, ids[1] * 1000);
    let (_, page) = get_json(&app, &format!("/api/v1/events?from={from}&to={to}"), &token).await;
    assert_eq!(types_of(&page), ["deregistered", "registration_update"]);
    let (status, body) = get_json(&app, "/api/v1/events?endpoint=ghost", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Keyset paging over more events: every event once, in order, and the
    // last page says there is no next one.
    let ep = scalar(&app, "SELECT id FROM endpoint WHERE name = 'qemu_x86'").await;
    exec(
        &app,
        &format!(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 24) \
             INSERT INTO event (endpoint_id, event_type, created_at) \
             SELECT {ep}, 'tick', {T0} + i FROM s"
        ),
    )
    .await;
    let all: Vec<i64> = sqlx::query_scalar("SELECT id FROM event ORDER BY id DESC")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(all.len(), 29);
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/v1/events?limit=10&before={b}"),
            None => "/api/v1/events?limit=10".into(),
        };
        let (status, page) = get_json(&app, &path, &token).await;
        assert_eq!(status, StatusCode::OK);
        let events = page["events"].as_array().unwrap();
        sizes.push(events.len());
        seen.extend(events.iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next_before"].as_i64() {
            Some(b) => {
                assert_eq!(Some(b), seen.last().copied());
                before = Some(b);
            }
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 9]);
    assert_eq!(seen, all);
    // Paging composes with filters.
    let (_, page) = get_json(&app, "/api/v1/events?type=tick&limit=20", &token).await;
    let next = page["next_before"].as_i64().unwrap();
    let (_, page) = get_json(
        &app,
        &format!("/api/v1/events?type=tick&limit=20&before={next}"),
        &token,
    )
    .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 5);
    assert_eq!(page["next_before"], Json::Null);
}

async fn csv_exports_escape_fields_and_list_event_values(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let tricky = "Zephyr, \"RTOS\"\nline 2";
    let body = json!({"ep": "qemu_x86", "val": {
        "/3/0/0": {"kind": "singleResource", "id": 0, "type": "STRING", "value": tricky},
        "/3/0/9": {"kind": "singleResource", "id": 9, "type": "INTEGER", "value": "95"}}});
    let (status, json) = app
        .ingest("/leshan_api/resource/composite", body.to_string())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__registered_10240_0.json"),
    )
    .await;
    // An event without values still gets a row.
    let ep = scalar(&app, "SELECT id FROM endpoint WHERE name = 'qemu_x86'").await;
    exec(
        &app,
        &format!(
            "INSERT INTO event (endpoint_id, event_type, created_at) VALUES ({ep}, 'note', {T0})"
        ),
    )
    .await;

    let (status, headers, body) = get(
        &app,
        "/api/v1/endpoints/qemu_x86/series/3/0/0?format=csv",
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"qemu_x86_3-0-0.csv\""
    );
    let csv = String::from_utf8(body).unwrap();
    let (head, rest) = csv.split_once("\r\n").unwrap();
    assert_eq!(
        head,
        "received_at,received_at_ms,value,measured_at,measured_at_ms"
    );
    assert!(
        rest.contains(",\"Zephyr, \"\"RTOS\"\"\nline 2\","),
        "{rest:?}"
    );
    assert_eq!(parse_csv(&csv)[1][2], tricky);

    let (status, headers, body) = get(&app, "/api/v1/events?format=csv", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"events_all.csv\""
    );
    let rows = parse_csv(&String::from_utf8(body).unwrap());
    assert_eq!(
        rows[0],
        [
            "event_id",
            "created_at",
            "created_at_ms",
            "endpoint",
            "type",
            "path",
            "name",
            "data_type",
            "value"
        ]
    );
    // note (no values), registered (one), device (two): newest event first.
    assert_eq!(rows.len(), 1 + 1 + 1 + 2, "{rows:?}");
    assert_eq!(&rows[1][3..], ["qemu_x86", "note", "", "", "", ""]);
    assert_eq!(rows[1][1], "2023-11-14T22:13:20.000Z");
    assert_eq!(rows[1][2], T0.to_string());
    assert_eq!(
        &rows[2][3..8],
        [
            "urn:imei:100000000000000",
            "registered",
            "/10240/0/0",
            "ep_registered",
            "TIME"
        ]
    );
    assert_eq!(rows[2][8], "1717171717171");
    assert_eq!(
        &rows[3][4..],
        ["device", "/3/0/0", "manufacturer", "STRING", tricky]
    );
    assert_eq!(
        &rows[4][4..],
        ["device", "/3/0/9", "battery_level", "INTEGER", "95"]
    );
    // Filters apply to the export.
    let (_, _, body) = get(&app, "/api/v1/events?format=csv&type=device", Some(&token)).await;
    assert_eq!(parse_csv(&String::from_utf8(body).unwrap()).len(), 3);
}

/// A small RFC 4180 reader, to check what the server wrote.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "unterminated last record"
    );
    rows
}

/// Every route under /leshan_api and /api/v1 is in the document, every
/// documented operation is served, and what the handlers accept and answer
/// matches what the document says.
async fn openapi_document_covers_every_route(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    let (status, headers, body) = get(&app, "/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "public");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let doc: Json = serde_json::from_slice(&body).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "flownexus API");

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = [
        ("POST", "/leshan_api/resource/single"),
        ("POST", "/leshan_api/resource/composite"),
        ("GET", "/leshan_api/data/{resource_name}/"),
        ("GET", "/leshan_api/data/{resource_name}"),
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/metrics"),
        ("GET", "/api/v1/endpoints"),
        ("GET", "/api/v1/endpoints/{name}"),
        (
            "GET",
            "/api/v1/endpoints/{name}/series/{object}/{instance}/{resource}",
        ),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/live"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/v1/firmware"),
        ("POST", "/api/v1/firmware"),
        ("DELETE", "/api/v1/firmware/{id}"),
        ("GET", "/binaries/{file}"),
        ("GET", "/api/v1/commands"),
        ("POST", "/api/v1/commands"),
        ("GET", "/api/v1/commands/{id}"),
        ("POST", "/api/v1/commands/{id}/cancel"),
        ("POST", "/api/v1/commands/{id}/retry"),
        ("GET", "/api/v1/updates"),
        ("POST", "/api/v1/updates"),
        ("POST", "/api/v1/updates/{id}/cancel"),
        ("POST", "/api/v1/updates/{id}/retry"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(documented, served);

    // Every reference resolves; every operation is summarised and has a
    // unique id.
    fn refs<'a>(v: &'a Json, out: &mut Vec<&'a str>) {
        match v {
            Json::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Json::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            Json::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(all_refs.len() > 20);
    for r in all_refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling reference {r}"
        );
    }
    let mut operation_ids = BTreeSet::new();
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.starts_with('`')),
            "{method} {path} has no proper summary: {}",
            op["summary"]
        );
        assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()));
        assert!(operation_ids.insert(op["operationId"].as_str().unwrap().to_string()));
    }

    // Shared schemas and security.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "ErrorBody",
        "SingleUplink",
        "CompositeUplink",
        "UplinkNode",
        "IngestReceipt",
        "EndpointInfo",
        "EndpointSummary",
        "SeriesData",
        "Bucket",
        "EventPage",
        "EventView",
        "ResourceValue",
        "LiveValue",
        "DataType",
        "Presence",
        "LeshanDataRow",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }

    // Every documented operation is served: its documented example bodies
    // are accepted, and its path answers with something other than the
    // unknown-route 404 or a 405.
    let op = |method: &str, path: &str| doc["paths"][path][method.to_lowercase()].clone();
    // A firmware image for the firmware routes to read, download and
    // delete.
    let boundary = "openapitestboundary";
    let firmware_body = |version: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n{version}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fw.bin\"\r\n\r\n\
             firmware image\r\n--{boundary}--\r\n"
        )
    };
    let req = Request::post("/api/v1/firmware")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(firmware_body("openapi-1")))
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(status, StatusCode::CREATED);
    let firmware: Json = serde_json::from_slice(&body).unwrap();
    let firmware_url = firmware["download_url"].as_str().unwrap();
    let firmware_file = firmware_url.rsplit('/').next().unwrap().to_string();

    // Reads first (they read the data posted above, unchanged), then the
    // delete, then the POSTs.
    let mut ordered: Vec<&(String, String)> = documented.iter().collect();
    ordered.sort_by_key(|(m, _)| match m.as_str() {
        "POST" => 2,
        "DELETE" => 1,
        _ => 0,
    });
    for (method, path) in ordered {
        let operation = op(method, path);
        // Commands and updates need an endpoint, a firmware and a fake LwM2M
        // server: tests/commands.rs calls every one of them.
        if path.starts_with("/api/v1/commands") || path.starts_with("/api/v1/updates") {
            assert!(operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()));
            continue;
        }
        assert!(operation["responses"]
            .as_object()
            .is_some_and(|r| !r.is_empty()));
        let concrete = path
            .replace("{resource_name}", "temperature")
            .replace("{name}", "qemu_x86")
            .replace("{object}", "3303")
            .replace("{instance}", "0")
            .replace("{resource}", "5700")
            .replace("{id}", &firmware["id"].to_string())
            .replace("{file}", &firmware_file);
        let mut req = Request::builder()
            .method(method.as_str())
            .uri(&concrete)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let multipart = operation["requestBody"]["content"]
            .get("multipart/form-data")
            .is_some();
        let body = if method == "POST" && multipart {
            req = req.header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            );
            Body::from(firmware_body("openapi-2"))
        } else if method == "POST" {
            let schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string();
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(schemas[&schema]["example"].to_string())
        } else {
            Body::empty()
        };
        let (status, _, body) = app.request(req.body(body).unwrap()).await;
        let text = String::from_utf8_lossy(&body);
        let expected = match (method.as_str(), path.as_str()) {
            ("POST", _) => StatusCode::CREATED,
            ("DELETE", _) => StatusCode::NO_CONTENT,
            (_, "/api/v1/live") => StatusCode::BAD_REQUEST, // not an upgrade request
            _ => StatusCode::OK,
        };
        assert_eq!(status, expected, "{method} {concrete}: {text}");
        // Public: the document, health, and firmware downloads (devices
        // fetch their package URI without a token).
        if path != "/api/openapi.json" && path != "/api/v1/health" && path != "/binaries/{file}" {
            assert!(
                operation["security"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty()),
                "{method} {path} documents no security"
            );
        }
    }

    // What the series and events routes accept is what they document.
    let query_params = |path: &str| -> BTreeSet<String> {
        op("GET", path)["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let series = query_params("/api/v1/endpoints/{name}/series/{object}/{instance}/{resource}");
    assert_eq!(
        series,
        ["format", "from", "max_points", "resource_instance", "to"]
            .map(String::from)
            .into()
    );
    let events = query_params("/api/v1/events");
    assert_eq!(
        events,
        ["before", "endpoint", "format", "from", "limit", "to", "type"]
            .map(String::from)
            .into()
    );
    let (status, body) = get_json(
        &app,
        "/api/v1/events?endpoint=qemu_x86&type=device&from=0&to=1&limit=5&before=9&format=json",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The hand-written schemas match real answers.
    let props = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let keys = |v: &Json| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let (_, receipt) = app
        .ingest(
            "/leshan_api/resource/single",
            payload("single__registered_10240_0.json"),
        )
        .await;
    assert_eq!(keys(&receipt), props("IngestReceipt"));
    assert_eq!(keys(&receipt["resources"][0]), props("StoredValue"));
    let (_, error) = get_json(&app, "/api/v1/events?limit=0", &token).await;
    assert_eq!(keys(&error), props("ErrorBody"));
    assert_eq!(keys(&error["details"][0]), props("ErrorDetail"));
    let (_, rows) = get_json(&app, "/leshan_api/data/temperature/", &token).await;
    assert_eq!(keys(&rows[0]), props("LeshanDataRow"));

    // Paths that are not routes get JSON, not the dashboard's HTML.
    let (status, body) = get_json(&app, "/api/v1/nothing", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("/api/v1/nothing"));
    let (status, _) = get_json(&app, "/leshan_api/resource", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let req = Request::delete("/api/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        serde_json::from_slice::<Json>(&body).unwrap()["error"],
        "method not allowed"
    );
}

async fn data_api_needs_an_api_token_or_session(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    let token = api_token(&app).await;
    let cookie = app.login_cookie().await;
    let protected = [
        "/api/v1/endpoints",
        "/api/v1/endpoints/qemu_x86",
        "/api/v1/endpoints/qemu_x86/series/3303/0/5700",
        "/api/v1/endpoints/qemu_x86/series/3303/0/5700?format=csv",
        "/api/v1/events",
        "/api/v1/events?format=csv",
        "/leshan_api/data/temperature/",
        "/leshan_api/data/temperature",
    ];
    for path in protected {
        let (status, _, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            serde_json::from_slice::<Json>(&body).unwrap()["error"],
            "authentication required"
        );
        let (status, _, _) = get(&app, path, Some(&app.device_token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} with a device token");
        let (status, _, _) = get(&app, path, Some("fxa_not_a_token")).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong token"
        );
        let (status, _, _) = get(&app, path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{path} with an API token");
        let req = Request::get(path)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            app.request(req).await.0,
            StatusCode::OK,
            "{path} with a session"
        );
    }
    // Auth is checked before the parameters: no probing without a token.
    let (status, _, _) = get(&app, "/api/v1/events?limit=0", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The live websocket refuses device tokens too.
    let (status, _, _) = get(&app, "/api/v1/live", Some(&app.device_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for public in ["/api/v1/health", "/api/openapi.json"] {
        assert_eq!(get(&app, public, None).await.0, StatusCode::OK, "{public}");
    }
}

/// The value of one sample line of a Prometheus text answer, None when the
/// metric is not there.
fn sample(text: &str, metric: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_count_what_was_stored_and_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let (status, _) = app
        .ingest(
            "/leshan_api/resource/single",
            payload("single__test_temperature_3303_0_5700.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, receipt) = app
        .ingest(
            "/leshan_api/resource/composite",
            payload("composite__onboarding_read_object3.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let composite_values = receipt["stored"].as_u64().unwrap();
    let (status, _) = app.ingest("/leshan_api/resource/single", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        get(&app, "/api/v1/metrics", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, headers, body) = get(&app, "/api/v1/metrics", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(body).unwrap();
    assert_eq!(sample(&text, "flownexus_ingest_requests_total"), Some(2));
    assert_eq!(
        sample(&text, "flownexus_ingest_rows_total"),
        Some(1 + composite_values)
    );
    let commits = sample(&text, "flownexus_ingest_commits_total").unwrap();
    assert!((1..=2).contains(&commits), "{text}");
    assert_eq!(
        sample(&text, "flownexus_ingest_failed_commits_total"),
        Some(0)
    );
    assert_eq!(
        sample(&text, "flownexus_rejected_requests_total{status=\"400\"}"),
        Some(1)
    );
    // The unauthenticated metrics request itself.
    assert_eq!(
        sample(&text, "flownexus_rejected_requests_total{status=\"401\"}"),
        Some(1)
    );
    // Only SQLite has a write-ahead log that the server restarts.
    for name in [
        "flownexus_sqlite_wal_restarts_total",
        "flownexus_sqlite_wal_hurried_restarts_total",
    ] {
        let restarts = sample(&text, name);
        match backend {
            Backend::Sqlite => assert_eq!(restarts, Some(0), "{name}: {text}"),
            Backend::Postgres => assert_eq!(restarts, None, "{name}: {text}"),
        }
    }
}
