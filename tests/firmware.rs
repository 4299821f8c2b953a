//! Firmware images through the real router on both databases: multipart
//! upload streamed to disk, the list, delete only when unused, and the
//! public `/binaries/{file}` download with ranges and ETags.
mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use common::{Backend, TestApp};
use flownexus::model::Role;
use flownexus::server::db::{self, api_token::Scope};
use flownexus::server::store;
use flownexus::server::{auth, firmware_store};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

both_databases!(
    upload_stores_the_file_and_the_row,
    duplicate_versions_are_refused_and_leave_no_file,
    uploads_over_the_limit_are_refused_and_leave_no_file,
    bad_uploads_name_the_field,
    only_admins_and_api_tokens_may_upload,
    a_browser_form_post_is_redirected_back_to_the_page,
    the_list_counts_the_updates_of_each_image,
    downloads_are_public_with_ranges_and_etags,
    unknown_and_crafted_names_are_not_served,
    unused_firmware_is_deleted_with_its_file,
    firmware_in_use_is_not_deleted,
    the_firmware_page_lists_images_and_offers_upload_to_admins,
    versions_whose_file_names_collide_get_files_of_their_own,
);

const BOUNDARY: &str = "fxtestboundary7MA4YWxkTrZu0gW";

/// A multipart body of text fields and at most one file field.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((name, file_name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
}

async fn post_upload(
    app: &TestApp,
    auth: Auth<'_>,
    accept_html: bool,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Json) {
    let mut req = Request::post("/api/v1/firmware").header(
        header::CONTENT_TYPE,
        format!("multipart/form-data; boundary={BOUNDARY}"),
    );
    req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.header(header::AUTHORIZATION, format!("Bearer {t}")),
        Auth::Cookie(c) => req.header(header::COOKIE, c),
    };
    if accept_html {
        req = req.header(header::ACCEPT, "text/html,application/xhtml+xml");
    }
    let (status, headers, body) = app.request(req.body(Body::from(body)).unwrap()).await;
    let json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    (status, headers, json)
}

/// Uploads `bytes` as `version` with an API token; the answer.
async fn upload(app: &TestApp, token: &str, version: &str, bytes: &[u8]) -> (StatusCode, Json) {
    let body = multipart(&[("version", version)], Some(("file", "fw.bin", bytes)));
    let (status, _, json) = post_upload(app, Auth::Bearer(token), false, body).await;
    (status, json)
}

async fn api_token(app: &TestApp) -> String {
    app.token("firmware tests", Scope::Api).await
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A deterministic image of `n` bytes.
fn image(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The files in the firmware directory (temporary ones included).
fn files_on_disk(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(&app.state.settings.firmware_dir) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn assert_field(status: StatusCode, body: &Json, expected: StatusCode, field: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["details"][0]["path"], field, "{body}");
}

async fn get(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.request(req.body(Body::empty()).unwrap()).await
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
        .to_str()
        .unwrap()
}

/// A signed-in user of `role` (created first); the Cookie header value.
async fn session_of(app: &TestApp, username: &str, role: Role) -> String {
    let password = format!("{username}-password-1");
    auth::create_user(&app.state.db.pool, username, &password, role)
        .await
        .unwrap();
    let req = Request::post("/sfn/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .body(Body::from(format!(
            "username={username}&password={password}"
        )))
        .unwrap();
    let (_, headers, _) = app.request(req).await;
    let cookie = header_str(&headers, "set-cookie");
    cookie.split(';').next().unwrap().to_string()
}

