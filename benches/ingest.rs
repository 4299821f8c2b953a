//! Ingest throughput benchmark.
//!
//! For each backend (SQLite file, PostgreSQL schema), each kind of post
//! (single resource, composite object 3) and each server binary given
//! (`--server`, the first is the build under test, any further one a
//! previous build to compare it with) it starts the release server
//! (`target/release/flownexus serve`) on a fresh database, creates tokens
//! through the CLI, and drives the server over loopback HTTP/1.1 keep-alive
//! connections with many simulated devices:
//!
//! 1. warm-up: one post per device (creates the endpoints), then a short
//!    closed loop;
//! 2. HTTP ceiling: closed loop of `GET /api/v1/health` over the same
//!    connections, the rate at which this server answers on this machine
//!    right now, which ingest is judged against;
//! 3. max throughput: closed loop for `--duration` seconds;
//! 4. half load: open loop at 50% of the measured maximum (or
//!    `--half-rate`), latency measured from each request's scheduled send
//!    time, so a stalled server is not hidden (no coordinated omission);
//! 5. verification: every value the server acknowledged with 201 is looked
//!    up in the database (each request carries a unique value);
//! 6. GET: posts `--get-values` humidity values and times
//!    `GET /leshan_api/data/humidity/`.
//!
//! Per phase it also prints what the server wrote to disk per stored value
//! (`write_bytes` of `/proc/<pid>/io`), the database's size per stored
//! value, and on SQLite the write-ahead log's peak size (sampled every
//! 100 ms).
//!
//! Relies only on the HTTP contract and the table layout (`resource`,
//! `endpoint`, `resource_type`), not on server internals.
//!
//! Run: `cargo bench --features ssr --bench ingest -- --help`
//! (or `scripts/bench.sh`, which builds the server first).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Error>;
type Sender = SendRequest<Full<Bytes>>;

/// Pass lines on SQLite, as shares of the HTTP ceiling measured in the
/// same run over the same connections (`GET /api/v1/health` answered in a
/// closed loop). Absolute rates moved by a factor of two between machines
/// of the same kind (38,000 single posts/s on one, 16,700 on the next, for
/// the same code), while the share of the ceiling moves much less, because
/// ingest and the ceiling pay the same HTTP, connection and scheduling
/// costs of that machine. The code these lines were set on reached 49-57%
/// (single) and 5.8-6.6% (composite, 22 values per post) at the default 64
/// connections on a 2-core machine that other builds kept busy, and about
/// 55% single on a quiet one; the lines sit a quarter below the lowest
/// share seen, so that the machine's noise alone does not cross them and a
/// real loss of a quarter does.
const PASS_SINGLE_SHARE: f64 = 0.40;
const PASS_COMPOSITE_SHARE: f64 = 0.045;
/// A build compared with a previous one (a second `--server`) is the same
/// when its share of its own ceiling is within this of the other's. The
/// tolerance widens to twice the two ceilings' own difference when that is
/// larger: the machine moved between the two runs, and the ingest phase,
/// seconds after the ceiling phase, may have moved as much again (one build
/// run twice on a busy machine differed by 12-14% in share, with ceilings
/// 10-15% apart).
const SAME_BUILD_TOLERANCE: f64 = 0.10;
/// The write-ahead log stays under this at any load.
const WAL_BOUND_BYTES: u64 = 64 << 20;
const TARGET_HALF_P99_MS: f64 = 10.0;
const TARGET_GET_MS: f64 = 25.0;
/// Issue 4: a value reaches a subscribed websocket within 100 ms (p99) of
/// its 201, with 100 subscribers and ingest at half the maximum.
const TARGET_LIVE_P99_MS: f64 = 100.0;

/// Composite posts carry their unique value in 3/0/13 (current time, epoch
/// ms): this base plus the request's sequence number.
const TIME_BASE_MS: i64 = 1_700_000_000_000;
/// The endpoint and resource type the GET test fills and reads.
const GET_ENDPOINT: &str = "bench-get";
const GET_TYPE_NAME: &str = "humidity";

const MIB: f64 = 1024.0 * 1024.0;

const COMPOSITE_TEMPLATE: &str =
    include_str!("../tests/payloads/composite__onboarding_read_object3.json");

// ---------------------------------------------------------------- options

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Single,
    Composite,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Single => "single",
            Kind::Composite => "composite",
        }
    }
    /// The share of the HTTP ceiling that the maximum must reach.
    fn pass_share(self) -> f64 {
        match self {
            Kind::Single => PASS_SINGLE_SHARE,
            Kind::Composite => PASS_COMPOSITE_SHARE,
        }
    }
}

#[derive(Debug, Clone)]
struct Opts {
    backends: Vec<Backend>,
    kinds: Vec<Kind>,
    duration: Duration,
    half_duration: Duration,
    ceiling_duration: Duration,
    warmup: Duration,
    connections: usize,
    devices: usize,
    threads: usize,
    skip_half: bool,
    skip_get: bool,
    get_values: usize,
    get_runs: usize,
    keep: bool,
    /// Server binaries; the first is judged, the others are compared with.
    servers: Vec<PathBuf>,
    /// SQL run on the fresh SQLite file before the server migrates it.
    sqlite_init: Vec<String>,
    /// Settings passed to the server as FLOWNEXUS_<KEY> variables (the
    /// bench's own FLOWNEXUS_* variables are not passed on).
    server_settings: Vec<(String, String)>,
    /// Websocket clients subscribed during the half-load phase (0: none).
    live_clients: usize,
    /// Offered rate of the half-load phase instead of 50% of target/max.
    half_rate: Option<f64>,
    /// Append every open-loop request's due time, send lag and latency here
    /// (CSV), to line the tail up with the server's log.
    latency_log: Option<PathBuf>,
}

const USAGE: &str = "\
ingest benchmark: cargo bench --features ssr --bench ingest -- [options]

  --backend sqlite|postgres|both   (default both)
  --kind single|composite|both     (default both)
  --duration SECS                  max-throughput phase (default 10)
  --half-duration SECS             half-load phase (default: --duration)
  --ceiling-duration SECS          HTTP ceiling phase, GET /api/v1/health in a closed loop over
                                   the same connections (default: --duration; 0: none)
  --warmup SECS                    closed-loop warm-up after one post per device (default 2)
  --connections N                  keep-alive HTTP/1.1 connections (default 64)
  --devices N                      simulated endpoints (default 500)
  --threads N                      load generator runtime threads (default 1)
  --skip-half                      no half-load phase
  --half-rate N                    offer N posts/s in the half-load phase (default: 50% of the
                                   measured maximum; give it to compare builds at one load)
  --skip-get                       no GET test
  --get-values N                   values posted for the GET test (default 10000)
  --get-runs N                     timed GETs (default 20)
  --keep                           keep each run's database and server log (prints where)
  --live-clients N                 websocket clients, each subscribed to one device, during the
                                   single-post half-load phase; prints the delay from a post's
                                   201 to its value on the socket (default 100, 0: none)
  --latency-log PATH               append each half-load request as phase,due_unix_us,
                                   send_lag_us,latency_us (to line up with the server log)
  --server PATH                    server binary (default $CARGO_TARGET_DIR/release/flownexus,
                                   then target/release/flownexus); repeatable: the first is the
                                   build under test, each further one a previous build run
                                   side by side with it (interleaved) and compared
  --sqlite-init SQL                run SQL on the fresh SQLite file before the server creates
                                   its tables, e.g. 'PRAGMA page_size = 1024' (repeatable)
  --server-setting KEY=VALUE       run the server with FLOWNEXUS_<KEY>=VALUE, e.g.
                                   http_thread_nice=0 (repeatable; the bench's own FLOWNEXUS_*
                                   variables are not passed on)

PostgreSQL: FLOWNEXUS_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test);
each run uses a fresh schema fxb_<pid>_<n>, dropped afterwards.

