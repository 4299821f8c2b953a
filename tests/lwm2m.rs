//! The native LwM2M server over real UDP, on both databases: registration,
//! update, de-registration and Send driven by libcoap's `coap-client` (an
//! independent CoAP implementation, Debian's libcoap3-bin), and bad input
//! sent as raw datagrams.
mod common;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use common::coap::{
    app, coap_client, free_udp_port, one_simulated_device, provision, queue_command, settled,
};
use common::{Backend, TestApp};
use flownexus::server::config::NosecPolicy;
use flownexus::server::db;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

async fn events_of(app: &TestApp, endpoint: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT e.event_type FROM event e JOIN endpoint p ON p.id = e.endpoint_id \
         WHERE p.name = $1 ORDER BY e.id",
    )
    .bind(endpoint)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}

async fn registration_and_update_and_deregistration_with_coap_client(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Provisioned).await;
    provision(&app, "dev-1").await;
    let server = format!("coap://{}", lwm2m.local_addr);
    let port = free_udp_port().to_string();
    let (out, err) = coap_client(&[
        "-p",
        &port,
        "-m",
        "post",
        "-t",
        "40",
        "-e",
        "</>;ct=\"60 110 112\",</1/0>,</3/0>,</3303/0>;ver=1.1,</5/0>",
        &format!("{server}/rd?ep=dev-1&lt=60&lwm2m=1.1&b=U"),
    ])
    .await;
    let registration = lwm2m
        .registration("dev-1")
        .unwrap_or_else(|| panic!("dev-1 registered; coap-client said {out:?} {err:?}"));
    assert_eq!(registration.lwm2m_version, "1.1");
    assert_eq!(registration.lifetime_s, 60);
    assert_eq!(registration.binding, "U");
    assert!(!registration.queue_mode);
    assert_eq!(registration.content_formats, vec![60, 110, 112]);
    assert!(
        registration.object_links.contains("</3303/0>;ver=1.1"),
        "{}",
        registration.object_links
    );
    assert_eq!(registration.address.port().to_string(), port);

    let endpoint_id = db::endpoint::id_by_name(&app.state.db.pool, "dev-1")
        .await
        .unwrap()
        .expect("the endpoint row exists once the client has its answer");
    let row = db::lwm2m_registration::find_by_endpoint(&app.state.db.pool, endpoint_id)
        .await
        .unwrap()
        .expect("the registration row");
    assert_eq!(row.registration_id, registration.id);
    assert_eq!(row.lifetime_s, 60);
    assert_eq!(row.expires_at, row.updated_at + 60_000);

    // Update: a new lifetime and queue mode (LwM2M 1.1's Q).
    coap_client(&[
        "-p",
        &port,
        "-m",
        "post",
        &format!("{server}/rd/{}?lt=120&Q", registration.id),
    ])
    .await;
    let updated = lwm2m.registration("dev-1").unwrap();
    assert_eq!(updated.lifetime_s, 120);
    assert!(updated.queue_mode);
    let row = db::lwm2m_registration::find_by_endpoint(&app.state.db.pool, endpoint_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.lifetime_s, 120);
    assert!(row.queue_mode);
    let (binding, queue_mode, lifetime): (Option<String>, bool, Option<i64>) =
        sqlx::query_as::<_, (Option<String>, i64, Option<i64>)>(
            "SELECT binding, CASE WHEN queue_mode THEN 1 ELSE 0 END, lifetime_s FROM endpoint WHERE id = $1",
        )
        .bind(endpoint_id)
        .fetch_one(&app.state.db.pool)
        .await
        .map(|(b, q, l)| (b, q != 0, l))
        .unwrap();
    assert_eq!(
        (binding.as_deref(), queue_mode, lifetime),
        (Some("UQ"), true, Some(120))
    );

    // De-register.
    coap_client(&[
        "-p",
        &port,
        "-m",
        "delete",
        &format!("{server}/rd/{}", registration.id),
    ])
    .await;
    assert!(lwm2m.registration("dev-1").is_none());
    assert!(
        db::lwm2m_registration::find_by_endpoint(&app.state.db.pool, endpoint_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        events_of(&app, "dev-1").await,
        vec!["registered", "registration_update", "deregistered"]
    );
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert_eq!(
        (
            counters.registrations,
            counters.updates,
            counters.deregistrations
        ),
        (1, 1, 1)
    );
}

