//! The web side under hostile input, through the real router: server
//! functions called with bad arguments, requests forged from other origins,
//! password guessing, the pages' security headers, and endpoint names that
//! disguise themselves.
mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use common::{Backend, TestApp};
use flownexus::server::db::api_token::Scope;
use serde_json::{json, Value as Json};
use std::net::SocketAddr;
use std::time::Duration;

both_databases!(
    server_functions_answer_bad_arguments_with_a_json_4xx,
    cookie_requests_from_other_origins_are_refused,
    the_live_socket_checks_the_origin,
    extra_allowed_origins_are_accepted,
    json_posted_with_a_session_must_say_it_is_json,
    repeated_failed_sign_ins_wait_and_then_work_again,
    an_address_guessing_many_usernames_waits,
    pages_and_answers_carry_security_headers,
    disguised_endpoint_names_are_refused,
);

const OWN_HOST: &str = "localhost:3000";
const OWN_ORIGIN: &str = "http://localhost:3000";
const EVIL_ORIGIN: &str = "http://evil.example";

fn json_of(body: &[u8]) -> Json {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

/// A server-function call as the hydrated page makes it (no text/html).
fn sfn(path: &str) -> axum::http::request::Builder {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, OWN_HOST)
}

async fn rejected_count(app: &TestApp, status: u16) -> u64 {
    let token = app.token("metrics reader", Scope::Api).await;
    let req = Request::get("/api/v1/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = app.request(req).await;
    let text = String::from_utf8(body).unwrap();
    let key = format!("flownexus_rejected_requests_total{{status=\"{status}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

async fn server_functions_answer_bad_arguments_with_a_json_4xx(backend: Backend) {
    let app = TestApp::new(backend).await;
    let before = rejected_count(&app, 400).await;

    // No session and no arguments: refused for the arguments, as a 400
    // naming the missing one, in the REST API's error shape.
    let req = sfn("/sfn/tokens/create").body(Body::empty()).unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = json_of(&body);
    assert_eq!(error["details"][0]["path"], "name", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("arguments"),
        "{error}"
    );

    // A JSON body where a form is expected.
    let req = sfn("/sfn/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"username":"admin","password":"x"}"#))
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(json_of(&body)["details"].is_array());

    // With a session, a missing argument is still the caller's mistake.
    let cookie = app.login_cookie().await;
    let req = sfn("/sfn/tokens/create")
        .header(header::COOKIE, &cookie)
        .body(Body::from("name=x"))
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["details"][0]["path"], "scope");

    // Every one was counted.
    assert_eq!(rejected_count(&app, 400).await, before + 3);

    // A good call is untouched.
    let req = sfn("/sfn/tokens/create")
        .header(header::COOKIE, &cookie)
        .body(Body::from("name=fine&scope=api"))
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

async fn cookie_requests_from_other_origins_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cookie = app.login_cookie().await;
    let tokens_before = app.count("api_token").await;
    let create_token = |origin: Option<(&str, &str)>| {
        let mut req = sfn("/sfn/tokens/create").header(header::COOKIE, &cookie);
        if let Some((name, value)) = origin {
            req = req.header(name, value);
        }
        req.body(Body::from("name=forged&scope=api")).unwrap()
    };

    // Another origin, by Origin or (without it) by Referer, or an opaque one.
    for (name, value) in [
        ("origin", EVIL_ORIGIN),
        ("origin", "http://localhost:3001"),
        ("origin", "null"),
        ("referer", "http://evil.example/page?x=1"),
    ] {
        let (status, _, body) = app.request(create_token(Some((name, value)))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
        let error = json_of(&body);
        assert!(
            error["error"].as_str().unwrap().contains("origin"),
            "{error}"
        );
        assert_eq!(error["details"][0]["path"], "Origin");
    }
    assert_eq!(app.count("api_token").await, tokens_before);

    // The same origin, by either header, and a client that sends neither
    // (not a browser).
    for origin in [
        Some(("origin", OWN_ORIGIN)),
        Some(("referer", "http://localhost:3000/tokens")),
        None,
    ] {
        let (status, _, body) = app.request(create_token(origin)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{origin:?}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(app.count("api_token").await, tokens_before + 3);

    // The login form is a server function too: no signing in from elsewhere.
    let req = sfn("/sfn/login")
        .header(header::ORIGIN, EVIL_ORIGIN)
        .body(Body::from(format!(
            "username=admin&password={}",
            common::ADMIN_PASSWORD
        )))
        .unwrap();
    let (status, headers, _) = app.request(req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(header::SET_COOKIE).is_none());

    // The REST API with the cookie: refused from elsewhere, before the
    // handler (an unknown endpoint would be a 422).
    let command = json!({"endpoint": "nobody", "kind": "read", "path": "/3"}).to_string();
    let post_command = |auth: (&str, String), origin: &str| {
        Request::post("/api/v1/commands")
            .header(header::HOST, OWN_HOST)
            .header(header::CONTENT_TYPE, "application/json")
            .header(auth.0, auth.1)
            .header(header::ORIGIN, origin)
            .body(Body::from(command.clone()))
            .unwrap()
    };
    let (status, _, _) = app
        .request(post_command(("cookie", cookie.clone()), EVIL_ORIGIN))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app
        .request(post_command(("cookie", cookie.clone()), OWN_ORIGIN))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A bearer token is not the browser's to send: any Origin goes.
    let token = app.token("script", Scope::Api).await;
    let (status, _, _) = app
        .request(post_command(
            ("authorization", format!("Bearer {token}")),
            EVIL_ORIGIN,
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Reads are not checked.
    let req = Request::get("/api/v1/endpoints")
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, EVIL_ORIGIN)
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.request(req).await.0, StatusCode::OK);
}

async fn the_live_socket_checks_the_origin(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cookie = app.login_cookie().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let connect = |origin: String, auth: (&'static str, String)| async move {
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{addr}/api/v1/live?mux=1"),
            )
            .unwrap();
        req.headers_mut().insert(auth.0, auth.1.parse().unwrap());
        req.headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
        tokio_tungstenite::connect_async(req).await
    };
    match connect(EVIL_ORIGIN.into(), ("cookie", cookie.clone())).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("a foreign origin must be refused: {other:?}"),
    }
    let (socket, _) = connect(format!("http://{addr}"), ("cookie", cookie.clone()))
        .await
        .expect("the page's own origin connects");
    drop(socket);
    let token = app.token("live reader", Scope::Api).await;
    let (socket, _) = connect(
        EVIL_ORIGIN.into(),
        ("authorization", format!("Bearer {token}")),
    )
    .await
    .expect("a token connects from anywhere");
    drop(socket);
}

async fn extra_allowed_origins_are_accepted(backend: Backend) {
    let app = TestApp::with_settings(backend, |s| {
        s.allowed_origins = vec!["https://ops.example.com".into()];
        s.public_base_url = "https://flownexus.example.com".into();
    })
    .await;
    let cookie = app.login_cookie().await;
    for (origin, expected) in [
        ("https://ops.example.com", StatusCode::OK),
        ("https://flownexus.example.com", StatusCode::OK),
        ("https://ops.example.com:8443", StatusCode::FORBIDDEN),
        ("http://ops.example.com", StatusCode::FORBIDDEN),
    ] {
        let req = sfn("/sfn/tokens/create")
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, origin)
            .body(Body::from("name=ops&scope=device"))
            .unwrap();
        assert_eq!(app.request(req).await.0, expected, "{origin}");
    }
}

async fn json_posted_with_a_session_must_say_it_is_json(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cookie = app.login_cookie().await;
    let command = json!({"endpoint": "nobody", "kind": "read", "path": "/3"}).to_string();
    for (path, content_type) in [
        ("/api/v1/commands", "text/plain"),
        ("/api/v1/commands", "application/x-www-form-urlencoded"),
        ("/api/v1/updates", "text/plain;charset=UTF-8"),
        ("/leshan_api/resource/single", "text/plain"),
    ] {
        let req = Request::post(path)
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(command.clone()))
            .unwrap();
        let (status, _, body) = app.request(req).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{path} {content_type}"
        );
        assert!(json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("application/json"));
    }
    // With the right type the handler reads it (and finds no such endpoint).
    let req = Request::post("/api/v1/commands")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(command.clone()))
        .unwrap();
    assert_eq!(app.request(req).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    // Token callers keep the lenient reading.
    let token = app.token("script", Scope::Api).await;
    let req = Request::post("/api/v1/commands")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(command))
        .unwrap();
    assert_eq!(app.request(req).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Signs in as `user` from `addr`; (status, headers, body).
async fn sign_in(
    app: &TestApp,
    user: &str,
    password: &str,
    addr: Option<SocketAddr>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = common::sign_in_request(user, password);
    if let Some(addr) = addr {
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    app.request(req).await
}

async fn repeated_failed_sign_ins_wait_and_then_work_again(backend: Backend) {
    let app = TestApp::new(backend).await;
    let free = flownexus::server::login_throttle::PER_USER.free_failures;
    for i in 0..free {
        let (status, _, _) = sign_in(&app, "admin", "wrong-password", None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "attempt {i}");
    }
    // Now even the right password waits.
    let (status, headers, body) = sign_in(&app, "admin", common::ADMIN_PASSWORD, None).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let retry_after: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(String::from_utf8_lossy(&body).contains("retry_after_secs"));
    // So does an unknown user's, so that a 429 does not tell who exists.
    for _ in 0..free {
        sign_in(&app, "nobody", "wrong-password", None).await;
    }
    assert_eq!(
        sign_in(&app, "nobody", "wrong-password", None).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A plain form post is sent back to the form, which says why.
    let req = Request::post("/sfn/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .body(Body::from(format!(
            "username=admin&password={}",
            common::ADMIN_PASSWORD
        )))
        .unwrap();
    let (status, headers, _) = app.request(req).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers[header::LOCATION], "/login?error=throttled");

    // After the wait the right password works, and the count starts over.
    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(100)).await;
    let (status, headers, _) = sign_in(&app, "admin", common::ADMIN_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::SET_COOKIE).is_some());
    let (status, _, _) = sign_in(&app, "admin", "wrong-password", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn an_address_guessing_many_usernames_waits(backend: Backend) {
    let app = TestApp::new(backend).await;
    let guesser: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let other: SocketAddr = "198.51.100.1:40000".parse().unwrap();
    let free = flownexus::server::login_throttle::PER_ADDRESS.free_failures;
    for i in 0..free {
        let (status, _, _) = sign_in(&app, &format!("user{i}"), "guess", Some(guesser)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "attempt {i}");
    }
    let (status, _, _) = sign_in(&app, "admin", common::ADMIN_PASSWORD, Some(guesser)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another address is not held back.
    let (status, _, _) = sign_in(&app, "admin", common::ADMIN_PASSWORD, Some(other)).await;
    assert_eq!(status, StatusCode::OK);
}

async fn pages_and_answers_carry_security_headers(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cookie = app.login_cookie().await;
    for path in ["/login", "/"] {
        let req = Request::get(path)
            .header(header::HOST, OWN_HOST)
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = app.request(req).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let body = String::from_utf8(body).unwrap();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no nonce in {csp}"));
        // The page's inline scripts carry the nonce the policy names.
        assert!(body.contains(&format!("nonce=\"{nonce}\"")), "{path}");
        assert!(!body.contains("style=\""), "{path}: inline style attribute");
        assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
        assert!(csp.contains("ws://localhost:3000"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    }
    // Each render has its own nonce.
    let nonce_of = |headers: &HeaderMap| headers[header::CONTENT_SECURITY_POLICY].clone();
    let (_, a, _) = app.get_page("/login", None).await;
    let (_, b, _) = app.get_page("/login", None).await;
    assert_ne!(nonce_of(&a), nonce_of(&b));
    // Everything else may load nothing and is never framed.
    let (status, headers, _) = app
        .request(Request::get("/api/v1/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

async fn disguised_endpoint_names_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let single = |ep: &str| {
        json!({"ep": ep, "obj_id": 3303, "val": {
            "kind": "singleResource", "id": 5700, "type": "FLOAT", "value": "21.5"
        }})
        .to_string()
    };
    for ep in [
        "   ",
        "\u{00a0}\t",
        "evil\u{202E}txt.exe",
        "\u{2067}x",
        "a\u{7}b",
    ] {
        let (status, error) = app.ingest("/leshan_api/resource/single", single(ep)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ep:?}: {error}");
        assert_eq!(error["details"][0]["path"], "ep", "{error}");
    }
    assert_eq!(app.count("endpoint").await, 0);
    // Names as devices send them keep working.
    for ep in [
        "qemu_x86",
        "urn:imei:490154203237518",
        "Gerät 7",
        " spaced ",
    ] {
        let (status, error) = app.ingest("/leshan_api/resource/single", single(ep)).await;
        assert_eq!(status, StatusCode::CREATED, "{ep:?}: {error}");
    }

    // Commands and updates name endpoints too.
    let token = app.token("script", Scope::Api).await;
    let post = |path: &str, body: Json| {
        Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, _, body) = app
        .request(post(
            "/api/v1/commands",
            json!({"endpoint": "qemu\u{202E}x86", "kind": "read", "path": "/3"}),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = json_of(&body);
    assert_eq!(error["details"][0]["path"], "endpoint", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("U+202E"),
        "{error}"
    );
    let (status, _, body) = app
        .request(post(
            "/api/v1/updates",
            json!({"endpoints": ["qemu_x86", "\u{2066}qemu_x86"], "firmware_id": 1}),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json_of(&body)["details"][0]["path"], "endpoints[1]");
}
