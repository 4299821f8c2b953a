//! The HTTP server loop on a real socket: slow and idle connections are
//! closed, one address cannot hold more than its share of connections, and
//! requests, websockets, the peer's address and graceful shutdown still work.
mod common;

use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use common::{payload, Backend, TestApp};
use flownexus::server::http_server::{self, ConnectionStats, HttpLimits};
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

both_databases!(
    a_half_sent_head_is_closed_after_the_header_timeout,
    an_idle_keep_alive_connection_is_closed_after_the_idle_timeout,
    one_address_cannot_hold_more_than_its_connections,
    requests_and_websockets_work_through_the_server_loop,
);

/// Far longer than any bound the tests set: a server that does not close a
/// connection by then holds it for ever.
const HANG: Duration = Duration::from_secs(20);

/// An app whose server loop closes heads after 1 s, idle connections after
/// 4 s, and allows 4 connections per address.
async fn app_with_short_bounds(backend: Backend) -> TestApp {
    TestApp::with_settings(backend, |s| {
        s.http_header_timeout_secs = 1;
        s.http_idle_timeout_secs = 4;
        s.http_max_connections_per_ip = 4;
    })
    .await
}

/// Runs the real server loop for `app` on a free port of 127.0.0.1.
async fn serve(app: &TestApp) -> SocketAddr {
    serve_router(
        app.router.clone(),
        HttpLimits::from_settings(&app.state.settings),
        app.state.connections.clone(),
        std::future::pending(),
    )
    .await
    .0
}

async fn serve_router(
    router: Router,
    limits: HttpLimits,
    stats: Arc<ConnectionStats>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(http_server::serve(
        listener, router, limits, stats, shutdown,
    ));
    (addr, task)
}

/// Reads until the server closes the connection (end of stream or reset);
/// panics if it is still open after `HANG`. Returns what was read.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(HANG, stream.read(&mut buf)).await {
            Err(_) => panic!("the server still holds the connection after {HANG:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// An HTTP/1.1 client connection; the handle ends when the connection does.
async fn client(addr: SocketAddr) -> (SendRequest<Full<Bytes>>, JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let done = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, done)
}