async fn send_in_senml_json_and_cbor_from_coap_client_is_stored(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
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
        "</3303/0>,</3304/0>",
        &format!("{server}/rd?ep=sender&lwm2m=1.1"),
    ])
    .await;
    assert!(lwm2m.registration("sender").is_some());

    // SenML JSON: a base name and two records, one with a device time.
    let (out, err) = coap_client(&[
        "-p",
        &port,
        "-m",
        "post",
        "-t",
        "110",
        "-e",
        r#"[{"bn":"/3303/0/","n":"5700","v":21.5,"bt":1700000000},{"n":"5700","v":22.5,"t":60}]"#,
        &format!("{server}/dp"),
    ])
    .await;
    assert!(!err.contains("4."), "{out} {err}");
    // SenML CBOR (RFC 8428 §6): [{-2: "/3304/0/", 0: "5700", 2: 40.25}]
    let mut cbor = vec![0x81, 0xa3, 0x21, 0x68];
    cbor.extend_from_slice(b"/3304/0/");
    cbor.extend_from_slice(&[0x00, 0x64]);
    cbor.extend_from_slice(b"5700");
    cbor.extend_from_slice(&[0x02, 0xfb]);
    cbor.extend_from_slice(&40.25f64.to_be_bytes());
    let file = app.tdb.dir.path().join("send.cbor");
    std::fs::write(&file, &cbor).unwrap();
    let (out, err) = coap_client(&[
        "-p",
        &port,
        "-m",
        "post",
        "-t",
        "112",
        "-f",
        file.to_str().unwrap(),
        &format!("{server}/dp"),
    ])
    .await;
    assert!(!err.contains("4."), "{out} {err}");

    let values: Vec<f64> = sqlx::query_scalar(
        "SELECT r.float_value FROM resource r JOIN endpoint e ON e.id = r.endpoint_id \
         JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE e.name = 'sender' AND t.resource_id = 5700 ORDER BY r.id",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(values, vec![21.5, 22.5, 40.25]);
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert_eq!((counters.sends, counters.values), (2, 3));
}

async fn an_unprovisioned_endpoint_is_refused(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Provisioned).await;
    let client = Client::new(lwm2m.local_addr).await;
    let answer = client
        .request(
            RequestType::Post,
            &["rd"],
            &["ep=stranger", "lwm2m=1.1"],
            Some(40),
            b"</3/0>",
        )
        .await;
    assert_eq!(code(&answer), ResponseType::Forbidden);
    assert!(String::from_utf8_lossy(&answer.payload).contains("not provisioned"));
    assert!(lwm2m.registration("stranger").is_none());
    assert_eq!(app.count("endpoint").await, 0);
}

async fn bad_input_gets_the_right_code_and_stores_nothing(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    let client = Client::new(lwm2m.local_addr).await;
    // (query, content format, payload, expected answer)
    type Case<'a> = (&'a [&'a str], Option<u16>, &'a [u8], ResponseType);
    let cases: &[Case] = &[
        (
            &["lwm2m=1.1"],
            Some(40),
            b"</3/0>",
            ResponseType::BadRequest,
        ),
        (
            &["ep=x", "lt=0"],
            Some(40),
            b"</3/0>",
            ResponseType::BadRequest,
        ),
        (
            &["ep=x", "lt=99999999999"],
            Some(40),
            b"</3/0>",
            ResponseType::BadRequest,
        ),
        (
            &["ep=x", "lwm2m=2.0"],
            Some(40),
            b"</3/0>",
            ResponseType::PreconditionFailed,
        ),
        (&["ep=x"], Some(40), b"<3/0", ResponseType::BadRequest),
        (
            &["ep=x"],
            Some(0),
            b"</3/0>",
            ResponseType::UnsupportedContentFormat,
        ),
        (
            &["ep=\u{202e}x"],
            Some(40),
            b"</3/0>",
            ResponseType::BadRequest,
        ),
        (&["ep=   "], Some(40), b"</3/0>", ResponseType::BadRequest),
    ];
    for (query, cf, payload, expected) in cases {
        let answer = client
            .request(RequestType::Post, &["rd"], query, *cf, payload)
            .await;
        assert_eq!(code(&answer), *expected, "{query:?} {payload:?}");
        assert!(!answer.payload.is_empty(), "a diagnostic payload says why");
    }
    // An update of a registration that does not exist.
    let answer = client
        .request(RequestType::Post, &["rd", "nosuchid"], &[], None, b"")
        .await;
    assert_eq!(code(&answer), ResponseType::NotFound);
    // Send without a registration, then with bad SenML.
    let senml = br#"[{"n":"/3303/0/5700","v":1}]"#;
    let answer = client
        .request(RequestType::Post, &["dp"], &[], Some(110), senml)
        .await;
    assert_eq!(code(&answer), ResponseType::NotFound);
    let answer = client
        .request(
            RequestType::Post,
            &["rd"],
            &["ep=good"],
            Some(40),
            b"</3303/0>",
        )
        .await;
    assert_eq!(code(&answer), ResponseType::Created);
    for (cf, payload, expected) in [
        (
            110,
            &br#"[{"n":"/3303/0/5700","v":"x"}]"#[..],
            ResponseType::BadRequest,
        ),
        (
            110,
            &br#"[{"n":"/3303/0/5700","v":1},{"bt":"x"}]"#[..],
            ResponseType::BadRequest,
        ),
        (112, &[0x81, 0xa1, 0x00][..], ResponseType::BadRequest),
        (0, &b"1"[..], ResponseType::UnsupportedContentFormat),
    ] {
        let answer = client
            .request(RequestType::Post, &["dp"], &[], Some(cf), payload)
            .await;
        assert_eq!(code(&answer), expected, "{cf} {payload:?}");
    }
    assert_eq!(
        app.count("resource").await,
        1,
        "only the registration's value"
    );
    // An unknown critical option (65001 is odd: critical).
    let mut packet = client.packet(RequestType::Post, &["rd"], &["ep=y"], Some(40), b"</3/0>");
    packet.add_option(CoapOption::Unknown(65001), vec![1]);
    let answer = client.exchange(packet).await;
    assert_eq!(code(&answer), ResponseType::BadOption);
    // Garbage: a confirmable header with a bad token length is reset; the
    // server keeps serving.
    client.socket.send(&[0x4f, 0x02, 0x12, 0x34]).await.unwrap();
    let reset = client.receive().await.expect("a reset");
    assert_eq!(reset.header.get_type(), MessageType::Reset);
    assert_eq!(reset.header.message_id, 0x1234);
    client.socket.send(&[0xff; 3]).await.unwrap();
    let answer = client
        .request(
            RequestType::Post,
            &["rd"],
            &["ep=after"],
            Some(40),
            b"</3/0>",
        )
        .await;
    assert_eq!(code(&answer), ResponseType::Created);
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert!(counters.client_errors >= 14, "{counters:?}");
    assert!(counters.malformed >= 2, "{counters:?}");
}

