//! Rejected-request accounting and `GET /api/v1/metrics` (Prometheus text).
use super::authorize_api;
use crate::error::{AppError, RejectionReason};
use crate::server::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The client-error statuses counted one by one; others count as "other".
const COUNTED: [u16; 9] = [400, 401, 403, 404, 405, 413, 415, 422, 429];

/// Rejected device API, data API and server-function requests, by status.
#[derive(Debug, Default)]
pub struct Rejections {
    by_status: [AtomicU64; COUNTED.len()],
    other: AtomicU64,
}

impl Rejections {
    pub fn record(&self, status: u16) {
        match COUNTED.iter().position(|s| *s == status) {
            Some(i) => self.by_status[i].fetch_add(1, Ordering::Relaxed),
            None => self.other.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// (status label, count) for every status, "other" last.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        COUNTED
            .iter()
            .zip(&self.by_status)
            .map(|(s, n)| (s.to_string(), n.load(Ordering::Relaxed)))
            .chain([("other".to_string(), self.other.load(Ordering::Relaxed))])
            .collect()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|(_, n)| n).sum()
    }
}

fn is_counted(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/leshan_api/") || path.starts_with("/sfn/")
}

/// The longest request value (a path, an origin) written to the log whole.
pub const MAX_LOGGED_CHARS: usize = 200;

/// `value` as written to the log: whole up to `MAX_LOGGED_CHARS`, else its
/// start, an ellipsis and its length, so that a client cannot fill the log
/// with one long path.
pub fn truncate_for_log(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(MAX_LOGGED_CHARS) {
        None => value.into(),
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()).into(),
    }
}

/// Logs every client error as a warning with its path and reason, and
/// counts those of the device API, the data API and the server functions.
pub async fn log_rejections(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    if status.is_client_error() {
        let reason = response
            .extensions()
            .get::<RejectionReason>()
            .map(|r| r.0.as_str())
            .unwrap_or("");
        let shown = truncate_for_log(&path);
        let reason = truncate_for_log(reason);
        tracing::warn!(%method, path = %shown, status = status.as_u16(), reason = %reason, "rejected request");
        if is_counted(&path) {
            state.rejections.record(status.as_u16());
        }
    }
    response
}

/// Ingest and rejection counters since start, in the Prometheus text format.
///
/// Counts stored uplinks, values and group commits, device API, data API
/// and server-function requests answered with a client error, by status,
/// connections the server closed (refused per address, timed out), and on
/// SQLite the
/// write-ahead log's restarts.
#[utoipa::path(
    get,
    path = "/api/v1/metrics",
    tag = "system",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "No valid API token or session", body = super::openapi::ErrorBody),
        (status = 403, description = "A device token", body = super::openapi::ErrorBody),
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize_api(&state, &headers).await?;
    let w = &state.writer.stats;
    let mut out = String::new();
    let counters = [
        (
            "flownexus_ingest_requests_total",
            "Uplink requests stored.",
            &w.requests,
        ),
        ("flownexus_ingest_rows_total", "Values stored.", &w.rows),
        (
            "flownexus_ingest_commits_total",
            "Group commits.",
            &w.batches,
        ),
        (
            "flownexus_ingest_failed_commits_total",
            "Group commits that failed and were retried request by request.",
            &w.failed_batches,
        ),
        (
            "flownexus_ingest_device_times_refused_total",
            "Values whose device time was before 2000 or more than 5 minutes ahead, stored with their receive time.",
            &w.device_times_refused,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
    // SQLite only: how often the checkpoint task held the writers at the
    // gate so that the log could start over (see `store::sqlite::wal`).
    if let Some(wal) = &state.db.wal {
        let name = "flownexus_sqlite_wal_restarts_total";
        let _ = writeln!(
            out,
            "# HELP {name} Times the SQLite write-ahead log was copied whole so that it could start over.\n# TYPE {name} counter\n{name} {}",
            wal.restarts()
        );
        let name = "flownexus_sqlite_wal_hurried_restarts_total";
        let _ = writeln!(
            out,
            "# HELP {name} Restarts of the SQLite write-ahead log that held the ingest writer for the whole copy, because the log filled faster than it was copied (raise sqlite_wal_limit_mib).\n# TYPE {name} counter\n{name} {}",
            wal.hurried_restarts()
        );
    }
    let c = &state.connections;
    let name = "flownexus_http_connections_refused_total";
    let _ = writeln!(
        out,
        "# HELP {name} Connections closed at accept: their address held http_max_connections_per_ip already.\n# TYPE {name} counter\n{name} {}",
        c.refused_per_ip.load(Ordering::Relaxed)
    );
    let name = "flownexus_http_connections_timed_out_total";
    let _ = writeln!(
        out,
        "# HELP {name} Connections closed waiting for a request head (http_header_timeout_secs) or for a request (http_idle_timeout_secs).\n# TYPE {name} counter\n{name}{{wait=\"head\"}} {}\n{name}{{wait=\"idle\"}} {}",
        c.header_timeouts.load(Ordering::Relaxed),
        c.idle_timeouts.load(Ordering::Relaxed)
    );
    if let Some(lwm2m) = state.lwm2m.get() {
        let counters = lwm2m.stats.snapshot(lwm2m.registered());
        let name = "flownexus_lwm2m_registered";
        let _ = writeln!(
            out,
            "# HELP {name} LwM2M clients registered with the native server.\n# TYPE {name} gauge\n{name} {}",
            counters.registered
        );
        for (suffix, help, value) in counters.named() {
            let name = format!("flownexus_lwm2m_{suffix}_total");
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        lwm2m.stats.commit_latency.write_prometheus(
            &mut out,
            "flownexus_lwm2m_notification_commit_seconds",
            "Stored notifications: from the kernel's receipt of the datagram to its acknowledgement (or, non-confirmable, to the end of the commit that holds its values).",
        );
    }
    let name = "flownexus_rejected_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} Device API, data API and server-function requests answered with a client error.\n# TYPE {name} counter"
    );
    for (status, n) in state.rejections.snapshot() {
        let _ = writeln!(out, "{name}{{status=\"{status}\"}} {n}");
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_for_the_log() {
        assert_eq!(truncate_for_log("/api/v1/x"), "/api/v1/x");
        let exact = "a".repeat(MAX_LOGGED_CHARS);
        assert_eq!(truncate_for_log(&exact), exact);
        let long = format!("/{}", "é".repeat(65_000));
        let shown = truncate_for_log(&long);
        assert!(shown.chars().count() < MAX_LOGGED_CHARS + 30, "{shown}");
        assert!(shown.starts_with("/éé"));
        assert!(
            shown.ends_with(&format!("… ({} bytes)", long.len())),
            "{shown}"
        );
    }
}
