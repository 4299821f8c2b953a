//! Runtime settings: `Leptos.toml`'s `[flownexus]` table, each key overridden
//! by an environment variable `FLOWNEXUS_<KEY>`. Loaded once at start and
//! passed down as one typed `Settings`.
use crate::server::store;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Who may post to the device ingest endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestAuth {
    /// A device or API bearer token is required (the default).
    Token,
    /// Anyone who can reach the server may post telemetry. Only for closed
    /// networks; the operator must choose it explicitly.
    Open,
}

/// Who may register with the native LwM2M server over plain CoAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NosecPolicy {
    /// Only endpoints an operator provisioned with security mode "no
    /// security" (the default).
    Provisioned,
    /// Any endpoint. Only for closed networks and demos; the operator must
    /// choose it explicitly.
    Open,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub firmware_dir: PathBuf,
    pub public_base_url: String,
    pub lwm2m_rest_url: String,
    pub ingest_auth: IngestAuth,
    /// Days of telemetry to keep; 0 keeps everything.
    pub retention_days: u32,
    pub max_body_bytes: usize,
    /// Largest accepted firmware image, in bytes. Separate from
    /// `max_body_bytes`: images are streamed to disk, never held in memory.
    pub firmware_max_bytes: u64,
    pub session_ttl_hours: u32,
    /// Where cargo-leptos put the compiled site (pkg/, assets).
    pub site_root: PathBuf,
    /// Initial admin password for an empty database; random if unset.
    pub admin_password: Option<String>,
    /// The dispatcher's timeout for one call to the LwM2M server.
    pub command_timeout_secs: u64,
    /// Sends of a command (timeouts, 5xx) before it is failed.
    pub command_max_attempts: u32,
    /// A firmware update without progress for this long is timed out.
    pub firmware_update_timeout_minutes: u64,
    /// Nice value of the threads that serve HTTP (0 to 19; 0 leaves them
    /// as they are). See `lower_this_thread`.
    pub http_thread_nice: i32,
    /// Origins, besides the server's own, whose pages may send requests
    /// that a session cookie authenticates (see `origin_check`). Each is
    /// `scheme://host[:port]`, normalized.
    pub allowed_origins: Vec<String>,
    /// SQLite: the size in MiB the write-ahead log file is kept under
    /// (`store::sqlite::wal`).
    pub sqlite_wal_limit_mib: u64,
    /// Seconds a request's head may take to arrive: from the accept on a
    /// new connection, from its first byte on a kept-alive one.
    pub http_header_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    pub http_idle_timeout_secs: u64,
    /// Open connections one source address may hold; 0: no cap.
    pub http_max_connections_per_ip: u32,
    /// The native LwM2M server's CoAP/UDP address; None: no LwM2M server.
    pub lwm2m_coap_addr: Option<SocketAddr>,
    /// Who may register over plain CoAP.
    pub lwm2m_nosec: NosecPolicy,
    /// The `coap://host:port` devices reach the LwM2M server at: firmware
    /// package URIs of updates over CoAP are built from it. None: the
    /// address the LwM2M server is bound to (no LwM2M server: no CoAP
    /// downloads).
    pub lwm2m_public_coap_url: Option<String>,
    /// Registrations one source address may hold at once (many devices
    /// can share one address behind a NAT).
    pub lwm2m_max_registrations_per_ip: u32,
    /// Registrations the server holds at most.
    pub lwm2m_max_registrations: u32,
    /// Requests (registrations, updates, Sends, downloads) handled at once
    /// at most; past it a request is answered 5.03 with a Max-Age to retry
    /// after.
    pub lwm2m_max_requests_in_progress: u32,
    /// What the server observes on every client after it registers (the
    /// paths of objects the client has).
    pub lwm2m_observe: Vec<crate::server::lwm2m::format::LwPath>,
}