async fn a_retransmitted_send_is_answered_again_and_stored_once(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    let client = Client::new(lwm2m.local_addr).await;
    let answer = client
        .request(
            RequestType::Post,
            &["rd"],
            &["ep=twice"],
            Some(40),
            b"</3303/0>",
        )
        .await;
    assert_eq!(code(&answer), ResponseType::Created);
    let before = app.count("resource").await;
    let send = client.packet(
        RequestType::Post,
        &["dp"],
        &[],
        Some(110),
        br#"[{"n":"/3303/0/5700","v":7.5}]"#,
    );
    let first = client.exchange(send.clone()).await;
    assert_eq!(code(&first), ResponseType::Changed);
    let again = client.exchange(send).await;
    assert_eq!(again.to_bytes().unwrap(), first.to_bytes().unwrap());
    assert_eq!(app.count("resource").await, before + 1);
    assert_eq!(lwm2m.stats.snapshot(0).duplicates, 1);
}

/// A device that restarts on the same address and port can draw a message
/// id its former self used within EXCHANGE_LIFETIME. Its request has
/// another token, so it is a new request, not a retransmission: it is
/// answered with its own answer (not the former one's, which its token
/// does not match), and a retransmission of it gets that answer again.
async fn a_reused_message_id_with_a_new_token_is_a_new_request(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    let client = Client::new(lwm2m.local_addr).await;
    let mut first = client.packet(
        RequestType::Post,
        &["rd"],
        &["ep=restarted"],
        Some(40),
        b"</3303/0>",
    );
    first.header.message_id = 4242;
    first.set_token(vec![1, 1, 1, 1]);
    assert_eq!(
        code(&client.exchange(first.clone()).await),
        ResponseType::Created
    );
    let before = lwm2m.registration("restarted").unwrap();

    // The restarted device: the same socket, the same message id, a new
    // token, a Send of its own.
    let mut send = client.packet(
        RequestType::Post,
        &["dp"],
        &[],
        Some(110),
        br#"[{"n":"/3303/0/5700","v":21.5}]"#,
    );
    send.header.message_id = 4242;
    send.set_token(vec![2, 2, 2, 2]);
    let rows = app.count("resource").await;
    let answer = client.exchange(send.clone()).await;
    assert_eq!(code(&answer), ResponseType::Changed);
    assert_eq!(app.count("resource").await, rows + 1);
    // Its retransmission: the same answer, stored once.
    let again = client.exchange(send).await;
    assert_eq!(again.to_bytes().unwrap(), answer.to_bytes().unwrap());
    assert_eq!(app.count("resource").await, rows + 1);
    assert_eq!(lwm2m.registration("restarted").unwrap().id, before.id);
}

/// Past `lwm2m_max_requests_in_progress`, a request is answered 5.03
/// Service Unavailable with a Max-Age to retry after (RFC 7252 §5.9.3.4),
/// not dropped: a retransmission gets the same answer, a retry after it is
/// served, and each refusal is counted.
async fn a_busy_server_answers_5_03_with_a_max_age(backend: Backend) {
    let (_app, lwm2m) = common::coap::app_with(backend, |s| {
        s.lwm2m_nosec = NosecPolicy::Open;
        s.lwm2m_max_requests_in_progress = 1;
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..64 {
        clients.push(Client::new(lwm2m.local_addr).await);
    }
    let registers: Vec<Packet> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ep = format!("ep=busy-{i}");
            c.packet(RequestType::Post, &["rd"], &[&ep], Some(40), b"</3303/0>")
        })
        .collect();
    // All sent before any answer is read, so that they arrive together and
    // the first one's registration (a database commit) is still in
    // progress when the others are read.
    for (c, p) in clients.iter().zip(&registers) {
        c.socket.send(&p.to_bytes().unwrap()).await.unwrap();
    }
    let mut refused = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let answer = c.answer_to(&registers[i]).await;
        match code(&answer) {
            ResponseType::Created => {}
            ResponseType::ServiceUnavailable => {
                let max_age = answer
                    .get_first_option(CoapOption::MaxAge)
                    .map(|v| v.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)));
                assert!(
                    matches!(max_age, Some(1..=4)),
                    "Max-Age {max_age:?} on {answer:?}"
                );
                let said = String::from_utf8_lossy(&answer.payload).into_owned();
                assert!(said.contains("in progress"), "{said:?}");
                refused.push(i);
            }
            other => panic!("client {i}: {other:?}"),
        }
    }
    assert!(
        !refused.is_empty(),
        "64 Registers sent at once with room for one in progress: none refused"
    );
    assert_eq!(lwm2m.stats.snapshot(0).limited, refused.len() as u64);

    // A retransmission (the same message id) is answered the same, from
    // the kept answer, and not counted again.
    let first = refused[0];
    let again = clients[first].exchange(registers[first].clone()).await;
    assert_eq!(code(&again), ResponseType::ServiceUnavailable);
    assert_eq!(lwm2m.stats.snapshot(0).limited, refused.len() as u64);

    // Each refused client tries again, one after the other: all served.
    for &i in &refused {
        let ep = format!("ep=busy-{i}");
        let answer = clients[i]
            .request(RequestType::Post, &["rd"], &[&ep], Some(40), b"</3303/0>")
            .await;
        assert_eq!(code(&answer), ResponseType::Created, "client {i}");
    }
    assert_eq!(lwm2m.registered(), 64);
}