/// GETs `path` on the connection; returns the status and the body.
async fn get_on(sender: &mut SendRequest<Full<Bytes>>, path: &str) -> (StatusCode, String) {
    let req = Request::get(path)
        .header(header::HOST, "127.0.0.1")
        .body(Full::default())
        .unwrap();
    tokio::time::timeout(HANG, sender.ready())
        .await
        .expect("the connection takes a request")
        .expect("the connection is open");
    let resp = tokio::time::timeout(HANG, sender.send_request(req))
        .await
        .expect("an answer")
        .expect("the connection is open");
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn a_half_sent_head_is_closed_after_the_header_timeout(backend: Backend) {
    let app = app_with_short_bounds(backend).await;
    let addr = serve(&app).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A head without its closing empty line, then nothing.
    stream
        .write_all(b"GET /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let stats = &app.state.connections;
    assert_eq!(stats.header_timeouts.load(Ordering::Relaxed), 1);
    assert_eq!(stats.idle_timeouts.load(Ordering::Relaxed), 0);

    // A connection that sends nothing at all is bounded the same way.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    read_until_closed(&mut silent).await;
    assert_eq!(stats.header_timeouts.load(Ordering::Relaxed), 2);
}

async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(backend: Backend) {
    let app = app_with_short_bounds(backend).await;
    let addr = serve(&app).await;
    let (mut sender, closed) = client(addr).await;
    let (status, _) = get_on(&mut sender, "/api/v1/no-such-route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Idle for longer than the header timeout (1 s), well within the idle
    // timeout (4 s): the connection is kept, and serves the next request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = get_on(&mut sender, "/api/v1/no-such-route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Then idle for good: the server closes it.
    tokio::time::timeout(HANG, closed)
        .await
        .expect("the server closes an idle connection")
        .unwrap();
    let stats = &app.state.connections;
    assert_eq!(stats.idle_timeouts.load(Ordering::Relaxed), 1);
    assert_eq!(stats.header_timeouts.load(Ordering::Relaxed), 0);
}

async fn one_address_cannot_hold_more_than_its_connections(backend: Backend) {
    let app = app_with_short_bounds(backend).await;
    let addr = serve(&app).await;
    // Four connections, each answered once, so that the server has
    // accepted and counted every one.
    let mut held = Vec::new();
    for _ in 0..4 {
        let (mut sender, closed) = client(addr).await;
        assert_eq!(
            get_on(&mut sender, "/api/v1/x").await.0,
            StatusCode::NOT_FOUND
        );
        held.push((sender, closed));
    }
    // The fifth is closed without an answer.
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /api/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut fifth).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(
        app.state.connections.refused_per_ip.load(Ordering::Relaxed),
        1
    );
    // The four held ones still work.
    for (sender, _) in &mut held {
        assert_eq!(get_on(sender, "/api/v1/x").await.0, StatusCode::NOT_FOUND);
    }
    // Once one is closed, its place is free again (the server notices the
    // close in its own time, so try until it has).
    let (sender, closed) = held.pop().unwrap();
    drop(sender);
    closed.await.unwrap();
    let waited = tokio::time::timeout(HANG, async {
        loop {
            let (mut sender, _closed) = client(addr).await;
            let req = Request::get("/api/v1/x")
                .header(header::HOST, "127.0.0.1")
                .body(Full::default())
                .unwrap();
            if let Ok(resp) = sender.send_request(req).await {
                return resp.status();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        waited.expect("a freed place is given again"),
        StatusCode::NOT_FOUND
    );
}

async fn requests_and_websockets_work_through_the_server_loop(backend: Backend) {
    let app = app_with_short_bounds(backend).await;
    let cookie = app.login_cookie().await;
    let addr = serve(&app).await;

    // An ingest post on a kept-alive connection, twice.
    let (mut sender, _closed) = client(addr).await;
    for _ in 0..2 {
        let req = Request::post("/leshan_api/resource/single")
            .header(header::HOST, "127.0.0.1")
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", app.device_token),
            )
            .body(Full::new(Bytes::from(payload(
                "single__observe_humidity_3304_0_5700.json",
            ))))
            .unwrap();
        // The connection takes the next request once it has finished
        // the last one: hyper's client says so through `ready`.
        sender.ready().await.unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.into_body().collect().await.unwrap();
    }

    // A websocket outlives both bounds (1 s head, 4 s idle) and still
    // delivers.
    let mut socket = common::live_socket(addr, &cookie, "qemu_x86").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    app.ingest(
        "/leshan_api/resource/single",
        payload("single__test_temperature_3303_0_5700.json"),
    )
    .await;
    let msg = tokio::time::timeout(HANG, socket.next())
        .await
        .expect("a live value")
        .expect("the websocket is open")
        .unwrap();
    let value: flownexus::model::LiveValue = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(value.endpoint, "qemu_x86");
    let stats = &app.state.connections;
    assert_eq!(stats.header_timeouts.load(Ordering::Relaxed), 0);
}

fn test_limits() -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        max_connections_per_ip: 0,
    }
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let router = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let (addr, _) = serve_router(
        router,
        test_limits(),
        Arc::default(),
        std::future::pending(),
    )
    .await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (status, body) = get_on(&mut sender, "/peer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, local.to_string());
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_then_stops() {
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release_rx = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let router = Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(move || {
                let release_rx = release_rx.clone();
                async move {
                    if let Some(rx) = release_rx.lock().await.take() {
                        let _ = rx.await;
                    }
                    "slow"
                }
            }),
        );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = serve_router(router, test_limits(), Arc::default(), async {
        let _ = stop_rx.await;
    })
    .await;
    // One connection idle after an answer, one waiting for /slow.
    let (mut idle, idle_closed) = client(addr).await;
    assert_eq!(get_on(&mut idle, "/fast").await.1, "fast");
    let (mut busy, _) = client(addr).await;
    let slow = tokio::spawn(async move { get_on(&mut busy, "/slow").await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    stop_tx.send(()).unwrap();
    // The idle connection is closed at once; the server waits for /slow.
    tokio::time::timeout(HANG, idle_closed)
        .await
        .expect("an idle connection is closed at shutdown")
        .unwrap();
    assert!(!server.is_finished());
    release_tx.send(()).unwrap();
    let (status, body) = tokio::time::timeout(HANG, slow).await.unwrap().unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "slow"));
    tokio::time::timeout(HANG, server)
        .await
        .expect("the server loop ends once its connections have")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
