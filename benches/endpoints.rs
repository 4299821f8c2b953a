//! The endpoint table with a large fleet: how long the `/endpoints` page
//! takes with 10,000 endpoints, as the server renders it, and how much of
//! that is the database.
//!
//! Registers N endpoints (default 10,000) through the real router, each with
//! the whole object 3 (firmware version, battery level and 20 more values),
//! spreads their registration facts so that every presence occurs, then
//! times, for a handful of table states (sorts, a search, a presence filter,
//! the last page), the server-side rendered page (`GET /endpoints?...`
//! through the router, signed in) and `db::endpoint::list_page` alone.
#[path = "../tests/common/mod.rs"]
mod common;

use common::{payload, Backend, TestApp};
use flownexus::model::{EndpointListQuery, EndpointSort, Presence};
use futures::StreamExt;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo bench --features ssr --bench endpoints -- [options]
  --backend sqlite|postgres|both   (default both)
  --endpoints N                    endpoints in the fleet (default 10000)
  --runs N                         timed runs per table state (default 30)
PostgreSQL: FLOWNEXUS_TEST_PG_URL or postgres://postgres@127.0.0.1:5432/test
(scripts/postgres.sh starts it); the bench works in a schema of its own.";

/// A render still unfinished after this is counted as hung, not timed:
/// leptos 0.8's Suspense can panic in a spawned render task when a value it
/// reads was disposed (an upstream race; see the open leptos-rs/leptos#3595),
/// and the page's body then never ends.
const PAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests in flight while the fleet registers.
const CONCURRENCY: usize = 64;

