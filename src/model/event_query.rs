//! The events page's filter, carried in the URL.
use super::query::query_string;
use super::EpochMs;
use serde::{Deserialize, Serialize};

/// Filters of the events page. Times are entered and shown in UTC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventListQuery {
    /// Exact endpoint name; empty for all.
    pub endpoint: String,
    /// Exact event type; empty for all.
    pub event_type: String,
    pub from: Option<EpochMs>,
    pub to: Option<EpochMs>,
    /// Keyset cursor: events older than this id (the next page).
    pub before: Option<i64>,
}

/// The `<input type="datetime-local">` form of a UTC time.
pub fn to_datetime_local(ms: EpochMs) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// Reads a datetime-local value (`YYYY-MM-DDTHH:MM[:SS]`) as UTC, or epoch ms.
pub fn from_datetime_local(s: &str) -> Option<EpochMs> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

impl EventListQuery {
    pub const PAGE_SIZE: i64 = 25;

    /// Reads `endpoint`, `type`, `from`, `to` and `before`; what is missing
    /// or invalid is left out.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        EventListQuery {
            endpoint: get("endpoint")
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
            event_type: get("type")
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
            from: get("from").and_then(|v| from_datetime_local(&v)),
            to: get("to").and_then(|v| from_datetime_local(&v)),
            before: get("before")
                .and_then(|v| v.parse().ok())
                .filter(|b| *b > 0),
        }
    }

    pub fn to_query(&self) -> String {
        query_string(&[
            (
                "endpoint",
                (!self.endpoint.is_empty()).then(|| self.endpoint.clone()),
            ),
            (
                "type",
                (!self.event_type.is_empty()).then(|| self.event_type.clone()),
            ),
            ("from", self.from.map(to_datetime_local)),
            ("to", self.to.map(to_datetime_local)),
            ("before", self.before.map(|b| b.to_string())),
        ])
    }

    pub fn is_filtered(&self) -> bool {
        !self.endpoint.is_empty()
            || !self.event_type.is_empty()
            || self.from.is_some()
            || self.to.is_some()
    }

    /// Whether a newly recorded event belongs on this page: the first page,
    /// and the event passes the filter.
    pub fn shows_new(&self, endpoint: &str, event_type: &str, at: EpochMs) -> bool {
        self.before.is_none()
            && (self.endpoint.is_empty() || self.endpoint == endpoint)
            && (self.event_type.is_empty() || self.event_type == event_type)
            && self.from.is_none_or(|f| at >= f)
            && self.to.is_none_or(|t| at <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_is_utc() {
        assert_eq!(
            from_datetime_local("2024-05-31T16:08"),
            Some(1_717_171_680_000)
        );
        assert_eq!(to_datetime_local(1_717_171_717_171), "2024-05-31T16:08");
        assert_eq!(
            from_datetime_local("2024-05-31T16:08:37"),
            Some(1_717_171_717_000)
        );
        assert_eq!(from_datetime_local("yesterday"), None);
    }

    #[test]
    fn the_filter_round_trips_through_the_url() {
        let q = EventListQuery {
            endpoint: "dev 1".into(),
            event_type: "registered".into(),
            from: Some(1_717_171_680_000),
            to: None,
            before: Some(42),
        };
        assert_eq!(
            q.to_query(),
            "?endpoint=dev%201&type=registered&from=2024-05-31T16%3A08&before=42"
        );
        let again = EventListQuery::from_params(|k| match k {
            "endpoint" => Some("dev 1".into()),
            "type" => Some("registered".into()),
            "from" => Some("2024-05-31T16:08".into()),
            "before" => Some("42".into()),
            _ => None,
        });
        assert_eq!(again, q);
    }

    #[test]
    fn only_the_first_page_takes_matching_new_events() {
        let q = EventListQuery {
            endpoint: "a".into(),
            ..Default::default()
        };
        assert!(q.shows_new("a", "registered", 5));
        assert!(!q.shows_new("b", "registered", 5));
        let older = EventListQuery {
            before: Some(10),
            ..Default::default()
        };
        assert!(!older.shows_new("a", "x", 5));
    }
}
