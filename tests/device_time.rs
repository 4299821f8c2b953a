//! The time a device measured a value, on both databases: a native device
//! (libcoap's `coap-client`) sends a current value, an hour it buffered
//! offline, a relative SenML time and an implausible one. Every value is
//! stored with its device time beside its receive time; series, CSV and
//! rollups go by the device time; the latest value is the one measured
//! last, not the last to arrive.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::coap::{self, coap_client, free_udp_port};
use common::{Backend, TestApp};
use flownexus::server::config::NosecPolicy;
use flownexus::server::db::api_token::Scope;
use flownexus::server::{rollup, store};
use serde_json::Value as Json;

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, String) {
    let req = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.request(req).await;
    (status, String::from_utf8(body).unwrap())
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Json {
    let (status, body) = get(app, path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn send(server: &str, port: &str, senml: &str) {
    let (out, err) = coap_client(&[
        "-p",
        port,
        "-m",
        "post",
        "-t",
        "110",
        "-e",
        senml,
        &format!("{server}/dp"),
    ])
    .await;
    assert!(!err.contains("4.") && !err.contains("5."), "{out} {err}");
}

async fn a_buffered_hour_is_stored_and_charted_by_device_time(backend: Backend) {
    let (app, lwm2m) = coap::app(backend, NosecPolicy::Open).await;
    let server = format!("coap://{}", lwm2m.local_addr);
    let port = free_udp_port().to_string();
    coap_client(&[
        "-p",
        &port,
        "-m",
        "post",
        "-t",
        "40",
        "-e",
        "</3303/0>",
        &format!("{server}/rd?ep=buffered&lwm2m=1.1&lt=300"),
    ])
    .await;
    assert!(lwm2m.registration("buffered").is_some());

    let start = store::now_ms();
    let now_s = start / 1000;
    // A device clock a day ahead: kept, under the receive time.
    send(
        &server,
        &port,
        &format!(r#"[{{"n":"/3303/0/5700","v":99,"t":{}}}]"#, now_s + 86_400),
    )
    .await;
    // The current value, without a time.
    send(&server, &port, r#"[{"bn":"/3303/0/","n":"5700","v":20.5}]"#).await;
    // An hour buffered offline: one value a minute, sent at once.
    // Two hours ago, so that the hour ends before the relative time below.
    let hour_ago_s = now_s - 7200;
    let records: Vec<String> = (0..60)
        .map(|i| {
            let base = if i == 0 {
                format!(r#""bn":"/3303/0/5700","bt":{hour_ago_s},"#)
            } else {
                String::new()
            };
            format!(r#"{{{base}"v":{i},"t":{}}}"#, i * 60)
        })
        .collect();
    send(&server, &port, &format!("[{}]", records.join(","))).await;
    // Two minutes ago, relative to now (RFC 8428 §4.5.3).
    send(&server, &port, r#"[{"n":"/3303/0/5700","v":1.5,"t":-120}]"#).await;
    let end = store::now_ms();

    let token = app.token("reader", Scope::Api).await;
    // Every value is there: none dropped, none merged.
    let from = (hour_ago_s - 60) * 1000;
    let series = get_json(
        &app,
        &format!(
            "/api/v1/endpoints/buffered/series/3303/0/5700?from={from}&to={}",
            end + 1000
        ),
        &token,
    )
    .await;
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), 63, "{series}");
    let t = |p: &Json| p["t"].as_i64().unwrap();
    let received = |p: &Json| p["received_at"].as_i64().unwrap();
    assert!(
        points.windows(2).all(|w| t(&w[0]) <= t(&w[1])),
        "ordered by device time"
    );
    for (i, p) in points[..60].iter().enumerate() {
        assert_eq!(t(p), (hour_ago_s + i as i64 * 60) * 1000, "{p}");
        assert_eq!(p["value"].as_f64(), Some(i as f64));
        assert!((start..=end).contains(&received(p)), "{p}");
    }
    let relative = &points[60];
    assert_eq!(relative["value"].as_f64(), Some(1.5));
    let ago = received(relative) - t(relative);
    assert!((119_000..=121_000).contains(&ago), "{relative}");
    // The implausible time and the untimed value: measured when received.
    for (p, v) in points[61..].iter().zip([99.0, 20.5]) {
        assert_eq!(p["value"].as_f64(), Some(v));
        assert_eq!(t(p), received(p), "{p}");
    }

    // The latest value is the one measured last (20.5), not the buffered
    // or relative ones that arrived after it.
    let info = get_json(&app, "/api/v1/endpoints/buffered", &token).await;
    let latest = info["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/3303/0/5700")
        .unwrap();
    assert_eq!(latest["value"].as_f64(), Some(20.5), "{latest}");
    assert_eq!(latest["measured_at"], latest["received_at"]);

    // CSV: both times of each value, in device-time order.
    let (status, csv) = get(
        &app,
        &format!(
            "/api/v1/endpoints/buffered/series/3303/0/5700?format=csv&from={from}&to={}",
            end + 1000
        ),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 64);
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[2], "0");
    assert_eq!(first[4], ((hour_ago_s) * 1000).to_string());
    assert!(first[1].parse::<i64>().unwrap() >= start);

    // Downsampled through the rollups, the hour lands in its own minutes.
    rollup::run_once(&app.state.db, &app.state.rollup_feed)
        .await
        .unwrap();
    let series = get_json(
        &app,
        &format!(
            "/api/v1/endpoints/buffered/series/3303/0/5700?from={from}&to={}&max_points=20",
            end + 1000
        ),
        &token,
    )
    .await;
    let buckets = series["buckets"].as_array().unwrap();
    let count: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(count, 63, "{series}");
    // The first bucket starts at or before the first buffered minute and
    // holds only buffered values (0, 1, ...), not the later ones.
    assert!(buckets[0]["t"].as_i64().unwrap() <= hour_ago_s * 1000);
    assert_eq!(buckets[0]["min"].as_f64(), Some(0.0));
    assert!(buckets[0]["max"].as_f64().unwrap() < 10.0, "{series}");

    let (_, metrics) = get(&app, "/api/v1/metrics", &token).await;
    assert!(
        metrics.contains("flownexus_ingest_device_times_refused_total 1\n"),
        "{metrics}"
    );
}

both_databases!(a_buffered_hour_is_stored_and_charted_by_device_time);
