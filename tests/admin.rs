//! Roles, users, tokens and resource types, through the real router and
//! the server functions' HTTP endpoints, on both databases.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{call, form, Backend, TestApp};
use serde_json::Value as Json;

both_databases!(
    viewers_and_operators_are_refused_by_every_admin_function,
    admin_creates_a_user_who_can_sign_in,
    deactivated_users_cannot_sign_in_and_their_sessions_end,
    password_reset_replaces_the_old_password,
    changing_the_own_password_needs_the_current_one,
    a_token_is_shown_once_works_and_stops_at_revocation,
    renaming_a_type_changes_the_data_api_and_ingest_keeps_working,
    a_custom_type_names_and_types_ingested_values,
    bad_user_input_is_refused_naming_the_field,
);

/// Signs in through the login server function; the session cookie, or
/// None when the login was refused.
async fn login(app: &TestApp, username: &str, password: &str) -> Option<String> {
    let req = Request::post("/sfn/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(&[
            ("username", username),
            ("password", password),
        ])))
        .unwrap();
    let (status, headers, _) = app.request(req).await;
    let cookie = headers.get(header::SET_COOKIE)?.to_str().unwrap();
    assert!(status.is_success() || status.is_redirection(), "{status}");
    Some(cookie.split(';').next().unwrap().to_string())
}

/// Well-formed arguments of `endpoints/list` (the default table state).
const LIST_ARGS: &[(&str, &str)] = &[
    ("query[search]", ""),
    ("query[sort]", "last_seen"),
    ("query[descending]", "true"),
    ("query[page]", "1"),
    ("query[per_page]", "50"),
];

/// Asserts a 4xx answer that names `field` as the problem.
fn assert_field_error(answer: &(StatusCode, Json), field: &str) {
    let (status, body) = answer;
    assert!(status.is_client_error(), "{status}: {body}");
    let details = body
        .get("Unprocessable")
        .or_else(|| body.get("BadRequest"))
        .and_then(|e| e.get("details"))
        .unwrap_or_else(|| panic!("no field details: {body}"));
    assert_eq!(details[0]["path"], field, "{body}");
}

async fn admin_creates(app: &TestApp, admin: &str, username: &str, password: &str, role: &str) {
    let answer = call(
        app,
        Some(admin),
        "users/create",
        &[
            ("username", username),
            ("password", password),
            ("role", role),
        ],
    )
    .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
}

/// An admin's `users/set_active` or `users/set_role` call.
async fn admin_sets(
    app: &TestApp,
    admin: &str,
    what: &str,
    id: &str,
    value: &str,
) -> (StatusCode, Json) {
    let endpoint = format!("users/set_{what}");
    call(app, Some(admin), &endpoint, &[("id", id), (what, value)]).await
}

