//! Firmware-update states, shared by the server and the dashboard.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where an over-the-air update stands. The first four are active: the
/// database allows at most one active update per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirmwareUpdateState {
    Pending,
    Downloading,
    Downloaded,
    Updating,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

impl FirmwareUpdateState {
    pub const ACTIVE: [FirmwareUpdateState; 4] = [
        FirmwareUpdateState::Pending,
        FirmwareUpdateState::Downloading,
        FirmwareUpdateState::Downloaded,
        FirmwareUpdateState::Updating,
    ];

    /// The name stored in the database's check constraint.
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareUpdateState::Pending => "pending",
            FirmwareUpdateState::Downloading => "downloading",
            FirmwareUpdateState::Downloaded => "downloaded",
            FirmwareUpdateState::Updating => "updating",
            FirmwareUpdateState::Succeeded => "succeeded",
            FirmwareUpdateState::Failed => "failed",
            FirmwareUpdateState::TimedOut => "timed_out",
            FirmwareUpdateState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<FirmwareUpdateState> {
        [
            FirmwareUpdateState::Pending,
            FirmwareUpdateState::Downloading,
            FirmwareUpdateState::Downloaded,
            FirmwareUpdateState::Updating,
            FirmwareUpdateState::Succeeded,
            FirmwareUpdateState::Failed,
            FirmwareUpdateState::TimedOut,
            FirmwareUpdateState::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }
}

impl fmt::Display for FirmwareUpdateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The meaning of an LwM2M 5/0/5 update result code.
pub fn update_result_text(code: i64) -> &'static str {
    match code {
        0 => "initial",
        1 => "success",
        2 => "not enough storage",
        3 => "out of memory during download",
        4 => "connection lost during download",
        5 => "integrity check failed",
        6 => "unsupported package type",
        7 => "invalid URI",
        8 => "firmware update failed",
        9 => "unsupported protocol",
        _ => "unknown result code",
    }
}

/// An uploaded firmware image, as the API and the firmware page show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FirmwareView {
    pub id: i64,
    /// Unique; what devices report in 3/0/3 once updated.
    #[cfg_attr(feature = "ssr", schema(example = "1.2.3"))]
    pub version: String,
    /// The uploaded file's name (sanitised).
    pub file_name: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the image; also the download's ETag.
    pub sha256: String,
    /// Absolute URL of the image under `/binaries/`, built from the
    /// configured public base URL: what devices are told to download.
    #[cfg_attr(
        feature = "ssr",
        schema(example = "http://127.0.0.1:3000/binaries/1.2.3-0123456789abcdef.bin")
    )]
    pub download_url: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Firmware updates (of any state) that reference it; it can only be
    /// deleted at 0.
    pub updates_count: i64,
}

/// The firmware page: every image, whether the viewer may upload and
/// delete, and the configured size limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirmwareList {
    pub firmware: Vec<FirmwareView>,
    pub can_manage: bool,
    pub max_bytes: u64,
}

/// A byte count for people: "512 B", "1.5 KiB", "16 MiB", "2.3 GiB".
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    // Whole numbers without ".0": the limit reads "16 MiB".
    if (value - value.round()).abs() < 0.05 {
        format!("{:.0} {}", value.round(), UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_counts_read_well() {
        use super::format_bytes;
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1 KiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(16 * 1024 * 1024), "16 MiB");
        assert_eq!(format_bytes(5 * 1024 * 1024 * 1024 / 2), "2.5 GiB");
    }

    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for s in [
            "pending",
            "downloading",
            "downloaded",
            "updating",
            "succeeded",
            "failed",
            "timed_out",
            "cancelled",
        ] {
            assert_eq!(FirmwareUpdateState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(FirmwareUpdateState::parse("done"), None);
        assert!(FirmwareUpdateState::Updating.is_active());
        assert!(!FirmwareUpdateState::Failed.is_active());
    }
}
