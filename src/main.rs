use clap::Parser;
use flownexus::server::cli::{self, Cli};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FLOWNEXUS_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = cli::run(Cli::parse()).await;
    std::process::exit(code);
}