/// Simulated devices (`flownexus simulate`) register, are read and
/// observed, and their notifications are stored; they De-register at the
/// end.
async fn simulated_devices_are_onboarded_and_their_notifications_stored(backend: Backend) {
    use flownexus::server::simulate::{run, SimOptions};
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    let options = SimOptions {
        devices: 3,
        server: lwm2m.local_addr,
        bind: Some("127.0.0.1".parse().unwrap()),
        notify_every: Duration::from_millis(200),
        duration: Some(Duration::from_secs(4)),
        ..SimOptions::default()
    };
    let report = run(options, std::future::pending::<()>()).await.unwrap();
    assert_eq!(report.registered, 3, "{report}");
    assert_eq!(report.deregistered, 3, "{report}");
    assert!(report.reads >= 3, "the Device object was read: {report}");
    assert!(
        report.observes >= 12,
        "four paths observed on each: {report}"
    );
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert_eq!(counters.registered, 0);
    assert!(counters.notifications >= 6, "{counters:?}");
    assert_eq!(
        report.notifications_acked, counters.notifications,
        "every acknowledged notification was stored ({report})"
    );
    // Each was timed from its arrival to its acknowledgement.
    let mut histogram = String::new();
    lwm2m
        .stats
        .commit_latency
        .write_prometheus(&mut histogram, "t", "");
    assert!(
        histogram.contains(&format!("\nt_count {}\n", counters.notifications)),
        "{histogram}"
    );
    for device in ["sim-0", "sim-1", "sim-2"] {
        let temperatures: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM resource r JOIN endpoint e ON e.id = r.endpoint_id \
             JOIN resource_type t ON t.id = r.resource_type_id \
             WHERE e.name = $1 AND t.object_id = 3303 AND t.resource_id = 5700",
        )
        .bind(device)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert!(temperatures >= 3, "{device}: {temperatures} temperatures");
        let manufacturer = text_value(&app, device, 3, 0).await;
        assert!(
            manufacturer.is_some(),
            "{device}: /3/0/0 was read and stored"
        );
        // The Device object says the client supports queue mode (3/0/16
        // "UQ"); it registered with b=U and no Q, so it is not in it.
        let supported = text_value(&app, device, 3, 16).await;
        assert_eq!(supported.as_deref(), Some("UQ"), "{device}: 3/0/16");
        let (binding, queue_mode): (Option<String>, i64) = sqlx::query_as(
            "SELECT binding, CASE WHEN queue_mode THEN 1 ELSE 0 END FROM endpoint WHERE name = $1",
        )
        .bind(device)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(
            (binding.as_deref(), queue_mode),
            (Some("U"), 0),
            "{device}: the binding it registered with"
        );
        let events = events_of(&app, device).await;
        assert_eq!(events.first().map(String::as_str), Some("registered"));
        assert!(events.contains(&"device".to_string()), "{events:?}");
        assert_eq!(events.last().map(String::as_str), Some("deregistered"));
    }
}

/// A text value of `device` at `/object/x/resource`, if one was stored.
async fn text_value(app: &TestApp, device: &str, object: i64, resource: i64) -> Option<String> {
    sqlx::query_scalar(
        "SELECT r.text_value FROM resource r JOIN endpoint e ON e.id = r.endpoint_id \
         JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE e.name = $1 AND t.object_id = $2 AND t.resource_id = $3 LIMIT 1",
    )
    .bind(device)
    .bind(object)
    .bind(resource)
    .fetch_optional(&app.state.db.pool)
    .await
    .unwrap()
}

