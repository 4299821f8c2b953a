//! Types shared by the server and the browser: what server functions return,
//! what the live websocket carries, and the LwM2M value model.
pub mod admin;
pub mod api;
pub mod command;
pub mod endpoint;
pub mod event_query;
pub mod firmware;
pub mod live;
pub mod lwm2m;
pub mod overview;
pub mod presence;
pub mod query;
pub mod user;

pub use admin::*;
pub use api::*;
pub use command::*;
pub use endpoint::*;
pub use event_query::*;
pub use firmware::*;
pub use live::*;
pub use lwm2m::*;
pub use overview::*;
pub use presence::*;
pub use user::*;

/// Milliseconds since the Unix epoch: the one time representation in the
/// database, on the wire and in the UI.
pub type EpochMs = i64;

/// Formats epoch milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(ms: EpochMs) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// How long ago `ms` was, as "just now", "42 s ago", "5 min ago", "3 h ago"
/// or "2 d ago"; "in the future" for clock skew.
pub fn format_ago(now: EpochMs, ms: EpochMs) -> String {
    let secs = (now - ms) / 1000;
    match secs {
        s if s < -5 => "in the future".to_string(),
        s if s < 5 => "just now".to_string(),
        s if s < 60 => format!("{s} s ago"),
        s if s < 3_600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3_600),
        s => format!("{} d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn says_how_long_ago() {
        let now = 1_000_000_000;
        assert_eq!(super::format_ago(now, now - 1_000), "just now");
        assert_eq!(super::format_ago(now, now - 42_000), "42 s ago");
        assert_eq!(super::format_ago(now, now - 150_000), "2 min ago");
        assert_eq!(super::format_ago(now, now - 3 * 3_600_000), "3 h ago");
        assert_eq!(super::format_ago(now, now - 49 * 3_600_000), "2 d ago");
        assert_eq!(super::format_ago(now, now + 60_000), "in the future");
    }

    #[test]
    fn formats_epoch_ms_in_utc() {
        assert_eq!(
            super::format_time(1_717_171_717_171),
            "2024-05-31 16:08:37 UTC"
        );
    }
}
