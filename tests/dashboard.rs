//! The dashboard's reads (endpoint table, events, the endpoint page's
//! ranges) and the multiplexed live websocket, against a real database and
//! the real router.
mod common;

use axum::http::{header, StatusCode};
use common::{payload, Backend, TestApp};
use flownexus::model::{
    ClientMessage, EndpointListQuery, EndpointSort, LiveMessage, Presence, PresenceFacts, Topic,
    DEFAULT_LIFETIME_S,
};
use flownexus::server::db;
use flownexus::server::store;
use futures::{SinkExt, StreamExt};
use std::time::Duration;

both_databases!(
    presence_in_sql_matches_the_rust_rule,
    endpoint_table_searches_filters_sorts_and_pages,
    endpoint_table_shows_firmware_and_battery,
    pages_render_their_url_state_on_the_server,
    multiplexed_websocket_sends_only_subscribed_topics,
);

const NOW: i64 = 1_800_000_000_000;

/// Inserts an endpoint with the given presence facts.
async fn insert_endpoint(app: &TestApp, name: &str, f: &PresenceFacts) {
    sqlx::query(
        "INSERT INTO endpoint (name, registered, last_registration_at, last_update_at, \
         last_seen_at, lifetime_s, queue_mode, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(name)
    .bind(f.registered)
    .bind(f.last_registration_at)
    .bind(f.last_update_at)
    .bind(f.last_seen_at)
    .bind(f.lifetime_s)
    .bind(f.queue_mode)
    .bind(0_i64)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
}

async fn page(app: &TestApp, q: &EndpointListQuery) -> flownexus::model::EndpointListPage {
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    db::endpoint::list_page(&mut conn, q, NOW).await.unwrap()
}

async fn presence_in_sql_matches_the_rust_rule(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Every combination the rule distinguishes, around each boundary.
    let mut cases = Vec::new();
    for registered in [false, true] {
        for queue_mode in [false, true] {
            for lifetime_s in [None, Some(60), Some(-5), Some(i64::MAX / 2)] {
                for (reg, upd) in [
                    (None, None),
                    (Some(NOW - 10_000), None),
                    (None, Some(NOW - 10_000)),
                    (Some(NOW - 100_000), Some(NOW - 59_000)),
                    (Some(NOW - 61_000), Some(NOW - 100_000)),
                    (Some(NOW - DEFAULT_LIFETIME_S * 1000 - 1), None),
                    (Some(NOW - DEFAULT_LIFETIME_S * 1000), None),
                ] {
                    for seen in [None, Some(NOW - 1_000), Some(NOW - 31_000)] {
                        cases.push(PresenceFacts {
                            registered,
                            last_registration_at: reg,
                            last_update_at: upd,
                            last_seen_at: seen,
                            lifetime_s,
                            queue_mode,
                        });
                    }
                }
            }
        }
    }
    for (i, f) in cases.iter().enumerate() {
        insert_endpoint(&app, &format!("case-{i:04}"), f).await;
    }
    for presence in Presence::ALL {
        let q = EndpointListQuery {
            presence: Some(presence),
            sort: EndpointSort::Name,
            descending: false,
            per_page: EndpointListQuery::MAX_PER_PAGE,
            ..Default::default()
        };
        let got: Vec<String> = page(&app, &q)
            .await
            .rows
            .into_iter()
            .map(|r| r.summary.name)
            .collect();
        let want: Vec<String> = cases
            .iter()
            .enumerate()
            .filter(|(_, f)| f.presence(NOW) == presence)
            .map(|(i, _)| format!("case-{i:04}"))
            .collect();
        assert_eq!(got, want, "{presence:?}");
    }
}

async fn endpoint_table_searches_filters_sorts_and_pages(backend: Backend) {
    let app = TestApp::new(backend).await;
    let online = PresenceFacts {
        registered: true,
        last_registration_at: Some(NOW - 1_000),
        last_seen_at: Some(NOW - 1_000),
        ..Default::default()
    };
    for i in 0..120 {
        let mut f = if i % 3 == 0 {
            online
        } else {
            PresenceFacts::default()
        };
        f.last_seen_at = Some(NOW - i * 1_000);
        insert_endpoint(&app, &format!("Sensor-{i:03}"), &f).await;
    }
    insert_endpoint(&app, "50%_off", &PresenceFacts::default()).await;

    // Defaults: most recently seen first, 50 per page.
    let first = page(&app, &EndpointListQuery::default()).await;
    assert_eq!(first.total, 121);
    assert_eq!(first.rows.len(), 50);
    assert_eq!(first.rows[0].summary.name, "Sensor-000");
    assert_eq!(first.page_count(50), 3);
    let third = page(&app, &EndpointListQuery::default().at_page(3)).await;
    assert_eq!(third.rows.len(), 21);
    // Never seen sorts last.
    assert_eq!(third.rows.last().unwrap().summary.name, "50%_off");

    // Case-insensitive search; wildcards in the search are literal.
    let q = EndpointListQuery {
        search: "sensor-11".into(),
        ..Default::default()
    };
    assert_eq!(page(&app, &q).await.total, 10);
    let q = EndpointListQuery {
        search: "50%".into(),
        ..Default::default()
    };
    let found = page(&app, &q).await;
    assert_eq!(found.total, 1, "{:?}", found.rows);
    let q = EndpointListQuery {
        search: "_".into(),
        ..Default::default()
    };
    assert_eq!(page(&app, &q).await.total, 1);

    // Presence filter with counts of the search.
    let q = EndpointListQuery {
        presence: Some(Presence::Online),
        sort: EndpointSort::Name,
        descending: true,
        ..Default::default()
    };
    let online_page = page(&app, &q).await;
    assert_eq!(online_page.total, 40);
    assert_eq!(online_page.counts.online, 40);
    assert_eq!(online_page.counts.offline, 81);
    assert_eq!(online_page.rows[0].summary.name, "Sensor-117");
    assert!(online_page
        .rows
        .iter()
        .all(|r| r.summary.presence == Presence::Online));

    // Presence sort: online first when descending, names break ties.
    let q = EndpointListQuery {
        sort: EndpointSort::Presence,
        ..Default::default()
    };
    let by_presence = page(&app, &q).await;
    assert_eq!(by_presence.rows[0].summary.name, "Sensor-000");
    assert_eq!(by_presence.rows[1].summary.name, "Sensor-003");
}

async fn endpoint_table_shows_firmware_and_battery(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/composite",
            payload("composite__onboarding_read_object3.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let name = body["endpoint"].as_str().unwrap().to_string();
    let q = EndpointListQuery {
        search: name.clone(),
        ..Default::default()
    };
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    let rows = db::endpoint::list_page(&mut conn, &q, store::now_ms())
        .await
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 1);
    let stored_fw: String = sqlx::query_scalar(
        "SELECT r.text_value FROM resource r JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE t.object_id = 3 AND t.resource_id = 3",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows[0].firmware_version.as_deref(),
        Some(stored_fw.as_str())
    );
    let stored_battery: i64 = sqlx::query_scalar(
        "SELECT r.int_value FROM resource r JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE t.object_id = 3 AND t.resource_id = 9",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(rows[0].battery_level, Some(stored_battery));
}

async fn pages_render_their_url_state_on_the_server(backend: Backend) {
    let app = TestApp::new(backend).await;
    for i in 0..3 {
        let body = payload("single__test_temperature_3303_0_5700.json")
            .replace("qemu_x86", &format!("dev-{i}"));
        assert_eq!(
            app.ingest("/leshan_api/resource/single", body).await.0,
            StatusCode::CREATED
        );
    }
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__registered_10240_0.json"),
    )
    .await;
    let cookie = app.login_cookie().await;

    // Sorted by name, descending (urn:imei:..., dev-2, dev-1, dev-0), third
    // page of one row each.
    let (status, _, html) = app
        .get_page(
            "/endpoints?sort=name&dir=desc&per_page=1&page=3",
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(">dev-1<"), "{html}");
    assert!(!html.contains(">dev-2<") && !html.contains(">dev-0<"));
    assert!(html.contains("aria-sort=\"descending\""));
    assert!(html.contains("3–3 of 4"), "{html}");

    // The search is rendered back into the form.
    let (_, _, html) = app.get_page("/endpoints?q=DEV-2", Some(&cookie)).await;
    assert!(html.contains("value=\"DEV-2\""));
    assert!(html.contains(">dev-2<") && !html.contains(">dev-1<"));

    // Events of one endpoint, with their values inline.
    let (status, _, html) = app.get_page("/events?type=registered", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("registered"), "{html}");
    assert!(html.contains("/10240/0/0"), "linked value missing: {html}");
    let (_, _, html) = app.get_page("/events?endpoint=dev-0", Some(&cookie)).await;
    assert!(!html.contains("/10240/0/0"));

    // The endpoint page honours the range.
    let id: i64 = sqlx::query_scalar("SELECT id FROM endpoint WHERE name = 'dev-0'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let (status, _, html) = app
        .get_page(&format!("/endpoints/{id}?range=15m"), Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("chart, 1 points"), "{html}");
    assert!(
        html.contains(r#"aria-current="true" class="rounded-md bg-blue-600"#),
        "{html}"
    );
    // A range in the past has no points.
    let (_, _, html) = app
        .get_page(
            &format!("/endpoints/{id}?from=2020-01-01T00:00&to=2020-01-02T00:00"),
            Some(&cookie),
        )
        .await;
    assert!(html.contains("chart, 0 points"), "{html}");
    assert!(html.contains("format=csv"), "CSV link missing");
}

async fn next_message(
    socket: &mut (impl StreamExt<
        Item = Result<
            tokio_tungstenite::tungstenite::Message,
            tokio_tungstenite::tungstenite::Error,
        >,
    > + Unpin),
) -> Option<LiveMessage> {
    loop {
        let msg = tokio::time::timeout(Duration::from_millis(1_500), socket.next())
            .await
            .ok()??
            .ok()?;
        if msg.is_text() {
            return Some(serde_json::from_str(msg.to_text().unwrap()).unwrap());
        }
    }
}

async fn multiplexed_websocket_sends_only_subscribed_topics(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cookie = app.login_cookie().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/api/v1/live?mux=1"),
    )
    .unwrap();
    req.headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let subscribe = ClientMessage::Subscribe {
        topics: vec![
            Topic::Endpoint {
                name: "qemu_x86".into(),
            },
            Topic::Events,
        ],
    };
    socket
        .send(serde_json::to_string(&subscribe).unwrap().into())
        .await
        .unwrap();
    // The subscription is registered once the hub has a channel for it.
    for _ in 0..100 {
        if app.state.hub.watched_endpoints() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.hub.watched_endpoints(), 1);

    // Another endpoint's value is not sent; ours is; the registration
    // (another endpoint) arrives as an event.
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__observe_humidity_3304_0_5700.json"),
    )
    .await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    match next_message(&mut socket).await {
        Some(LiveMessage::Value(v)) => {
            assert_eq!(v.endpoint, "qemu_x86");
            assert_eq!(v.path.to_string(), "/3303/0/5700");
        }
        other => panic!("expected qemu_x86's value, got {other:?}"),
    }
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__registered_10240_0.json"),
    )
    .await;
    let mut saw_event = false;
    while let Some(message) = next_message(&mut socket).await {
        match message {
            LiveMessage::Event(e) if e.event_type == "registered" => {
                saw_event = true;
                break;
            }
            // The registration's own value, if it is qemu_x86's.
            LiveMessage::Value(v) => assert_eq!(v.endpoint, "qemu_x86"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_event, "no event notice");

    // After unsubscribing, values stop.
    let unsubscribe = ClientMessage::Unsubscribe {
        topics: vec![
            Topic::Endpoint {
                name: "qemu_x86".into(),
            },
            Topic::Events,
        ],
    };
    socket
        .send(serde_json::to_string(&unsubscribe).unwrap().into())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    assert_eq!(next_message(&mut socket).await, None);

    // The fleet topic ticks while telemetry arrives.
    let fleet = ClientMessage::Subscribe {
        topics: vec![Topic::Fleet],
    };
    socket
        .send(serde_json::to_string(&fleet).unwrap().into())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    match tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Some(m) = next_message(&mut socket).await {
                return m;
            }
        }
    })
    .await
    {
        Ok(LiveMessage::Fleet(_)) => {}
        other => panic!("expected a fleet tick, got {other:?}"),
    }
}
