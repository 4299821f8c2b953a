//! The command line: `serve` (default), `migrate`, `user`, `token`,
//! `device`, `simulate`.
use super::auth;
use super::config::Settings;
use super::db::{self, api_token::Scope};
use super::state::AppState;
use super::store::{now_ms, Db};
use crate::model::Role;
use clap::{Parser, Subcommand};
use std::io::{BufRead, Write};

#[derive(Parser, Debug)]
#[command(
    name = "flownexus",
    version,
    about = "LwM2M device management and telemetry server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and seed resource types, then exit.
    Migrate,
    /// Manage dashboard users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage device and API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Provision LwM2M devices for the native LwM2M server.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Run simulated LwM2M 1.1 devices against an LwM2M server.
    Simulate(SimulateArgs),
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// How many devices.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// The LwM2M server, coap://host:port.
    #[arg(long, default_value = "coap://127.0.0.1:5683")]
    pub server: String,
    /// Endpoint names are <prefix><index>.
    #[arg(long, default_value = "sim-")]
    pub endpoint_prefix: String,
    /// Index of the first device (several simulators on one server).
    #[arg(long, default_value_t = 0)]
    pub first_index: usize,
    /// Registration lifetime in seconds.
    #[arg(long, default_value_t = 300)]
    pub lifetime: u32,
    /// Queue mode: the devices sleep between wakes.
    #[arg(long)]
    pub queue_mode: bool,
    /// Queue mode: seconds a device stays reachable after it wakes.
    #[arg(long, default_value_t = 10)]
    pub awake: u64,
    /// Queue mode: seconds a device sleeps between wakes.
    #[arg(long, default_value_t = 60)]
    pub sleep: u64,
    /// Seconds between the sensors' new values (observed ones notify).
    #[arg(long, default_value_t = 5.0)]
    pub notify_every: f64,
    /// Seconds between LwM2M Sends of the sensor values (none if unset).
    #[arg(long)]
    pub send_every: Option<f64>,
    /// Format of answers without an Accept option.
    #[arg(long, default_value = "senml-cbor", value_parser = ["senml-cbor", "senml-json", "tlv", "cbor"])]
    pub format: String,
    /// Non-confirmable notifications instead of confirmable ones.
    #[arg(long)]
    pub non_notifications: bool,
    /// Registrations started per second (0: all at once).
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// Stop after this many seconds (otherwise at Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Seed of the devices' values.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The firmware version the devices start with.
    #[arg(long, default_value = "1.0.0")]
    pub firmware_version: String,
}

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Let an endpoint register over plain CoAP (security mode "no
    /// security"). Needed unless lwm2m_nosec = "open".
    Add {
        /// The endpoint client name the device registers with (`ep`).
        endpoint: String,
    },
    /// List provisioned devices.
    List,
    /// Remove a device's credential; it can no longer register.
    Remove { endpoint: String },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user. Prints a generated password unless --password-stdin.
    Add {
        username: String,
        #[arg(long, default_value = "operator", value_parser = ["admin", "operator", "viewer"])]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password and end their sessions. Prints a generated
    /// password unless --password-stdin.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    Create {
        /// What the token is for, e.g. "leshan-prod".
        #[arg(long)]
        name: String,
        /// device: may post telemetry; api: the whole REST API.
        #[arg(long, default_value = "device", value_parser = ["device", "api"])]
        scope: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli, settings: Settings) -> i32 {
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => open_db(&settings).await.map(|_| {
            tracing::info!(database = %redact(&settings.database_url), "database is up to date");
        }),
        Command::User(cmd) => user(settings, cmd).await,
        Command::Token(cmd) => token(settings, cmd).await,
        Command::Device(cmd) => device(settings, cmd).await,
        Command::Simulate(args) => simulate(args).await,
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            1
        }
    }
}

type CliResult = Result<(), String>;

async fn open_db(settings: &Settings) -> Result<Db, String> {
    db::seed::open(&settings.database_url, settings.store_options())
        .await
        .map_err(|e| e.to_string())
}

/// The database URL without a password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Command output for the operator (not a log line).
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