Disk columns: wr B/v = bytes the server process wrote to disk during the phase (write_bytes of
/proc/<pid>/io) per value stored in the phase (PostgreSQL's own processes are not counted);
db B/v = database size after the phase (SQLite: the file plus its -wal; PostgreSQL:
pg_total_relation_size of the schema's tables) per value stored so far; WAL MiB = the largest
-wal file seen during the phase, sampled every 100 ms.";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        backends: vec![Backend::Sqlite, Backend::Postgres],
        kinds: vec![Kind::Single, Kind::Composite],
        duration: Duration::from_secs(10),
        half_duration: Duration::ZERO,
        ceiling_duration: Duration::ZERO,
        warmup: Duration::from_secs(2),
        connections: 64,
        devices: 500,
        threads: 1,
        skip_half: false,
        skip_get: false,
        get_values: 10_000,
        get_runs: 20,
        keep: false,
        servers: Vec::new(),
        sqlite_init: Vec::new(),
        server_settings: Vec::new(),
        live_clients: 100,
        half_rate: None,
        latency_log: None,
    };
    let mut half_duration = None;
    let mut ceiling_duration = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        let secs = |v: String| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{v:?} is not a number of seconds"))
        };
        let count = |v: String| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{v:?} is not a positive integer"))
        };
        match key.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "-h" | "--help" => return Err(String::new()),
            "--backend" => {
                o.backends = match value()?.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    v => return Err(format!("unknown backend {v:?}")),
                }
            }
            "--kind" => {
                o.kinds = match value()?.as_str() {
                    "single" => vec![Kind::Single],
                    "composite" => vec![Kind::Composite],
                    "both" => vec![Kind::Single, Kind::Composite],
                    v => return Err(format!("unknown kind {v:?}")),
                }
            }
            "--duration" => o.duration = secs(value()?)?,
            "--half-duration" => half_duration = Some(secs(value()?)?),
            "--ceiling-duration" => ceiling_duration = Some(secs(value()?)?),
            "--warmup" => o.warmup = secs(value()?)?,
            "--connections" => o.connections = count(value()?)?,
            "--devices" => o.devices = count(value()?)?,
            "--threads" => o.threads = count(value()?)?,
            "--skip-half" => o.skip_half = true,
            "--skip-get" => o.skip_get = true,
            "--keep" => o.keep = true,
            "--live-clients" => {
                o.live_clients = value()?
                    .parse()
                    .map_err(|_| "--live-clients needs a number".to_string())?
            }
            "--half-rate" => o.half_rate = Some(count(value()?)? as f64),
            "--get-values" => o.get_values = count(value()?)?,
            "--get-runs" => o.get_runs = count(value()?)?,
            "--server" => o.servers.push(PathBuf::from(value()?)),
            "--sqlite-init" => o.sqlite_init.push(value()?),
            "--server-setting" => {
                let setting = value()?;
                let (key, val) = setting
                    .split_once('=')
                    .ok_or_else(|| format!("--server-setting needs KEY=VALUE, not {setting:?}"))?;
                o.server_settings
                    .push((format!("FLOWNEXUS_{}", key.to_uppercase()), val.to_string()));
            }
            "--latency-log" => o.latency_log = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    o.half_duration = half_duration.unwrap_or(o.duration);
    o.ceiling_duration = ceiling_duration.unwrap_or(o.duration);
    Ok(o)
}

/// Every `--server`, else `$CARGO_TARGET_DIR/release/flownexus`, else
/// `target/release/flownexus` in the package.
fn server_binaries(opts: &Opts) -> Res<Vec<PathBuf>> {
    if !opts.servers.is_empty() {
        return match opts.servers.iter().find(|p| !p.is_file()) {
            Some(missing) => Err(format!("server binary {} not found", missing.display()).into()),
            None => Ok(opts.servers.clone()),
        };
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates = Vec::new();
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        candidates.push(root.join(dir).join("release/flownexus"));
    }
    candidates.push(root.join("target/release/flownexus"));
    match candidates.iter().find(|p| p.is_file()) {
        Some(found) => Ok(vec![found.clone()]),
        None => Err(format!(
            "server binary not found (tried {}); build it with \
             `cargo build --release --features ssr --bin flownexus`",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into()),
    }
}

// ---------------------------------------------------------------- payloads

/// What the load generator posts. Every request gets a sequence number `u`
/// (unique within a run) from which its device and its value derive, so
/// that verification can map each stored row back to one acknowledged post.
enum Workload {
    /// `u % devices` is the device; `(u / devices) % 4` picks the resource:
    /// 0, 1: temperature 3303/0/5700 FLOAT as a string "10.000042";
    /// 2: battery level 3/0/9 INTEGER as a string; 3: memory free 3/0/10
    /// INTEGER as a JSON number. The value encodes `u`.
    Single,
    /// The whole object 3 (19 resources, 22 values with the multi-instance
    /// ones) as the LwM2M server forwards it after a registration; 3/0/13
    /// current time = TIME_BASE_MS + u, 3/0/2 serial number per device.
    Composite,
    /// Humidity 3304/0/5700 on endpoint GET_ENDPOINT, value "40.0000u".
    GetFill,
    /// `GET /api/v1/health`, no body and no token: the server's lightest
    /// route (HTTP, routing and one trivial query on the read pool), whose
    /// rate is the ceiling that ingest is judged against.
    Ceiling,
}

struct Gen {
    workload: Workload,
    endpoints: Vec<String>,
    /// Composite body: part[0] ep part[1] serial part[2] time part[3].
    composite_parts: [Vec<u8>; 4],
}

/// The single-post resource chosen for sequence number `u`: (object, resource).
fn single_resource(u: u64, devices: u64) -> (i64, i64) {
    match (u / devices) % 4 {
        0 | 1 => (3303, 5700),
        2 => (3, 9),
        _ => (3, 10),
    }
}

fn float_value(base: u64, u: u64) -> String {
    format!("{}.{:06}", base + u / 1_000_000, u % 1_000_000)
}

/// The inverse of `float_value`, exact or None.
fn decode_float(base: u64, f: f64) -> Option<u64> {
    let est = ((f - base as f64) * 1e6).round();
    if !(0.0..9e15).contains(&est) {
        return None;
    }
    let u = est as u64;
    (float_value(base, u).parse::<f64>().ok() == Some(f)).then_some(u)
}

impl Gen {
    fn new(workload: Workload, devices: usize) -> Gen {
        let endpoints = (0..devices).map(|d| format!("bench-dev-{d:05}")).collect();
        // The example payload from the contract, with markers where the
        // endpoint, the serial number and the time go.
        let mut doc: serde_json::Value =
            serde_json::from_str(COMPOSITE_TEMPLATE).expect("composite payload is JSON");
        doc["ep"] = "@@EP@@".into();
        let resources = doc["val"]["/3"]["instances"][0]["resources"]
            .as_array_mut()
            .expect("object 3 instance 0 resources");
        for r in resources.iter_mut() {
            match r["id"].as_i64() {
                Some(2) => r["value"] = "@@SERIAL@@".into(),
                Some(13) => r["value"] = "@@TIME@@".into(),
                _ => {}
            }
        }
        let text = serde_json::to_string(&doc).unwrap();
        let markers = ["\"@@EP@@\"", "\"@@SERIAL@@\"", "\"@@TIME@@\""];
        let mut positions: Vec<(usize, usize)> = markers
            .iter()
            .enumerate()
            .map(|(i, m)| (text.find(m).expect("marker in template"), i))
            .collect();
        positions.sort();
        assert_eq!(
            positions.iter().map(|p| p.1).collect::<Vec<_>>(),
            [0, 1, 2],
            "template keeps ep before the resources, 3/0/2 before 3/0/13"
        );
        let mut parts: [Vec<u8>; 4] = Default::default();
        let mut start = 0;
        for (k, (pos, i)) in positions.iter().enumerate() {
            parts[k] = text.as_bytes()[start..*pos].to_vec();
            start = pos + markers[*i].len();
        }
        parts[3] = text.as_bytes()[start..].to_vec();
        Gen {
            workload,
            endpoints,
            composite_parts: parts,
        }
    }

    fn devices(&self) -> u64 {
        self.endpoints.len() as u64
    }

    fn path(&self) -> &'static str {
        match self.workload {
            Workload::Composite => "/leshan_api/resource/composite",
            Workload::Single | Workload::GetFill => "/leshan_api/resource/single",
            Workload::Ceiling => "/api/v1/health",
        }
    }

    /// The request for sequence number `u`.
    fn request(&self, u: u64, host: &HeaderValue, auth: &HeaderValue) -> Request<Full<Bytes>> {
        if let Workload::Ceiling = self.workload {
            return get_request(host, self.path(), None);
        }
        Request::builder()
            .method(Method::POST)
            .uri(self.path())
            .header(HOST, host.clone())
            .header(AUTHORIZATION, auth.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(self.body(u)))
            .unwrap()
    }

    /// The answer that counts as done: 201 with the values stored, or 200.
    fn success(&self) -> StatusCode {
        match self.workload {
            Workload::Ceiling => StatusCode::OK,
            _ => StatusCode::CREATED,
        }
    }

    fn body(&self, u: u64) -> Bytes {
        let mut b = Vec::with_capacity(match self.workload {
            Workload::Composite => 1400,
            _ => 128,
        });
        let ep = &self.endpoints[(u % self.devices()) as usize];
        match self.workload {
            Workload::Single => {
                let (obj, res) = single_resource(u, self.devices());
                let _ = write!(
                    b,
                    r#"{{"ep":"{ep}","obj_id":{obj},"val":{{"kind":"singleResource","id":{res},"#
                );
                let _ = match res {
                    5700 => write!(b, r#""type":"FLOAT","value":"{}"}}}}"#, float_value(10, u)),
                    9 => write!(b, r#""type":"INTEGER","value":"{u}"}}}}"#),
                    _ => write!(b, r#""type":"INTEGER","value":{u}}}}}"#),
                };
            }
            Workload::GetFill => {
                let _ = write!(
                    b,
                    r#"{{"ep":"{GET_ENDPOINT}","obj_id":3304,"val":{{"kind":"singleResource","id":5700,"type":"FLOAT","value":"{}"}}}}"#,
                    float_value(40, u)
                );
            }
            Workload::Ceiling => {}
            Workload::Composite => {
                let p = &self.composite_parts;
                b.extend_from_slice(&p[0]);
                let _ = write!(b, "\"{ep}\"");
                b.extend_from_slice(&p[1]);
                let _ = write!(b, "\"SN{:08}\"", u % self.devices());
                b.extend_from_slice(&p[2]);
                let _ = write!(b, "{}", TIME_BASE_MS + u as i64);
                b.extend_from_slice(&p[3]);
            }
        }
        Bytes::from(b)
    }
}

// ---------------------------------------------------------------- /proc

fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (busy, total) clock ticks of the whole machine, all cores.
fn machine_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Voluntary + involuntary context switches of all threads of a process.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

struct CpuSample {
    at: Instant,
    server: u64,
    bench: u64,
    machine: (u64, u64),
    server_switches: u64,
}

impl CpuSample {
    fn take(server_pid: u32) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            server: cpu_ticks(&server_pid.to_string()).unwrap_or(0),
            bench: cpu_ticks("self").unwrap_or(0),
            machine: machine_ticks().unwrap_or((0, 1)),
            server_switches: context_switches(server_pid),
        }
    }
}

/// CPU use between two samples, in % of one core.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    server: f64,
    bench: f64,
    machine: f64,
    /// Server CPU time, seconds.
    server_s: f64,
    /// Server context switches (all threads; threads that ended during
    /// the phase are not counted).
    server_switches: u64,
}

