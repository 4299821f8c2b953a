//! Login, sessions, server-rendered pages and the live websocket, through
//! the real router.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{payload, Backend, TestApp};
use futures::StreamExt;
use std::time::Duration;

both_databases!(
    pages_redirect_to_login_without_a_session,
    login_sets_a_hardened_cookie_and_wrong_passwords_fail,
    endpoint_list_and_chart_are_server_rendered,
    logout_ends_the_session,
    live_websocket_delivers_a_post_within_a_second,
    server_functions_refuse_anonymous_callers,
);

async fn pages_redirect_to_login_without_a_session(backend: Backend) {
    let app = TestApp::new(backend).await;
    for path in ["/", "/endpoints/1", "/logout", "/no-such-page"] {
        let (status, headers, _) = app.get_page(path, None).await;
        assert!(status.is_redirection(), "{path}: {status}");
        assert_eq!(headers[header::LOCATION], "/login", "{path}");
    }
    let (status, _, body) = app.get_page("/login", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Sign in"));
    // A forged cookie is no session.
    let (status, _, _) = app.get_page("/", Some("flownexus_session=forged")).await;
    assert!(status.is_redirection());
}

async fn login_sets_a_hardened_cookie_and_wrong_passwords_fail(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut req = common::sign_in_request("admin", common::ADMIN_PASSWORD);
    req.headers_mut()
        .insert(header::ACCEPT, "text/html".parse().unwrap());
    let (status, headers, _) = app.request(req).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers[header::LOCATION], "/");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("flownexus_session="));
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );

    for (user, password) in [
        ("admin", "wrong-password"),
        ("nobody", common::ADMIN_PASSWORD),
    ] {
        let (status, headers, body) = app.request(common::sign_in_request(user, password)).await;
        assert!(headers.get(header::SET_COOKIE).is_none(), "{user}");
        assert!(status.is_client_error(), "{user}: {status}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("wrong username or password"), "{body}");
    }
    assert_eq!(app.count("sessions").await, 1);
}

async fn endpoint_list_and_chart_are_server_rendered(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    let cookie = app.login_cookie().await;
    let (status, _, html) = app.get_page("/endpoints", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("qemu_x86"), "endpoint missing from the list");
    let id: i64 = sqlx::query_scalar("SELECT id FROM endpoint WHERE name = 'qemu_x86'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(html.contains(&format!("href=\"/endpoints/{id}\"")));

    let (status, _, html) = app
        .get_page(&format!("/endpoints/{id}"), Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<svg"),
        "chart SVG missing from the first paint"
    );
    assert!(
        html.contains("<polyline") || html.contains("<circle"),
        "no data drawn"
    );
    assert!(
        html.contains("temperature /3303/0/5700 (Cel) chart, 1 points"),
        "{html}"
    );
    assert!(html.contains("24.899181214836236 Cel"));

    let (status, _, html) = app.get_page("/endpoints/999999", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("endpoint 999999 not found"), "{html}");
}

async fn logout_ends_the_session(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cookie = app.login_cookie().await;
    assert_eq!(app.get_page("/", Some(&cookie)).await.0, StatusCode::OK);
    let req = Request::post("/sfn/logout")
        .header(header::COOKIE, &cookie)
        .header(header::ACCEPT, "text/html")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = app.request(req).await;
    assert!(status.is_redirection(), "{status}");
    assert!(headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert!(app.get_page("/", Some(&cookie)).await.0.is_redirection());
    assert_eq!(app.count("sessions").await, 0);
}

async fn live_websocket_delivers_a_post_within_a_second(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cookie = app.login_cookie().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // Without a session the upgrade is refused.
    let anonymous = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/live")).await;
    assert!(anonymous.is_err());

    let mut socket = common::live_socket(addr, &cookie, "qemu_x86").await;

    // Another endpoint's value must not arrive; ours must, within a second.
    let other = payload("single__observe_humidity_3304_0_5700.json");
    app.ingest("/leshan_api/resource/single", other).await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    let msg = tokio::time::timeout(Duration::from_secs(1), socket.next())
        .await
        .expect("a live value within one second")
        .unwrap()
        .unwrap();
    let value: flownexus::model::LiveValue = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(value.endpoint, "qemu_x86");
    assert_eq!(value.path.to_string(), "/3303/0/5700");
    assert_eq!(value.numeric, Some(24.899181214836236));
}

async fn server_functions_refuse_anonymous_callers(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Well-formed arguments, so that only the missing session is wrong.
    let req = Request::post("/sfn/endpoints/list")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            "query[search]=&query[sort]=last_seen&query[descending]=true&query[page]=1&query[per_page]=50",
        ))
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}"
    );
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("Unauthorized"), "{body}");
    assert!(!body.contains("qemu_x86"));
}