/// The file form; every field optional so that environment variables and
/// defaults fill the gaps.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen_addr: Option<String>,
    database_url: Option<String>,
    data_dir: Option<String>,
    firmware_dir: Option<String>,
    public_base_url: Option<String>,
    lwm2m_rest_url: Option<String>,
    ingest_auth: Option<String>,
    retention_days: Option<u32>,
    max_body_bytes: Option<usize>,
    firmware_max_bytes: Option<u64>,
    session_ttl_hours: Option<u32>,
    site_root: Option<String>,
    command_timeout_secs: Option<u64>,
    command_max_attempts: Option<u32>,
    firmware_update_timeout_minutes: Option<u64>,
    http_thread_nice: Option<u32>,
    allowed_origins: Option<String>,
    sqlite_wal_limit_mib: Option<u64>,
    http_header_timeout_secs: Option<u64>,
    http_idle_timeout_secs: Option<u64>,
    http_max_connections_per_ip: Option<u32>,
    lwm2m_coap_addr: Option<String>,
    lwm2m_nosec: Option<String>,
    lwm2m_public_coap_url: Option<String>,
    lwm2m_max_registrations_per_ip: Option<u32>,
    lwm2m_max_registrations: Option<u32>,
    lwm2m_max_requests_in_progress: Option<u32>,
    lwm2m_observe: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct LeptosToml {
    #[serde(default)]
    flownexus: FileSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("invalid {0}: {1}")]
    Parse(String, String),
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// `firmware_max_bytes` unless configured: 16 MiB.
pub const DEFAULT_FIRMWARE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Bounds of `sqlite_wal_limit_mib`. Below 4 MiB the log would start over
/// (and hold the writer for its last copy) every few hundred commits.
const MIN_WAL_LIMIT_MIB: u64 = 4;
const MAX_WAL_LIMIT_MIB: u64 = 65_536;

/// `http_thread_nice` unless configured: the threads are left as they are.
pub const DEFAULT_HTTP_THREAD_NICE: u64 = 0;

/// `http_header_timeout_secs` unless configured: a client on a slow link
/// sends a head (a few hundred bytes) in well under a second.
pub const DEFAULT_HTTP_HEADER_TIMEOUT_SECS: u64 = 10;

/// `http_idle_timeout_secs` unless configured: long enough that a client
/// posting every few seconds (an LwM2M server forwarding uplinks, a
/// dashboard) keeps its connection.
pub const DEFAULT_HTTP_IDLE_TIMEOUT_SECS: u64 = 60;

/// `http_max_connections_per_ip` unless configured: far above what one
/// browser (6 per host) or an LwM2M server's client pool opens, far below
/// what exhausts the server's file descriptors.
pub const DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP: u64 = 64;

/// `lwm2m_coap_addr` unless configured: loopback, like the HTTP listener;
/// an operator binds 0.0.0.0:5683 for a fleet.
pub const DEFAULT_LWM2M_COAP_ADDR: &str = "127.0.0.1:5683";

/// `lwm2m_max_registrations_per_ip` unless configured: a carrier NAT puts
/// many devices behind one address, while one host spoofing endpoint names
/// must not fill the registration table.
pub const DEFAULT_LWM2M_MAX_REGISTRATIONS_PER_IP: u64 = 1_000;

/// `lwm2m_observe` unless configured: temperature and humidity, and the
/// firmware update's state and result, which update tracking follows.
pub const DEFAULT_LWM2M_OBSERVE: &str = "/3303/0/5700,/3304/0/5700,/5/0/3,/5/0/5";

/// `lwm2m_max_registrations` unless configured.
pub const DEFAULT_LWM2M_MAX_REGISTRATIONS: u64 = 100_000;

/// `lwm2m_max_requests_in_progress` unless configured: a task and a
/// request's bytes each, a few MiB in all, and well above what a fleet's
/// registration burst keeps waiting on the database at once.
pub const DEFAULT_LWM2M_MAX_REQUESTS_IN_PROGRESS: u64 = 4_096;