/// Commands for a natively registered device go out over CoAP: a write,
/// a read whose answer is stored, an execute (Reboot: the device registers
/// again), and a write to a resource the device does not have.
async fn commands_go_to_a_native_device_over_coap(backend: Backend) {
    use flownexus::server::db::api_token::Scope;
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    flownexus::server::dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    let simulator = one_simulated_device(
        &lwm2m,
        Duration::from_secs(8),
        |_| {},
        |l| l.registration("sim-0").is_some(),
    )
    .await;
    let write = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "sim-0", "kind": "write", "path": "/3/0/13", "value": "2024-05-31T16:08"}),
    )
    .await;
    assert_eq!(
        settled(&app, write).await,
        ("confirmed".into(), Some("CHANGED".into()))
    );
    let before = app.count("resource").await;
    let read = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "sim-0", "kind": "read", "path": "/3/0/13"}),
    )
    .await;
    assert_eq!(
        settled(&app, read).await,
        ("confirmed".into(), Some("CONTENT".into()))
    );
    let stored: i64 = sqlx::query_scalar(
        "SELECT r.int_value FROM resource r JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE t.object_id = 3 AND t.resource_id = 13 ORDER BY r.id DESC LIMIT 1",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert!(app.count("resource").await > before);
    assert_eq!(stored / 1000, 1_717_171_680, "the written time, read back");
    let refused = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "sim-0", "kind": "write", "path": "/3/0/15", "value": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(
        settled(&app, refused).await,
        ("failed".into(), Some("NOT_FOUND".into())),
        "the simulated device has no timezone resource"
    );
    let reboot = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "sim-0", "kind": "execute", "path": "/3/0/4"}),
    )
    .await;
    assert_eq!(
        settled(&app, reboot).await,
        ("confirmed".into(), Some("CHANGED".into()))
    );
    let report = simulator.await.unwrap().unwrap();
    assert_eq!(
        (report.writes, report.executes),
        (2, 1),
        "both writes and the execute reached the device: {report}"
    );
    assert!(
        report.registered >= 2,
        "registered again after the reboot: {report}"
    );
}

/// The newest text value stored for `/object/*/resource` of `endpoint`.
async fn newest_text(app: &TestApp, endpoint: &str, object: i64, resource: i64) -> Option<String> {
    sqlx::query_scalar(
        "SELECT r.text_value FROM resource r JOIN endpoint e ON e.id = r.endpoint_id \
         JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE e.name = $1 AND t.object_id = $2 AND t.resource_id = $3 ORDER BY r.id DESC LIMIT 1",
    )
    .bind(endpoint)
    .bind(object)
    .bind(resource)
    .fetch_optional(&app.state.db.pool)
    .await
    .unwrap()
    .flatten()
}

/// A Register whose object list takes many blocks and a Send in blocks
/// (coap-client `-b 64`: RFC 7959 Block1, 2.31 Continue per block) are each
/// handled once, as one request with the whole body.
async fn block_wise_register_and_send_from_coap_client(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    let server = format!("coap://{}", lwm2m.local_addr);
    let port = free_udp_port().to_string();
    let objects: Vec<String> = (0..60).map(|i| format!("</{}/0>", 10_240 + i)).collect();
    let links = format!("</>;ct=110,</3/0>,</3303/0>,{}", objects.join(","));
    assert!(links.len() > 10 * 64);
    let (out, err) = coap_client(&[
        "-p",
        &port,
        "-b",
        "64",
        "-m",
        "post",
        "-t",
        "40",
        "-e",
        &links,
        &format!("{server}/rd?ep=blk-1&lt=60&lwm2m=1.1&b=U"),
    ])
    .await;
    let registration = lwm2m
        .registration("blk-1")
        .unwrap_or_else(|| panic!("blk-1 registered; coap-client said {out:?} {err:?}"));
    assert!(
        registration.object_links.contains("</10299/0>"),
        "the last block's objects too: {}",
        registration.object_links
    );
    assert_eq!(events_of(&app, "blk-1").await, vec!["registered"]);

    let manufacturer = "M".repeat(300);
    let senml = format!(
        "[{{\"bn\":\"/3/0/\",\"n\":\"0\",\"vs\":\"{manufacturer}\"}},\
         {{\"bn\":\"/3303/0/\",\"n\":\"5700\",\"v\":22.25}}]"
    );
    let (out, err) = coap_client(&[
        "-p",
        &port,
        "-b",
        "64",
        "-m",
        "post",
        "-t",
        "110",
        "-e",
        &senml,
        &format!("{server}/dp"),
    ])
    .await;
    assert_eq!(
        newest_text(&app, "blk-1", 3, 0).await.as_deref(),
        Some(manufacturer.as_str()),
        "the Send's whole body was stored; coap-client said {out:?} {err:?}"
    );
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert_eq!(counters.sends, 1, "{counters:?}");
    assert_eq!(counters.registrations, 1, "{counters:?}");
    assert!(counters.block_transfers >= 2, "{counters:?}");
    assert_eq!(counters.block_errors, 0, "{counters:?}");
}

