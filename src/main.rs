use clap::Parser;
use flownexus::server::cli::{self, Cli};
use flownexus::server::config::{lower_this_thread, Settings};
use tracing_subscriber::EnvFilter;

/// jemalloc is the process's allocator, for Rust and for SQLite's C code
/// (it replaces `malloc` itself). With glibc's malloc the ingest writer
/// slept on arena locks shared with the runtime's threads (a fifth of its
/// context switches at full CoAP load were `__lll_lock_wait_private`), and
/// malloc and free were about a tenth of the server's CPU; jemalloc's
/// per-thread caches and arenas avoid both (docs/benchmarks.md). Its
/// background thread returns freed pages to the system after about 10 s,
/// also when the server is idle, so a burst of large requests does not
/// leave the resident size at its peak (`tools/perf/hostile_load.py`
/// measures it).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FLOWNEXUS_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            std::process::exit(2);
        }
    };
    // The runtime's threads serve HTTP at a lower priority than the ingest
    // writer's thread, which this (main) thread starts (see
    // `lower_this_thread`).
    let nice = settings.http_thread_nice;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || lower_this_thread(nice))
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(cli::run(cli, settings));
    std::process::exit(code);
}
