//! Answers of the data API under `/api/v1`. Shared with the browser so that
//! the dashboard's charts and tables read the same shapes the API serves.
//! The OpenAPI schemas are derived from these types (server build only: the
//! browser build does not carry utoipa).
use super::{DataType, EpochMs, Presence};
use serde::{Deserialize, Serialize};

/// The latest (or an event's) value of one resource of an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ResourceValue {
    /// LwM2M path, e.g. `/3303/0/5700`, or `/3/0/7/1` for a resource instance.
    #[cfg_attr(feature = "ssr", schema(example = "/3303/0/5700"))]
    pub path: String,
    pub object_id: i64,
    pub instance_id: i64,
    pub resource_id: i64,
    /// Set for an instance of a multi-instance resource.
    pub resource_instance_id: Option<i64>,
    /// The resource type's name, e.g. `temperature`.
    pub name: String,
    pub unit: Option<String>,
    pub data_type: DataType,
    /// Numbers and booleans as JSON numbers and booleans, `null` for NONE,
    /// everything else as its wire text (OPAQUE as hex, OBJLNK as `3:0`).
    pub value: serde_json::Value,
    /// When the server received the value, epoch milliseconds.
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub received_at: EpochMs,
    /// When the device measured the value (SenML or LwM2M CBOR time),
    /// epoch milliseconds; `received_at` when the device gave no time (or
    /// an implausible one). Series and charts go by this time.
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub measured_at: EpochMs,
}

/// `GET /api/v1/endpoints/{name}`: one endpoint, its registration facts and
/// the latest value of every resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EndpointInfo {
    pub id: i64,
    pub name: String,
    /// Derived from registration, lifetime and queue mode when this was read.
    pub presence: Presence,
    pub registered: bool,
    /// Last time anything was received from (or for) the endpoint.
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i64>))]
    pub last_seen_at: Option<EpochMs>,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i64>))]
    pub last_registration_at: Option<EpochMs>,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i64>))]
    pub last_update_at: Option<EpochMs>,
    /// Registration lifetime in seconds as the device reported it (1/x/1).
    pub lifetime_s: Option<i64>,
    /// LwM2M binding as the device reported it (3/0/16), e.g. `U` or `UQ`.
    pub binding: Option<String>,
    pub queue_mode: bool,
    /// First contact.
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub created_at: EpochMs,
    /// Latest value of every resource, in path order.
    pub resources: Vec<ResourceValue>,
}

/// One stored value of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// When the device measured the value, epoch milliseconds (the receive
    /// time when it gave none): the series is ordered and ranged by it.
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub t: EpochMs,
    /// When the server received the value, epoch milliseconds.
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub received_at: EpochMs,
    /// Typed as in [`ResourceValue::value`].
    pub value: serde_json::Value,
}

/// Aggregate of the values of one time bucket of a downsampled series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Bucket {
    /// Start of the bucket, epoch milliseconds: a multiple of `bucket_ms`
    /// (`k * bucket_ms`; buckets are aligned from the epoch).
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub t: EpochMs,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    /// Stored values in the bucket (at least 1: empty buckets are left out).
    pub count: i64,
}

/// `GET /api/v1/endpoints/{name}/series/...`: one resource's values over a
/// time range, either raw (`points`) or, when there are more than
/// `max_points` numeric values, downsampled into at most `max_points`
/// buckets (`buckets`). Exactly one of the two lists is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SeriesData {
    pub endpoint: String,
    /// LwM2M path of the series, e.g. `/3303/0/5700`.
    pub path: String,
    pub object_id: i64,
    pub instance_id: i64,
    pub resource_id: i64,
    pub resource_instance_id: Option<i64>,
    pub name: String,
    pub unit: Option<String>,
    pub data_type: DataType,
    /// The range that was read (inclusive), epoch milliseconds.
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub from: EpochMs,
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub to: EpochMs,
    pub max_points: i64,
    /// Stored values in the range; for a truncated non-numeric series, at
    /// least `max_points + 1`.
    pub total: i64,
    /// True when `buckets` holds min/max/avg per time bucket instead of raw
    /// `points`.
    pub downsampled: bool,
    /// Bucket width in milliseconds when downsampled.
    pub bucket_ms: Option<i64>,
    /// True when the series is not numeric, had more than `max_points`
    /// values, and `points` holds only the newest `max_points` of them.
    pub truncated: bool,
    /// Raw values, oldest first (empty when downsampled).
    pub points: Vec<SeriesPoint>,
    /// Buckets, oldest first (empty unless downsampled).
    pub buckets: Vec<Bucket>,
}

/// One event with the values it recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventView {
    pub id: i64,
    pub endpoint: String,
    /// e.g. `registered`, `registration_update`, `deregistered`, `device`,
    /// `temperature`, `object_<id>`.
    #[serde(rename = "type")]
    pub event_type: String,
    #[cfg_attr(feature = "ssr", schema(value_type = i64))]
    pub created_at: EpochMs,
    /// The stored values linked to the event, in path order.
    pub resources: Vec<ResourceValue>,
    /// Who caused it, for audit events (commands, updates): a username or
    /// `token <name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What it was about, in words (e.g. `write /3/0/13 = 1700000000000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /api/v1/events`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `before` to read the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}
