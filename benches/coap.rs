//! The native LwM2M server under load: the release server on a fresh
//! database, driven over UDP by the built-in simulator (`flownexus
//! simulate`, in this process) on the same machine. Prints the figures; it
//! asserts nothing about speed.
//!
//! `--kind` picks what the devices report:
//! - `single`: a confirmable notification of one temperature (the server
//!   observes /3303/0/5700);
//! - `composite`: a confirmable notification of the whole Device object,
//!   about 20 values (the server observes /3/0, whose clock moves);
//! - `send`: an LwM2M Send of temperature and humidity (POST /dp,
//!   acknowledged 2.04 after its commit).
//!
//! `--non` makes the notifications non-confirmable: nothing acknowledges
//! them, so the bench counts the ones stored against the ones sent instead
//! of timing them.
//!
//! Phases:
//! 1. registration: N devices register (at `--rate` per second) and are
//!    onboarded (a Read of /3 and an Observe each) while their sensors are
//!    quiet; prints the registration rate and the server's memory per
//!    device; then they de-register;
//! 2. full load: other devices report every `--notify-ms`, so they offer
//!    N / period reports per second; prints the stored reports and values
//!    per second over `--duration` seconds, the server's and the
//!    simulator's CPU, the server's RSS, and the p50/p99 from sending a
//!    confirmable report to its acknowledgement (sent after the commit
//!    that holds it) beside the simulator's own lag in handling its
//!    devices' ticks;
//! 3. half load: a third set of devices offers half the rate stored in
//!    phase 2; the same figures, which is the latency to read (at the
//!    maximum, every request waits in a queue), and the RSS over the phase
//!    (a long `--duration` shows whether it stays flat);
//! 4. the end: the devices de-register; every report the server
//!    acknowledged must be in the database (checked and printed).
//!
//! ```sh
//! cargo bench --features ssr --bench coap -- --devices 10000 --notify-ms 1000 --duration 10 [--kind composite]
//! ```
use flownexus::server::simulate::{run, run_counted, Counters, Histogram, SimOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Args {
    devices: usize,
    rate: u32,
    notify_ms: u64,
    duration: u64,
    /// The half-load phase's length (the memory-flatness run), seconds.
    half_duration: u64,
    server: PathBuf,
    backend: String,
    kind: Kind,
    /// Print each second of the load phases: where in a phase its tail is.
    timeline: bool,
    /// Non-confirmable notifications.
    non: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Single,
    Composite,
    Send,
}

impl Kind {
    /// What the server observes on every device.
    fn observe(self) -> &'static str {
        match self {
            Kind::Composite => "/3/0",
            Kind::Single | Kind::Send => "/3303/0/5700",
        }
    }

    /// The server's counter of stored reports.
    fn metric(self) -> &'static str {
        match self {
            Kind::Send => "flownexus_lwm2m_sends_total",
            Kind::Single | Kind::Composite => "flownexus_lwm2m_notifications_total",
        }
    }

    /// The resource each report carries one value of: (object, resource).
    fn marker(self) -> (i64, i64) {
        match self {
            Kind::Single => (3303, 5700),
            Kind::Composite => (3, 13),
            Kind::Send => (3304, 5700),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Single => "single-value notifications",
            Kind::Composite => "composite notifications (/3/0)",
            Kind::Send => "Sends (temperature and humidity)",
        }
    }
}