async fn user_id(app: &TestApp, username: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

async fn type_id(app: &TestApp, object: i64, resource: i64) -> i64 {
    sqlx::query_scalar("SELECT id FROM resource_type WHERE object_id = $1 AND resource_id = $2")
        .bind(object)
        .bind(resource)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

async fn get_json(
    app: &TestApp,
    path: &str,
    auth: (header::HeaderName, &str),
) -> (StatusCode, Json) {
    let req = Request::get(path)
        .header(auth.0, auth.1)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.request(req).await;
    (status, serde_json::from_slice(&body).unwrap_or(Json::Null))
}

async fn viewers_and_operators_are_refused_by_every_admin_function(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    admin_creates(&app, &admin, "vera", "viewer-password-1", "viewer").await;
    admin_creates(&app, &admin, "otto", "operator-password-1", "operator").await;
    let admin_id = user_id(&app, "admin").await.to_string();
    let temperature = type_id(&app, 3303, 5700).await.to_string();
    let admin_functions: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("users/list", vec![]),
        (
            "users/create",
            vec![
                ("username", "mallory"),
                ("password", "mallory-password"),
                ("role", "admin"),
            ],
        ),
        (
            "users/reset_password",
            vec![("id", &admin_id), ("password", "taken-over-123")],
        ),
        (
            "users/set_role",
            vec![("id", &admin_id), ("role", "viewer")],
        ),
        (
            "users/set_active",
            vec![("id", &admin_id), ("active", "false")],
        ),
        ("tokens/list", vec![]),
        ("tokens/create", vec![("name", "stolen"), ("scope", "api")]),
        ("tokens/revoke", vec![("id", "1")]),
        (
            "resource_types/update",
            vec![("id", &temperature), ("name", "hijacked"), ("unit", "")],
        ),
        (
            "resource_types/create",
            vec![
                ("object_id", "33000"),
                ("resource_id", "1"),
                ("name", "forged"),
                ("data_type", "FLOAT"),
                ("unit", ""),
            ],
        ),
    ];
    for (username, password) in [
        ("vera", "viewer-password-1"),
        ("otto", "operator-password-1"),
    ] {
        let cookie = login(&app, username, password).await.expect("signs in");
        for (endpoint, fields) in &admin_functions {
            let (status, body) = call(&app, Some(&cookie), endpoint, fields).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{username} {endpoint}: {body}"
            );
            assert!(body.to_string().contains("Forbidden"), "{body}");
        }
        // A forged plain HTML form post is refused with 403 too.
        let req = Request::post("/sfn/users/create")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html")
            .header(header::REFERER, "http://localhost/users")
            .header(header::COOKIE, &cookie)
            .body(Body::from(form(&admin_functions[1].1)))
            .unwrap();
        assert_eq!(
            app.request(req).await.0,
            StatusCode::FORBIDDEN,
            "{username}"
        );
        // Reads are open to every role.
        let (status, page) = call(&app, Some(&cookie), "resource_types/list", &[]).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["can_edit"], false);
        assert_eq!(
            call(&app, Some(&cookie), "endpoints/list", LIST_ARGS)
                .await
                .0,
            StatusCode::OK
        );
        // The admin pages say why they are empty, with the server's 403.
        for path in ["/users", "/tokens"] {
            let (status, _, html) = app.get_page(path, Some(&cookie)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{username} {path}");
            assert!(html.contains("You need the admin role"), "{path}: {html}");
            assert!(!html.contains("admin-password"), "{path}");
        }
        let (status, _, html) = app.get_page("/resource-types", Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("temperature"));
        assert!(
            !html.contains("Add a type for a custom object"),
            "no edit forms for {username}"
        );
        assert!(
            !html.contains("aria-label=\"Name of /3303/5700\""),
            "{username}"
        );
    }
    // Nothing the refused calls asked for happened.
    assert_eq!(app.count("users").await, 3);
    assert_eq!(app.count("api_token").await, 1);
    assert!(login(&app, "admin", common::ADMIN_PASSWORD).await.is_some());
    let (_, page) = call(
        &app,
        Some(&admin),
        "resource_types/list",
        &[("q", "3303/5700")],
    )
    .await;
    assert_eq!(page["types"][0]["name"], "temperature", "{page}");
    assert_eq!(page["can_edit"], true);
    assert_eq!(app.count("resource_type WHERE name = 'forged'").await, 0);

    // Ingest writes: a viewer's session may not post telemetry, an
    // operator's may.
    let viewer = login(&app, "vera", "viewer-password-1").await.unwrap();
    let operator = login(&app, "otto", "operator-password-1").await.unwrap();
    for (cookie, expected) in [
        (viewer, StatusCode::FORBIDDEN),
        (operator, StatusCode::CREATED),
    ] {
        let req = Request::post("/leshan_api/resource/single")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, cookie)
            .body(Body::from(common::payload(
                "single__test_temperature_3303_0_5700.json",
            )))
            .unwrap();
        assert_eq!(app.request(req).await.0, expected);
    }
}

async fn admin_creates_a_user_who_can_sign_in(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    assert!(login(&app, "nora", "nora-password-1").await.is_none());
    admin_creates(&app, &admin, "nora", "nora-password-1", "operator").await;
    let cookie = login(&app, "nora", "nora-password-1")
        .await
        .expect("the new user signs in");
    let (status, me) = call(&app, Some(&cookie), "whoami", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "nora");
    assert_eq!(me["role"], "operator");
    let (status, list) = call(&app, Some(&admin), "users/list", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let nora = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "nora")
        .expect("listed");
    assert_eq!(nora["role"], "operator");
    assert_eq!(nora["active"], true);
    assert!(!list.to_string().contains("argon2"), "never a hash: {list}");
    // The users page lists her for the admin.
    let (status, _, html) = app.get_page("/users", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("nora") && html.contains("Create a user"));
    // A role change takes effect on her next request.
    let id = user_id(&app, "nora").await.to_string();
    let answer = admin_sets(&app, &admin, "role", &id, "viewer").await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(
        call(&app, Some(&cookie), "whoami", &[]).await.1["role"],
        "viewer"
    );
}

