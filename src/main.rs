use clap::Parser;
use flownexus::server::cli::{self, Cli};
use flownexus::server::config::{lower_this_thread, Settings};
use tracing_subscriber::EnvFilter;

fn main() {
    flownexus::server::memory::configure_allocator();
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
