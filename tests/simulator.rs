//! The simulator against a tiny LwM2M server written here with coap-lite
//! and a tokio UdpSocket: registration, reads, observe, write, execute,
//! queue mode, firmware over CoAP Block2, and many devices at once.

use std::net::SocketAddr;
use std::time::Duration;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use flownexus::model::lwm2m::Value;
use flownexus::server::lwm2m::coap::block::{block2_response, etag_for, BlockOpt};
use flownexus::server::lwm2m::coap::message::{
    empty_ack, encode_uint, response_for, uint_option, uri_path,
};
use flownexus::server::lwm2m::format::{decode, ContentFormat, DecodeContext, LwPath};
use flownexus::server::simulate::objects::declared_type;
use flownexus::server::simulate::transport::Timing;
use flownexus::server::simulate::{run, SimOptions, SimReport};

const WAIT: Duration = Duration::from_secs(5);

struct Server {
    sock: UdpSocket,
    mid: u16,
    /// Notifications seen while waiting for something else.
    notes: Vec<Packet>,
}

fn query(p: &Packet) -> Vec<String> {
    p.get_option(CoapOption::UriQuery)
        .map(|l| {
            l.iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn code(p: &Packet) -> MessageClass {
    p.header.code
}

fn values(p: &Packet, path: &str) -> Vec<(String, Value)> {
    let cf = uint_option(p, CoapOption::ContentFormat).unwrap() as u16;
    let ctx = DecodeContext {
        request_path: LwPath::parse(path).unwrap(),
        now_ms: 1_700_000_000_000,
        resolve: &declared_type,
    };
    decode(ContentFormat::from_u16(cf).unwrap(), &p.payload, &ctx)
        .unwrap()
        .into_iter()
        .map(|r| (r.path.to_string(), r.value))
        .collect()
}

impl Server {
    async fn new() -> Server {
        Server {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            mid: 100,
            notes: Vec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    async fn recv(&self) -> (Packet, SocketAddr) {
        let mut buf = vec![0u8; 2048];
        let (n, from) = tokio::time::timeout(WAIT, self.sock.recv_from(&mut buf))
            .await
            .expect("nothing from the device")
            .unwrap();
        (Packet::from_bytes(&buf[..n]).unwrap(), from)
    }

    async fn try_recv(&self, within: Duration) -> Option<(Packet, SocketAddr)> {
        let mut buf = vec![0u8; 2048];
        let (n, from) = tokio::time::timeout(within, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some((Packet::from_bytes(&buf[..n]).unwrap(), from))
    }

    async fn send(&self, p: &Packet, to: SocketAddr) {
        self.sock.send_to(&p.to_bytes().unwrap(), to).await.unwrap();
    }

    /// Acknowledges a CON notification and keeps it.
    async fn keep_note(&mut self, p: Packet, from: SocketAddr) {
        if p.header.get_type() == MessageType::Confirmable {
            self.send(&empty_ack(p.header.message_id), from).await;
        }
        self.notes.push(p);
    }

    /// Waits for a request from the device (notifications are kept).
    async fn next_request(&mut self) -> (Packet, SocketAddr) {
        loop {
            let (p, from) = self.recv().await;
            match p.header.code {
                MessageClass::Request(_) => return (p, from),
                MessageClass::Response(_) if p.get_option(CoapOption::Observe).is_some() => {
                    self.keep_note(p, from).await
                }
                _ => {}
            }
        }
    }

    async fn answer(&self, req: &Packet, code: ResponseType, from: SocketAddr) {
        self.send(&response_for(req, code), from).await;
    }

    /// Register: checks it and answers 2.01 with Location rd/<id>.
    async fn accept_register(&mut self, id: &str) -> (Packet, SocketAddr) {
        let (p, from) = self.next_request().await;
        assert_eq!(code(&p), MessageClass::Request(RequestType::Post));
        assert_eq!(uri_path(&p), "rd");
        let mut r = response_for(&p, ResponseType::Created);
        r.add_option(CoapOption::LocationPath, b"rd".to_vec());
        r.add_option(CoapOption::LocationPath, id.as_bytes().to_vec());
        self.send(&r, from).await;
        (p, from)
    }

    fn request(&mut self, method: RequestType, path: &str) -> Packet {
        self.mid += 1;
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(method);
        p.header.message_id = self.mid;
        p.set_token(self.mid.to_be_bytes().to_vec());
        for s in path.split('/').filter(|s| !s.is_empty()) {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        p
    }

    /// Sends a CON request and returns the piggybacked answer; answers
    /// Updates and keeps notifications that come in between.
    async fn exchange(&mut self, p: &Packet, to: SocketAddr) -> Packet {
        self.send(p, to).await;
        loop {
            let (r, from) = self.recv().await;
            if r.header.get_type() == MessageType::Acknowledgement
                && r.header.message_id == p.header.message_id
            {
                return r;
            }
            match r.header.code {
                MessageClass::Response(_) => self.keep_note(r, from).await,
                MessageClass::Request(RequestType::Post) if uri_path(&r).starts_with("rd/") => {
                    self.answer(&r, ResponseType::Changed, from).await
                }
                _ => {}
            }
        }
    }

    async fn get(&mut self, path: &str, accept: Option<u16>, to: SocketAddr) -> Packet {
        let mut p = self.request(RequestType::Get, path);
        if let Some(a) = accept {
            p.add_option(CoapOption::Accept, encode_uint(u32::from(a)));
        }
        self.exchange(&p, to).await
    }

    async fn put_text(&mut self, path: &str, text: &str, to: SocketAddr) -> Packet {
        let mut p = self.request(RequestType::Put, path);
        p.add_option(CoapOption::ContentFormat, Vec::new());
        p.payload = text.as_bytes().to_vec();
        self.exchange(&p, to).await
    }

    async fn execute(&mut self, path: &str, to: SocketAddr) -> Packet {
        let p = self.request(RequestType::Post, path);
        self.exchange(&p, to).await
    }

    /// Waits until a notification with this token satisfies `f`.
    async fn note_until(&mut self, token: &[u8], f: impl Fn(&Packet) -> bool) -> Packet {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(i) = self
                .notes
                .iter()
                .position(|n| n.get_token() == token && f(n))
            {
                return self.notes.remove(i);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such notification"
            );
            let (p, from) = self.recv().await;
            match p.header.code {
                MessageClass::Response(_) => self.keep_note(p, from).await,
                MessageClass::Request(RequestType::Post) if uri_path(&p).starts_with("rd/") => {
                    self.answer(&p, ResponseType::Changed, from).await
                }
                MessageClass::Request(RequestType::Post) if uri_path(&p) == "rd" => {
                    panic!("unexpected Register while waiting for a notification")
                }
                _ => {}
            }
        }
    }
}

fn fast(server: SocketAddr) -> SimOptions {
    SimOptions {
        devices: 1,
        server,
        lifetime_s: 30,
        notify_every: Duration::from_millis(100),
        timing: Timing {
            ack_timeout: Duration::from_millis(200),
            ack_timeout_max: Duration::from_millis(300),
            max_retransmit: 4,
        },
        reboot_delay: Duration::from_millis(100),
        install_time: Duration::from_millis(100),
        register_retry: Duration::from_millis(200),
        deregister_timeout: Duration::from_secs(3),
        ..SimOptions::default()
    }
}

fn start(opts: SimOptions) -> (oneshot::Sender<()>, tokio::task::JoinHandle<SimReport>) {
    let (tx, rx) = oneshot::channel::<()>();
    let h = tokio::spawn(async move {
        run(opts, async {
            let _ = rx.await;
        })
        .await
        .unwrap()
    });
    (tx, h)
}

fn float(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

/// Serves `image` block-wise from its own socket; returns the Block2
/// numbers and sizes asked for.
async fn firmware_server(
    image: Vec<u8>,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<(u32, usize)>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let mut asked = Vec::new();
        let mut buf = vec![0u8; 2048];
        let etag = etag_for(&image);
        while let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await
        {
            let req = Packet::from_bytes(&buf[..n]).unwrap();
            assert_eq!(uri_path(&req), "fw/app-2.0.0.bin");
            let b = BlockOpt::from_packet(&req, CoapOption::Block2)
                .unwrap()
                .unwrap();
            asked.push((b.num, b.size()));
            let r = block2_response(
                &req,
                ResponseType::Content,
                Some(42),
                &image,
                Some(&etag),
                6,
            );
            sock.send_to(&r.to_bytes().unwrap(), from).await.unwrap();
            if !BlockOpt::from_packet(&r, CoapOption::Block2)
                .unwrap()
                .unwrap()
                .more
            {
                break;
            }
        }
        asked
    });
    (addr, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_registers_serves_notifies_writes_reboots_and_updates_firmware() {
    let mut s = Server::new().await;
    let (stop, done) = start(fast(s.addr()));

    // Register, retransmitted (same MID, same bytes) while unanswered.
    let (reg, dev) = s.next_request().await;
    assert_eq!(uri_path(&reg), "rd");
    assert_eq!(reg.header.get_type(), MessageType::Confirmable);
    assert_eq!(query(&reg), ["ep=sim-0", "lt=30", "lwm2m=1.1", "b=U"]);
    assert_eq!(uint_option(&reg, CoapOption::ContentFormat), Some(40));
    assert_eq!(
        String::from_utf8(reg.payload.clone()).unwrap(),
        "</>;ct=112,</1/0>,</3/0>,</5/0>,</3303/0>;ver=1.1,</3304/0>;ver=1.1"
    );
    let (again, _) = s.next_request().await;
    assert_eq!(again.header.message_id, reg.header.message_id);
    assert_eq!(again.to_bytes().unwrap(), reg.to_bytes().unwrap());
    let mut created = response_for(&again, ResponseType::Created);
    created.add_option(CoapOption::LocationPath, b"rd".to_vec());
    created.add_option(CoapOption::LocationPath, b"r1".to_vec());
    s.send(&created, dev).await;

    // Reads: TLV on request, SenML CBOR by default, text for one value.
    let r = s.get("/3/0", Some(11542), dev).await;
    assert_eq!(code(&r), MessageClass::Response(ResponseType::Content));
    let v = values(&r, "/3/0");
    assert!(
        v.contains(&("/3/0/0".into(), Value::String("flownexus".into()))),
        "{v:?}"
    );
    assert!(v.contains(&("/3/0/3".into(), Value::String("1.0.0".into()))));
    let r = s.get("/3303/0/5700", None, dev).await;
    assert_eq!(uint_option(&r, CoapOption::ContentFormat), Some(112));
    let t = float(&values(&r, "/3303/0/5700")[0].1);
    assert!((-40.0..85.0).contains(&t));
    let r = s.get("/3/0/9", Some(0), dev).await;
    assert!(matches!(
        values(&r, "/3/0/9")[0].1,
        Value::Integer(60..=100)
    ));
    let r = s.get("/3", Some(110), dev).await;
    assert_eq!(uint_option(&r, CoapOption::ContentFormat), Some(110));

    // Refusals: 4.06 for a format we cannot write, 4.05, 4.04.
    for (path, accept, want) in [
        ("/3/0", Some(11543), ResponseType::NotAcceptable),
        ("/3/0", Some(0), ResponseType::NotAcceptable),
        ("/3/0/4", None, ResponseType::MethodNotAllowed),
        ("/9", None, ResponseType::NotFound),
        ("/3/0/77", None, ResponseType::NotFound),
    ] {
        let r = s.get(path, accept, dev).await;
        assert_eq!(code(&r), MessageClass::Response(want), "{path}");
    }
    let r = s.put_text("/3/0/0", "x", dev).await;
    assert_eq!(
        code(&r),
        MessageClass::Response(ResponseType::MethodNotAllowed)
    );
    let r = s.execute("/3/0/9", dev).await;
    assert_eq!(
        code(&r),
        MessageClass::Response(ResponseType::MethodNotAllowed)
    );

    // Discover with attributes.
    let mut wa = s.request(RequestType::Put, "/3303/0/5700");
    wa.add_option(CoapOption::UriQuery, b"pmax=1".to_vec());
    let r = s.exchange(&wa, dev).await;
    assert_eq!(code(&r), MessageClass::Response(ResponseType::Changed));
    let r = s.get("/3303/0", Some(40), dev).await;
    let links = String::from_utf8(r.payload).unwrap();
    assert!(links.contains("</3303/0/5700>;pmax=1"), "{links}");

    // A retransmitted request is answered from the cache, byte for byte.
    let p = s.request(RequestType::Get, "/3/0/2");
    let first = s.exchange(&p, dev).await;
    let second = s.exchange(&p, dev).await;
    assert_eq!(first.to_bytes().unwrap(), second.to_bytes().unwrap());

    // Observe: 2.05 with Observe, then CON notifications in sequence.
    let mut obs = s.request(RequestType::Get, "/3303/0/5700");
    obs.add_option(CoapOption::Observe, Vec::new());
    let token = obs.get_token().to_vec();
    let r = s.exchange(&obs, dev).await;
    assert_eq!(code(&r), MessageClass::Response(ResponseType::Content));
    let mut last_seq = uint_option(&r, CoapOption::Observe).expect("Observe option");
    for _ in 0..3 {
        let n = s.note_until(&token, |_| true).await;
        assert_eq!(n.header.get_type(), MessageType::Confirmable);
        let seq = uint_option(&n, CoapOption::Observe).unwrap();
        assert!(seq > last_seq, "{seq} after {last_seq}");
        last_seq = seq;
        let v = values(&n, "/3303/0/5700");
        assert_eq!(v[0].0, "/3303/0/5700");
    }

    // Write the lifetime: the device tells the server in an Update.
    let r = s.put_text("/1/0/1", "60", dev).await;
    assert_eq!(code(&r), MessageClass::Response(ResponseType::Changed));
    let (upd, _) = s.next_request().await;
    assert_eq!(uri_path(&upd), "rd/r1");
    assert_eq!(query(&upd), ["lt=60"]);
    s.answer(&upd, ResponseType::Changed, dev).await;
    let r = s.get("/1/0/1", Some(0), dev).await;
    assert_eq!(r.payload, b"60");

    // Execute Reboot: 2.04, then a fresh Register.
    let r = s.execute("/3/0/4", dev).await;
    assert_eq!(code(&r), MessageClass::Response(ResponseType::Changed));
    let (reg, dev) = s.accept_register("r2").await;
    assert_eq!(query(&reg)[1], "lt=60");
    s.notes.clear();

    // Firmware over CoAP Block2: observe state and result, pull, update.
    let image: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    let (fw_addr, fw_task) = firmware_server(image).await;
    let mut obs = s.request(RequestType::Get, "/5/0/3");
    obs.add_option(CoapOption::Observe, Vec::new());
    let state_token = obs.get_token().to_vec();
    let r = s.exchange(&obs, dev).await;
    assert_eq!(values(&r, "/5/0/3")[0].1, Value::Integer(0));
    let mut obs = s.request(RequestType::Get, "/5/0/5");
    obs.add_option(CoapOption::Observe, Vec::new());
    let result_token = obs.get_token().to_vec();
    s.exchange(&obs, dev).await;

    let uri = format!("coap://{fw_addr}/fw/app-2.0.0.bin");
    let r = s.put_text("/5/0/1", &uri, dev).await;
    assert_eq!(code(&r), MessageClass::Response(ResponseType::Changed));
    let state = |v: i64| move |n: &Packet| values(n, "/5/0/3")[0].1 == Value::Integer(v);
    s.note_until(&state_token, state(1)).await;
    s.note_until(&state_token, state(2)).await;
    let asked = fw_task.await.unwrap();
    assert_eq!(asked, [(0, 512), (1, 512), (2, 512)]);
    let r = s.get("/5/0/7", Some(0), dev).await;
    assert_eq!(r.payload, b"app-2.0.0");

    let r = s.execute("/5/0/2", dev).await;
    assert_eq!(code(&r), MessageClass::Response(ResponseType::Changed));
    s.note_until(&state_token, state(3)).await;
    s.note_until(&result_token, |n| {
        values(n, "/5/0/5")[0].1 == Value::Integer(1)
    })
    .await;
    // The new firmware boots and registers again.
    let (_, dev) = s.accept_register("r3").await;
    let r = s.get("/3/0/3", Some(0), dev).await;
    assert_eq!(r.payload, b"app-2.0.0");
    let r = s.get("/5/0/3", Some(0), dev).await;
    assert_eq!(r.payload, b"0");

    // Shutdown: De-register.
    stop.send(()).unwrap();
    let (dereg, _) = s.next_request().await;
    assert_eq!(code(&dereg), MessageClass::Request(RequestType::Delete));
    assert_eq!(uri_path(&dereg), "rd/r3");
    s.answer(&dereg, ResponseType::Deleted, dev).await;
    let report = tokio::time::timeout(WAIT, done).await.unwrap().unwrap();
    assert_eq!(report.registered, 3);
    assert_eq!(report.deregistered, 1);
    assert_eq!(report.reboots, 2);
    assert_eq!(report.firmware_downloads, 1);
    assert_eq!(report.firmware_updates, 1);
    assert!(report.notifications_acked >= 3);
    assert!(report.duplicates >= 1);
    assert!(report.reads >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_sleeps_drops_and_wakes_with_an_update() {
    let mut s = Server::new().await;
    let opts = SimOptions {
        queue_mode: true,
        awake: Duration::from_millis(400),
        sleep: Duration::from_millis(1200),
        ..fast(s.addr())
    };
    let (stop, done) = start(opts);
    let (reg, dev) = s.accept_register("q1").await;
    assert_eq!(query(&reg), ["ep=sim-0", "lt=30", "lwm2m=1.1", "b=U", "Q"]);

    // Observe while awake, so that notifications buffer during sleep.
    let mut obs = s.request(RequestType::Get, "/3303/0/5700");
    obs.add_option(CoapOption::Observe, Vec::new());
    let token = obs.get_token().to_vec();
    let r = s.exchange(&obs, dev).await;
    let first_seq = uint_option(&r, CoapOption::Observe).unwrap();
    // Let it go to sleep: notifications (acknowledged) stop coming.
    let quiet_by = tokio::time::Instant::now() + Duration::from_millis(700);
    while let Some((p, from)) = s
        .try_recv(quiet_by.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        s.keep_note(p, from).await;
    }
    s.notes.clear();

    // Asleep: a request goes unanswered.
    let p = s.request(RequestType::Get, "/3/0/0");
    s.send(&p, dev).await;
    let got = s.try_recv(Duration::from_millis(300)).await;
    assert!(got.is_none(), "asleep device answered: {got:?}");

    // The wake: an Update, then the buffered notifications.
    let (upd, _) = s.next_request().await;
    assert_eq!(uri_path(&upd), "rd/q1");
    assert_eq!(code(&upd), MessageClass::Request(RequestType::Post));
    s.answer(&upd, ResponseType::Changed, dev).await;
    let n = s.note_until(&token, |_| true).await;
    assert!(uint_option(&n, CoapOption::Observe).unwrap() > first_seq);
    // Awake again: requests are answered.
    let r = s.get("/3/0/0", Some(0), dev).await;
    assert_eq!(r.payload, b"flownexus");

    stop.send(()).unwrap();
    loop {
        let (p, from) = s.next_request().await;
        if code(&p) == MessageClass::Request(RequestType::Delete) {
            s.answer(&p, ResponseType::Deleted, from).await;
            break;
        }
        s.answer(&p, ResponseType::Changed, from).await;
    }
    let report = tokio::time::timeout(WAIT, done).await.unwrap().unwrap();
    assert!(report.sleeps >= 1);
    assert!(report.dropped_while_asleep >= 1, "{report}");
    assert!(report.updates >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_devices_register_and_deregister() {
    const N: usize = 300;
    let s = Server::new().await;
    let opts = SimOptions {
        devices: N,
        rate: 0,
        send_every: Some(Duration::from_millis(300)),
        ..fast(s.addr())
    };
    let (stop, done) = start(opts);
    let mut endpoints = std::collections::HashSet::new();
    let mut sends = 0;
    while endpoints.len() < N || sends < N {
        let (p, from) = s.recv().await;
        match (code(&p), uri_path(&p).as_str()) {
            (MessageClass::Request(RequestType::Post), "rd") => {
                let ep = query(&p)
                    .into_iter()
                    .find(|q| q.starts_with("ep="))
                    .unwrap();
                let mut r = response_for(&p, ResponseType::Created);
                r.add_option(CoapOption::LocationPath, b"rd".to_vec());
                r.add_option(CoapOption::LocationPath, ep.as_bytes()[3..].to_vec());
                s.send(&r, from).await;
                endpoints.insert(ep);
            }
            (MessageClass::Request(RequestType::Post), "dp") => {
                assert_eq!(uint_option(&p, CoapOption::ContentFormat), Some(112));
                let v = values(&p, "/");
                assert_eq!(v.len(), 2);
                sends += 1;
                s.answer(&p, ResponseType::Changed, from).await;
            }
            (MessageClass::Request(_), _) => s.answer(&p, ResponseType::Changed, from).await,
            _ => {}
        }
    }
    stop.send(()).unwrap();
    let mut gone = 0;
    while gone < N {
        let (p, from) = s.recv().await;
        if code(&p) == MessageClass::Request(RequestType::Delete) {
            gone += 1;
            s.answer(&p, ResponseType::Deleted, from).await;
        } else if matches!(code(&p), MessageClass::Request(_)) {
            s.answer(&p, ResponseType::Changed, from).await;
        }
    }
    let report = tokio::time::timeout(WAIT, done).await.unwrap().unwrap();
    assert_eq!(report.devices_started, N as u64);
    assert_eq!(report.registered, N as u64);
    assert_eq!(report.deregistered, N as u64);
    assert!(report.sends_acked >= N as u64 / 2);
}

/// 10,000 devices against a server that only registers them: memory per
/// device and the time to register all. Run with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load check, minutes of CPU on small machines"]
async fn ten_thousand_devices() {
    const N: usize = 10_000;
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS"))
                    .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
            })
            .unwrap_or(0)
    };
    let before = rss();
    let s = Server::new().await;
    let opts = SimOptions {
        devices: N,
        rate: 2000,
        ..fast(s.addr())
    };
    let t0 = std::time::Instant::now();
    let (stop, done) = start(opts);
    let mut registered = 0;
    while registered < N {
        let (p, from) = s.recv().await;
        if uri_path(&p) == "rd" {
            let mut r = response_for(&p, ResponseType::Created);
            r.add_option(CoapOption::LocationPath, b"rd".to_vec());
            r.add_option(CoapOption::LocationPath, b"x".to_vec());
            s.send(&r, from).await;
            registered += 1;
        }
    }
    let took = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_device = (rss() - before) * 1024 / N as u64;
    println!("{N} registered in {took:?}; ~{per_device} bytes RSS per device");
    stop.send(()).unwrap();
    let mut gone = 0;
    while gone < N {
        let (p, from) = s.recv().await;
        if code(&p) == MessageClass::Request(RequestType::Delete) {
            gone += 1;
            s.answer(&p, ResponseType::Deleted, from).await;
        }
    }
    let report = tokio::time::timeout(WAIT, done).await.unwrap().unwrap();
    println!("{report}");
    assert_eq!(report.registered, N as u64);
}
