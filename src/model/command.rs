//! Commands for devices (endpoint operations) and firmware updates, as the
//! dashboard, the `/api/v1` routes and the dispatcher see them.
use super::{EpochMs, FirmwareUpdateState};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a command asks the device to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CommandKind {
    /// Write a value to a writable resource (LwM2M Write).
    Write,
    /// Execute an executable resource, e.g. reboot 3/0/4 (LwM2M Execute).
    Execute,
    /// Read an object, instance or resource afresh (LwM2M Read); the answer
    /// is stored like any report.
    Read,
    /// List what an object, instance or resource has, with its attributes
    /// (LwM2M Discover); the link format is kept as the command's answer.
    Discover,
    /// Create an object instance (LwM2M Create): the value is a JSON object
    /// of resource ids to values, e.g. `{"5750": "kitchen"}`.
    Create,
    /// Delete an object instance (LwM2M Delete).
    Delete,
    /// Set or clear notification attributes (LwM2M Write-Attributes): the
    /// value is a query such as `pmin=10&pmax=60&st=0.5`; a name without a
    /// value (`pmin`) clears it.
    #[serde(rename = "write_attributes")]
    WriteAttributes,
    /// Observe one path, or several comma-separated (observe-composite);
    /// the first answer and every notification are stored. Native
    /// devices only.
    Observe,
    /// End an observation of the path (LwM2M Cancel Observation).
    #[serde(rename = "cancel_observe")]
    CancelObserve,
}

impl CommandKind {
    pub const ALL: [CommandKind; 9] = [
        CommandKind::Write,
        CommandKind::Execute,
        CommandKind::Read,
        CommandKind::Discover,
        CommandKind::Create,
        CommandKind::Delete,
        CommandKind::WriteAttributes,
        CommandKind::Observe,
        CommandKind::CancelObserve,
    ];

    /// The name stored in the database's check constraint.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Write => "write",
            CommandKind::Execute => "execute",
            CommandKind::Read => "read",
            CommandKind::Discover => "discover",
            CommandKind::Create => "create",
            CommandKind::Delete => "delete",
            CommandKind::WriteAttributes => "write_attributes",
            CommandKind::Observe => "observe",
            CommandKind::CancelObserve => "cancel_observe",
        }
    }

    /// What a Leshan server's REST API carries in the downlink contract;
    /// the rest go to devices registered here.
    pub fn via_leshan(self) -> bool {
        matches!(
            self,
            CommandKind::Write | CommandKind::Execute | CommandKind::Read
        )
    }

    pub fn parse(s: &str) -> Option<CommandKind> {
        CommandKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a command stands. `Sending` is held by exactly one dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CommandStatus {
    Queued,
    Sending,
    /// The LwM2M server answered `"success": true`.
    Confirmed,
    /// A device-side error, too many attempts, or expired.
    Failed,
    Cancelled,
}

impl CommandStatus {
    pub const ALL: [CommandStatus; 5] = [
        CommandStatus::Queued,
        CommandStatus::Sending,
        CommandStatus::Confirmed,
        CommandStatus::Failed,
        CommandStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Queued => "queued",
            CommandStatus::Sending => "sending",
            CommandStatus::Confirmed => "confirmed",
            CommandStatus::Failed => "failed",
            CommandStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CommandStatus> {
        CommandStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Queued commands may be cancelled.
    pub fn can_cancel(self) -> bool {
        self == CommandStatus::Queued
    }

    /// Failed commands may be sent again.
    pub fn can_retry(self) -> bool {
        self == CommandStatus::Failed
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new command, from the dashboard or `POST /api/v1/commands`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewCommand {
    /// The endpoint's name.
    pub endpoint: String,
    pub kind: CommandKind,
    /// LwM2M path: `/3/0/13` for write and execute; `/3`, `/3/0` or
    /// `/3/0/13` for read, discover, write-attributes and observe (which
    /// also takes several, comma-separated); `/3303` or `/3303/1` for
    /// create; `/3303/1` for delete.
    pub path: String,
    /// For write: the value, as JSON (a number, boolean or string) or as
    /// text (what a form sends), read as the resource type's data type.
    /// BOOLEAN also takes "on"/"off"; TIME takes epoch ms or a UTC time
    /// (`2026-11-29T18:00` or RFC 3339). For execute: optional arguments.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
    pub value: Option<serde_json::Value>,
    /// Fail the command if it could not be sent within this many seconds.
    #[serde(default)]
    pub expires_in_s: Option<i64>,
}

/// A command as listed: on the endpoint page, the Commands page and the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CommandView {
    pub id: i64,
    pub endpoint: String,
    pub endpoint_id: i64,
    pub kind: CommandKind,
    pub path: String,
    /// The resource's name, when its type is known.
    pub name: Option<String>,
    /// The written value or execute arguments, as text.
    pub value: Option<String>,
    pub status: CommandStatus,
    pub attempts: i64,
    /// Why it failed or was put back, in words.
    pub last_error: Option<String>,
    /// The device's answer status (`CHANGED`, `NOT_FOUND`, ...).
    pub device_status: Option<String>,
    /// What the device answered beyond its status: a Discover's link format.
    #[serde(default)]
    pub answer: Option<String>,
    /// Who queued it (a username, or `token <name>`; empty for the server's
    /// own commands such as the firmware Execute).
    pub created_by: Option<String>,
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub created_at: EpochMs,
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub updated_at: EpochMs,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i64>))]
    pub expires_at: Option<EpochMs>,
    /// Queued for a device that is not listening now: it goes out when the
    /// device next registers or reports.
    pub waits_for_wake: bool,
}

/// Filters of the Commands page and `GET /api/v1/commands`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandQuery {
    /// Exact endpoint name; empty for all.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub status: Option<CommandStatus>,
    /// Keyset cursor: commands with a smaller id (the next, older page).
    #[serde(default)]
    pub before: Option<i64>,
}