fn cpu_between(a: &CpuSample, b: &CpuSample, hz: f64) -> CpuUse {
    let wall = (b.at - a.at).as_secs_f64().max(1e-9);
    let pct = |ticks: u64| ticks as f64 / hz / wall * 100.0;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let busy = b.machine.0.saturating_sub(a.machine.0) as f64;
    let total = b.machine.1.saturating_sub(a.machine.1).max(1) as f64;
    CpuUse {
        server: pct(b.server.saturating_sub(a.server)),
        bench: pct(b.bench.saturating_sub(a.bench)),
        machine: busy / total * cores * 100.0,
        server_s: b.server.saturating_sub(a.server) as f64 / hz,
        server_switches: b.server_switches.saturating_sub(a.server_switches),
    }
}

// ---------------------------------------------------------------- disk

/// Bytes a process caused to be written to storage (`write_bytes` of
/// `/proc/<pid>/io`, its threads included). Linux charges a page when the
/// process dirties it in the page cache, so a page written again before the
/// kernel wrote it back counts once, and one written again after a sync
/// counts twice, as the device sees it.
fn write_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The SQLite write-ahead log of a database file.
fn wal_path(db_file: &Path) -> PathBuf {
    let mut name = db_file.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Where a run's database lives, to measure its size.
enum DbFootprint {
    /// The database file; its log is beside it.
    Sqlite(PathBuf),
    /// A connection whose search path is the run's schema.
    Postgres(AnyPool),
}

impl DbFootprint {
    async fn open(server: &Server) -> Res<DbFootprint> {
        Ok(match &server.sqlite_file {
            Some(file) => DbFootprint::Sqlite(file.clone()),
            None => DbFootprint::Postgres(
                AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&server.db_url)
                    .await?,
            ),
        })
    }

    /// SQLite: the file plus its log. PostgreSQL: the tables of the run's
    /// schema with their indexes and TOAST (PostgreSQL's own WAL, shared
    /// by every database of the cluster, is not counted).
    async fn bytes(&self) -> Option<u64> {
        match self {
            DbFootprint::Sqlite(file) => Some(file_len(file) + file_len(&wal_path(file))),
            DbFootprint::Postgres(pool) => sqlx::query(
                "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) AS n \
                 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
                 WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'm', 'p')",
            )
            .fetch_one(pool)
            .await
            .ok()?
            .try_get::<i64, _>("n")
            .ok()
            .and_then(|n| u64::try_from(n).ok()),
        }
    }
}

/// Samples the size of SQLite's write-ahead log every 100 ms while it
/// lives, keeping the peak of the whole run and of the current phase.
struct WalSampler {
    file: PathBuf,
    run_peak: Arc<AtomicU64>,
    phase_peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl WalSampler {
    fn start(db_file: &Path) -> WalSampler {
        let file = wal_path(db_file);
        let run_peak = Arc::new(AtomicU64::new(0));
        let phase_peak = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (file, run_peak, phase_peak) = (file.clone(), run_peak.clone(), phase_peak.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    let len = file_len(&file);
                    run_peak.fetch_max(len, Ordering::Relaxed);
                    phase_peak.fetch_max(len, Ordering::Relaxed);
                }
            }
        });
        WalSampler {
            file,
            run_peak,
            phase_peak,
            task,
        }
    }

    fn sample(&self) {
        let len = file_len(&self.file);
        self.run_peak.fetch_max(len, Ordering::Relaxed);
        self.phase_peak.fetch_max(len, Ordering::Relaxed);
    }

    fn start_phase(&self) {
        self.phase_peak.store(0, Ordering::Relaxed);
        self.sample();
    }

    /// The peak since `start_phase`.
    fn end_phase(&self) -> u64 {
        self.sample();
        self.phase_peak.load(Ordering::Relaxed)
    }

    fn run_peak(&self) -> u64 {
        self.sample();
        self.run_peak.load(Ordering::Relaxed)
    }
}

impl Drop for WalSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a run's phases wrote and left on disk, measured by the client.
struct Disk {
    db: DbFootprint,
    wal: Option<WalSampler>,
    /// Values the server acknowledged as stored so far in the run.
    stored: u64,
    /// The server's write_bytes when the first phase started.
    written_at_start: Option<u64>,
}

/// A phase's disk figures.
#[derive(Debug, Clone, Copy, Default)]
struct DiskUse {
    /// Bytes the server wrote during the phase.
    written: Option<u64>,
    /// Database size after the phase.
    db_bytes: Option<u64>,
    /// Values stored in the run up to the end of the phase.
    stored_so_far: u64,
    /// Largest -wal file seen during the phase (SQLite).
    wal_peak: Option<u64>,
}

// ---------------------------------------------------------------- HTTP