/// Block1 requests that cannot be reassembled get RFC 7959's codes: a
/// block of no transfer 4.08, a body announced too large 4.13 with the
/// largest taken in Size1, a malformed option 4.02; a retransmitted block
/// is answered again, not counted twice.
async fn bad_block1_requests_get_rfc7959_codes(backend: Backend) {
    let (_app, lwm2m) = app(backend, NosecPolicy::Open).await;
    let client = Client::new(lwm2m.local_addr).await;
    let block1 = |num: u32, more: bool, szx: u32| {
        let v = (num << 4) | (u32::from(more) << 3) | szx;
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        bytes[skip..].to_vec()
    };
    let mut p = client.packet(RequestType::Post, &["dp"], &[], Some(110), &[b'x'; 10]);
    p.add_option(CoapOption::Block1, block1(1, false, 2));
    let answer = client.exchange(p).await;
    assert_eq!(code(&answer), ResponseType::RequestEntityIncomplete);

    let mut p = client.packet(RequestType::Post, &["dp"], &[], Some(110), &[b'x'; 64]);
    p.add_option(CoapOption::Block1, block1(0, true, 2));
    p.add_option(CoapOption::Size1, vec![0x40, 0x00, 0x00]);
    let answer = client.exchange(p).await;
    assert_eq!(code(&answer), ResponseType::RequestEntityTooLarge);
    assert_eq!(
        answer.get_first_option(CoapOption::Size1),
        Some(&vec![0x10, 0x00, 0x00]),
        "1 MiB, the largest body taken"
    );

    let mut p = client.packet(RequestType::Post, &["dp"], &[], Some(110), &[b'x'; 64]);
    p.add_option(CoapOption::Block1, block1(0, true, 7));
    let answer = client.exchange(p).await;
    assert_eq!(code(&answer), ResponseType::BadOption);

    // Block 0 of a transfer, sent twice: both answered 2.31 Continue.
    let mut p = client.packet(RequestType::Post, &["dp"], &[], Some(110), &[b'['; 64]);
    p.add_option(CoapOption::Block1, block1(0, true, 2));
    let first = client.exchange(p.clone()).await;
    let again = client.exchange(p).await;
    assert_eq!(code(&first), ResponseType::Continue);
    assert_eq!(first.to_bytes().unwrap(), again.to_bytes().unwrap());
    let counters = lwm2m.stats.snapshot(0);
    assert_eq!(counters.block_errors, 3, "{counters:?}");
    assert_eq!(counters.duplicates, 1, "{counters:?}");
}

/// Stores `image` as uploaded firmware `version`; returns (id, stored file).
async fn stored_firmware(app: &TestApp, version: &str, image: &[u8]) -> (i64, String) {
    use flownexus::server::firmware_store;
    use sha2::{Digest, Sha256};
    let sha = hex::encode(Sha256::digest(image));
    let stored = firmware_store::stored_file_name(version, &sha);
    let dir = &app.state.settings.firmware_dir;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(&stored), image).unwrap();
    let id = db::firmware::insert(
        &app.state.db.pool,
        version,
        "app.bin",
        image.len() as i64,
        &sha,
        &stored,
        0,
    )
    .await
    .unwrap();
    (id, stored)
}

/// `GET /fw/<file>` serves a stored image block-wise (RFC 7959 Block2):
/// libcoap's client downloads it whole in 64-byte blocks; unknown files
/// are 4.04, bad block options 4.02; with `lwm2m_nosec = "provisioned"`
/// only a registered device's address may download.
async fn firmware_is_served_over_coap_with_block2(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Provisioned).await;
    let image: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    let (_, stored) = stored_firmware(&app, "3.1.0", &image).await;
    let url = format!("coap://{}/fw/{stored}", lwm2m.local_addr);

    // Not registered: refused.
    let client = Client::new(lwm2m.local_addr).await;
    let get = |path: &[&str]| client.packet(RequestType::Get, path, &[], None, b"");
    let answer = client.exchange(get(&["fw", &stored])).await;
    assert_eq!(code(&answer), ResponseType::Forbidden);

    provision(&app, "fw-dev").await;
    let answer = client
        .request(
            RequestType::Post,
            &["rd"],
            &["ep=fw-dev", "lt=60", "lwm2m=1.1", "b=U"],
            Some(40),
            b"</5/0>",
        )
        .await;
    assert_eq!(code(&answer), ResponseType::Created);
    // From the registered address: block 0 in the size asked for, with
    // the ETag and the image's size (Size2).
    let mut p = get(&["fw", &stored]);
    p.add_option(CoapOption::Block2, vec![0x02]);
    let answer = client.exchange(p).await;
    assert_eq!(code(&answer), ResponseType::Content);
    assert_eq!(answer.payload, image[..64]);
    assert_eq!(
        answer.get_first_option(CoapOption::Block2),
        Some(&vec![0x0a])
    );
    assert_eq!(
        answer.get_first_option(CoapOption::Size2),
        Some(&5000u16.to_be_bytes().to_vec())
    );
    assert_eq!(
        answer.get_first_option(CoapOption::ETag).map(Vec::len),
        Some(8)
    );
    let answer = client
        .exchange(get(&["fw", "nope-0123456789abcdef.bin"]))
        .await;
    assert_eq!(code(&answer), ResponseType::NotFound);
    let mut p = get(&["fw", &stored]);
    p.add_option(CoapOption::Block2, vec![0x07]);
    assert_eq!(code(&client.exchange(p).await), ResponseType::BadOption);
    let mut p = get(&["fw", &stored]);
    // Block 100 of 64 bytes: beyond the end.
    p.add_option(CoapOption::Block2, vec![0x06, 0x42]);
    assert_eq!(code(&client.exchange(p).await), ResponseType::BadOption);

    // libcoap's client, from another port of the registered address.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("image.bin");
    let (stdout, stderr) =
        coap_client(&["-m", "get", "-b", "64", "-o", out.to_str().unwrap(), &url]).await;
    let downloaded = std::fs::read(&out)
        .unwrap_or_else(|e| panic!("no download ({e}); coap-client said {stdout:?} {stderr:?}"));
    assert_eq!(downloaded.len(), image.len());
    assert!(downloaded == image, "the downloaded bytes are the image");
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert!(counters.firmware_blocks > 79, "{counters:?}");
}