/// An endpoint (registered through ingest) with a firmware update to `firmware_id`.
async fn update_to(app: &TestApp, firmware_id: i64) -> i64 {
    let (status, body) = app
        .ingest(
            "/leshan_api/resource/single",
            common::payload("single__registered_10240_0.json"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let endpoint_id: i64 = sqlx::query_scalar("SELECT id FROM endpoint ORDER BY id LIMIT 1")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    db::firmware_update::create(
        &app.state.db.pool,
        endpoint_id,
        firmware_id,
        None,
        store::now_ms(),
    )
    .await
    .unwrap()
}

async fn upload_stores_the_file_and_the_row(backend: Backend) {
    let app = TestApp::with_settings(backend, |s| {
        s.public_base_url = "https://fx.example:8443".into();
    })
    .await;
    let token = api_token(&app).await;
    let bytes = image(3000, 1);
    let body = multipart(
        &[("version", "  1.2.3  ")],
        Some(("file", "C:\\builds\\zephyr v1.bin", &bytes)),
    );
    let (status, _, fw) = post_upload(&app, Auth::Bearer(&token), false, body).await;
    assert_eq!(status, StatusCode::CREATED, "{fw}");
    let sha = sha256_hex(&bytes);
    assert_eq!(fw["version"], "1.2.3");
    assert_eq!(fw["file_name"], "zephyr_v1.bin");
    assert_eq!(fw["size_bytes"], 3000);
    assert_eq!(fw["sha256"], sha.as_str());
    assert_eq!(fw["updates_count"], 0);
    let stored = format!("1.2.3-{}.bin", &sha[..16]);
    assert_eq!(
        fw["download_url"],
        format!("https://fx.example:8443/binaries/{stored}")
    );
    assert_eq!(
        fw["download_url"],
        firmware_store::package_uri("https://fx.example:8443/", &stored)
    );
    // The file, byte for byte, and nothing else in the directory.
    assert_eq!(files_on_disk(&app), vec![stored.clone()]);
    let on_disk = std::fs::read(app.state.settings.firmware_dir.join(&stored)).unwrap();
    assert_eq!(on_disk, bytes);
    // The row.
    let row = db::firmware::find_by_stored_file(&app.state.db.pool, &stored)
        .await
        .unwrap()
        .expect("row");
    assert_eq!(row.id, fw["id"].as_i64().unwrap());
    assert_eq!(row.sha256, sha);
    assert_eq!(row.size_bytes, 3000);
    assert_eq!(row.version, "1.2.3");
}

async fn duplicate_versions_are_refused_and_leave_no_file(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let first = image(100, 1);
    assert_eq!(
        upload(&app, &token, "2.0.0", &first).await.0,
        StatusCode::CREATED
    );
    let before = files_on_disk(&app);
    // Another image under the same version.
    let (status, body) = upload(&app, &token, "2.0.0", &image(200, 2)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("version"),
        "{body}"
    );
    assert_eq!(files_on_disk(&app), before);
    // The very same image again: same stored name, and the first file stays.
    let (status, body) = upload(&app, &token, "2.0.0", &first).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(files_on_disk(&app), before);
    let stored = &before[0];
    assert_eq!(
        std::fs::read(app.state.settings.firmware_dir.join(stored)).unwrap(),
        first
    );
    assert_eq!(app.count("firmware").await, 1);
}

async fn uploads_over_the_limit_are_refused_and_leave_no_file(backend: Backend) {
    let app = TestApp::with_settings(backend, |s| s.firmware_max_bytes = 1000).await;
    let token = api_token(&app).await;
    // Exactly the limit is fine.
    assert_eq!(
        upload(&app, &token, "1.0.0", &image(1000, 1)).await.0,
        StatusCode::CREATED
    );
    let before = files_on_disk(&app);
    let (status, body) = upload(&app, &token, "1.0.1", &image(1001, 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(files_on_disk(&app), before);
    // A body far over the limit is refused from its Content-Length.
    let (status, body) = upload(&app, &token, "1.0.2", &image(200_000, 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(files_on_disk(&app), before);
    assert_eq!(app.count("firmware").await, 1);
    // Above axum's 2 MB default extractor limit, under ours: accepted.
    let app = TestApp::with_settings(backend, |s| s.firmware_max_bytes = 3 * 1024 * 1024).await;
    let token = api_token(&app).await;
    let big = image(2_500_000, 9);
    let (status, body) = upload(&app, &token, "big", &big).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["sha256"], sha256_hex(&big));
}

async fn bad_uploads_name_the_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            multipart(&[("version", "1.0")], Some(("file", "fw.bin", b""))),
            "file",
        ),
        (multipart(&[], Some(("file", "fw.bin", b"abc"))), "version"),
        (multipart(&[("version", "1.0")], None), "file"),
        (
            multipart(&[("version", "   ")], Some(("file", "fw.bin", b"abc"))),
            "version",
        ),
        (
            multipart(
                &[("version", &"v".repeat(101))],
                Some(("file", "fw.bin", b"abc")),
            ),
            "version",
        ),
        (
            multipart(&[("version", "1.0\u{7}")], Some(("file", "fw.bin", b"abc"))),
            "version",
        ),
        (
            multipart(
                &[("version", "1.0"), ("colour", "red")],
                Some(("file", "fw.bin", b"abc")),
            ),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, _, json) = post_upload(&app, Auth::Bearer(&token), false, body).await;
        assert_field(status, &json, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    // Not multipart at all: a JSON 400.
    let req = Request::post("/api/v1/firmware")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Json = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["details"][0]["path"], "body");
    assert!(files_on_disk(&app).is_empty(), "{:?}", files_on_disk(&app));
    assert_eq!(app.count("firmware").await, 0);
}

async fn only_admins_and_api_tokens_may_upload(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = || multipart(&[("version", "1.0")], Some(("file", "fw.bin", b"abc")));
    let viewer = session_of(&app, "vera", Role::Viewer).await;
    let operator = session_of(&app, "otto", Role::Operator).await;
    let (status, _, json) = post_upload(&app, Auth::Cookie(&viewer), false, body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    let (status, _, _) = post_upload(&app, Auth::Cookie(&operator), false, body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_upload(&app, Auth::Bearer(&app.device_token), false, body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, json) = post_upload(&app, Auth::None, false, body()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    // A refused browser post keeps its status too (no redirect).
    let (status, _, _) = post_upload(&app, Auth::Cookie(&viewer), true, body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(files_on_disk(&app).is_empty());
    // Deletion likewise.
    let admin = app.login_cookie().await;
    let (status, _, fw) = post_upload(&app, Auth::Cookie(&admin), false, body()).await;
    assert_eq!(status, StatusCode::CREATED, "{fw}");
    let path = format!("/api/v1/firmware/{}", fw["id"]);
    for (auth_header, value, expected) in [
        ("cookie", viewer.clone(), StatusCode::FORBIDDEN),
        (
            "authorization",
            format!("Bearer {}", app.device_token),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let req = Request::delete(&path)
            .header(auth_header, value)
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.request(req).await.0, expected);
    }
    let req = Request::delete(&path).body(Body::empty()).unwrap();
    assert_eq!(app.request(req).await.0, StatusCode::UNAUTHORIZED);
    // Reading the list is open to every role, not to devices.
    let (status, _, _) = get(&app, "/api/v1/firmware", &[("cookie", &viewer)]).await;
    assert_eq!(status, StatusCode::OK);
    let bearer = format!("Bearer {}", app.device_token);
    let (status, _, _) = get(&app, "/api/v1/firmware", &[("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn a_browser_form_post_is_redirected_back_to_the_page(backend: Backend) {
    let app = TestApp::new(backend).await;
    let admin = app.login_cookie().await;
    let body = multipart(&[("version", "3.0 rc1")], Some(("file", "fw.bin", b"abc")));
    let (status, headers, _) = post_upload(&app, Auth::Cookie(&admin), true, body).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        header_str(&headers, "location"),
        "/firmware?uploaded=3.0%20rc1"
    );
    assert_eq!(app.count("firmware").await, 1);
    // A refused upload goes back with the reason.
    let body = multipart(&[("version", "3.0 rc1")], Some(("file", "fw.bin", b"abcd")));
    let (status, headers, _) = post_upload(&app, Auth::Cookie(&admin), true, body).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = header_str(&headers, "location");
    assert!(location.starts_with("/firmware?error="), "{location}");
    assert!(location.contains("exists"), "{location}");
    let body = multipart(&[("version", "4.0")], Some(("file", "fw.bin", b"")));
    let (status, headers, _) = post_upload(&app, Auth::Cookie(&admin), true, body).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        header_str(&headers, "location"),
        "/firmware?error=file%3A%20is%20empty"
    );
}

async fn the_list_counts_the_updates_of_each_image(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let (_, a) = upload(&app, &token, "1.0", b"first image").await;
    let (_, b) = upload(&app, &token, "2.0", b"second image").await;
    let b_id = b["id"].as_i64().unwrap();
    update_to(&app, b_id).await;
    let bearer = format!("Bearer {token}");
    let (status, _, body) = get(&app, "/api/v1/firmware", &[("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::OK);
    let list: Json = serde_json::from_slice(&body).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    // Newest first.
    assert_eq!(list[0]["version"], "2.0");
    assert_eq!(list[0]["updates_count"], 1);
    assert_eq!(list[1]["version"], "1.0");
    assert_eq!(list[1]["updates_count"], 0);
    assert_eq!(list[1]["download_url"], a["download_url"]);
    assert_eq!(list[1]["sha256"], sha256_hex(b"first image"));
}

async fn downloads_are_public_with_ranges_and_etags(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let bytes = image(100, 7);
    let (status, fw) = upload(&app, &token, "5.0", &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{fw}");
    let url = fw["download_url"].as_str().unwrap();
    let path = &url[url.find("/binaries/").unwrap()..];
    let etag = format!("\"{}\"", sha256_hex(&bytes));

    // The whole file, without any credentials.
    let (status, headers, body) = get(&app, path, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
    assert_eq!(
        header_str(&headers, "content-type"),
        "application/octet-stream"
    );
    assert_eq!(header_str(&headers, "accept-ranges"), "bytes");
    assert_eq!(header_str(&headers, "etag"), etag);
    assert_eq!(header_str(&headers, "content-length"), "100");
    assert_eq!(
        header_str(&headers, "content-disposition"),
        "attachment; filename=\"fw.bin\""
    );

    // HEAD: the headers, no body.
    let req = Request::head(path).body(Body::empty()).unwrap();
    let (status, headers, body) = app.request(req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(header_str(&headers, "content-length"), "100");
    assert_eq!(header_str(&headers, "etag"), etag);

    // Ranges.
    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 99),
        ("bytes=-5", 95, 99),
    ] {
        let (status, headers, body) = get(&app, path, &[("range", range)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(body, &bytes[start..=end], "{range}");
        assert_eq!(
            header_str(&headers, "content-range"),
            format!("bytes {start}-{end}/100")
        );
        assert_eq!(
            header_str(&headers, "content-length"),
            (end - start + 1).to_string()
        );
    }
    let (status, headers, body) = get(&app, path, &[("range", "bytes=100-")]).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert!(body.is_empty());
    assert_eq!(header_str(&headers, "content-range"), "bytes */100");
    // Several ranges: the whole file.
    let (status, _, body) = get(&app, path, &[("range", "bytes=0-1,5-6")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);

    // If-Range: the range while the ETag matches, the whole file otherwise.
    let (status, _, _) = get(&app, path, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let (status, _, body) = get(
        &app,
        path,
        &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);

    // If-None-Match.
    let (status, headers, body) = get(&app, path, &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(header_str(&headers, "etag"), etag);
    let (status, _, _) = get(&app, path, &[("if-none-match", "\"stale\"")]).await;
    assert_eq!(status, StatusCode::OK);
}

async fn unknown_and_crafted_names_are_not_served(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    upload(&app, &token, "1.0", b"image").await;
    // A file in the directory that is not a registered image.
    std::fs::write(app.state.settings.firmware_dir.join("stray.bin"), b"x").unwrap();
    std::fs::write(app.tdb.dir.path().join("secret.txt"), b"secret").unwrap();
    for path in [
        "/binaries/stray.bin",
        "/binaries/nope.bin",
        "/binaries/..%2Fsecret.txt",
        "/binaries/%2E%2E%2Fsecret.txt",
        "/binaries/../secret.txt",
        "/binaries/a/b",
        "/binaries/",
    ] {
        let (status, headers, body) = get(&app, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            header_str(&headers, "content-type").starts_with("application/json"),
            "{path}: {headers:?}"
        );
        let body: Json = serde_json::from_slice(&body).unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}

async fn unused_firmware_is_deleted_with_its_file(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let (_, fw) = upload(&app, &token, "6.0", b"to be deleted").await;
    assert_eq!(files_on_disk(&app).len(), 1);
    let req = Request::delete(format!("/api/v1/firmware/{}", fw["id"]))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(files_on_disk(&app).is_empty());
    assert_eq!(app.count("firmware").await, 0);
    // Again: gone.
    let req = Request::delete(format!("/api/v1/firmware/{}", fw["id"]))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = app.request(req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The download is gone with it.
    let url = fw["download_url"].as_str().unwrap();
    let (status, _, _) = get(&app, &url[url.find("/binaries/").unwrap()..], &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The page's server function deletes too (an admin's session).
    let (_, fw) = upload(&app, &token, "6.1", b"deleted from the page").await;
    let admin = app.login_cookie().await;
    let req = Request::post("/sfn/firmware/delete")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &admin)
        .body(Body::from(format!("id={}", fw["id"])))
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(files_on_disk(&app).is_empty());
}

async fn firmware_in_use_is_not_deleted(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let (_, fw) = upload(&app, &token, "7.0", b"in use").await;
    let id = fw["id"].as_i64().unwrap();
    update_to(&app, id).await;
    let req = Request::delete(format!("/api/v1/firmware/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.request(req).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let body: Json = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("used by 1 firmware update"),
        "{body}"
    );
    assert_eq!(files_on_disk(&app).len(), 1);
    assert_eq!(app.count("firmware").await, 1);
    // The server function refuses the same way, with 409.
    let admin = app.login_cookie().await;
    let req = Request::post("/sfn/firmware/delete")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &admin)
        .body(Body::from(format!("id={id}")))
        .unwrap();
    let (status, _, _) = app.request(req).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(files_on_disk(&app).len(), 1);
    // The download still works.
    let url = fw["download_url"].as_str().unwrap();
    let (status, _, body) = get(&app, &url[url.find("/binaries/").unwrap()..], &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"in use");
}

async fn the_firmware_page_lists_images_and_offers_upload_to_admins(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let (_, fw) = upload(&app, &token, "8.0", &image(2048, 3)).await;
    let admin = app.login_cookie().await;
    let (status, _, html) = app.get_page("/firmware?uploaded=8.0", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("enctype=\"multipart/form-data\""), "{html}");
    assert!(html.contains("up to 16 MiB"), "{html}");
    assert!(html.contains("Uploaded firmware 8.0."), "{html}");
    assert!(html.contains(fw["sha256"].as_str().unwrap()));
    assert!(html.contains("2 KiB"));
    assert!(html.contains(">Delete<"), "{html}");
    let viewer = session_of(&app, "vera", Role::Viewer).await;
    let (status, _, html) = app.get_page("/firmware", Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(fw["sha256"].as_str().unwrap()));
    assert!(html.contains(fw["download_url"].as_str().unwrap()));
    assert!(!html.contains("multipart/form-data"));
    assert!(!html.contains(">Delete<"));
}

async fn versions_whose_file_names_collide_get_files_of_their_own(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = api_token(&app).await;
    let bytes = image(3000, 9);
    let (status, first) = upload(&app, &token, "qa/sub", &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // Made safe, both versions are `qa_sub`; the content is the same.
    let (status, second) = upload(&app, &token, "qa:sub", &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_ne!(first["download_url"], second["download_url"]);
    for view in [&first, &second] {
        let url = view["download_url"].as_str().unwrap();
        let path = &url[url.find("/binaries/").unwrap()..];
        let req = Request::get(path).body(Body::empty()).unwrap();
        let (status, _, body) = app.request(req).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, bytes);
    }
    // The same version again is the conflict, and leaves no file behind.
    let on_disk = files_on_disk(&app);
    let (status, error) = upload(&app, &token, "qa/sub", &bytes).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        error["error"].as_str().unwrap().contains("exists already"),
        "{error}"
    );
    assert_eq!(files_on_disk(&app), on_disk);
}