struct Args {
    backends: Vec<Backend>,
    endpoints: usize,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        backends: vec![Backend::Sqlite, Backend::Postgres],
        endpoints: 10_000,
        runs: 30,
    };
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>, what: &str| {
        v.and_then(|n| n.replace('_', "").parse().ok())
            .filter(|&n: &usize| n > 0)
            .ok_or(format!("{what} needs a positive number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            "--backend" => {
                args.backends = match it.next().as_deref() {
                    Some("sqlite") => vec![Backend::Sqlite],
                    Some("postgres") => vec![Backend::Postgres],
                    Some("both") => vec![Backend::Sqlite, Backend::Postgres],
                    other => return Err(format!("--backend {other:?}")),
                }
            }
            "--endpoints" => args.endpoints = number(it.next(), "--endpoints")?,
            "--runs" => args.runs = number(it.next(), "--runs")?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Registers `n` endpoints and reads their object 3, as Leshan would
/// forward it: a registration, then the composite read.
async fn register_fleet(app: &TestApp, n: usize) -> Res<()> {
    let registration = payload("single__registered_10240_0.json");
    let object3 = payload("composite__onboarding_read_object3.json");
    let posts = (0..n).flat_map(|i| {
        let name = format!("bench-ep-{i:05}");
        let reg = registration.replace("urn:imei:100000000000000", &name);
        // A firmware version and a battery level of the endpoint's own.
        let obj = object3
            .replace("qemu_x86", &name)
            .replace("\"value\": \"2.0\"", &format!("\"value\": \"2.{}\"", i % 7));
        [
            ("/leshan_api/resource/single", reg),
            ("/leshan_api/resource/composite", obj),
        ]
    });
    let mut results = futures::stream::iter(posts)
        .map(|(path, body)| async move { app.ingest(path, body).await })
        .buffer_unordered(CONCURRENCY);
    while let Some((status, body)) = results.next().await {
        if status != axum::http::StatusCode::CREATED {
            return Err(format!("ingest answered {status}: {body}").into());
        }
    }
    Ok(())
}

/// Spreads the fleet over every presence: some deregistered, some with an
/// expired lifetime, a third in queue mode with their last uplink minutes
/// ago, the rest recently seen.
async fn spread_presence(app: &TestApp) -> Res<()> {
    let now = flownexus::server::store::now_ms();
    sqlx::query(
        "UPDATE endpoint SET \
         registered = (id % 11 <> 0), \
         queue_mode = (id % 3 = 0), \
         lifetime_s = CASE WHEN id % 13 = 0 THEN 60 ELSE 86400 END, \
         last_registration_at = $1 - (id % 97) * 60000, \
         last_update_at = CASE WHEN id % 2 = 0 THEN $1 - (id % 7) * 60000 ELSE NULL END, \
         last_seen_at = $1 - (id % 89) * 60000",
    )
    .bind(now)
    .execute(&app.state.db.pool)
    .await?;
    Ok(())
}

fn states(n: usize) -> Vec<(&'static str, EndpointListQuery)> {
    let base = EndpointListQuery::default();
    let last_page = n.div_ceil(base.per_page as usize).max(1) as u32;
    vec![
        ("default (last seen, newest first)", base.clone()),
        (
            "by name, page 2",
            EndpointListQuery {
                sort: EndpointSort::Name,
                descending: false,
                page: 2,
                ..base.clone()
            },
        ),
        (
            "by presence",
            EndpointListQuery {
                sort: EndpointSort::Presence,
                descending: true,
                ..base.clone()
            },
        ),
        (
            "search \"ep-012\"",
            EndpointListQuery {
                search: "ep-012".into(),
                ..base.clone()
            },
        ),
        (
            "sleeping only",
            EndpointListQuery {
                presence: Some(Presence::Sleeping),
                ..base.clone()
            },
        ),
        (
            "last page",
            EndpointListQuery {
                page: last_page,
                ..base
            },
        ),
    ]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50, p95 and max of the times, in ms.
fn summary(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    (ms(pct(0.50)), ms(pct(0.95)), ms(*times.last().unwrap()))
}

async fn run(backend: Backend, args: &Args) -> Res<()> {
    println!(
        "\n=== endpoint table benchmark: {backend:?}, {} endpoints",
        args.endpoints
    );
    let app = TestApp::new(backend).await;
    let start = Instant::now();
    register_fleet(&app, args.endpoints).await?;
    let took = start.elapsed();
    println!(
        "  fleet:   {} endpoints registered with object 3 in {:.1} s ({:.0} posts/s)",
        args.endpoints,
        took.as_secs_f64(),
        (2 * args.endpoints) as f64 / took.as_secs_f64()
    );
    spread_presence(&app).await?;
    if backend == Backend::Postgres {
        // What autovacuum would have done by the time anyone looks.
        sqlx::query("ANALYZE").execute(&app.state.db.pool).await?;
    }
    let cookie = app.login_cookie().await;

    println!(
        "  {:<36} {:>6} {:>7}   {:>22}   {:>22}",
        "table state", "rows", "total", "page (SSR) p50/p95/max", "list_page p50/p95/max"
    );
    for (label, query) in states(args.endpoints) {
        let url = format!("/endpoints{}", query.to_query());
        let mut page_times = Vec::with_capacity(args.runs);
        let mut last_html = String::new();
        let mut hung = 0;
        for _ in 0..args.runs {
            let start = Instant::now();
            let Ok((status, _, html)) =
                tokio::time::timeout(PAGE_TIMEOUT, app.get_page(&url, Some(&cookie))).await
            else {
                hung += 1;
                continue;
            };
            page_times.push(start.elapsed());
            if !status.is_success() {
                return Err(format!("GET {url} answered {status}").into());
            }
            last_html = html;
        }
        if page_times.is_empty() {
            return Err(format!("GET {url}: every render hung").into());
        }
        let mut db_times = Vec::with_capacity(args.runs);
        let mut page = None;
        for _ in 0..args.runs {
            let mut conn = app.state.db.pool.acquire().await?;
            let start = Instant::now();
            let p = flownexus::server::db::endpoint::list_page(
                &mut conn,
                &query,
                flownexus::server::store::now_ms(),
            )
            .await?;
            db_times.push(start.elapsed());
            page = Some(p);
        }
        let page = page.expect("at least one run");
        // The page must show what the query found: every listed row's
        // name is in the HTML.
        if let Some(missing) = page
            .rows
            .iter()
            .find(|r| !last_html.contains(&r.summary.name))
        {
            return Err(format!("{url}: {} not rendered", missing.summary.name).into());
        }
        let (p50, p95, max) = summary(page_times);
        let (d50, d95, dmax) = summary(db_times);
        println!(
            "  {label:<36} {:>6} {:>7}   {p50:>6.1} /{p95:>6.1} /{max:>6.1}   {d50:>6.1} /{d95:>6.1} /{dmax:>6.1}{}",
            page.rows.len(),
            page.total,
            if hung > 0 { format!("   ({hung} renders hung)") } else { String::new() },
        );
    }
    println!(
        "  (ms; {} runs per state, server and client in one process)",
        args.runs
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut failed = false;
    for &backend in &args.backends {
        if let Err(e) = run(backend, &args).await {
            println!("  FAILED {backend:?}: {e}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