async fn connect(addr: SocketAddr) -> Res<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn exchange(s: &mut Sender, req: Request<Full<Bytes>>) -> Res<(StatusCode, Bytes)> {
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn get_request(host: &HeaderValue, path: &str, auth: Option<&HeaderValue>) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(HOST, host.clone());
    if let Some(a) = auth {
        b = b.header(AUTHORIZATION, a.clone());
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

/// `"stored":N` from a 201 answer, without a JSON parse.
fn parse_stored(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"stored\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

// ---------------------------------------------------------------- phases

#[derive(Clone, Copy)]
enum Pace {
    /// Send the next request as soon as the previous answer arrived, until.
    Closed { until: Instant },
    /// Request i of connection w is due at start + (i * conns + w) / rate.
    /// A connection that falls behind sends at once and its latency still
    /// counts from the due time. Tokio's timer has a 1 ms resolution: a
    /// request may leave up to 1 ms after its due time, and that is counted.
    Open {
        start: Instant,
        end: Instant,
        rate: f64,
    },
}

struct PhaseCtx {
    gen: Arc<Gen>,
    counter: Arc<AtomicU64>,
    /// Sequence numbers from `limit` on are not sent.
    limit: u64,
    pace: Pace,
    connections: usize,
    addr: SocketAddr,
    host: HeaderValue,
    auth: HeaderValue,
    /// Record when each post was acknowledged (for the live delay).
    record_ack_times: bool,
}

/// One open-loop request: when it was due (µs after the phase start), how
/// late the load generator sent it, and its latency from the due time.
#[derive(Clone, Copy)]
struct Sample {
    due_us: u64,
    send_lag_us: u32,
    latency_us: u32,
}

#[derive(Default)]
struct WorkerOut {
    latencies_us: Vec<u32>,
    samples: Vec<Sample>,
    acked: Vec<u64>,
    acked_at: Vec<(u64, Instant)>,
    rows: u64,
    non201: u64,
    errors: u64,
    missing_stored: u64,
    first_failure: Option<String>,
}

async fn worker(
    w: usize,
    mut sender: Option<Sender>,
    ctx: Arc<PhaseCtx>,
) -> (Option<Sender>, WorkerOut) {
    let mut out = WorkerOut::default();
    let success = ctx.gen.success();
    let mut i: u64 = 0;
    loop {
        let scheduled = match ctx.pace {
            Pace::Closed { until } => {
                if Instant::now() >= until {
                    break;
                }
                None
            }
            Pace::Open { start, end, rate } => {
                let at = start
                    + Duration::from_secs_f64(
                        (i * ctx.connections as u64 + w as u64) as f64 / rate,
                    );
                if at >= end {
                    break;
                }
                if at > Instant::now() {
                    tokio::time::sleep_until(at.into()).await;
                }
                Some(at)
            }
        };
        i += 1;
        let u = ctx.counter.fetch_add(1, Ordering::Relaxed);
        if u >= ctx.limit {
            break;
        }
        let req = ctx.gen.request(u, &ctx.host, &ctx.auth);
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(ctx.addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    out.errors += 1;
                    out.first_failure
                        .get_or_insert_with(|| format!("connect: {e}"));
                    break;
                }
            },
        };
        let sent = Instant::now();
        let result = exchange(s, req).await;
        let latency = scheduled.unwrap_or(sent).elapsed();
        match result {
            Ok((status, body)) => {
                let latency_us = latency.as_micros().min(u32::MAX as u128) as u32;
                out.latencies_us.push(latency_us);
                if let (Some(due), Pace::Open { start, .. }) = (scheduled, ctx.pace) {
                    out.samples.push(Sample {
                        due_us: due.duration_since(start).as_micros() as u64,
                        send_lag_us: sent.saturating_duration_since(due).as_micros() as u32,
                        latency_us,
                    });
                }
                if status == success {
                    out.acked.push(u);
                    if ctx.record_ack_times {
                        out.acked_at.push((u, Instant::now()));
                    }
                    match parse_stored(&body) {
                        Some(n) => out.rows += n,
                        None if status == StatusCode::CREATED => out.missing_stored += 1,
                        None => {}
                    }
                } else {
                    out.non201 += 1;
                    out.first_failure.get_or_insert_with(|| {
                        format!(
                            "HTTP {status}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(300)])
                        )
                    });
                }
            }
            Err(e) => {
                out.errors += 1;
                out.first_failure
                    .get_or_insert_with(|| format!("request: {e}"));
                sender = None;
            }
        }
    }
    (sender, out)
}

#[derive(Default)]
struct PhaseResult {
    name: String,
    requests: u64,
    rows: u64,
    non201: u64,
    errors: u64,
    missing_stored: u64,
    wall: Duration,
    latencies_us: Vec<u32>,
    /// Open loop only, in due order.
    samples: Vec<Sample>,
    acked: Vec<u64>,
    acked_at: Vec<(u64, Instant)>,
    cpu: CpuUse,
    first_failure: Option<String>,
    /// Open loop: the rate asked for.
    offered: Option<f64>,
    /// The server's group commits during the phase (from /metrics).
    commits: Option<u64>,
    disk: DiskUse,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    fn rows_rate(&self) -> f64 {
        self.rows as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    fn pct_ms(&self, q: f64) -> f64 {
        pct_ms(&self.latencies_us, q)
    }
    /// Bytes the server wrote per value stored in the phase.
    fn written_per_value(&self) -> Option<f64> {
        self.disk
            .written
            .filter(|_| self.rows > 0)
            .map(|b| b as f64 / self.rows as f64)
    }
    /// Database bytes per value stored so far in the run.
    fn db_per_value(&self) -> Option<f64> {
        self.disk
            .db_bytes
            .filter(|_| self.disk.stored_so_far > 0)
            .map(|b| b as f64 / self.disk.stored_so_far as f64)
    }

    /// How late the load generator itself sent requests: when this is near
    /// the latency's tail, the tail is the client's, not the server's.
    fn print_send_lag(&self) {
        if self.samples.is_empty() {
            return;
        }
        let mut lag: Vec<u32> = self.samples.iter().map(|s| s.send_lag_us).collect();
        lag.sort_unstable();
        println!(
            "    send lag (sent - due) p50 / p99 / max ms: {:.2} / {:.2} / {:.2}",
            pct_ms(&lag, 0.50),
            pct_ms(&lag, 0.99),
            pct_ms(&lag, 1.0)
        );
    }

    /// Appends `phase,due_unix_us,send_lag_us,latency_us` lines.
    fn append_latency_log(&self, path: &Path, phase_start_unix_us: u64) -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        );
        for s in &self.samples {
            writeln!(
                f,
                "{},{},{},{}",
                self.name,
                phase_start_unix_us + s.due_us,
                s.send_lag_us,
                s.latency_us
            )?;
        }
        f.flush()
    }
}

/// The q-quantile of sorted microseconds, in ms.
fn pct_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let idx = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[idx] as f64 / 1000.0
}

struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    device_auth: HeaderValue,
    api_auth: HeaderValue,
    senders: Vec<Option<Sender>>,
    server_pid: u32,
    hz: f64,
    disk: Disk,
}

impl Client {
    async fn run_phase(
        &mut self,
        name: &str,
        gen: &Arc<Gen>,
        counter: &Arc<AtomicU64>,
        limit: u64,
        pace: Pace,
        record_ack_times: bool,
    ) -> PhaseResult {
        let ctx = Arc::new(PhaseCtx {
            record_ack_times,
            gen: gen.clone(),
            counter: counter.clone(),
            limit,
            pace,
            connections: self.senders.len(),
            addr: self.addr,
            host: self.host.clone(),
            auth: self.device_auth.clone(),
        });
        let commits_before = self.commits().await;
        let written_before = write_bytes(self.server_pid);
        self.disk.written_at_start = self.disk.written_at_start.or(written_before);
        if let Some(wal) = &self.disk.wal {
            wal.start_phase();
        }
        let before = CpuSample::take(self.server_pid);
        let start = Instant::now();
        let handles: Vec<_> = self
            .senders
            .iter_mut()
            .enumerate()
            .map(|(w, s)| tokio::spawn(worker(w, s.take(), ctx.clone())))
            .collect();
        let mut r = PhaseResult {
            name: name.to_string(),
            ..Default::default()
        };
        for (w, h) in handles.into_iter().enumerate() {
            let (sender, out) = h.await.expect("worker task");
            self.senders[w] = sender;
            r.requests += out.acked.len() as u64 + out.non201;
            r.rows += out.rows;
            r.non201 += out.non201;
            r.errors += out.errors;
            r.missing_stored += out.missing_stored;
            r.latencies_us.extend_from_slice(&out.latencies_us);
            r.samples.extend_from_slice(&out.samples);
            r.acked.extend_from_slice(&out.acked);
            r.acked_at.extend_from_slice(&out.acked_at);
            if r.first_failure.is_none() {
                r.first_failure = out.first_failure;
            }
        }
        r.wall = start.elapsed();
        let after = CpuSample::take(self.server_pid);
        r.cpu = cpu_between(&before, &after, self.hz);
        r.commits = commits_before
            .zip(self.commits().await)
            .map(|(a, b)| b.saturating_sub(a));
        self.disk.stored += r.rows;
        r.disk = DiskUse {
            written: written_before
                .zip(write_bytes(self.server_pid))
                .map(|(a, b)| b.saturating_sub(a)),
            db_bytes: self.disk.db.bytes().await,
            stored_so_far: self.disk.stored,
            wal_peak: self.disk.wal.as_ref().map(WalSampler::end_phase),
        };
        r.latencies_us.sort_unstable();
        r.samples.sort_unstable_by_key(|s| s.due_us);
        if let Pace::Open { rate, .. } = pace {
            r.offered = Some(rate);
        }
        r
    }

    /// The server's group commits so far (`flownexus_ingest_commits_total`),
    /// or None if /metrics cannot be read.
    async fn commits(&self) -> Option<u64> {
        let mut s = connect(self.addr).await.ok()?;
        let req = get_request(&self.host, "/api/v1/metrics", Some(&self.api_auth));
        let (status, body) = exchange(&mut s, req).await.ok()?;
        if status != StatusCode::OK {
            return None;
        }
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix("flownexus_ingest_commits_total "))
            .and_then(|v| v.trim().parse().ok())
    }
}

fn print_phase_header() {
    println!(
        "  {:<13} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>6} {:>8} {:>8} {:>7} {:>7} {:>7} {:>5}",
        "phase",
        "requests",
        "req/s",
        "rows/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "srv CPU",
        "gen CPU",
        "all CPU",
        "srv µs/r",
        "cs/r",
        "r/commit",
        "wr B/v",
        "db B/v",
        "WAL MiB",
        "non2xx",
        "err"
    );
}

/// A figure, or "-" when there is none.
fn fig(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.prec$}"))
}

fn print_phase(r: &PhaseResult) {
    println!(
        "  {:<13} {:>9} {:>9.0} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>7.0}% {:>6.0}% {:>6.0}% {:>8.0} {:>6.1} {:>8} {:>8} {:>7} {:>7} {:>7} {:>5}",
        r.name,
        r.requests,
        r.rate(),
        r.rows_rate(),
        r.pct_ms(0.50),
        r.pct_ms(0.99),
        r.pct_ms(1.0),
        r.cpu.server,
        r.cpu.bench,
        r.cpu.machine,
        r.cpu.server_s * 1e6 / r.requests.max(1) as f64,
        r.cpu.server_switches as f64 / r.requests.max(1) as f64,
        r.commits
            .filter(|&c| c > 0)
            .map_or("-".into(), |c| format!("{:.1}", r.requests as f64 / c as f64)),
        fig(r.written_per_value(), 0),
        fig(r.db_per_value(), 0),
        fig(r.disk.wal_peak.map(|b| b as f64 / MIB), 1),
        r.non201,
        r.errors
    );
    if let Some(f) = &r.first_failure {
        println!("    first failure: {f}");
    }
}

// ---------------------------------------------------------------- server