impl CommandQuery {
    pub const PAGE_SIZE: i64 = 50;

    /// Reads `endpoint`, `status` and `before` from a URL's parameters;
    /// what is missing or invalid is left out.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        CommandQuery {
            endpoint: get("endpoint")
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
            status: get("status").and_then(|v| CommandStatus::parse(v.trim())),
            before: get("before")
                .and_then(|v| v.parse().ok())
                .filter(|b| *b > 0),
        }
    }

    pub fn to_query(&self) -> String {
        super::query::query_string(&[
            (
                "endpoint",
                (!self.endpoint.is_empty()).then(|| self.endpoint.clone()),
            ),
            ("status", self.status.map(|s| s.as_str().to_string())),
            ("before", self.before.map(|b| b.to_string())),
        ])
    }
}

/// One page of commands, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CommandPage {
    pub commands: Vec<CommandView>,
    /// Pass as `before` for the next, older page.
    pub next_before: Option<i64>,
}

/// One step of a firmware update's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpdateStep {
    /// e.g. `firmware_update_started`, `firmware_downloading`,
    /// `firmware_succeeded`, `command_confirmed`.
    pub event_type: String,
    /// Extra words: the command, the result, who did it.
    pub detail: Option<String>,
    pub actor: Option<String>,
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub at: EpochMs,
}

/// A firmware update as the Updates page and the API list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpdateView {
    pub id: i64,
    pub endpoint: String,
    pub endpoint_id: i64,
    pub firmware_id: i64,
    pub version: String,
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub state: FirmwareUpdateState,
    /// The last 5/0/5 result code the device reported.
    pub result: Option<i64>,
    /// Why it failed, in words (the result code's meaning, a failed command,
    /// a timeout).
    pub error: Option<String>,
    pub created_by: Option<String>,
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub created_at: EpochMs,
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub updated_at: EpochMs,
    /// Every step, oldest first.
    pub steps: Vec<UpdateStep>,
}

impl UpdateView {
    pub fn can_cancel(&self) -> bool {
        self.state.is_active()
    }

    pub fn can_retry(&self) -> bool {
        matches!(
            self.state,
            FirmwareUpdateState::Failed
                | FirmwareUpdateState::TimedOut
                | FirmwareUpdateState::Cancelled
        )
    }
}