/// A simulated device is updated with its package URI over CoAP: it
/// pulls the image block-wise from `/fw/<file>`, installs it, and the
/// update (driven by 5/0/3 and 5/0/5 as over HTTP) succeeds, with the new
/// version in 3/0/3.
async fn a_simulated_device_is_updated_over_coap(backend: Backend) {
    use flownexus::server::db::api_token::Scope;
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    flownexus::server::dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    let image: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let (firmware_id, stored) = stored_firmware(&app, "4.2.0", &image).await;
    let simulator = one_simulated_device(
        &lwm2m,
        Duration::from_secs(60),
        |_| {},
        |l| l.observations("sim-0").contains(&"/5/0/5".to_string()),
    )
    .await;

    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    let start = Request::post("/api/v1/updates")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::json!({"endpoints": ["sim-0"], "firmware_id": firmware_id, "transport": "coap"})
                .to_string(),
        ))
        .unwrap();
    let (status, _, body) = app.request(start).await;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let update_id = body[0]["update_id"].as_i64().unwrap();
    let uri: String = sqlx::query_scalar(
        "SELECT o.text_value FROM firmware_update u \
         JOIN endpoint_operation o ON o.id = u.send_uri_operation_id WHERE u.id = $1",
    )
    .bind(update_id)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(uri, format!("coap://{}/fw/{stored}", lwm2m.local_addr));

    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    let new_version = stored.trim_end_matches(".bin").to_string();
    loop {
        let (state, result): (String, Option<i64>) =
            sqlx::query_as("SELECT state, result FROM firmware_update WHERE id = $1")
                .bind(update_id)
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        let version = newest_text(&app, "sim-0", 3, 3).await;
        if state == "succeeded" && version.as_deref() == Some(new_version.as_str()) {
            assert_eq!(result, Some(1));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "update {update_id} is {state} (result {result:?}), 3/0/3 {version:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert!(
        counters.firmware_blocks as usize >= image.len() / 1024,
        "{counters:?}"
    );
    simulator.abort();
}