fn pg_base_url() -> String {
    std::env::var("FLOWNEXUS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    db_url: String,
    /// The SQLite database file (None on PostgreSQL).
    sqlite_file: Option<PathBuf>,
    log: PathBuf,
    pg_schema: Option<String>,
    dir: Option<tempfile::TempDir>,
}

impl Server {
    async fn start(
        bin: &Path,
        opts: &Opts,
        backend: Backend,
        seq: u32,
    ) -> Res<(Server, String, String)> {
        let settings = &opts.server_settings;
        let dir = tempfile::Builder::new()
            .prefix("flownexus-bench-")
            .tempdir()?;
        let sqlite_file = (backend == Backend::Sqlite).then(|| dir.path().join("bench.db"));
        let (db_url, pg_schema) = match &sqlite_file {
            Some(file) => {
                let url = format!("sqlite://{}", file.display());
                if !opts.sqlite_init.is_empty() {
                    let pool = AnyPoolOptions::new()
                        .max_connections(1)
                        .connect(&format!("{url}?mode=rwc"))
                        .await?;
                    for sql in &opts.sqlite_init {
                        sqlx::query(sql)
                            .execute(&pool)
                            .await
                            .map_err(|e| format!("--sqlite-init {sql:?}: {e}"))?;
                    }
                    pool.close().await;
                }
                (url, None)
            }
            None => {
                let name = format!("fxb_{}_{}", std::process::id(), seq);
                let admin = AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&pg_base_url())
                    .await
                    .map_err(|e| {
                        format!(
                            "PostgreSQL at {}: {e} (scripts/postgres.sh starts it)",
                            pg_base_url()
                        )
                    })?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(&admin)
                    .await?;
                sqlx::query(&format!("CREATE SCHEMA {name}"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                let base = pg_base_url();
                let sep = if base.contains('?') { '&' } else { '?' };
                (
                    format!("{base}{sep}options[search_path]={name}"),
                    Some(name),
                )
            }
        };
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let env = |cmd: &mut Command| {
            for (k, _) in std::env::vars() {
                if k.starts_with("FLOWNEXUS_") {
                    cmd.env_remove(k);
                }
            }
            cmd.env("FLOWNEXUS_CONFIG", dir.path().join("no-such-settings.toml"))
                .env("FLOWNEXUS_DATABASE_URL", &db_url)
                .env("FLOWNEXUS_DATA_DIR", dir.path().join("data"))
                .env("FLOWNEXUS_LISTEN_ADDR", addr.to_string())
                .env("FLOWNEXUS_INGEST_AUTH", "token")
                .env("FLOWNEXUS_RETENTION_DAYS", "0")
                .env("FLOWNEXUS_ADMIN_PASSWORD", "bench-admin-password")
                // Every connection of the load (64 posting, 100 live
                // websockets by default) comes from 127.0.0.1.
                .env("FLOWNEXUS_HTTP_MAX_CONNECTIONS_PER_IP", "0")
                // BENCH_SERVER_LOG, e.g. "flownexus::server::ingest::writer=debug"
                // with --keep, logs each commit's steps to server.log.
                .env(
                    "FLOWNEXUS_LOG",
                    std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .env("NO_COLOR", "1")
                .envs(settings.iter().map(|(k, v)| (k, v)));
        };
        let token = |scope: &str| -> Res<String> {
            let mut cmd = Command::new(bin);
            env(&mut cmd);
            let out = cmd
                .args([
                    "token",
                    "create",
                    "--name",
                    &format!("bench-{scope}"),
                    "--scope",
                    scope,
                ])
                .output()?;
            if !out.status.success() {
                return Err(format!(
                    "flownexus token create failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
                .into());
            }
            String::from_utf8(out.stdout)?
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
                .ok_or_else(|| "token create printed no token".into())
        };
        // The first CLI call migrates the fresh database.
        let device_token = token("device")?;
        let api_token = token("api")?;
        let log = dir.path().join("server.log");
        let logf = std::fs::File::create(&log)?;
        let mut cmd = Command::new(bin);
        env(&mut cmd);
        let child = cmd
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()?;
        let pid = child.id();
        let mut server = Server {
            child,
            pid,
            addr,
            db_url,
            sqlite_file,
            log,
            pg_schema,
            dir: Some(dir),
        };
        // Health.
        let host = HeaderValue::from_str(&addr.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait()? {
                return Err(format!("server exited with {status}: {}", server.log_tail()).into());
            }
            let ok = async {
                let mut s = connect(addr).await?;
                exchange(&mut s, get_request(&host, "/api/v1/health", None)).await
            }
            .await;
            if matches!(ok, Ok((StatusCode::OK, _))) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("server not healthy after 60 s: {}", server.log_tail()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok((server, device_token, api_token))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM (graceful), then SIGKILL after 10 s; removes the database
    /// (temporary directory, PostgreSQL schema) unless `keep`.
    async fn stop(mut self, keep: bool) {
        // The server deletes its log when it closes the database: keep a
        // copy for tools/perf/wal_frames.py.
        if let Some(file) = self.sqlite_file.as_deref().filter(|_| keep) {
            let mut copy = wal_path(file).into_os_string();
            copy.push(".last");
            let _ = std::fs::copy(wal_path(file), copy);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if keep {
            if let Some(dir) = self.dir.take() {
                println!(
                    "  kept {} (server.log, SQLite database)",
                    dir.keep().display()
                );
            }
            if let Some(name) = self.pg_schema.take() {
                println!("  kept PostgreSQL schema {name}: {}", self.db_url);
            }
            return;
        }
        if let Some(name) = self.pg_schema.take() {
            if let Ok(admin) = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&pg_base_url())
                .await
            {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(&admin)
                    .await;
                admin.close().await;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

// ---------------------------------------------------------------- verification

#[derive(Debug, Default)]
struct Verification {
    acked: u64,
    found: u64,
    missing: u64,
    duplicates: u64,
    /// Stored rows of the measured resources that map to no acknowledged
    /// post (e.g. answered with an error after commit) or to another device.
    unexpected: u64,
    resource_rows: i64,
    examples: Vec<String>,
}

async fn verify(db_url: &str, kind: Kind, devices: u64, acked: &[u64]) -> Res<Verification> {
    use futures::TryStreamExt;
    let pool: AnyPool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await?;
    let filter = match kind {
        Kind::Single => {
            "(t.object_id = 3303 AND t.resource_id = 5700) OR (t.object_id = 3 AND t.resource_id IN (9, 10))"
        }
        Kind::Composite => "t.object_id = 3 AND t.resource_id = 13",
    };
    let sql = format!(
        "SELECT e.name AS ep, t.object_id AS obj, t.resource_id AS res, \
                r.int_value AS iv, r.float_value AS fv \
         FROM resource r JOIN endpoint e ON e.id = r.endpoint_id \
         JOIN resource_type t ON t.id = r.resource_type_id \
         WHERE e.name LIKE 'bench-dev-%' AND ({filter})"
    );
    let max_u = acked.iter().copied().max().unwrap_or(0) as usize;
    let mut is_acked = vec![false; max_u + 1];
    for &u in acked {
        is_acked[u as usize] = true;
    }
    let mut seen = vec![0u8; max_u + 1];
    let mut v = Verification {
        acked: acked.len() as u64,
        ..Default::default()
    };
    {
        let mut rows = sqlx::query(&sql).fetch(&pool);
        while let Some(row) = rows.try_next().await? {
            let ep: String = row.try_get("ep")?;
            let obj: i64 = row.try_get("obj")?;
            let res: i64 = row.try_get("res")?;
            let iv: Option<i64> = row.try_get("iv")?;
            let fv: Option<f64> = row.try_get("fv")?;
            let u = match (kind, res) {
                (Kind::Single, 5700) => fv.and_then(|f| decode_float(10, f)),
                (Kind::Single, _) => iv.and_then(|i| u64::try_from(i).ok()),
                (Kind::Composite, _) => iv.and_then(|i| u64::try_from(i - TIME_BASE_MS).ok()),
            };
            let expected = u.filter(|&u| {
                ep == format!("bench-dev-{:05}", u % devices)
                    && (kind == Kind::Composite || single_resource(u, devices) == (obj, res))
            });
            match expected {
                Some(u) if (u as usize) <= max_u && is_acked[u as usize] => {
                    seen[u as usize] = seen[u as usize].saturating_add(1);
                }
                _ => {
                    v.unexpected += 1;
                    if v.examples.len() < 5 {
                        v.examples.push(format!(
                            "unexpected row: {ep} /{obj}/{res} int {iv:?} float {fv:?}"
                        ));
                    }
                }
            }
        }
    }
    for &u in acked {
        match seen[u as usize] {
            0 => {
                v.missing += 1;
                if v.examples.len() < 10 {
                    v.examples.push(format!("missing: sequence {u}"));
                }
            }
            1 => v.found += 1,
            _ => {
                v.found += 1;
                v.duplicates += 1;
            }
        }
    }
    v.resource_rows = sqlx::query("SELECT COUNT(*) AS n FROM resource")
        .fetch_one(&pool)
        .await?
        .try_get("n")?;
    pool.close().await;
    Ok(v)
}

// ---------------------------------------------------------------- GET test

#[derive(Default)]
struct GetResult {
    values: usize,
    fill: Option<PhaseResult>,
    first_ms: f64,
    p50_ms: f64,
    max_ms: f64,
    runs: usize,
    body_bytes: usize,
    entries: usize,
    ok: bool,
    note: Option<String>,
}

async fn get_test(client: &mut Client, values: usize, runs: usize) -> Res<GetResult> {
    let gen = Arc::new(Gen::new(Workload::GetFill, 1));
    let counter = Arc::new(AtomicU64::new(0));
    let fill = client
        .run_phase(
            "GET fill",
            &gen,
            &counter,
            values as u64,
            Pace::Closed {
                until: Instant::now() + Duration::from_secs(3600),
            },
            false,
        )
        .await;
    let mut r = GetResult {
        values,
        runs,
        ..Default::default()
    };
    let fill_ok = fill.acked.len() == values && fill.non201 == 0 && fill.errors == 0;
    r.fill = Some(fill);
    if !fill_ok {
        r.note = Some("not every fill post was acknowledged".into());
        return Ok(r);
    }
    let path = format!("/leshan_api/data/{GET_TYPE_NAME}/");
    let mut s = connect(client.addr).await?;
    let mut times = Vec::with_capacity(runs);
    let mut first_body = None;
    for i in 0..=runs {
        let t = Instant::now();
        let (status, body) = exchange(
            &mut s,
            get_request(&client.host, &path, Some(&client.api_auth)),
        )
        .await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if status != StatusCode::OK {
            r.note = Some(format!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
            return Ok(r);
        }
        if i == 0 {
            r.first_ms = ms;
            first_body = Some(body);
        } else {
            times.push(ms);
            if Some(body.len()) != first_body.as_ref().map(|b| b.len()) {
                r.note = Some("GET answers differ in size between runs".into());
            }
        }
    }
    times.sort_by(f64::total_cmp);
    r.p50_ms = times[(times.len() - 1) / 2];
    r.max_ms = *times.last().unwrap();
    let body = first_body.unwrap();
    r.body_bytes = body.len();
    let parsed: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
    r.entries = parsed.len();
    let mut got: Vec<u64> = parsed
        .iter()
        .filter_map(|e| e["value"].as_f64().and_then(|f| decode_float(40, f)))
        .collect();
    got.sort_unstable();
    let expected: Vec<u64> = (0..values as u64).collect();
    r.ok = r.entries == values && got == expected && r.note.is_none();
    if !r.ok && r.note.is_none() {
        r.note = Some(format!(
            "expected {values} entries with the posted values, got {} entries ({} matching values)",
            r.entries,
            got.len()
        ));
    }
    Ok(r)
}

// ---------------------------------------------------------------- one run

struct RunSummary {
    backend: Backend,
    kind: Kind,
    /// Index of the server binary in `--server`.
    build: usize,
    ceiling: Option<PhaseResult>,
    max: Option<PhaseResult>,
    half: Option<PhaseResult>,
    half_basis: String,
    verification: Option<Verification>,
    get: Option<GetResult>,
    live: Option<LiveDelay>,
    peak_rss_kib: Option<u64>,
    /// Bytes the server wrote from the first phase to the last, and the
    /// values stored meanwhile.
    written: Option<u64>,
    stored: u64,
    /// Database size at the end of the run.
    db_bytes: Option<u64>,
    /// Largest -wal file seen during the run (SQLite).
    wal_peak: Option<u64>,
    failures: Vec<String>,
}

impl RunSummary {
    /// The maximum's share of the HTTP ceiling, in posts per health answer.
    fn ceiling_share(&self) -> Option<f64> {
        let ceiling = self.ceiling.as_ref()?.rate();
        Some(self.max.as_ref()?.rate() / ceiling).filter(|_| ceiling > 0.0)
    }
}

fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn run_one(
    bins: &[PathBuf],
    build: usize,
    opts: &Opts,
    backend: Backend,
    kind: Kind,
    seq: u32,
) -> RunSummary {
    let bin = &bins[build];
    let mut summary = RunSummary {
        backend,
        kind,
        build,
        ceiling: None,
        max: None,
        half: None,
        half_basis: String::new(),
        verification: None,
        get: None,
        live: None,
        peak_rss_kib: None,
        written: None,
        stored: 0,
        db_bytes: None,
        wal_peak: None,
        failures: Vec::new(),
    };
    println!();
    println!(
        "=== {} / {}{}: {} devices, {} connections, fresh database",
        backend.name(),
        kind.name(),
        if bins.len() > 1 {
            format!(", build {} ({})", build + 1, bin.display())
        } else {
            String::new()
        },
        opts.devices,
        opts.connections
    );
    let (server, device_token, api_token) = match Server::start(bin, opts, backend, seq).await {
        Ok(s) => s,
        Err(e) => {
            println!("  cannot start the server: {e}");
            summary.failures.push(format!("start: {e}"));
            return summary;
        }
    };
    let result = drive(&server, opts, kind, &device_token, &api_token, &mut summary).await;
    if let Err(e) = result {
        println!("  aborted: {e}");
        summary.failures.push(e.to_string());
    }
    if !summary.failures.is_empty() {
        println!("  server log (last 20 lines):\n{}", server.log_tail());
    }
    summary.peak_rss_kib = vm_hwm_kib(server.pid);
    if let Some(kib) = summary.peak_rss_kib {
        println!("  server peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0);
    }
    print_disk(&summary);
    server.stop(opts.keep).await;
    summary
}

async fn drive(
    server: &Server,
    opts: &Opts,
    kind: Kind,
    device_token: &str,
    api_token: &str,
    summary: &mut RunSummary,
) -> Res<()> {
    let mut client = Client {
        addr: server.addr,
        host: HeaderValue::from_str(&server.addr.to_string())?,
        device_auth: HeaderValue::from_str(&format!("Bearer {device_token}"))?,
        api_auth: HeaderValue::from_str(&format!("Bearer {api_token}"))?,
        senders: Vec::with_capacity(opts.connections),
        server_pid: server.pid,
        hz: clock_ticks_per_s(),
        disk: Disk {
            db: DbFootprint::open(server).await?,
            wal: server.sqlite_file.as_deref().map(WalSampler::start),
            stored: 0,
            written_at_start: None,
        },
    };
    for _ in 0..opts.connections {
        client.senders.push(Some(connect(server.addr).await?));
    }
    let gen = Arc::new(Gen::new(
        match kind {
            Kind::Single => Workload::Single,
            Kind::Composite => Workload::Composite,
        },
        opts.devices,
    ));
    let counter = Arc::new(AtomicU64::new(0));
    let mut acked: Vec<u64> = Vec::new();
    let mut acked_rows = 0u64;
    let mut check = |r: &PhaseResult, summary: &mut RunSummary| {
        acked.extend_from_slice(&r.acked);
        acked_rows += r.rows;
        if r.non201 > 0 || r.errors > 0 {
            summary.failures.push(format!(
                "{}: {} non-201 answers, {} transport errors",
                r.name, r.non201, r.errors
            ));
        }
        if r.missing_stored > 0 {
            summary.failures.push(format!(
                "{}: {} 201 answers without \"stored\"",
                r.name, r.missing_stored
            ));
        }
    };
    print_phase_header();
    let far = Instant::now() + Duration::from_secs(3600);
    // Every endpoint once (sequence numbers 0..devices map to each device).
    let r = client
        .run_phase(
            "endpoints",
            &gen,
            &counter,
            opts.devices as u64,
            Pace::Closed { until: far },
            false,
        )
        .await;
    print_phase(&r);
    check(&r, summary);
    if !opts.warmup.is_zero() {
        let r = client
            .run_phase(
                "warm-up",
                &gen,
                &counter,
                u64::MAX,
                Pace::Closed {
                    until: Instant::now() + opts.warmup,
                },
                false,
            )
            .await;
        print_phase(&r);
        check(&r, summary);
    }
    if !opts.ceiling_duration.is_zero() {
        let ceiling_gen = Arc::new(Gen::new(Workload::Ceiling, 1));
        let r = client
            .run_phase(
                "HTTP ceiling",
                &ceiling_gen,
                &Arc::new(AtomicU64::new(0)),
                u64::MAX,
                Pace::Closed {
                    until: Instant::now() + opts.ceiling_duration,
                },
                false,
            )
            .await;
        print_phase(&r);
        if r.non201 > 0 || r.errors > 0 {
            summary.failures.push(format!(
                "{}: {} answers other than 200, {} transport errors",
                r.name, r.non201, r.errors
            ));
        }
        summary.ceiling = Some(r);
    }
    let max = client
        .run_phase(
            "max (closed)",
            &gen,
            &counter,
            u64::MAX,
            Pace::Closed {
                until: Instant::now() + opts.duration,
            },
            false,
        )
        .await;
    print_phase(&max);
    check(&max, summary);
    let max_rate = max.rate();
    summary.max = Some(max);

    if !opts.skip_half {
        let (rate, basis) = match opts.half_rate {
            // Fixed, so that two builds can be compared at the same load.
            Some(rate) => (rate, "--half-rate".to_string()),
            None => (
                (max_rate / 2.0).max(1.0),
                "50% of the measured max".to_string(),
            ),
        };
        let live_clients = if kind == Kind::Single {
            opts.live_clients.min(opts.devices)
        } else {
            0
        };
        let live = LiveClients::start(server.addr, api_token, &gen, live_clients).await?;
        let start = Instant::now() + Duration::from_millis(20);
        let start_unix_us = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            + Duration::from_millis(20))
        .as_micros() as u64;
        let half = client
            .run_phase(
                "half (open)",
                &gen,
                &counter,
                u64::MAX,
                Pace::Open {
                    start,
                    end: start + opts.half_duration,
                    rate,
                },
                live_clients > 0,
            )
            .await;
        print_phase(&half);
        half.print_send_lag();
        if let Some(path) = &opts.latency_log {
            match half.append_latency_log(path, start_unix_us) {
                Ok(()) => println!("    latencies appended to {}", path.display()),
                Err(e) => println!("    could not write {}: {e}", path.display()),
            }
        }
        if live_clients > 0 {
            let d = live.finish(&half.acked_at, opts.devices as u64).await;
            println!(
                "  live: {} websocket clients (one device each): {} of {} acknowledged values \
                 arrived; delay from 201 to arrival p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
                 ({} arrived before their 201 was read, counted as 0){}",
                live_clients,
                fmt_count(d.matched),
                fmt_count(d.expected),
                d.p50_ms,
                d.p99_ms,
                d.max_ms,
                fmt_count(d.early),
                if d.p99_ms < TARGET_LIVE_P99_MS {
                    ""
                } else {
                    "  (target p99 < 100 ms)"
                }
            );
            if d.matched < d.expected {
                summary.failures.push(format!(
                    "live: {} acknowledged values never reached their subscriber",
                    d.expected - d.matched
                ));
            }
            summary.live = Some(d);
        }
        println!(
            "    half load offered {rate:.0}/s = {basis}; achieved {:.0}/s; latency from scheduled send time",
            half.rate()
        );
        check(&half, summary);
        summary.half_basis = basis;
        summary.half = Some(half);
    }

    // Verification: every acknowledged value is in the database.
    let v = verify(&server.db_url, kind, opts.devices as u64, &acked).await?;
    println!(
        "  verification: acked {} found {} missing {} duplicates {} unexpected {}; \
         rows acked {} (sum of \"stored\"), resource rows in db {}",
        fmt_count(v.acked),
        fmt_count(v.found),
        fmt_count(v.missing),
        fmt_count(v.duplicates),
        fmt_count(v.unexpected),
        fmt_count(acked_rows),
        fmt_count(v.resource_rows as u64)
    );
    for e in &v.examples {
        println!("    {e}");
    }
    if v.missing > 0 || v.duplicates > 0 || v.unexpected > 0 {
        summary.failures.push(format!(
            "verification: {} missing, {} duplicates, {} unexpected",
            v.missing, v.duplicates, v.unexpected
        ));
    }
    if v.resource_rows as u64 != acked_rows {
        summary.failures.push(format!(
            "resource rows in db {} != rows acknowledged {}",
            v.resource_rows, acked_rows
        ));
    }
    summary.verification = Some(v);

    if !opts.skip_get {
        let g = get_test(&mut client, opts.get_values, opts.get_runs).await?;
        if let Some(fill) = &g.fill {
            print_phase(fill);
        }
        println!(
            "  GET /leshan_api/data/{GET_TYPE_NAME}/ ({} values, {} entries, {:.1} KiB, table {} rows): \
             first {:.1} ms, p50 {:.1} ms, max {:.1} ms over {} runs{}",
            g.values,
            g.entries,
            g.body_bytes as f64 / 1024.0,
            fmt_count(acked_rows + g.values as u64),
            g.first_ms,
            g.p50_ms,
            g.max_ms,
            g.runs,
            if g.ok { "" } else { "  FAILED" }
        );
        if let Some(n) = &g.note {
            println!("    {n}");
        }
        if !g.ok {
            summary
                .failures
                .push(format!("GET test: {}", g.note.clone().unwrap_or_default()));
        }
        summary.get = Some(g);
    }
    summary.written = client
        .disk
        .written_at_start
        .zip(write_bytes(server.pid))
        .map(|(a, b)| b.saturating_sub(a));
    summary.stored = client.disk.stored;
    summary.db_bytes = client.disk.db.bytes().await;
    summary.wal_peak = client.disk.wal.as_ref().map(WalSampler::run_peak);
    if let DbFootprint::Postgres(pool) = &client.disk.db {
        pool.close().await;
    }
    Ok(())
}

// ---------------------------------------------------------------- live

/// Websocket clients of the dashboard's multiplexed protocol, client i
/// subscribed to device i; each records when each value arrived.
struct LiveClients {
    tasks: Vec<tokio::task::JoinHandle<Vec<(u64, Instant)>>>,
    stop: Arc<tokio::sync::Notify>,
}

/// What the live clients measured.
#[derive(Debug, Clone, Default)]
struct LiveDelay {
    expected: u64,
    matched: u64,
    early: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// The sequence number a live value encodes (see `Gen::body`).
fn live_sequence(v: &flownexus::model::LiveValue) -> Option<u64> {
    let f = v.numeric?;
    if (v.path.object_id, v.path.resource_id) == (3303, 5700) {
        decode_float(10, f)
    } else {
        (f >= 0.0 && f.fract() == 0.0).then_some(f as u64)
    }
}

impl LiveClients {
    async fn start(addr: SocketAddr, api_token: &str, gen: &Gen, n: usize) -> Res<LiveClients> {
        use flownexus::model::{ClientMessage, LiveMessage, Topic};
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let stop = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let mut req = format!("ws://{addr}/api/v1/live?mux=1").into_client_request()?;
            req.headers_mut().insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {api_token}"))?,
            );
            let (mut socket, _) = tokio_tungstenite::connect_async(req).await?;
            let subscribe = ClientMessage::Subscribe {
                topics: vec![Topic::Endpoint {
                    name: gen.endpoints[i].clone(),
                }],
            };
            socket
                .send(serde_json::to_string(&subscribe)?.into())
                .await?;
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut arrived = Vec::new();
                loop {
                    tokio::select! {
                        _ = stop.notified() => return arrived,
                        msg = socket.next() => match msg {
                            Some(Ok(m)) if m.is_text() => {
                                let at = Instant::now();
                                if let Ok(LiveMessage::Value(v)) = serde_json::from_str(m.to_text().unwrap_or("")) {
                                    if let Some(u) = live_sequence(&v) {
                                        arrived.push((u, at));
                                    }
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => return arrived,
                        },
                    }
                }
            }));
        }
        // Let the server register every subscription before the load starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(LiveClients { tasks, stop })
    }

    /// Waits a moment for the last values, stops the clients and matches
    /// arrivals with acknowledgements.
    async fn finish(self, acked_at: &[(u64, Instant)], devices: u64) -> LiveDelay {
        let n = self.tasks.len() as u64;
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.stop.notify_waiters();
        let mut arrived = std::collections::HashMap::new();
        for t in self.tasks {
            if let Ok(list) = t.await {
                arrived.extend(list);
            }
        }
        let mut d = LiveDelay::default();
        let mut delays_us: Vec<u64> = Vec::new();
        for (u, acked) in acked_at {
            if u % devices >= n {
                continue;
            }
            d.expected += 1;
            if let Some(at) = arrived.get(u) {
                d.matched += 1;
                match at.checked_duration_since(*acked) {
                    Some(delay) => delays_us.push(delay.as_micros() as u64),
                    None => {
                        d.early += 1;
                        delays_us.push(0);
                    }
                }
            }
        }
        delays_us.sort_unstable();
        let pct = |q: f64| -> f64 {
            if delays_us.is_empty() {
                return f64::NAN;
            }
            let idx = ((q * delays_us.len() as f64).ceil() as usize).clamp(1, delays_us.len()) - 1;
            delays_us[idx] as f64 / 1000.0
        };
        d.p50_ms = pct(0.50);
        d.p99_ms = pct(0.99);
        d.max_ms = pct(1.0);
        d
    }
}

// ---------------------------------------------------------------- summary

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// A run's disk figures: what the server wrote per stored value over the
/// whole run, the database's size, and the log's peak.
fn print_disk(s: &RunSummary) {
    let Some(written) = s.written else { return };
    let per_value = |b: u64| {
        if s.stored == 0 {
            "-".to_string()
        } else {
            format!("{:.0}", b as f64 / s.stored as f64)
        }
    };
    print!(
        "  disk: the server wrote {:.1} MiB, {} B per stored value ({} values)",
        written as f64 / MIB,
        per_value(written),
        fmt_count(s.stored)
    );
    if let Some(db) = s.db_bytes {
        print!(
            "; database {:.1} MiB, {} B per value",
            db as f64 / MIB,
            per_value(db)
        );
    }
    if let Some(peak) = s.wal_peak {
        print!(
            "; WAL peak {:.1} MiB (bound {} MiB: {})",
            peak as f64 / MIB,
            WAL_BOUND_BYTES >> 20,
            verdict(peak < WAL_BOUND_BYTES)
        );
    }
    println!();
}

fn print_summary(opts: &Opts, bins: &[PathBuf], runs: &[RunSummary]) {
    println!();
    println!("=== summary ({} s max phase, {} s half phase, {} s ceiling phase, {} devices, {} connections, {} generator thread(s), {} cores)",
        opts.duration.as_secs_f64(),
        opts.half_duration.as_secs_f64(),
        opts.ceiling_duration.as_secs_f64(),
        opts.devices,
        opts.connections,
        opts.threads,
        std::thread::available_parallelism().map_or(1, |n| n.get()));
    if bins.len() > 1 {
        for (i, b) in bins.iter().enumerate() {
            println!(
                "  build {}: {}{}",
                i + 1,
                b.display(),
                if i == 0 { " (judged)" } else { "" }
            );
        }
    }
    println!(
        "  {:<9} {:<9} {:>5} {:>9} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}  status",
        "backend",
        "kind",
        "build",
        "ceiling/s",
        "max/s",
        "share",
        "rows/s",
        "p50 ms",
        "p99 ms",
        "half/s",
        "h p50",
        "h p99",
        "GET p50",
        "GET max",
        "srv CPU",
        "RSS MiB",
        "wr B/v",
        "db B/v",
        "WAL MiB",
        "verified"
    );
    for s in runs {
        let max = s.max.as_ref();
        let half = s.half.as_ref();
        let per_value = |b: Option<u64>| {
            b.filter(|_| s.stored > 0)
                .map(|b| b as f64 / s.stored as f64)
        };
        println!(
            "  {:<9} {:<9} {:>5} {:>9} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}  {}",
            s.backend.name(),
            s.kind.name(),
            s.build + 1,
            fig(s.ceiling.as_ref().map(|c| c.rate()), 0),
            fig(max.map(|m| m.rate()), 0),
            s.ceiling_share().map_or("-".into(), |x| format!("{:.1}%", x * 100.0)),
            fig(max.map(|m| m.rows_rate()), 0),
            fig(max.map(|m| m.pct_ms(0.5)), 2),
            fig(max.map(|m| m.pct_ms(0.99)), 2),
            fig(half.map(|h| h.rate()), 0),
            fig(half.map(|h| h.pct_ms(0.5)), 2),
            fig(half.map(|h| h.pct_ms(0.99)), 2),
            fig(s.get.as_ref().filter(|g| g.ok).map(|g| g.p50_ms), 1),
            fig(s.get.as_ref().filter(|g| g.ok).map(|g| g.max_ms), 1),
            max.map_or("-".into(), |m| format!("{:.0}%", m.cpu.server)),
            fig(s.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
            fig(per_value(s.written), 0),
            fig(per_value(s.db_bytes), 0),
            fig(s.wal_peak.map(|b| b as f64 / MIB), 1),
            s.verification.as_ref().map_or("-".into(), |v| format!(
                "{}/{}",
                v.found, v.acked
            )),
            if s.failures.is_empty() { "ok" } else { "FAILED" }
        );
    }
    let label = |s: &RunSummary| {
        let build = if bins.len() > 1 {
            format!(" build {}", s.build + 1)
        } else {
            String::new()
        };
        format!("{} {}{build}", s.backend.name(), s.kind.name())
    };
    for s in runs {
        if let Some(peak) = s.wal_peak {
            println!(
                "  {}: WAL peak {:.1} MiB < {} MiB: {}",
                label(s),
                peak as f64 / MIB,
                WAL_BOUND_BYTES >> 20,
                verdict(peak < WAL_BOUND_BYTES)
            );
        }
        if s.backend != Backend::Sqlite {
            continue;
        }
        if let (Some(max), Some(ceiling), Some(share)) = (&s.max, &s.ceiling, s.ceiling_share()) {
            println!(
                "  {}: max {:.0}/s = {:.1}% of the HTTP ceiling {:.0}/s (pass line {:.1}%): {}",
                label(s),
                max.rate(),
                share * 100.0,
                ceiling.rate(),
                s.kind.pass_share() * 100.0,
                verdict(share >= s.kind.pass_share())
            );
        }
        if let Some(h) = &s.half {
            println!(
                "  {}: half-load p99 < {TARGET_HALF_P99_MS} ms: {} (p99 {:.2} ms at {:.0}/s offered)",
                label(s),
                verdict(h.pct_ms(0.99) < TARGET_HALF_P99_MS),
                h.pct_ms(0.99),
                h.offered.unwrap_or(0.0),
            );
        }
        if let Some(g) = s.get.as_ref().filter(|g| g.ok && g.values == 10_000) {
            println!(
                "  {}: GET of {} values < {TARGET_GET_MS} ms: {} (p50 {:.1} ms, max {:.1} ms)",
                label(s),
                g.values,
                verdict(g.p50_ms < TARGET_GET_MS),
                g.p50_ms,
                g.max_ms
            );
        }
    }
    print_comparison(runs);
    for s in runs {
        for f in &s.failures {
            println!("  FAILED {}: {f}", label(s));
        }
    }
}

/// The judged build (the first `--server`) against each previous one, per
/// backend and kind. Each run's maximum is taken as a share of its own
/// ceiling, which takes out most of what the machine did meanwhile; the
/// tolerance widens with the two ceilings' own difference (see
/// SAME_BUILD_TOLERANCE).
fn print_comparison(runs: &[RunSummary]) {
    for judged in runs.iter().filter(|s| s.build == 0) {
        for other in runs
            .iter()
            .filter(|s| s.build != 0 && s.backend == judged.backend && s.kind == judged.kind)
        {
            let (Some(a), Some(b)) = (&judged.max, &other.max) else {
                continue;
            };
            let raw = a.rate() / b.rate().max(1e-9);
            let line = format!(
                "  compare {} {}: build 1 {:.0}/s vs build {} {:.0}/s ({:+.1}%)",
                judged.backend.name(),
                judged.kind.name(),
                a.rate(),
                other.build + 1,
                b.rate(),
                (raw - 1.0) * 100.0
            );
            let (Some(sa), Some(sb), Some(ca), Some(cb)) = (
                judged.ceiling_share(),
                other.ceiling_share(),
                judged.ceiling.as_ref(),
                other.ceiling.as_ref(),
            ) else {
                println!("{line}; no ceiling to judge by");
                continue;
            };
            let ratio = sa / sb;
            let machine = (ca.rate() / cb.rate().max(1e-9) - 1.0).abs();
            let tolerance = SAME_BUILD_TOLERANCE.max(2.0 * machine);
            let judgement = if (ratio - 1.0).abs() <= tolerance {
                "the same within noise"
            } else if ratio < 1.0 {
                "SLOWER"
            } else {
                "faster"
            };
            println!(
                "{line}; share of ceiling {:.1}% vs {:.1}% ({:+.1}%; ceilings {:.0}/s vs {:.0}/s, \
                 tolerance ±{:.0}%): {judgement}",
                sa * 100.0,
                sb * 100.0,
                (ratio - 1.0) * 100.0,
                ca.rate(),
                cb.rate(),
                tolerance * 100.0
            );
        }
    }
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    };
    let bins = match server_binaries(&opts) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async {
        for (i, bin) in bins.iter().enumerate() {
            println!(
                "flownexus ingest benchmark, server {} {}",
                i + 1,
                bin.display()
            );
        }
        for (key, value) in &opts.server_settings {
            println!("  server setting {key}={value}");
        }
        println!(
            "columns: srv CPU = server process utime+stime and all CPU = whole machine \
             (PostgreSQL and any other process included), in % of one core; gen CPU = this \
             load generator; srv µs/r = server CPU time per request; cs/r = server context \
             switches per request; r/commit = requests per group commit (the server's \
             /api/v1/metrics); latencies in ms, for the open-loop half load from each \
             request's scheduled send time; wr B/v = bytes the server process wrote to disk \
             (/proc/<pid>/io write_bytes) per value stored in the phase; db B/v = database \
             size (SQLite file + -wal; PostgreSQL pg_total_relation_size of the tables) per \
             value stored so far; WAL MiB = largest -wal file seen in the phase (sampled \
             every 100 ms); share = max posts/s over the HTTP ceiling (GET /api/v1/health \
             over the same connections)"
        );
        let mut runs = Vec::new();
        let mut seq = 0;
        // Builds interleaved per case, so that a machine that slows down
        // over the run slows each build alike.
        for &backend in &opts.backends {
            for &kind in &opts.kinds {
                for build in 0..bins.len() {
                    runs.push(run_one(&bins, build, &opts, backend, kind, seq).await);
                    seq += 1;
                }
            }
        }
        print_summary(&opts, &bins, &runs);
        if runs.iter().all(|r| r.failures.is_empty()) {
            0
        } else {
            1
        }
    });
    std::process::exit(code);
}