async fn serve(settings: Settings) -> CliResult {
    let db = open_db(&settings).await?;
    tracing::info!(database = %redact(&settings.database_url), "database ready");
    match auth::ensure_admin(&db.pool, settings.admin_password.as_deref()).await {
        Ok(Some(password)) => {
            tracing::warn!("created the first user: admin");
            say(&format!(
                "\n  First start: created user \"admin\" with password\n\n      {password}\n\n  It is shown only now. Change it with: flownexus user passwd admin\n"
            ));
        }
        Ok(None) => {}
        Err(e) => return Err(format!("cannot create the admin user: {e}")),
    }
    // Uploads also create it, but a directory that cannot be created should
    // stop the start, not the first upload.
    std::fs::create_dir_all(&settings.firmware_dir).map_err(|e| {
        format!(
            "invalid setting firmware_dir: cannot create {}: {e}",
            settings.firmware_dir.display()
        )
    })?;
    let listen = settings.listen_addr;
    let public = settings.public_base_url.clone();
    let admin_from_env = settings.admin_password.is_some();
    super::retention::spawn(db.clone(), settings.retention_days);
    let state = AppState::new(db, settings)
        .await
        .map_err(|e| e.to_string())?;
    super::rollup::spawn(state.db.clone(), state.rollup_feed.clone());
    super::dispatch::spawn(&state);
    if let Some(addr) = state.settings.lwm2m_coap_addr {
        let handle = super::lwm2m::start(state.clone(), addr)
            .await
            .map_err(|e| {
                format!("invalid setting lwm2m_coap_addr: cannot listen on {addr}: {e}")
            })?;
        let _ = state.lwm2m.set(handle);
    }
    let limits = super::http_server::HttpLimits::from_settings(&state.settings);
    let connections = state.connections.clone();
    let app = super::router::build(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, "flownexus listening");
    say(&format!(
        "flownexus is running at {public}/\n  Sign in as \"admin\" with the password printed at first start{}.",
        if admin_from_env { " (FLOWNEXUS_ADMIN_PASSWORD)" } else { "" }
    ));
    super::http_server::serve(listener, app, limits, connections, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

fn password_input(from_stdin: bool) -> Result<(String, bool), String> {
    if !from_stdin {
        return Ok((auth::random_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    auth::validate_password(&password).map_err(|e| e.to_string())?;
    Ok((password, false))
}

async fn user(settings: Settings, cmd: UserCommand) -> CliResult {
    let db = open_db(&settings).await?;
    match cmd {
        UserCommand::Add {
            username,
            role,
            password_stdin,
        } => {
            let role = Role::parse(&role).ok_or("unknown role")?;
            let (password, generated) = password_input(password_stdin)?;
            auth::create_user(&db.pool, &username, &password, role)
                .await
                .map_err(|e| e.to_string())?;
            let username = username.trim();
            say(&format!("created user {username} ({})", role.as_str()));
            if generated {
                say(&format!("password: {password}"));
            }
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let (password, generated) = password_input(password_stdin)?;
            let user = db::users::find_by_username(&db.pool, &username)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user {username:?}"))?;
            auth::reset_password(&db.pool, user.id, &password)
                .await
                .map_err(|e| e.to_string())?;
            say(&format!(
                "password of {username} changed; their sessions ended"
            ));
            if generated {
                say(&format!("password: {password}"));
            }
        }
    }
    Ok(())
}

async fn token(settings: Settings, cmd: TokenCommand) -> CliResult {
    let db = open_db(&settings).await?;
    match cmd {
        TokenCommand::Create { name, scope } => {
            let scope = Scope::parse(&scope).ok_or("unknown scope")?;
            let (id, token) = auth::create_token(&db.pool, &name, scope)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(id, name, scope = scope.as_str(), "token created");
            say(&token);
        }
        TokenCommand::List => {
            let tokens = db::api_token::list(&db.pool)
                .await
                .map_err(|e| e.to_string())?;
            say(&format!(
                "{:>4}  {:<24} {:<7} {:<12} {:<24} {:<24} status",
                "id", "name", "scope", "prefix", "created", "last used"
            ));
            for t in tokens {
                say(&format!(
                    "{:>4}  {:<24} {:<7} {:<12} {:<24} {:<24} {}",
                    t.id,
                    t.name,
                    t.scope.as_str(),
                    format!("{}…", t.token_prefix),
                    crate::model::format_time(t.created_at),
                    t.last_used_at
                        .map(crate::model::format_time)
                        .unwrap_or_else(|| "never".into()),
                    if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                ));
            }
        }
        TokenCommand::Revoke { id } => {
            if !db::api_token::revoke(&db.pool, id, now_ms())
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no active token with id {id}"));
            }
            say(&format!(
                "token {id} revoked (running servers refuse it within {} s)",
                super::auth::TOKEN_CACHE_TTL.as_secs()
            ));
        }
    }
    Ok(())
}

async fn device(settings: Settings, cmd: DeviceCommand) -> CliResult {
    use super::db::device_credential;
    let db = open_db(&settings).await?;
    match cmd {
        DeviceCommand::Add { endpoint } => {
            super::lwm2m::registration::validate_endpoint(&endpoint)
                .map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
            device_credential::set_nosec(&db.pool, &endpoint, None, now_ms())
                .await
                .map_err(|e| e.to_string())?;
            say(&format!(
                "{endpoint} may register over plain CoAP (no security)"
            ));
        }
        DeviceCommand::List => {
            let devices = device_credential::list(&db.pool)
                .await
                .map_err(|e| e.to_string())?;
            say(&format!("{:<40} {:<8} provisioned", "endpoint", "security"));
            for d in devices {
                say(&format!(
                    "{:<40} {:<8} {}",
                    d.endpoint_name,
                    d.security_mode.as_str(),
                    crate::model::format_time(d.created_at)
                ));
            }
        }
        DeviceCommand::Remove { endpoint } => {
            if !device_credential::delete(&db.pool, &endpoint)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no provisioned device {endpoint:?}"));
            }
            say(&format!(
                "{endpoint} removed; its next registration is refused"
            ));
        }
    }
    Ok(())
}

/// The `coap://host[:port]` of `--server`, resolved.
fn server_address(uri: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let rest = uri
        .strip_prefix("coap://")
        .ok_or_else(|| format!("--server {uri:?}: use coap://host:port"))?;
    let rest = rest.trim_end_matches('/');
    let with_port = if rest
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !rest.ends_with(']')
    {
        rest.to_string()
    } else {
        format!("{rest}:5683")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("--server {uri:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("--server {uri:?}: no address"))
}

async fn simulate(args: SimulateArgs) -> CliResult {
    use super::lwm2m::format::ContentFormat;
    use super::simulate::{run, SimOptions};
    use std::time::Duration;
    let seconds = |s: f64, name: &str| {
        if s.is_finite() && s > 0.0 {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(format!("--{name} must be a positive number of seconds"))
        }
    };
    let options = SimOptions {
        devices: args.devices,
        server: server_address(&args.server)?,
        endpoint_prefix: args.endpoint_prefix,
        first_index: args.first_index,
        lifetime_s: args.lifetime,
        queue_mode: args.queue_mode,
        awake: Duration::from_secs(args.awake),
        sleep: Duration::from_secs(args.sleep),
        notify_every: seconds(args.notify_every, "notify-every")?,
        send_every: args
            .send_every
            .map(|s| seconds(s, "send-every"))
            .transpose()?,
        content_format: match args.format.as_str() {
            "senml-json" => ContentFormat::SenmlJson,
            "tlv" => ContentFormat::Tlv,
            "cbor" => ContentFormat::Cbor,
            _ => ContentFormat::SenmlCbor,
        },
        non_notifications: args.non_notifications,
        rate: args.rate,
        duration: args.duration.map(Duration::from_secs),
        seed: args.seed,
        firmware_version: args.firmware_version,
        ..SimOptions::default()
    };
    say(&format!(
        "simulating {} device(s) against {}; Ctrl-C stops them",
        options.devices, options.server
    ));
    let report = run(options, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    say(&report.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn simulator_server_addresses() {
        assert_eq!(
            super::server_address("coap://127.0.0.1:5699").unwrap(),
            "127.0.0.1:5699".parse().unwrap()
        );
        assert_eq!(
            super::server_address("coap://127.0.0.1").unwrap(),
            "127.0.0.1:5683".parse().unwrap()
        );
        assert!(super::server_address("http://127.0.0.1").is_err());
    }

    #[test]
    fn redacts_database_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