/// FNV-1a (32 bits): the simulator names a pushed package after it
/// (`fw-<hash>` in 5/0/7), so the name says whether all of it arrived.
fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A write too large for one datagram goes block-wise (RFC 7959 Block1):
/// a 5000-byte package written to 5/0/0 of a simulated device goes in
/// 1024-byte blocks until the device's first 2.31 Continue asks for 512,
/// and on in 512; the device acts on the whole body once, and the command
/// is confirmed with the answer to the last block.
async fn a_large_write_goes_block_wise_to_a_simulated_device(backend: Backend) {
    use flownexus::server::db::api_token::Scope;
    use flownexus::server::simulate::{run, SimOptions};
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    flownexus::server::dispatch::spawn(&app.state);
    let token = app.token("ops", Scope::Api).await;
    let options = SimOptions {
        devices: 1,
        server: lwm2m.local_addr,
        bind: Some("127.0.0.1".parse().unwrap()),
        ..SimOptions::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let simulator = tokio::spawn(run(options, async {
        let _ = stopped.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lwm2m.registration("sim-0").is_none() {
        assert!(std::time::Instant::now() < deadline, "sim-0 registers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let image: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    let write = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "sim-0", "kind": "write", "path": "/5/0/0", "value": hex::encode(&image)}),
    )
    .await;
    assert_eq!(
        settled(&app, write).await,
        ("confirmed".into(), Some("CHANGED".into()))
    );
    let read = queue_command(
        &app,
        &token,
        serde_json::json!({"endpoint": "sim-0", "kind": "read", "path": "/5/0/7"}),
    )
    .await;
    assert_eq!(
        settled(&app, read).await,
        ("confirmed".into(), Some("CONTENT".into()))
    );
    assert_eq!(
        newest_text(&app, "sim-0", 5, 7).await,
        Some(format!("fw-{:08x}", fnv32(&image))),
        "the package the device took is the whole image"
    );
    let counters = lwm2m.stats.snapshot(lwm2m.registered());
    assert!(counters.block_transfers >= 1, "{counters:?}");
    assert_eq!(counters.block_errors, 0, "{counters:?}");
    let _ = stop.send(());
    let report = simulator.await.unwrap().unwrap();
    assert_eq!(report.blockwise_requests, 1, "{report}");
    assert_eq!(report.writes, 1, "{report}");
    assert_eq!(report.request_errors, 0, "{report}");
}

/// RFC 7252 §5.10.6.2: a GET of a firmware image naming its current ETag
/// is answered 2.03 Valid with that ETag and no payload, also from
/// libcoap's client (`-O 4,0x…` adds the ETag option); so is one asking
/// for block 0; a block further on is served as usual (see
/// `firmware::valid_answer`), and so is the image for an old ETag.
async fn a_current_firmware_etag_is_answered_2_03_valid(backend: Backend) {
    let (app, lwm2m) = app(backend, NosecPolicy::Open).await;
    let image: Vec<u8> = (0..3000u32).map(|i| (i * 17 % 241) as u8).collect();
    let (_, stored) = stored_firmware(&app, "5.0.0", &image).await;
    let client = Client::new(lwm2m.local_addr).await;
    let get = |block2: Option<u8>, etag: Option<&[u8]>| {
        let mut p = client.packet(RequestType::Get, &["fw", &stored], &[], None, b"");
        if let Some(etag) = etag {
            p.add_option(CoapOption::ETag, etag.to_vec());
        }
        if let Some(b) = block2 {
            p.add_option(CoapOption::Block2, vec![b]);
        }
        p
    };
    // Block 0 of 1024 bytes (0x06) tells the ETag.
    let first = client.exchange(get(Some(0x06), None)).await;
    assert_eq!(code(&first), ResponseType::Content);
    let etag = first.get_first_option(CoapOption::ETag).unwrap().clone();

    let valid = client.exchange(get(None, Some(&etag))).await;
    assert_eq!(code(&valid), ResponseType::Valid);
    assert_eq!(valid.get_first_option(CoapOption::ETag), Some(&etag));
    assert!(valid.payload.is_empty());
    assert_eq!(valid.get_option(CoapOption::Block2), None);
    let valid = client.exchange(get(Some(0x06), Some(&etag))).await;
    assert_eq!(code(&valid), ResponseType::Valid);
    assert!(valid.payload.is_empty());
    // Block 1 (0x16) under way: served, with the ETag.
    let block = client.exchange(get(Some(0x16), Some(&etag))).await;
    assert_eq!(code(&block), ResponseType::Content);
    assert_eq!(block.payload, image[1024..2048]);
    assert_eq!(block.get_first_option(CoapOption::ETag), Some(&etag));
    // An old ETag: the image, with the current one.
    let whole = client.exchange(get(Some(0x06), Some(b"old"))).await;
    assert_eq!(code(&whole), ResponseType::Content);
    assert_eq!(whole.payload, image[..1024]);
    assert_eq!(whole.get_first_option(CoapOption::ETag), Some(&etag));

    let url = format!("coap://{}/fw/{stored}", lwm2m.local_addr);
    let option = format!("4,0x{}", hex::encode(&etag));
    let (stdout, stderr) = coap_client(&["-v", "6", "-m", "get", "-O", &option, &url]).await;
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("c:2.03") && said.contains(&format!("ETag:0x{}", hex::encode(&etag))),
        "coap-client said {said:?}"
    );
}

both_databases!(
    a_large_write_goes_block_wise_to_a_simulated_device,
    a_current_firmware_etag_is_answered_2_03_valid,
    block_wise_register_and_send_from_coap_client,
    bad_block1_requests_get_rfc7959_codes,
    firmware_is_served_over_coap_with_block2,
    a_simulated_device_is_updated_over_coap,
    commands_go_to_a_native_device_over_coap,
    simulated_devices_are_onboarded_and_their_notifications_stored,
    registration_and_update_and_deregistration_with_coap_client,
    send_in_senml_json_and_cbor_from_coap_client_is_stored,
    an_unprovisioned_endpoint_is_refused,
    bad_input_gets_the_right_code_and_stores_nothing,
    a_retransmitted_send_is_answered_again_and_stored_once,
    a_busy_server_answers_5_03_with_a_max_age,
    a_reused_message_id_with_a_new_token_is_a_new_request,
);

fn code(p: &Packet) -> ResponseType {
    match p.header.code {
        MessageClass::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

/// A raw CoAP client on a socket of its own, built with coap-lite (the
/// codec crate, not our server's code).
struct Client {
    socket: UdpSocket,
    next_mid: std::sync::atomic::AtomicU16,
}

impl Client {
    async fn new(server: SocketAddr) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(server).await.unwrap();
        Client {
            socket,
            next_mid: std::sync::atomic::AtomicU16::new(1),
        }
    }

    fn packet(
        &self,
        method: RequestType,
        path: &[&str],
        query: &[&str],
        content_format: Option<u16>,
        payload: &[u8],
    ) -> Packet {
        let mut p = Packet::new();
        p.header.set_version(1);
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(method);
        p.header.message_id = self
            .next_mid
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        p.set_token(vec![0xab, p.header.message_id as u8]);
        for s in path {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        if let Some(cf) = content_format {
            let bytes = cf.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            p.add_option(CoapOption::ContentFormat, bytes[skip..].to_vec());
        }
        for q in query {
            p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
        }
        p.payload = payload.to_vec();
        p
    }

    async fn request(
        &self,
        method: RequestType,
        path: &[&str],
        query: &[&str],
        content_format: Option<u16>,
        payload: &[u8],
    ) -> Packet {
        self.exchange(self.packet(method, path, query, content_format, payload))
            .await
    }

    /// Sends `request` and returns its piggybacked answer.
    async fn exchange(&self, request: Packet) -> Packet {
        self.socket
            .send(&request.to_bytes().unwrap())
            .await
            .unwrap();
        self.answer_to(&request).await
    }

    /// The piggybacked answer to `request`, sent already.
    async fn answer_to(&self, request: &Packet) -> Packet {
        // The server's own requests (it reads and observes a client after
        // it registers) are not answers: this client leaves them unanswered.
        let answer = loop {
            let message = self.receive().await.expect("an answer within 10 s");
            if message.header.get_type() == MessageType::Acknowledgement {
                break message;
            }
        };
        assert_eq!(answer.header.message_id, request.header.message_id);
        assert_eq!(answer.get_token(), request.get_token());
        answer
    }

    async fn receive(&self) -> Option<Packet> {
        let mut buf = vec![0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(10), self.socket.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(Packet::from_bytes(&buf[..n]).unwrap())
    }
}