async fn deactivated_users_cannot_sign_in_and_their_sessions_end(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    admin_creates(&app, &admin, "dora", "dora-password-1", "viewer").await;
    let cookie = login(&app, "dora", "dora-password-1").await.unwrap();
    assert_eq!(app.get_page("/", Some(&cookie)).await.0, StatusCode::OK);
    let id = user_id(&app, "dora").await.to_string();

    let answer = admin_sets(&app, &admin, "active", &id, "false").await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert!(app.get_page("/", Some(&cookie)).await.0.is_redirection());
    assert_eq!(
        call(&app, Some(&cookie), "endpoints/list", LIST_ARGS)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = get_json(&app, "/api/v1/endpoints", (header::COOKIE, &cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(login(&app, "dora", "dora-password-1").await.is_none());
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(id.parse::<i64>().unwrap())
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "deactivation ends the sessions");

    let answer = admin_sets(&app, &admin, "active", &id, "true").await;
    assert_eq!(answer.0, StatusCode::OK);
    assert!(login(&app, "dora", "dora-password-1").await.is_some());

    // An admin can neither deactivate nor demote themselves.
    let me = user_id(&app, "admin").await.to_string();
    let answer = admin_sets(&app, &admin, "active", &me, "false").await;
    assert_field_error(&answer, "active");
    let answer = admin_sets(&app, &admin, "role", &me, "operator").await;
    assert_field_error(&answer, "role");
    assert_eq!(
        call(&app, Some(&admin), "whoami", &[]).await.1["role"],
        "admin"
    );
}

async fn password_reset_replaces_the_old_password(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    admin_creates(&app, &admin, "rita", "rita-old-password", "operator").await;
    let session = login(&app, "rita", "rita-old-password").await.unwrap();
    let id = user_id(&app, "rita").await.to_string();
    let answer = call(
        &app,
        Some(&admin),
        "users/reset_password",
        &[("id", &id), ("password", "short")],
    )
    .await;
    assert_field_error(&answer, "password");
    assert!(
        login(&app, "rita", "rita-old-password").await.is_some(),
        "a refused reset changes nothing"
    );

    let answer = call(
        &app,
        Some(&admin),
        "users/reset_password",
        &[("id", &id), ("password", "rita-new-password")],
    )
    .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert!(login(&app, "rita", "rita-old-password").await.is_none());
    assert!(login(&app, "rita", "rita-new-password").await.is_some());
    assert!(
        app.get_page("/", Some(&session)).await.0.is_redirection(),
        "old sessions end"
    );
    let answer = call(
        &app,
        Some(&admin),
        "users/reset_password",
        &[("id", "999999"), ("password", "long-enough-pw")],
    )
    .await;
    assert_eq!(answer.0, StatusCode::NOT_FOUND);
}

async fn changing_the_own_password_needs_the_current_one(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    admin_creates(&app, &admin, "vic", "vic-password-1", "viewer").await;
    let here = login(&app, "vic", "vic-password-1").await.unwrap();
    let elsewhere = login(&app, "vic", "vic-password-1").await.unwrap();
    let change = |current: &'static str, new: &'static str| {
        let (app, here) = (&app, &here);
        async move {
            let fields = [("current_password", current), ("new_password", new)];
            call(app, Some(here), "account/password", &fields).await
        }
    };
    assert_field_error(
        &change("not-my-password", "vic-password-2").await,
        "current_password",
    );
    assert_field_error(&change("vic-password-1", "short").await, "new_password");
    assert!(
        login(&app, "vic", "vic-password-1").await.is_some(),
        "unchanged so far"
    );

    let answer = change("vic-password-1", "vic-password-2").await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert!(login(&app, "vic", "vic-password-1").await.is_none());
    assert!(login(&app, "vic", "vic-password-2").await.is_some());
    assert_eq!(
        app.get_page("/account", Some(&here)).await.0,
        StatusCode::OK,
        "this session stays"
    );
    assert!(
        app.get_page("/", Some(&elsewhere)).await.0.is_redirection(),
        "other sessions end"
    );
    // Anonymous callers cannot change anything.
    let answer = call(
        &app,
        None,
        "account/password",
        &[("current_password", "x"), ("new_password", "yyyyyyyyyyyy")],
    )
    .await;
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED);
}

async fn a_token_is_shown_once_works_and_stops_at_revocation(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    let (status, created) = call(
        &app,
        Some(&admin),
        "tokens/create",
        &[("name", "grafana"), ("scope", "api")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("fxa_"), "{secret}");
    let bearer = format!("Bearer {secret}");
    let (status, _) = get_json(&app, "/api/v1/endpoints", (header::AUTHORIZATION, &bearer)).await;
    assert_eq!(status, StatusCode::OK);

    // The list and the page never show it again.
    let (status, list) = call(&app, Some(&admin), "tokens/list", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(&secret), "{list}");
    let grafana = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "grafana")
        .unwrap()
        .clone();
    assert_eq!(grafana["scope"], "api");
    assert!(
        grafana["last_used_at"].is_i64(),
        "use is recorded: {grafana}"
    );
    assert!(grafana["revoked_at"].is_null());
    let (_, _, html) = app.get_page("/tokens", Some(&admin)).await;
    assert!(html.contains("grafana") && !html.contains(&secret));

    let id = grafana["id"].to_string();
    let answer = call(&app, Some(&admin), "tokens/revoke", &[("id", &id)]).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    // Immediately, although the token was cached by the request above.
    let (status, _) = get_json(&app, "/api/v1/endpoints", (header::AUTHORIZATION, &bearer)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, Some(&admin), "tokens/revoke", &[("id", &id)])
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // A device token may ingest but not read.
    let (_, device) = call(
        &app,
        Some(&admin),
        "tokens/create",
        &[("name", "gateway"), ("scope", "device")],
    )
    .await;
    let device = format!("Bearer {}", device["secret"].as_str().unwrap());
    let (status, _) = get_json(&app, "/api/v1/endpoints", (header::AUTHORIZATION, &device)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_field_error(
        &call(
            &app,
            Some(&admin),
            "tokens/create",
            &[("name", " "), ("scope", "api")],
        )
        .await,
        "name",
    );
    assert_field_error(
        &call(
            &app,
            Some(&admin),
            "tokens/create",
            &[("name", "x"), ("scope", "root")],
        )
        .await,
        "scope",
    );

    // Without JavaScript the form post is redirected back to the page,
    // which shows the secret once.
    let req = Request::post("/sfn/tokens/create")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, "http://localhost/tokens")
        // A browser always names the host it sent the form to; the Origin
        // check compares the Referer with it.
        .header(header::HOST, "localhost")
        .header(header::COOKIE, &admin)
        .body(Body::from("name=plain&scope=device"))
        .unwrap();
    let (status, headers, _) = app.request(req).await;
    assert!(status.is_redirection(), "{status}");
    let flash = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        flash.contains("HttpOnly") && flash.contains("Max-Age=120"),
        "{flash}"
    );
    let flash = flash.split(';').next().unwrap();
    let secret = flash.split_once('=').unwrap().1.to_string();
    assert!(secret.starts_with("fxd_"));
    let (status, headers, html) = app
        .get_page("/tokens", Some(&format!("{admin}; {flash}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&secret), "shown after the redirect");
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "and cleared"
    );
}

async fn renaming_a_type_changes_the_data_api_and_ingest_keeps_working(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    let temperature = common::payload("single__test_temperature_3303_0_5700.json");
    assert_eq!(
        app.ingest("/leshan_api/resource/single", temperature.clone())
            .await
            .0,
        StatusCode::CREATED
    );
    let id = type_id(&app, 3303, 5700).await.to_string();

    assert_field_error(
        &call(
            &app,
            Some(&admin),
            "resource_types/update",
            &[("id", &id), ("name", "  "), ("unit", "")],
        )
        .await,
        "name",
    );
    assert_field_error(
        &call(
            &app,
            Some(&admin),
            "resource_types/update",
            &[("id", &id), ("name", "humidity"), ("unit", "")],
        )
        .await,
        "name",
    );
    let answer = call(
        &app,
        Some(&admin),
        "resource_types/update",
        &[("id", &id), ("name", "room_temperature"), ("unit", "°C")],
    )
    .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);

    let (status, rows) = get_json(
        &app,
        "/leshan_api/data/room_temperature/",
        (header::COOKIE, &admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["resource_type"], "room_temperature");
    let (status, _) = get_json(
        &app,
        "/leshan_api/data/temperature/",
        (header::COOKIE, &admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, receipt) = app.ingest("/leshan_api/resource/single", temperature).await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    assert_eq!(receipt["discovered_types"], 0);
    let (_, rows) = get_json(
        &app,
        "/leshan_api/data/room_temperature/",
        (header::COOKIE, &admin),
    )
    .await;
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let (_, page) = call(
        &app,
        Some(&admin),
        "resource_types/list",
        &[("q", "room_temp")],
    )
    .await;
    assert_eq!(page["types"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["types"][0]["unit"], "°C");
    assert_eq!(page["types"][0]["origin"], "seeded");
    // The page's search is a GET parameter.
    let (_, _, html) = app
        .get_page("/resource-types?q=room_temp", Some(&admin))
        .await;
    assert!(
        html.contains("room_temperature") && !html.contains("\"humidity\""),
        "{html}"
    );
}

async fn a_custom_type_names_and_types_ingested_values(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    let fields = |object: &'static str,
                  resource: &'static str,
                  name: &'static str,
                  data_type: &'static str| {
        vec![
            ("object_id", object),
            ("resource_id", resource),
            ("name", name),
            ("data_type", data_type),
            ("unit", "l"),
        ]
    };
    let create = |f: Vec<(&'static str, &'static str)>| {
        let admin = admin.clone();
        let app = &app;
        async move { call(app, Some(&admin), "resource_types/create", &f).await }
    };
    assert_field_error(
        &create(fields("abc", "1", "tank_level", "FLOAT")).await,
        "object_id",
    );
    assert_field_error(
        &create(fields("33000", "70000", "tank_level", "FLOAT")).await,
        "resource_id",
    );
    assert_field_error(&create(fields("33000", "1", "", "FLOAT")).await, "name");
    assert_field_error(
        &create(fields("33000", "1", "tank_level", "DECIMAL")).await,
        "data_type",
    );
    assert_field_error(
        &create(fields("3303", "5700", "tank_level", "FLOAT")).await,
        "resource_id",
    );
    let answer = create(fields("33000", "1", "tank_level", "FLOAT")).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_field_error(
        &create(fields("33001", "1", "tank_level", "FLOAT")).await,
        "name",
    );

    let body = serde_json::json!({
        "ep": "tank-1",
        "obj_id": 33000,
        "val": {"kind": "singleResource", "id": 1, "type": "FLOAT", "value": "812.5"}
    });
    let (status, receipt) = app
        .ingest("/leshan_api/resource/single", body.to_string())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    assert_eq!(receipt["discovered_types"], 0, "the custom type was used");
    let (status, rows) = get_json(
        &app,
        "/leshan_api/data/tank_level/",
        (header::COOKIE, &admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows[0]["value"], 812.5, "{rows}");
    assert_eq!(rows[0]["data_type"], "FLOAT");
    // A value of another type is refused: the custom type holds.
    let wrong = serde_json::json!({
        "ep": "tank-1",
        "obj_id": 33000,
        "val": {"kind": "singleResource", "id": 1, "type": "STRING", "value": "full"}
    });
    assert_eq!(
        app.ingest("/leshan_api/resource/single", wrong.to_string())
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, page) = call(&app, Some(&admin), "resource_types/list", &[("q", "tank")]).await;
    assert_eq!(page["types"][0]["origin"], "custom", "{page}");
    assert_eq!(page["types"][0]["unit"], "l");
}

async fn bad_user_input_is_refused_naming_the_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    let create = |username: &'static str, password: &'static str, role: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let fields = [
                ("username", username),
                ("password", password),
                ("role", role),
            ];
            call(app, Some(admin), "users/create", &fields).await
        }
    };
    assert_field_error(
        &create("", "long-enough-password", "viewer").await,
        "username",
    );
    assert_field_error(
        &create("   ", "long-enough-password", "viewer").await,
        "username",
    );
    assert_field_error(
        &create("admin", "long-enough-password", "viewer").await,
        "username",
    );
    assert_field_error(&create("weak", "short", "viewer").await, "password");
    assert_field_error(
        &create("rolf", "long-enough-password", "superuser").await,
        "role",
    );
    assert_eq!(app.count("users").await, 1, "nothing was created");
    let id = user_id(&app, "admin").await.to_string();
    assert_field_error(&admin_sets(&app, &admin, "role", &id, "root").await, "role");
}
