//! Which charts the endpoint page draws, through the real router on both
//! databases: observed resources and resources whose value changed in the
//! range get a chart, constants are listed as not charted, and an
//! operator's pin or hide (a server function) overrides that.
mod common;

use axum::http::StatusCode;
use common::{call, payload, Backend, TestApp};

/// The onboarding read of object 3 with battery level (3/0/9) `battery`.
fn object3(battery: &str) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(&payload("composite__onboarding_read_object3.json")).unwrap();
    let resources = body["val"]["/3"]["instances"][0]["resources"]
        .as_array_mut()
        .unwrap();
    let level = resources.iter_mut().find(|r| r["id"] == 9).unwrap();
    level["value"] = serde_json::Value::String(battery.to_string());
    body.to_string()
}

/// Whether the page draws a chart of the resource `name`.
fn charted(html: &str, name: &str) -> bool {
    html.contains(&format!(r#"aria-label="{name} /"#))
}

/// The page's "Not charted" list.
fn not_charted(html: &str) -> &str {
    html.split(r#"aria-label="Not charted""#)
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .unwrap_or("")
}

async fn page(app: &TestApp, id: i64, cookie: &str) -> String {
    let (status, _, html) = app
        .get_page(&format!("/endpoints/{id}"), Some(cookie))
        .await;
    assert_eq!(status, StatusCode::OK);
    html
}

/// Sets a chart choice through the server function as a signed-in admin.
async fn choose(
    app: &TestApp,
    cookie: &str,
    id: i64,
    object: &str,
    resource: &str,
    choice: &str,
) -> (StatusCode, serde_json::Value) {
    call(
        app,
        Some(cookie),
        "endpoints/chart",
        &[
            ("endpoint_id", &id.to_string()),
            ("object_id", object),
            ("resource_id", resource),
            ("choice", choice),
        ],
    )
    .await
}

async fn charts_show_what_is_observed_or_changed_unless_an_operator_chose(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/single",
            payload("single__test_temperature_3303_0_5700.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for battery in ["95", "95"] {
        let (status, body) = app
            .ingest("/leshan_api/resource/composite", object3(battery))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let id: i64 = sqlx::query_scalar("SELECT id FROM endpoint WHERE name = 'qemu_x86'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let cookie = app.login_cookie().await;

    // Temperature is observed (`lwm2m_observe`), with one value: charted.
    // Battery level and status never changed: listed, not charted.
    let html = page(&app, id, &cookie).await;
    assert!(charted(&html, "temperature"), "{html}");
    assert!(!charted(&html, "battery_level"));
    assert!(!charted(&html, "battery_status"));
    assert!(
        not_charted(&html).contains("battery_level (/3/*/9)"),
        "{html}"
    );
    assert!(not_charted(&html).contains("current_time"));
    // The registration object's times are never telemetry.
    assert!(!not_charted(&html).contains("/10240/"));

    // A battery level that changes gets its chart.
    let (status, _) = app
        .ingest("/leshan_api/resource/composite", object3("94"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let html = page(&app, id, &cookie).await;
    assert!(charted(&html, "battery_level"), "{html}");
    assert!(!not_charted(&html).contains("battery_level"));

    // An operator pins battery status and hides temperature.
    let ids = id.to_string();
    let (status, body) = choose(&app, &cookie, id, "3", "20", "pinned").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = choose(&app, &cookie, id, "3303", "5700", "hidden").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let html = page(&app, id, &cookie).await;
    assert!(charted(&html, "battery_status"), "{html}");
    assert!(html.contains("Unpin chart battery_status"));
    assert!(!charted(&html, "temperature"));
    assert!(html.contains("Unhide chart temperature"), "{html}");
    assert!(not_charted(&html).contains("hidden"));

    // Back to the page's own pick.
    let (status, _) = choose(&app, &cookie, id, "3303", "5700", "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = choose(&app, &cookie, id, "3", "20", "").await;
    assert_eq!(status, StatusCode::OK);
    let html = page(&app, id, &cookie).await;
    assert!(charted(&html, "temperature"));
    assert!(!charted(&html, "battery_status"));
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM endpoint_chart")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);

    // Bad input names its field; no session is refused; unknown endpoint 404.
    let (status, body) = choose(&app, &cookie, id, "3", "20", "always").await;
    assert!(
        status.is_client_error() && body.to_string().contains("choice"),
        "{status} {body}"
    );
    let (status, body) = choose(&app, &cookie, id, "3", "70000", "pinned").await;
    assert!(
        status.is_client_error() && body.to_string().contains("resource_id"),
        "{status} {body}"
    );
    let (status, _) = call(
        &app,
        None,
        "endpoints/chart",
        &[
            ("endpoint_id", &ids),
            ("object_id", "3"),
            ("resource_id", "9"),
            ("choice", "hidden"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &app,
        Some(&cookie),
        "endpoints/chart",
        &[
            ("endpoint_id", "999999"),
            ("object_id", "3"),
            ("resource_id", "9"),
            ("choice", "hidden"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Deleting the endpoint takes its choices along.
    let (status, _) = choose(&app, &cookie, id, "3", "9", "hidden").await;
    assert_eq!(status, StatusCode::OK);
    sqlx::query("DELETE FROM endpoint WHERE id = $1")
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM endpoint_chart")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

both_databases!(charts_show_what_is_observed_or_changed_unless_an_operator_chose);