fn args() -> Res<Args> {
    let mut a = Args {
        devices: 10_000,
        rate: 2_000,
        notify_ms: 1_000,
        duration: 10,
        half_duration: 0,
        server: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/flownexus"),
        backend: "sqlite".into(),
        kind: Kind::Single,
        timeline: false,
        non: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--devices" => a.devices = value()?.parse()?,
            "--rate" => a.rate = value()?.parse()?,
            "--notify-ms" => a.notify_ms = value()?.parse()?,
            "--duration" => a.duration = value()?.parse()?,
            "--half-duration" => a.half_duration = value()?.parse()?,
            "--server" => a.server = value()?.into(),
            "--backend" => a.backend = value()?,
            "--kind" => {
                a.kind = match value()?.as_str() {
                    "single" => Kind::Single,
                    "composite" => Kind::Composite,
                    "send" => Kind::Send,
                    other => {
                        return Err(format!("--kind {other}: single, composite or send").into())
                    }
                }
            }
            "--timeline" => a.timeline = true,
            "--non" => a.non = true,
            "--bench" => {}
            "--help" | "-h" => {
                println!(
                    "coap bench: --devices N (10000) --rate R/s (2000) --notify-ms MS (1000) \
                     --duration S (10) --half-duration S (= --duration) --server PATH (target/release/flownexus) \
                     --backend sqlite|postgres (sqlite; postgres uses FLOWNEXUS_TEST_PG_URL) \
                     --kind single|composite|send (single) --timeline (each second's figures) \
                     --non (non-confirmable notifications: stored counted against sent)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.half_duration == 0 {
        a.half_duration = a.duration;
    }
    if a.non && a.kind == Kind::Send {
        return Err("--non is for notifications: --kind single or composite".into());
    }
    Ok(a)
}

fn free_port(udp: bool) -> Res<u16> {
    Ok(if udp {
        UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    })
}

struct Server {
    child: Child,
    db_url: String,
    http: SocketAddr,
    coap: SocketAddr,
    token: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(a: &Args) -> Res<Server> {
        let dir = tempfile::tempdir()?;
        let db_url = match a.backend.as_str() {
            "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
            "postgres" => {
                let schema = format!("coap_bench_{}", std::process::id());
                let base = std::env::var("FLOWNEXUS_TEST_PG_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                let psql = |sql: &str| {
                    Command::new("psql")
                        .args([base.as_str(), "-qc", sql])
                        .status()
                };
                psql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
                psql(&format!("CREATE SCHEMA {schema}"))?;
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}options[search_path]={schema}")
            }
            other => return Err(format!("--backend {other}: sqlite or postgres").into()),
        };
        let http: SocketAddr = format!("127.0.0.1:{}", free_port(false)?).parse()?;
        let coap: SocketAddr = format!("127.0.0.1:{}", free_port(true)?).parse()?;
        let env = |cmd: &mut Command| {
            for (k, _) in std::env::vars() {
                if k.starts_with("FLOWNEXUS_") {
                    cmd.env_remove(k);
                }
            }
            cmd.env("FLOWNEXUS_CONFIG", dir.path().join("none.toml"))
                .env("FLOWNEXUS_DATABASE_URL", &db_url)
                .env("FLOWNEXUS_DATA_DIR", dir.path().join("data"))
                .env("FLOWNEXUS_LISTEN_ADDR", http.to_string())
                .env("FLOWNEXUS_LWM2M_COAP_ADDR", coap.to_string())
                .env("FLOWNEXUS_LWM2M_NOSEC", "open")
                .env("FLOWNEXUS_LWM2M_OBSERVE", a.kind.observe())
                .env("FLOWNEXUS_LWM2M_MAX_REGISTRATIONS_PER_IP", "1000000")
                .env("FLOWNEXUS_LWM2M_MAX_REGISTRATIONS", "1000000")
                .env("FLOWNEXUS_ADMIN_PASSWORD", "bench-admin-password")
                // BENCH_SERVER_LOG, e.g. "flownexus::server::ingest::writer=debug",
                // logs each commit's steps to the bench's stderr.
                .env(
                    "FLOWNEXUS_LOG",
                    std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .env("NO_COLOR", "1");
        };
        let mut cli = Command::new(&a.server);
        env(&mut cli);
        let out = cli
            .args(["token", "create", "--name", "bench", "--scope", "api"])
            .output()?;
        if !out.status.success() {
            return Err(format!("token create: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let token = String::from_utf8(out.stdout)?.trim().to_string();
        let mut cmd = Command::new(&a.server);
        env(&mut cmd);
        let child = cmd
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let server = Server {
            child,
            db_url: db_url.clone(),
            http,
            coap,
            token,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.metrics().is_err() {
            if Instant::now() > deadline {
                return Err("the server did not answer within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// `/api/v1/metrics` as (name, value) pairs.
    fn metrics(&self) -> Res<Vec<(String, f64)>> {
        let mut s = TcpStream::connect(self.http)?;
        write!(
            s,
            "GET /api/v1/metrics HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.http, self.token
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        if !text.starts_with("HTTP/1.1 200") {
            return Err("metrics not ready".into());
        }
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect())
    }

    /// The server's histogram of notifications from arrival to
    /// acknowledgement: (upper bound in seconds, cumulative count).
    fn commit_latency(&self) -> Res<Vec<(f64, f64)>> {
        const BUCKET: &str = "flownexus_lwm2m_notification_commit_seconds_bucket{le=\"";
        Ok(self
            .metrics()?
            .into_iter()
            .filter_map(|(k, v)| {
                let le = k.strip_prefix(BUCKET)?.strip_suffix("\"}")?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, v))
            })
            .collect())
    }

    fn metric(&self, name: &str) -> Res<f64> {
        Ok(self
            .metrics()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or(0.0))
    }

    /// Resident memory of the server process, in bytes.
    fn rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024
    }
}

/// CPU time (user + system) of a process so far, from /proc.
fn cpu_time(pid: &str) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `devices` are registered and `devices` more observations
/// than `observed_before` were made; (time to registered, time to observed).
async fn onboard(
    server: &Server,
    devices: usize,
    observed_before: f64,
) -> Res<(Duration, Duration)> {
    let started = Instant::now();
    let mut registered_at = None;
    loop {
        let registered = server.metric("flownexus_lwm2m_registered")?;
        let observed = server.metric("flownexus_lwm2m_observations_total")? - observed_before;
        if registered_at.is_none() && registered as usize >= devices {
            registered_at = Some(started.elapsed());
        }
        if observed as usize >= devices {
            let onboarded = started.elapsed();
            return Ok((registered_at.unwrap_or(onboarded), onboarded));
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "after 600 s: {registered} registered, {observed} observed of {devices}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Values of one resource (every endpoint's) stored, read from the
/// database itself.
async fn rows_of(server: &Server, (object_id, resource_id): (i64, i64)) -> Res<i64> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&server.db_url)
        .await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM resource r JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE t.object_id = $1 AND t.resource_id = $2",
    )
    .bind(object_id)
    .bind(resource_id)
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok(n)
}

/// A quantile in milliseconds, as printed.
fn quantile_ms(q: Option<Duration>) -> String {
    match q {
        None => "-".to_string(),
        Some(Duration::MAX) => "> 250".to_string(),
        Some(d) => format!("{:.2}", d.as_secs_f64() * 1000.0),
    }
}

/// "p50 x ms, p99 y ms (n)" of the notifications a server histogram
/// counted between two readings of it: the bound of the bucket a quantile
/// falls in, interpolated within it as Prometheus's `histogram_quantile`
/// does.
fn bucket_quantiles(before: &[(f64, f64)], after: &[(f64, f64)]) -> String {
    let window: Vec<(f64, f64)> = after
        .iter()
        .map(|&(bound, n)| {
            let then = before
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |p| p.1);
            (bound, n - then)
        })
        .collect();
    let total = window.last().map_or(0.0, |p| p.1);
    let at = |q: f64| -> String {
        if total == 0.0 {
            return "-".into();
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(bound, n) in &window {
            if n >= rank {
                if bound.is_infinite() {
                    return format!("> {:.0}", lower * 1000.0);
                }
                let within = if n > below {
                    (rank - below) / (n - below)
                } else {
                    1.0
                };
                return format!("{:.2}", (lower + (bound - lower) * within) * 1000.0);
            }
            (lower, below) = (bound, n);
        }
        "-".into()
    };
    format!("p50 {} ms, p99 {} ms ({total:.0})", at(0.5), at(0.99))
}

/// "p50 x ms, p99 y ms, n samples" of a histogram.
fn quantiles(h: &Histogram) -> String {
    let ms = |q: f64| quantile_ms(h.quantile(q));
    format!(
        "p50 {} ms, p99 {} ms, max {} ms ({} samples)",
        ms(0.5),
        ms(0.99),
        ms(1.0),
        h.count()
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> Res<()> {
    let a = args()?;
    let server = Server::start(&a)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = server.rss();
    println!(
        "coap bench: {} devices, {} registrations/s offered, a notification every {} ms per device ({:.0}/s offered), {} backend",
        a.devices,
        a.rate,
        a.notify_ms,
        a.devices as f64 * 1000.0 / a.notify_ms as f64,
        a.backend
    );
    println!("  server idle RSS: {:.1} MiB", mib(idle));

    // 1. Registration and onboarding, with the sensors quiet.
    let quiet = SimOptions {
        devices: a.devices,
        server: server.coap,
        bind: Some("127.0.0.1".parse()?),
        rate: a.rate,
        notify_every: Duration::from_secs(3600),
        lifetime_s: 3600,
        deregister_timeout: Duration::from_secs(60),
        ..SimOptions::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let simulator = tokio::spawn(run(quiet.clone(), async {
        let _ = stop_rx.await;
    }));
    let (registered, onboarded) = onboard(&server, a.devices, 0.0).await?;
    let after = server.rss();
    println!(
        "  registration: {} devices in {:.2} s = {:.0} registrations/s; all read and observed after {:.2} s",
        a.devices,
        registered.as_secs_f64(),
        a.devices as f64 / registered.as_secs_f64(),
        onboarded.as_secs_f64()
    );
    println!(
        "  server RSS with {} registrations and observations: {:.1} MiB, {:.1} MiB above idle = {:.1} KiB per device",
        a.devices,
        mib(after),
        mib(after.saturating_sub(idle)),
        after.saturating_sub(idle) as f64 / 1024.0 / a.devices as f64
    );
    let _ = stop_tx.send(());
    simulator.await??;

    // 2. Full load, from other devices.
    let rows_before = rows_of(&server, a.kind.marker()).await?;
    let stored_before = server.metric(a.kind.metric())?;
    let period = Duration::from_millis(a.notify_ms);
    // Other names and seeds: a device on a port that one of the first ones
    // had must not send the same message ids within the server's exchange
    // lifetime (RFC 7252 §4.5), or its messages are taken for duplicates.
    let full = load(&a, &server, &quiet, 1, period, a.duration, "full load").await?;
    let mut report = full.report;

    // 3. Half of the measured maximum, from a third set of devices.
    let half_period =
        Duration::from_secs_f64((a.devices as f64 / (full.stored_per_s / 2.0).max(1.0)).max(0.001));
    let half = load(
        &a,
        &server,
        &quiet,
        2,
        half_period,
        a.half_duration,
        "half load",
    )
    .await?;
    report.registered += half.report.registered;
    report.notifications_sent += half.report.notifications_sent;
    report.notifications_acked += half.report.notifications_acked;
    report.notifications_timed_out += half.report.notifications_timed_out;
    report.sends += half.report.sends;
    report.sends_acked += half.report.sends_acked;
    report.deregistered += half.report.deregistered;

    // 4. Every acknowledged report must be stored; non-confirmable ones
    // are counted against those sent (the writer may still hold the last).
    if a.non {
        let stored = settled_metric(&server, a.kind.metric()).await? - stored_before;
        println!(
            "  non-confirmable notifications stored: {stored:.0} of {} sent ({:.3}%)",
            report.notifications_sent,
            stored * 100.0 / (report.notifications_sent as f64).max(1.0)
        );
    }
    let counter = |name: &str| server.metric(&format!("flownexus_lwm2m_{name}_total"));
    println!(
        "  server: {} notifications older than one received, {} client errors, {} server errors, {} dropped at a bound, {} duplicates, {} malformed",
        counter("stale_notifications")?,
        counter("client_errors")?,
        counter("server_errors")?,
        counter("limited")?,
        counter("duplicates")?,
        counter("malformed")?
    );
    println!(
        "  simulator: {} registered, {} notifications sent, {} acknowledged, {} timed out; {} Sends, {} acknowledged; {} de-registered",
        report.registered,
        report.notifications_sent,
        report.notifications_acked,
        report.notifications_timed_out,
        report.sends,
        report.sends_acked,
        report.deregistered
    );
    // Each acknowledged report holds one value of the marker resource; the
    // rows also hold the first answers to the observations and what the
    // server stored without the device learning of it.
    let acked = match a.kind {
        Kind::Send => report.sends_acked,
        Kind::Single | Kind::Composite => report.notifications_acked,
    };
    let (object_id, resource_id) = a.kind.marker();
    let rows = rows_of(&server, a.kind.marker()).await? - rows_before;
    let ok = acked as i64 <= rows;
    println!(
        "  every acknowledged report in the database: {} ({} acknowledged, {} rows of /{object_id}/0/{resource_id}, {} counted as stored by the server)",
        if ok { "yes" } else { "NO" },
        acked,
        rows,
        server.metric(a.kind.metric())?
    );
    if !ok {
        return Err("acknowledged reports are missing".into());
    }
    Ok(())
}

/// A counter of the server's once it has stopped moving.
async fn settled_metric(server: &Server, name: &str) -> Res<f64> {
    let mut last = server.metric(name)?;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = server.metric(name)?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

/// What one load phase measured.
struct Phase {
    stored_per_s: f64,
    report: flownexus::server::simulate::SimReport,
}

/// Runs `--devices` new devices (set `set`: names and seeds of their own)
/// that report every `period`, waits until they are onboarded, measures
/// for `--duration` seconds, prints the figures and stops them.
async fn load(
    a: &Args,
    server: &Server,
    quiet: &SimOptions,
    set: usize,
    period: Duration,
    duration: u64,
    label: &str,
) -> Res<Phase> {
    let observed = server.metric("flownexus_lwm2m_observations_total")?;
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = SimOptions {
        notify_every: match a.kind {
            Kind::Send => Duration::from_secs(3600),
            Kind::Single | Kind::Composite => period,
        },
        send_every: (a.kind == Kind::Send).then_some(period),
        first_index: set * a.devices,
        seed: 1 + (set * a.devices) as u64,
        non_notifications: a.non,
        ..quiet.clone()
    };
    let simulator = tokio::spawn(run_counted(opts, counters.clone(), async {
        let _ = stop_rx.await;
    }));
    let (registered, onboarded) = onboard(server, a.devices, observed).await?;
    let so_far = counters.snapshot();
    println!(
        "  {label}: {} devices registered after {:.2} s, all observed after {:.2} s \
         (simulator: {} Registers answered 2.01, {} failed, {} answered 5.03 busy; {} exchanges timed out)",
        a.devices,
        registered.as_secs_f64(),
        onboarded.as_secs_f64(),
        so_far.registered,
        so_far.register_failures,
        so_far.register_busy,
        so_far.timeouts
    );
    counters.ack_latency.reset();
    counters.send_latency.reset();
    counters.send_lag.reset();
    let n0 = server.metric(a.kind.metric())?;
    let v0 = server.metric("flownexus_lwm2m_values_total")?;
    let c0 = server.metric("flownexus_ingest_commits_total")?;
    let sent0 = counters.snapshot().notifications_sent;
    let (server_cpu0, own_cpu0) = (cpu_time(&server.child.id().to_string()), cpu_time("self"));
    let t0 = Instant::now();
    let mut rss = Vec::new();
    let latency = match a.kind {
        Kind::Send => &counters.send_latency,
        Kind::Single | Kind::Composite => &counters.ack_latency,
    };
    let mut timeline = Vec::new();
    let (mut counts, mut lags) = (latency.counts(), counters.send_lag.counts());
    let server_latency0 = server.commit_latency()?;
    let mut server_latency_then = server_latency0.clone();
    let (mut commits_then, mut cpu_then) = (c0, server_cpu0);
    for second in 1..=duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(server.rss());
        if a.timeline {
            let (now, lags_now) = (latency.counts(), counters.send_lag.counts());
            let window: Vec<u64> = now.iter().zip(&counts).map(|(n, t)| n - t).collect();
            let lag: Vec<u64> = lags_now.iter().zip(&lags).map(|(n, t)| n - t).collect();
            let commits = server.metric("flownexus_ingest_commits_total")?;
            let server_latency = server.commit_latency()?;
            let cpu = cpu_time(&server.child.id().to_string());
            let ms = |counts: &[u64], q: f64| quantile_ms(Histogram::quantile_of(counts, q));
            timeline.push(format!(
                "      second {second}: {} acknowledged, p50 {} ms, p99 {} ms, max {} ms; server {}; simulator lag p99 {} ms; {:.0} commits, server CPU {:.0}%",
                window.iter().sum::<u64>(),
                ms(&window, 0.5),
                ms(&window, 0.99),
                ms(&window, 1.0),
                bucket_quantiles(&server_latency_then, &server_latency),
                ms(&lag, 0.99),
                commits - commits_then,
                (cpu - cpu_then).as_secs_f64() * 100.0
            ));
            (counts, lags, commits_then, cpu_then) = (now, lags_now, commits, cpu);
            server_latency_then = server_latency;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let (server_cpu, own_cpu) = (
        cpu_time(&server.child.id().to_string()) - server_cpu0,
        cpu_time("self") - own_cpu0,
    );
    let stored = server.metric(a.kind.metric())? - n0;
    let values = server.metric("flownexus_lwm2m_values_total")? - v0;
    let commits = server.metric("flownexus_ingest_commits_total")? - c0;
    let server_latency = bucket_quantiles(&server_latency0, &server.commit_latency()?);
    let sent = counters.snapshot().notifications_sent - sent0;
    let stored_per_s = stored / secs;
    println!(
        "  {label}: {:.0} {} offered/s (every {:.0} ms per device): {stored_per_s:.0} stored/s, {:.0} values/s, over {secs:.1} s, {:.1} per commit",
        a.devices as f64 / period.as_secs_f64(),
        a.kind.name(),
        period.as_secs_f64() * 1000.0,
        values / secs,
        stored / commits.max(1.0)
    );
    println!(
        "    CPU: server {:.0}% of a core ({:.1} µs per stored report), simulator {:.0}%",
        server_cpu.as_secs_f64() / secs * 100.0,
        server_cpu.as_secs_f64() * 1e6 / stored.max(1.0),
        own_cpu.as_secs_f64() / secs * 100.0
    );
    if a.non {
        println!(
            "    non-confirmable: {:.0} sent/s, {:.0} stored/s ({:.2}% of those sent in the window)",
            sent as f64 / secs,
            stored_per_s,
            stored * 100.0 / (sent as f64).max(1.0)
        );
    } else {
        println!(
            "    report to acknowledgement, at the simulator: {}",
            quantiles(latency)
        );
    }
    println!(
        "    arrival to acknowledgement, at the server (kernel receive time to ACK sent; non-confirmable: to commit): {server_latency}"
    );
    println!("    simulator lag: {}", quantiles(&counters.send_lag));
    for line in timeline {
        println!("{line}");
    }
    // Flat memory: the first and last second's RSS, and the range between.
    println!(
        "    server RSS: first second {:.1} MiB, last second {:.1} MiB, min {:.1} MiB, max {:.1} MiB",
        mib(rss.first().copied().unwrap_or(0)),
        mib(rss.last().copied().unwrap_or(0)),
        mib(rss.iter().copied().min().unwrap_or(0)),
        mib(rss.iter().copied().max().unwrap_or(0))
    );
    let _ = stop_tx.send(());
    let report = simulator.await??;
    Ok(Phase {
        stored_per_s,
        report,
    })
}
