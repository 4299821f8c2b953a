//! The native LwM2M server for tests: started on a free loopback port, and
//! driven with libcoap's `coap-client-notls` (Debian's libcoap3-bin, an
//! independent CoAP implementation; installed by scripts/setup.sh).
use super::{Backend, TestApp};
use flownexus::server::config::NosecPolicy;
use flownexus::server::db;
use flownexus::server::lwm2m::{self, Lwm2mHandle};
use std::process::Command;

/// A test app with the LwM2M server on a free loopback port.
pub async fn app(backend: Backend, nosec: NosecPolicy) -> (TestApp, Lwm2mHandle) {
    app_with(backend, |s| s.lwm2m_nosec = nosec).await
}

/// `app` with settings of the test's own.
pub async fn app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut flownexus::server::config::Settings),
) -> (TestApp, Lwm2mHandle) {
    let app = TestApp::with_settings(backend, tweak).await;
    let handle = lwm2m::start(app.state.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let _ = app.state.lwm2m.set(handle.clone());
    (app, handle)
}

/// Lets `endpoint` register over plain CoAP.
pub async fn provision(app: &TestApp, endpoint: &str) {
    db::device_credential::set_nosec(&app.state.db.pool, endpoint, None, 0)
        .await
        .unwrap();
}

/// A free UDP port for `coap-client -p`, so that its requests come from
/// one address (Send is attributed by address without DTLS).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `coap-client-notls` with `args` until it has its answer; returns
/// (stdout, stderr).
pub async fn coap_client(args: &[&str]) -> (String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("coap-client-notls")
            .args(["-B", "10"])
            .args(&args)
            .output()
            .expect("coap-client-notls runs (Debian package libcoap3-bin, scripts/setup.sh)");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Queues a command through the data API; returns its id.
pub async fn queue_command(app: &TestApp, token: &str, body: serde_json::Value) -> i64 {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    let req = Request::post("/api/v1/commands")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, answer) = app.request(req).await;
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["id"].as_i64().unwrap()
}

/// Waits until command `id` is settled; returns (status, device status).
pub async fn settled(app: &TestApp, id: i64) -> (String, Option<String>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, device_status): (String, Option<String>) =
            sqlx::query_as("SELECT status, device_status FROM endpoint_operation WHERE id = $1")
                .bind(id)
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        if status == "confirmed" || status == "failed" {
            return (status, device_status);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "command {id} still {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Starts one simulated LwM2M 1.1 device, `sim-0`, on loopback for at most
/// `duration` (`tweak` sets the rest of its options) and waits up to 15 s
/// until `ready` holds of the server (registered, onboarded, ...).
pub async fn one_simulated_device(
    lwm2m: &Lwm2mHandle,
    duration: std::time::Duration,
    tweak: impl FnOnce(&mut flownexus::server::simulate::SimOptions),
    ready: impl Fn(&Lwm2mHandle) -> bool,
) -> tokio::task::JoinHandle<
    Result<flownexus::server::simulate::SimReport, flownexus::server::simulate::SimError>,
> {
    use flownexus::server::simulate::{run, SimOptions};
    let mut options = SimOptions {
        devices: 1,
        server: lwm2m.local_addr,
        bind: Some("127.0.0.1".parse().unwrap()),
        duration: Some(duration),
        ..SimOptions::default()
    };
    tweak(&mut options);
    let simulator = tokio::spawn(run(options, std::future::pending::<()>()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !ready(lwm2m) {
        assert!(
            std::time::Instant::now() < deadline,
            "sim-0 is ready within 15 s: registration {:?}, observations {:?}",
            lwm2m.registration("sim-0").map(|r| r.id),
            lwm2m.observations("sim-0")
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    simulator
}