/// How a device downloads the image: the scheme of the package URI the
/// update writes to 5/0/1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DownloadTransport {
    /// `<public_base_url>/binaries/<file>`.
    #[default]
    Http,
    /// `<lwm2m_public_coap_url>/fw/<file>`, served block-wise (RFC 7959)
    /// by the native LwM2M server.
    Coap,
}

impl DownloadTransport {
    pub const ALL: [DownloadTransport; 2] = [DownloadTransport::Http, DownloadTransport::Coap];

    pub fn as_str(self) -> &'static str {
        match self {
            DownloadTransport::Http => "http",
            DownloadTransport::Coap => "coap",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DownloadTransport::Http => "HTTP",
            DownloadTransport::Coap => "CoAP",
        }
    }
}

/// Start updates of one or more endpoints to one firmware.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewUpdates {
    pub endpoints: Vec<String>,
    pub firmware_id: i64,
    /// How the devices download the image; `http` when absent.
    #[serde(default)]
    pub transport: DownloadTransport,
}

/// What happened to each endpoint of a `NewUpdates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpdateStart {
    pub endpoint: String,
    /// The new update, or None when it could not start.
    pub update_id: Option<i64>,
    /// Why it did not start (e.g. an update is already active).
    pub error: Option<String>,
}

/// Filters of the Updates page and `GET /api/v1/updates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateQuery {
    #[serde(default)]
    pub endpoint: String,
    /// Only active updates.
    #[serde(default)]
    pub active: bool,
}

impl UpdateQuery {
    pub const PAGE_SIZE: i64 = 100;

    /// Reads `endpoint` and `active` (`1`, `true` or a checkbox's `on`)
    /// from a URL's parameters; anything else is left out.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        UpdateQuery {
            endpoint: get("endpoint")
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
            active: get("active").is_some_and(|v| matches!(v.trim(), "1" | "true" | "on")),
        }
    }

    pub fn to_query(&self) -> String {
        super::query::query_string(&[
            (
                "endpoint",
                (!self.endpoint.is_empty()).then(|| self.endpoint.clone()),
            ),
            ("active", self.active.then(|| "1".to_string())),
        ])
    }
}

/// A resource the endpoint page offers a command for: writable resources get
/// a form typed by their data type, executable ones a button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandTarget {
    /// `/3/0/13`
    pub path: String,
    pub name: String,
    pub data_type: super::DataType,
    pub unit: Option<String>,
    /// Write (writable resources) or Execute (executable ones).
    pub kind: CommandKind,
}

/// A firmware image an update can target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirmwareChoice {
    pub id: i64,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in CommandKind::ALL {
            assert_eq!(CommandKind::parse(k.as_str()), Some(k));
        }
        for s in CommandStatus::ALL {
            assert_eq!(CommandStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(CommandStatus::parse("done"), None);
        assert!(CommandStatus::Queued.can_cancel());
        assert!(!CommandStatus::Sending.can_cancel());
        assert!(CommandStatus::Failed.can_retry());
        assert!(!CommandStatus::Confirmed.can_retry());
    }

    #[test]
    fn query_reads_its_url_parameters() {
        let q = CommandQuery::from_params(|k| match k {
            "endpoint" => Some(" dev-1 ".into()),
            "status" => Some("failed".into()),
            "before" => Some("17".into()),
            _ => None,
        });
        assert_eq!(q.endpoint, "dev-1");
        assert_eq!(q.status, Some(CommandStatus::Failed));
        assert_eq!(q.before, Some(17));
        let bad = CommandQuery::from_params(|k| (k == "status").then(|| "nope".into()));
        assert_eq!(bad.status, None);
    }

    #[test]
    fn update_query_reads_and_writes_its_url_parameters() {
        let q = UpdateQuery::from_params(|k| match k {
            "endpoint" => Some("dev 1".into()),
            "active" => Some("on".into()),
            _ => None,
        });
        assert_eq!(q.endpoint, "dev 1");
        assert!(q.active);
        assert_eq!(q.to_query(), "?endpoint=dev%201&active=1");
        assert_eq!(UpdateQuery::from_params(|_| None), UpdateQuery::default());
        assert_eq!(UpdateQuery::default().to_query(), "");
        assert!(!UpdateQuery::from_params(|k| (k == "active").then(|| "0".into())).active);
    }
}
