//! The dashboard's side of commands and firmware updates, rendered on the
//! server as a browser without JavaScript gets it: operators get the forms,
//! viewers none; the forms post plain HTML and come back; the new pages keep
//! their filters in the URL.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{payload, Backend, TestApp};
use flownexus::model::Role;
use flownexus::server::{auth, db};

both_databases!(
    operators_get_the_command_forms_and_viewers_none,
    plain_form_posts_queue_commands_and_come_back,
    commands_and_updates_pages_keep_their_filters_in_the_url,
);

const EP: &str = "cmd-dev";

/// A registered endpoint that reported object 3; returns its id.
async fn onboarded(app: &TestApp) -> i64 {
    for (kind, file) in [
        ("single", "single__registered_10240_0.json"),
        ("composite", "composite__onboarding_read_object3.json"),
    ] {
        let body = payload(file)
            .replace("qemu_x86", EP)
            .replace("urn:imei:100000000000000", EP);
        let (status, json) = app
            .ingest(&format!("/leshan_api/resource/{kind}"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    db::endpoint::id_by_name(&mut *conn, EP)
        .await
        .unwrap()
        .expect("the endpoint exists")
}

/// Signs a new user of `role` in; returns the Cookie header value.
async fn cookie_of(app: &TestApp, role: Role) -> String {
    let username = format!("user-{}", role.as_str());
    let password = "a-long-test-password";
    auth::create_user(&app.state.db.pool, &username, password, role)
        .await
        .unwrap();
    let req = Request::post("/sfn/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "username={username}&password={password}"
        )))
        .unwrap();
    let (_, headers, _) = app.request(req).await;
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// A plain HTML form post (what a browser without JavaScript sends).
async fn form_post(
    app: &TestApp,
    cookie: &str,
    path: &str,
    referer: &str,
    body: &str,
) -> (StatusCode, Option<String>) {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, referer)
        // A browser always names the host it sent the form to; the Origin
        // check compares the Referer with it.
        .header(header::HOST, "localhost")
        .header(header::COOKIE, cookie)
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, headers, _) = app.request(req).await;
    let location = headers
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_string());
    (status, location)
}

async fn operators_get_the_command_forms_and_viewers_none(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = onboarded(&app).await;
    let page = format!("/endpoints/{id}");

    let operator = cookie_of(&app, Role::Operator).await;
    let (status, _, html) = app.get_page(&page, Some(&operator)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Send command"), "{html}");
    // Typed by data type: 3/0/15 (STRING) text, 3/0/13 (TIME) UTC time.
    assert!(html.contains(r#"aria-label="Write timezone""#));
    assert!(html.contains(r#"type="datetime-local" name="value""#));
    assert!(html.contains("Execute Reboot"));
    assert!(html.contains(r#"action="/sfn/commands/send""#));
    assert!(html.contains(r#"name="endpoints[0]""#));
    let (_, _, table) = app.get_page("/endpoints", Some(&operator)).await;
    assert!(
        table.contains(&format!(r#"aria-label="Select {EP}""#)),
        "{table}"
    );
    assert!(table.contains(r#"action="/sfn/updates/start-form""#));

    let viewer = cookie_of(&app, Role::Viewer).await;
    let (status, _, html) = app.get_page(&page, Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Commands"));
    assert!(!html.contains("Send command"));
    assert!(
        !html.contains("/sfn/commands/"),
        "a viewer gets no command form"
    );
    assert!(
        !html.contains("/sfn/updates/"),
        "a viewer gets no update form"
    );
    let (_, _, table) = app.get_page("/endpoints", Some(&viewer)).await;
    assert!(table.contains(EP));
    assert!(!table.contains("type=\"checkbox\""));
    // The server refuses a forged post all the same.
    let (status, _) = form_post(
        &app,
        &viewer,
        "/sfn/commands/send",
        &format!("http://localhost{page}"),
        &format!("endpoint={EP}&kind=execute&path=%2F3%2F0%2F4"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn plain_form_posts_queue_commands_and_come_back(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = onboarded(&app).await;
    let operator = cookie_of(&app, Role::Operator).await;
    let back = format!("http://localhost/endpoints/{id}");
    let (status, location) = form_post(
        &app,
        &operator,
        "/sfn/commands/send",
        &back,
        &format!("endpoint={EP}&kind=write&path=%2F3%2F0%2F15&value=Europe%2FBerlin"),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    // server_fn strips an earlier error from the URL and may leave a "?".
    assert_eq!(
        location.as_deref().map(|l| l.trim_end_matches('?')),
        Some(back.as_str())
    );
    let (_, _, html) = app
        .get_page(&format!("/endpoints/{id}"), Some(&operator))
        .await;
    assert!(html.contains("Europe/Berlin"), "the command is listed");
    assert!(html.contains(r#"data-status=""#));

    // A refusal comes back with the error for the page to show.
    let (status, location) = form_post(
        &app,
        &operator,
        "/sfn/commands/send",
        &back,
        &format!("endpoint={EP}&kind=read&path=abc"),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert!(location.contains("__err="), "{location}");
    let (_, _, html) = app
        .get_page(
            location.trim_start_matches("http://localhost"),
            Some(&operator),
        )
        .await;
    assert!(html.contains("not an LwM2M path"), "{html}");

    // Start update without JavaScript: the outcome rides the redirect.
    let (status, location) = form_post(
        &app,
        &operator,
        "/sfn/updates/start-form",
        "http://localhost/endpoints?q=cmd",
        &format!("endpoints%5B0%5D={EP}&firmware_id=999999"),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert!(
        location.starts_with("http://localhost/endpoints?q=cmd&"),
        "{location}"
    );
    let (_, _, html) = app
        .get_page(
            location.trim_start_matches("http://localhost"),
            Some(&operator),
        )
        .await;
    assert!(
        html.contains("Update results") || html.contains("firmware"),
        "{html}"
    );
}

async fn commands_and_updates_pages_keep_their_filters_in_the_url(backend: Backend) {
    let app = TestApp::new(backend).await;
    onboarded(&app).await;
    let admin = app.login_cookie().await;
    let (status, _, html) = app
        .get_page(
            &format!("/commands?endpoint={EP}&status=queued"),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!(r#"value="{EP}""#)), "{html}");
    assert!(
        html.contains(r#"<option value="queued" selected"#),
        "{html}"
    );
    assert!(html.contains("No command matches this filter."));

    let (status, _, html) = app.get_page("/updates?active=1", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"name="active" value="1" checked"#),
        "{html}"
    );
    assert!(html.contains("No update matches this filter."));

    let (_, _, html) = app.get_page("/", Some(&admin)).await;
    assert!(html.contains(r#"href="/commands?status=queued""#));
    assert!(html.contains(r#"href="/updates?active=1""#));
}