/// Lowers the calling thread's scheduling priority to `nice`, if it is
/// not that low already (Linux: the nice value is per thread). The HTTP
/// runtime's threads call it when they start.
///
/// Why an operator may want it: every ingest request waits for the one
/// writer thread, and on a busy machine with few cores the writer can wait
/// on the run queue behind request parsing. At a lower priority the HTTP
/// threads give way as soon as the writer wakes. Lowering a priority needs
/// no privilege; raising the writer's would. Off by default: renicing a
/// server's own threads is the choice of whoever runs it on a small box.
pub fn lower_this_thread(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority and setpriority only read their integer
        // arguments; who 0 is the calling thread.
        let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        if nice <= current {
            return; // already as low (a server started with `nice`)
        }
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if rc != 0 {
            tracing::warn!(nice, error = %std::io::Error::last_os_error(), "cannot lower the thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The environment variable names, in one place for the README and `--help`.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "FLOWNEXUS_CONFIG",
        "path of the settings file (default Leptos.toml)",
    ),
    ("FLOWNEXUS_LISTEN_ADDR", "listen address"),
    ("FLOWNEXUS_DATABASE_URL", "database URL"),
    ("FLOWNEXUS_DATA_DIR", "data directory"),
    ("FLOWNEXUS_FIRMWARE_DIR", "firmware directory"),
    ("FLOWNEXUS_PUBLIC_BASE_URL", "public base URL"),
    ("FLOWNEXUS_LWM2M_REST_URL", "LwM2M server REST base URL"),
    (
        "FLOWNEXUS_COMMAND_TIMEOUT_SECS",
        "timeout of one call to the LwM2M server",
    ),
    (
        "FLOWNEXUS_COMMAND_MAX_ATTEMPTS",
        "sends of a command before it fails",
    ),
    (
        "FLOWNEXUS_FIRMWARE_UPDATE_TIMEOUT_MINUTES",
        "firmware update without progress this long: timed out",
    ),
    ("FLOWNEXUS_INGEST_AUTH", "token or open"),
    (
        "FLOWNEXUS_RETENTION_DAYS",
        "days of telemetry kept, 0 = forever",
    ),
    ("FLOWNEXUS_MAX_BODY_BYTES", "largest accepted request body"),
    (
        "FLOWNEXUS_FIRMWARE_MAX_BYTES",
        "largest accepted firmware image",
    ),
    ("FLOWNEXUS_SESSION_TTL_HOURS", "login session lifetime"),
    (
        "FLOWNEXUS_HTTP_THREAD_NICE",
        "nice value of the HTTP threads (0-19)",
    ),
    (
        "FLOWNEXUS_SQLITE_WAL_LIMIT_MIB",
        "SQLite: the WAL file is kept under this many MiB",
    ),
    (
        "FLOWNEXUS_HTTP_HEADER_TIMEOUT_SECS",
        "seconds a request's head may take to arrive",
    ),
    (
        "FLOWNEXUS_HTTP_IDLE_TIMEOUT_SECS",
        "seconds a kept-alive connection may wait for a request",
    ),
    (
        "FLOWNEXUS_HTTP_MAX_CONNECTIONS_PER_IP",
        "open connections per source address, 0 = no cap",
    ),
    (
        "FLOWNEXUS_LWM2M_COAP_ADDR",
        "native LwM2M server's CoAP/UDP address, \"off\" = none",
    ),
    (
        "FLOWNEXUS_LWM2M_NOSEC",
        "provisioned or open: who may register over plain CoAP",
    ),
    (
        "FLOWNEXUS_LWM2M_PUBLIC_COAP_URL",
        "coap://host:port devices reach the LwM2M server at (firmware over CoAP)",
    ),
    (
        "FLOWNEXUS_LWM2M_MAX_REGISTRATIONS_PER_IP",
        "LwM2M registrations one source address may hold",
    ),
    (
        "FLOWNEXUS_LWM2M_OBSERVE",
        "paths observed on every LwM2M client (comma-separated), \"none\" = none",
    ),
    (
        "FLOWNEXUS_LWM2M_MAX_REGISTRATIONS",
        "LwM2M registrations the server holds at most",
    ),
    ("FLOWNEXUS_SITE_ROOT", "compiled site directory"),
    (
        "FLOWNEXUS_ALLOWED_ORIGINS",
        "extra origins allowed to send cookie-authenticated requests (comma-separated)",
    ),
    (
        "FLOWNEXUS_ADMIN_PASSWORD",
        "first admin's password (else random, printed once)",
    ),
];

impl Settings {
    /// Loads `FLOWNEXUS_CONFIG` or `Leptos.toml` (missing file = defaults),
    /// then applies environment overrides.
    pub fn load() -> Result<Settings, ConfigError> {
        let path = std::env::var("FLOWNEXUS_CONFIG").unwrap_or_else(|_| "Leptos.toml".into());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(ConfigError::Read(path, e)),
        };
        Settings::from_sources(&text, &path, |k| std::env::var(k).ok())
    }

    /// Builds settings from the file's text and an environment lookup.
    pub fn from_sources(
        toml_text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file: LeptosToml = toml::from_str(toml_text)
            .map_err(|e| ConfigError::Parse(origin.into(), e.to_string()))?;
        let f = file.flownexus;
        let pick = |key: &str, file_value: Option<String>| -> Option<String> {
            env(&format!("FLOWNEXUS_{key}"))
                .filter(|v| !v.is_empty())
                .or(file_value.filter(|v| !v.is_empty()))
        };
        // `key` is the setting's name (errors name it as in Leptos.toml);
        // its variable is FLOWNEXUS_<KEY>.
        let parse_num =
            |key: &'static str, file_value: Option<String>| -> Result<Option<u64>, ConfigError> {
                pick(&key.to_uppercase(), file_value)
                    .map(|v| {
                        v.parse::<u64>().map_err(|_| ConfigError::Invalid {
                            key,
                            reason: format!("{v:?} is not a non-negative integer"),
                        })
                    })
                    .transpose()
            };
        // A number setting with its default and the range it must lie in.
        let bounded = |key: &'static str,
                       file_value: Option<u64>,
                       default: u64,
                       range: std::ops::RangeInclusive<u64>|
         -> Result<u64, ConfigError> {
            let v = parse_num(key, file_value.map(|v| v.to_string()))?.unwrap_or(default);
            if !range.contains(&v) {
                let reason = if *range.end() == u64::MAX {
                    format!("must be at least {}", range.start())
                } else {
                    format!("must be between {} and {}", range.start(), range.end())
                };
                return Err(ConfigError::Invalid { key, reason });
            }
            Ok(v)
        };

        let listen_raw =
            pick("LISTEN_ADDR", f.listen_addr).unwrap_or_else(|| "127.0.0.1:3000".into());
        let listen_addr: SocketAddr = listen_raw.parse().map_err(|_| ConfigError::Invalid {
            key: "listen_addr",
            reason: format!("{listen_raw:?} is not an address such as 127.0.0.1:3000"),
        })?;
        let data_dir = PathBuf::from(pick("DATA_DIR", f.data_dir).unwrap_or_else(|| "data".into()));
        let database_url = pick("DATABASE_URL", f.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("flownexus.db").display()));
        if store::Backend::from_url(&database_url).is_none() {
            return Err(ConfigError::Invalid {
                key: "database_url",
                reason: format!("{database_url:?}: use sqlite://<file> or postgres://..."),
            });
        }
        let firmware_dir = pick("FIRMWARE_DIR", f.firmware_dir)
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("firmware"));
        let public_base_url = pick("PUBLIC_BASE_URL", f.public_base_url)
            .unwrap_or_else(|| format!("http://{listen_addr}"))
            .trim_end_matches('/')
            .to_string();
        if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "public_base_url",
                reason: format!("{public_base_url:?} must start with http:// or https://"),
            });
        }
        let lwm2m_rest_url = pick("LWM2M_REST_URL", f.lwm2m_rest_url)
            .unwrap_or_else(|| "http://127.0.0.1:8080".into())
            .trim_end_matches('/')
            .to_string();
        // The dispatcher's client speaks plain HTTP: the LwM2M server's REST
        // API is an internal service (put a TLS proxy in front otherwise).
        if !lwm2m_rest_url.starts_with("http://") {
            return Err(ConfigError::Invalid {
                key: "lwm2m_rest_url",
                reason: format!("{lwm2m_rest_url:?} must start with http://"),
            });
        }
        let ingest_auth = match pick("INGEST_AUTH", f.ingest_auth).as_deref() {
            None | Some("token") => IngestAuth::Token,
            Some("open") => IngestAuth::Open,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "ingest_auth",
                    reason: format!("{other:?}: use \"token\" or \"open\""),
                })
            }
        };
        let retention_days = parse_num("retention_days", f.retention_days.map(|v| v.to_string()))?
            .unwrap_or(0) as u32;
        let max_body_bytes = bounded(
            "max_body_bytes",
            f.max_body_bytes.map(|v| v as u64),
            1024 * 1024,
            1024..=u64::MAX,
        )? as usize;
        let firmware_max_bytes = bounded(
            "firmware_max_bytes",
            f.firmware_max_bytes,
            DEFAULT_FIRMWARE_MAX_BYTES,
            1..=u64::MAX,
        )?;
        let session_ttl_hours = parse_num(
            "session_ttl_hours",
            f.session_ttl_hours.map(|v| v.to_string()),
        )?
        .unwrap_or(24 * 7) as u32;
        let site_root = PathBuf::from(
            pick("SITE_ROOT", f.site_root)
                .or_else(|| env("LEPTOS_SITE_ROOT"))
                .unwrap_or_else(|| "target/site".into()),
        );
        let command_timeout_secs =
            bounded("command_timeout_secs", f.command_timeout_secs, 15, 1..=600)?;
        let command_max_attempts = bounded(
            "command_max_attempts",
            f.command_max_attempts.map(u64::from),
            3,
            1..=100,
        )?;
        let http_thread_nice = bounded(
            "http_thread_nice",
            f.http_thread_nice.map(u64::from),
            DEFAULT_HTTP_THREAD_NICE,
            0..=19,
        )?;
        let sqlite_wal_limit_mib = bounded(
            "sqlite_wal_limit_mib",
            f.sqlite_wal_limit_mib,
            store::DEFAULT_WAL_LIMIT_MIB,
            MIN_WAL_LIMIT_MIB..=MAX_WAL_LIMIT_MIB,
        )?;
        let http_header_timeout_secs = bounded(
            "http_header_timeout_secs",
            f.http_header_timeout_secs,
            DEFAULT_HTTP_HEADER_TIMEOUT_SECS,
            1..=3600,
        )?;
        let http_idle_timeout_secs = bounded(
            "http_idle_timeout_secs",
            f.http_idle_timeout_secs,
            DEFAULT_HTTP_IDLE_TIMEOUT_SECS,
            1..=86_400,
        )?;
        let http_max_connections_per_ip = bounded(
            "http_max_connections_per_ip",
            f.http_max_connections_per_ip.map(u64::from),
            DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP,
            0..=1_000_000,
        )?;
        let firmware_update_timeout_minutes = bounded(
            "firmware_update_timeout_minutes",
            f.firmware_update_timeout_minutes,
            60,
            1..=u64::MAX,
        )?;
        // An empty value in the file, or "off", turns the LwM2M server off
        // (an empty environment variable is no override, as for every key).
        let lwm2m_coap_addr = match env("FLOWNEXUS_LWM2M_COAP_ADDR")
            .filter(|v| !v.is_empty())
            .or(f.lwm2m_coap_addr)
            .unwrap_or_else(|| DEFAULT_LWM2M_COAP_ADDR.into())
            .trim()
        {
            "" | "off" => None,
            addr => Some(
                addr.parse::<SocketAddr>()
                    .map_err(|_| ConfigError::Invalid {
                        key: "lwm2m_coap_addr",
                        reason: format!(
                            "{addr:?} is not an address such as 0.0.0.0:5683 (or \"off\")"
                        ),
                    })?,
            ),
        };
        let lwm2m_nosec = match pick("LWM2M_NOSEC", f.lwm2m_nosec).as_deref() {
            None | Some("provisioned") => NosecPolicy::Provisioned,
            Some("open") => NosecPolicy::Open,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "lwm2m_nosec",
                    reason: format!("{other:?}: use \"provisioned\" or \"open\""),
                })
            }
        };
        let lwm2m_public_coap_url = match pick("LWM2M_PUBLIC_COAP_URL", f.lwm2m_public_coap_url)
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
        {
            Some(url) => {
                let host = url.strip_prefix("coap://").unwrap_or_default();
                if host.is_empty() || host.contains(['/', '?', '#']) {
                    return Err(ConfigError::Invalid {
                        key: "lwm2m_public_coap_url",
                        reason: format!(
                            "{url:?} must be coap://<host>[:<port>], such as coap://fx.example:5683"
                        ),
                    });
                }
                Some(url)
            }
            None => lwm2m_coap_addr.map(|addr| format!("coap://{addr}")),
        };
        let lwm2m_max_registrations_per_ip = bounded(
            "lwm2m_max_registrations_per_ip",
            f.lwm2m_max_registrations_per_ip.map(u64::from),
            DEFAULT_LWM2M_MAX_REGISTRATIONS_PER_IP,
            1..=10_000_000,
        )?;
        let lwm2m_max_registrations = bounded(
            "lwm2m_max_registrations",
            f.lwm2m_max_registrations.map(u64::from),
            DEFAULT_LWM2M_MAX_REGISTRATIONS,
            1..=10_000_000,
        )?;
        let lwm2m_max_requests_in_progress = bounded(
            "lwm2m_max_requests_in_progress",
            f.lwm2m_max_requests_in_progress.map(u64::from),
            DEFAULT_LWM2M_MAX_REQUESTS_IN_PROGRESS,
            1..=1_000_000,
        )?;
        let lwm2m_observe = match pick("LWM2M_OBSERVE", f.lwm2m_observe)
            .unwrap_or_else(|| DEFAULT_LWM2M_OBSERVE.into())
            .trim()
        {
            "none" => Vec::new(),
            list => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    crate::server::lwm2m::format::LwPath::parse(p)
                        .filter(|path| !path.is_empty())
                        .ok_or_else(|| ConfigError::Invalid {
                            key: "lwm2m_observe",
                            reason: format!("{p:?} is not an LwM2M path such as /3303/0/5700"),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let allowed_origins = pick("ALLOWED_ORIGINS", f.allowed_origins)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                super::origin_check::parse_allowed_origin(o).ok_or_else(|| ConfigError::Invalid {
                    key: "allowed_origins",
                    reason: format!("{o:?} is not an origin such as https://dashboard.example.com"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Settings {
            listen_addr,
            database_url,
            data_dir,
            firmware_dir,
            public_base_url,
            lwm2m_rest_url,
            ingest_auth,
            retention_days,
            max_body_bytes,
            firmware_max_bytes,
            session_ttl_hours,
            site_root,
            admin_password: env("FLOWNEXUS_ADMIN_PASSWORD").filter(|p| !p.is_empty()),
            command_timeout_secs,
            command_max_attempts: command_max_attempts as u32,
            firmware_update_timeout_minutes,
            http_thread_nice: http_thread_nice as i32,
            allowed_origins,
            sqlite_wal_limit_mib,
            http_header_timeout_secs,
            http_idle_timeout_secs,
            http_max_connections_per_ip: http_max_connections_per_ip as u32,
            lwm2m_coap_addr,
            lwm2m_nosec,
            lwm2m_public_coap_url,
            lwm2m_max_registrations_per_ip: lwm2m_max_registrations_per_ip as u32,
            lwm2m_max_registrations: lwm2m_max_registrations as u32,
            lwm2m_max_requests_in_progress: lwm2m_max_requests_in_progress as u32,
            lwm2m_observe,
        })
    }

    /// Settings for tests: a database URL and a data directory, defaults otherwise.
    pub fn for_tests(database_url: &str, data_dir: &Path) -> Settings {
        let mut s =
            Settings::from_sources("", "test", |_| None).expect("default settings are valid");
        s.database_url = database_url.to_string();
        s.data_dir = data_dir.to_path_buf();
        s.firmware_dir = data_dir.join("firmware");
        // Tests that want the LwM2M server bind it to a port of their own.
        s.lwm2m_coap_addr = None;
        s.lwm2m_public_coap_url = None;
        s
    }

    /// The store's part of the settings.
    pub fn store_options(&self) -> store::StoreOptions {
        store::StoreOptions {
            wal_limit_bytes: self.sqlite_wal_limit_mib << 20,
        }
    }

    /// Whether cookies must be marked Secure.
    pub fn https(&self) -> bool {
        self.public_base_url.starts_with("https://")
    }

    /// The `LeptosOptions` the SSR renderer needs, derived from these settings.
    pub fn leptos_options(&self) -> leptos::config::LeptosOptions {
        leptos::config::LeptosOptions::builder()
            .output_name("flownexus")
            .site_root(self.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(self.listen_addr)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_sources(text, "test", |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_use_sqlite_under_the_data_dir_and_require_tokens() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.database_url, "sqlite://data/flownexus.db");
        assert_eq!(s.ingest_auth, IngestAuth::Token);
        assert_eq!(s.max_body_bytes, 1024 * 1024);
        assert_eq!(s.public_base_url, "http://127.0.0.1:3000");
        assert_eq!(s.firmware_dir, PathBuf::from("data/firmware"));
        assert_eq!(s.firmware_max_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn allowed_origins_are_a_comma_separated_list_of_origins() {
        assert!(load("", &[]).unwrap().allowed_origins.is_empty());
        let s = load(
            "[flownexus]\nallowed_origins = \"https://Dash.example.com/, http://10.0.0.5:8080\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            s.allowed_origins,
            ["https://dash.example.com", "http://10.0.0.5:8080"]
        );
        let s = load("", &[("FLOWNEXUS_ALLOWED_ORIGINS", "https://a.example")]).unwrap();
        assert_eq!(s.allowed_origins, ["https://a.example"]);
        for bad in [
            "dash.example.com",
            "https://x.example/path",
            "null",
            "ftp://x",
        ] {
            let err = load("", &[("FLOWNEXUS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert!(err.to_string().contains("allowed_origins"), "{err}");
        }
    }

    #[test]
    fn the_public_coap_url_is_derived_or_configured_and_validated() {
        let s = load("", &[]).unwrap();
        assert_eq!(
            s.lwm2m_public_coap_url.as_deref(),
            Some("coap://127.0.0.1:5683")
        );
        let s = load(
            "[flownexus]\nlwm2m_public_coap_url = \"coap://fx.example:5683/\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            s.lwm2m_public_coap_url.as_deref(),
            Some("coap://fx.example:5683")
        );
        let s = load(
            "",
            &[("FLOWNEXUS_LWM2M_PUBLIC_COAP_URL", "coap://[2001:db8::1]")],
        )
        .unwrap();
        assert_eq!(
            s.lwm2m_public_coap_url.as_deref(),
            Some("coap://[2001:db8::1]")
        );
        let s = load("", &[("FLOWNEXUS_LWM2M_COAP_ADDR", "off")]).unwrap();
        assert_eq!(s.lwm2m_public_coap_url, None);
        for bad in [
            "http://fx.example",
            "coap://",
            "coap://h/fw",
            "fx.example:5683",
        ] {
            let err = load("", &[("FLOWNEXUS_LWM2M_PUBLIC_COAP_URL", bad)]).unwrap_err();
            assert!(err.to_string().contains("lwm2m_public_coap_url"), "{err}");
        }
    }

    #[test]
    fn firmware_limit_is_configurable_and_validated() {
        let s = load("[flownexus]\nfirmware_max_bytes = 1000\n", &[]).unwrap();
        assert_eq!(s.firmware_max_bytes, 1000);
        let s = load("", &[("FLOWNEXUS_FIRMWARE_MAX_BYTES", "2048")]).unwrap();
        assert_eq!(s.firmware_max_bytes, 2048);
        for bad in ["0", "lots", "-1"] {
            let err = load("", &[("FLOWNEXUS_FIRMWARE_MAX_BYTES", bad)]).unwrap_err();
            assert!(err.to_string().contains("firmware_max_bytes"), "{err}");
        }
    }

    #[test]
    fn http_thread_nice_defaults_to_0_and_is_validated() {
        assert_eq!(load("", &[]).unwrap().http_thread_nice, 0);
        let s = load("[flownexus]\nhttp_thread_nice = 5\n", &[]).unwrap();
        assert_eq!(s.http_thread_nice, 5);
        let s = load("", &[("FLOWNEXUS_HTTP_THREAD_NICE", "19")]).unwrap();
        assert_eq!(s.http_thread_nice, 19);
        for bad in ["20", "-1", "high"] {
            let err = load("", &[("FLOWNEXUS_HTTP_THREAD_NICE", bad)]).unwrap_err();
            assert!(err.to_string().contains("http_thread_nice"), "{err}");
        }
    }

    #[test]
    fn sqlite_wal_limit_defaults_to_32_mib_and_is_validated() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.sqlite_wal_limit_mib, 32);
        assert_eq!(s.store_options().wal_limit_bytes, 32 << 20);
        let s = load("[flownexus]\nsqlite_wal_limit_mib = 8\n", &[]).unwrap();
        assert_eq!(s.store_options().wal_limit_bytes, 8 << 20);
        let s = load("", &[("FLOWNEXUS_SQLITE_WAL_LIMIT_MIB", "100")]).unwrap();
        assert_eq!(s.sqlite_wal_limit_mib, 100);
        for bad in ["0", "3", "65537", "big"] {
            let err = load("", &[("FLOWNEXUS_SQLITE_WAL_LIMIT_MIB", bad)]).unwrap_err();
            assert!(err.to_string().contains("sqlite_wal_limit_mib"), "{err}");
        }
    }

    #[test]
    fn http_connection_bounds_have_defaults_and_are_validated() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.http_header_timeout_secs, 10);
        assert_eq!(s.http_idle_timeout_secs, 60);
        assert_eq!(s.http_max_connections_per_ip, 64);
        let s = load(
            "[flownexus]\nhttp_header_timeout_secs = 3\nhttp_max_connections_per_ip = 0\n",
            &[("FLOWNEXUS_HTTP_IDLE_TIMEOUT_SECS", "5")],
        )
        .unwrap();
        assert_eq!(s.http_header_timeout_secs, 3);
        assert_eq!(s.http_idle_timeout_secs, 5);
        assert_eq!(s.http_max_connections_per_ip, 0);
        for (var, bad) in [
            ("FLOWNEXUS_HTTP_HEADER_TIMEOUT_SECS", "0"),
            ("FLOWNEXUS_HTTP_HEADER_TIMEOUT_SECS", "soon"),
            ("FLOWNEXUS_HTTP_IDLE_TIMEOUT_SECS", "0"),
            ("FLOWNEXUS_HTTP_MAX_CONNECTIONS_PER_IP", "-1"),
        ] {
            let err = load("", &[(var, bad)]).unwrap_err();
            let key = var.trim_start_matches("FLOWNEXUS_").to_lowercase();
            assert!(err.to_string().contains(&key), "{err}");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn lowering_this_thread_sets_its_nice_value_only() {
        let before = current_nice();
        let nice = std::thread::spawn(|| {
            lower_this_thread(7);
            current_nice()
        })
        .join()
        .unwrap();
        assert_eq!(nice, before.max(7), "the spawned thread was lowered");
        assert_eq!(current_nice(), before, "this thread was not");
    }

    /// The calling thread's nice value (`getpriority` can return -1 as a
    /// value: errno tells).
    #[cfg(target_os = "linux")]
    fn current_nice() -> i32 {
        // SAFETY: getpriority only reads its integer arguments.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "[flownexus]\nlisten_addr = \"0.0.0.0:8000\"\ndata_dir = \"/srv/fx\"\ningest_auth = \"open\"\n";
        let s = load(text, &[]).unwrap();
        assert_eq!(s.listen_addr.port(), 8000);
        assert_eq!(s.database_url, "sqlite:///srv/fx/flownexus.db");
        assert_eq!(s.ingest_auth, IngestAuth::Open);
        let s = load(
            text,
            &[
                ("FLOWNEXUS_LISTEN_ADDR", "127.0.0.1:9"),
                ("FLOWNEXUS_INGEST_AUTH", "token"),
            ],
        )
        .unwrap();
        assert_eq!(s.listen_addr.port(), 9);
        assert_eq!(s.ingest_auth, IngestAuth::Token);
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let err = load("", &[("FLOWNEXUS_INGEST_AUTH", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("ingest_auth"), "{err}");
        let err = load("", &[("FLOWNEXUS_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
        let err = load("[flownexus]\nlisten = 1\n", &[]).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn the_shipped_leptos_toml_parses() {
        let text = include_str!("../../Leptos.toml");
        load(text, &[]).unwrap();
    }
}
