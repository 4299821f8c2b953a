use super::{EpochMs, ResourcePath};
use serde::{Deserialize, Serialize};

/// What the live websocket sends to the page: one stored value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LiveValue {
    pub endpoint: String,
    pub path: ResourcePath,
    /// Display text of the value.
    pub value: String,
    /// Set for numeric values, which charts draw.
    pub numeric: Option<f64>,
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub received_at: EpochMs,
    /// When the device measured it (the receive time when it gave none or
    /// an implausible one): where a chart draws it.
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub measured_at: EpochMs,
}

/// The websocket's path. Stable, not a server function URL.
pub const LIVE_WS_PATH: &str = "/api/v1/live";

/// What a page can subscribe to on the multiplexed live websocket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "topic", rename_all = "snake_case")]
pub enum Topic {
    /// Every value one endpoint stores.
    Endpoint { name: String },
    /// Every event, as it is recorded.
    Events,
    /// Fleet changes: registrations, deregistrations, and a once-a-second
    /// tick while telemetry arrives (what the overview shows).
    Fleet,
    /// Commands and firmware updates: every change of their status.
    Commands,
}

/// What the browser sends on the multiplexed websocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientMessage {
    Subscribe { topics: Vec<Topic> },
    Unsubscribe { topics: Vec<Topic> },
}

/// An event as it is recorded (its values are read with the page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventNotice {
    pub id: i64,
    pub endpoint: String,
    pub event_type: String,
    pub created_at: EpochMs,
}

/// A change the overview reacts to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum FleetNotice {
    Registered {
        endpoint: String,
    },
    Deregistered {
        endpoint: String,
    },
    /// Values were stored in the last second (how many since the server
    /// started).
    Ingested {
        total_values: u64,
    },
}

/// A command or a firmware update changed (the page refetches what it shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandNotice {
    pub endpoint: String,
    /// The command that changed, if it was one.
    pub command_id: Option<i64>,
    /// The firmware update that changed, or that the command belongs to.
    pub update_id: Option<i64>,
    /// Its new status or state, e.g. `confirmed` or `downloading`.
    pub status: String,
}

/// What the server sends on the multiplexed websocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum LiveMessage {
    Value(LiveValue),
    Event(EventNotice),
    Fleet(FleetNotice),
    Command(CommandNotice),
}

/// The query parameter that selects the multiplexed protocol on
/// `LIVE_WS_PATH`: `?mux=1`.
pub const LIVE_MUX_PARAM: &str = "mux";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_a_stable_json_form() {
        let sub = ClientMessage::Subscribe {
            topics: vec![
                Topic::Endpoint {
                    name: "dev-1".into(),
                },
                Topic::Events,
                Topic::Fleet,
            ],
        };
        assert_eq!(
            serde_json::to_string(&sub).unwrap(),
            r#"{"op":"subscribe","topics":[{"topic":"endpoint","name":"dev-1"},{"topic":"events"},{"topic":"fleet"}]}"#
        );
        let msg = LiveMessage::Fleet(FleetNotice::Ingested { total_values: 7 });
        let text = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"fleet","data":{"change":"ingested","total_values":7}}"#
        );
        assert_eq!(serde_json::from_str::<LiveMessage>(&text).unwrap(), msg);
    }
}
