use super::{EpochMs, Presence, ResourcePath};
use serde::{Deserialize, Serialize};

/// One row of the endpoint list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EndpointSummary {
    pub id: i64,
    pub name: String,
    pub registered: bool,
    /// Derived on the server when the summary was read.
    pub presence: Presence,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i64>))]
    pub last_seen_at: Option<EpochMs>,
    pub resource_count: i64,
}

/// The latest value of one resource of an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestValue {
    pub path: ResourcePath,
    pub name: String,
    pub unit: Option<String>,
    pub data_type: super::DataType,
    /// The value as text, for display.
    pub value: String,
    pub received_at: EpochMs,
}

/// One chart point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t: EpochMs,
    pub v: f64,
}

/// The numeric series of one resource, for a chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub path: ResourcePath,
    pub name: String,
    pub unit: Option<String>,
    pub points: Vec<Point>,
}

/// Everything the endpoint page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointDetail {
    pub summary: EndpointSummary,
    pub lifetime_s: Option<i64>,
    pub binding: Option<String>,
    pub queue_mode: bool,
    pub last_registration_at: Option<EpochMs>,
    pub last_update_at: Option<EpochMs>,
    pub latest: Vec<LatestValue>,
    pub series: Vec<Series>,
}
