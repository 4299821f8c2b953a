//! Types shared by the server and the browser: what server functions return,
//! what the live websocket carries, and the LwM2M value model.
pub mod admin;
pub mod api;
pub mod endpoint;
pub mod firmware;
pub mod live;
pub mod lwm2m;
pub mod presence;
pub mod user;

pub use admin::*;
pub use api::*;
pub use endpoint::*;
pub use firmware::*;
pub use live::*;
pub use lwm2m::*;
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

#[cfg(test)]
mod tests {
    #[test]
    fn formats_epoch_ms_in_utc() {
        assert_eq!(
            super::format_time(1_717_171_717_171),
            "2024-05-31 16:08:37 UTC"
        );
    }
}
