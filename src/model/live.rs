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
}

/// The websocket's path. Stable, not a server function URL.
pub const LIVE_WS_PATH: &str = "/api/v1/live";
