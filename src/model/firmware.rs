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

#[cfg(test)]
mod tests {
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
