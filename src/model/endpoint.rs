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
    /// When the device measured it (the receive time when it gave none).
    pub measured_at: EpochMs,
}

/// One chart point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t: EpochMs,
    pub v: f64,
}

/// The numeric series of one resource (instance), for a chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub path: ResourcePath,
    pub name: String,
    pub unit: Option<String>,
    /// Raw values, or the average of each bucket when downsampled.
    pub points: Vec<Point>,
    /// Min and max of each bucket when downsampled (empty for raw values).
    #[serde(default)]
    pub bands: Vec<Band>,
}

/// The spread of one downsampled bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub t: EpochMs,
    pub min: f64,
    pub max: f64,
}

/// One chart: every instance of one resource of an endpoint, sharing axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub object_id: i64,
    pub resource_id: i64,
    pub name: String,
    pub unit: Option<String>,
    pub series: Vec<Series>,
    /// The operator's choice for this chart, if any.
    #[serde(default)]
    pub choice: Option<ChartChoice>,
}

/// An operator's choice for one chart of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartChoice {
    /// Always drawn.
    Pinned,
    /// Never drawn; the resource is listed as not charted.
    Hidden,
}

impl ChartChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            ChartChoice::Pinned => "pinned",
            ChartChoice::Hidden => "hidden",
        }
    }

    pub fn parse(s: &str) -> Option<ChartChoice> {
        match s {
            "pinned" => Some(ChartChoice::Pinned),
            "hidden" => Some(ChartChoice::Hidden),
            _ => None,
        }
    }
}

/// Whether a numeric resource gets a chart: a pinned one always, a hidden
/// one never, otherwise one that is observed (its values are telemetry the
/// operator asked for) or whose value changed in the range. A constant
/// such as a battery status or an error code is then a value, not a flat
/// line burying the telemetry.
pub fn chart_shown(choice: Option<ChartChoice>, observed: bool, changed: bool) -> bool {
    match choice {
        Some(ChartChoice::Pinned) => true,
        Some(ChartChoice::Hidden) => false,
        None => observed || changed,
    }
}

/// A numeric resource the page does not chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnchartedResource {
    pub object_id: i64,
    pub resource_id: i64,
    pub name: String,
    /// Hidden by an operator (rather than unchanged and not observed).
    pub hidden: bool,
}

impl Chart {
    /// Where this chart's first series can be downloaded as CSV for the
    /// range (the data API, which the session authorizes).
    pub fn csv_href(&self, endpoint: &str, series: &Series, from: EpochMs, to: EpochMs) -> String {
        let p = series.path;
        let ri = p
            .resource_instance_id
            .map(|ri| format!("&resource_instance={ri}"))
            .unwrap_or_default();
        format!(
            "/api/v1/endpoints/{}/series/{}/{}/{}?from={from}&to={to}&format=csv{ri}",
            super::query::encode_component(endpoint),
            p.object_id,
            p.instance_id,
            p.resource_id
        )
    }
}

/// The preset time ranges of the endpoint page's charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangePreset {
    Min15,
    Hour1,
    Hour24,
    Day7,
    Day30,
}

impl RangePreset {
    pub const ALL: [RangePreset; 5] = [
        RangePreset::Min15,
        RangePreset::Hour1,
        RangePreset::Hour24,
        RangePreset::Day7,
        RangePreset::Day30,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RangePreset::Min15 => "15m",
            RangePreset::Hour1 => "1h",
            RangePreset::Hour24 => "24h",
            RangePreset::Day7 => "7d",
            RangePreset::Day30 => "30d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RangePreset::Min15 => "15 min",
            RangePreset::Hour1 => "1 h",
            RangePreset::Hour24 => "24 h",
            RangePreset::Day7 => "7 d",
            RangePreset::Day30 => "30 d",
        }
    }

    pub fn duration_ms(self) -> EpochMs {
        match self {
            RangePreset::Min15 => 15 * 60_000,
            RangePreset::Hour1 => 3_600_000,
            RangePreset::Hour24 => 24 * 3_600_000,
            RangePreset::Day7 => 7 * 86_400_000,
            RangePreset::Day30 => 30 * 86_400_000,
        }
    }

    pub fn parse(s: &str) -> Option<RangePreset> {
        RangePreset::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The charts' time range: a preset ending now, or custom bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChartRange {
    Last(RangePreset),
    /// From and to in epoch ms; an open end is now.
    Custom {
        from: EpochMs,
        to: Option<EpochMs>,
    },
}

impl Default for ChartRange {
    fn default() -> Self {
        ChartRange::Last(RangePreset::Hour24)
    }
}

impl ChartRange {
    /// `range=1h`, or `from` (and optionally `to`) as datetime-local UTC or
    /// epoch ms; anything else is the default, the last 24 h.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> ChartRange {
        let from = get("from").and_then(|v| super::from_datetime_local(&v));
        let to = get("to").and_then(|v| super::from_datetime_local(&v));
        match (from, to) {
            (Some(from), to) if to.is_none_or(|t| t > from) => ChartRange::Custom { from, to },
            _ => get("range")
                .and_then(|r| RangePreset::parse(&r))
                .map(ChartRange::Last)
                .unwrap_or_default(),
        }
    }

    pub fn to_query(self) -> String {
        match self {
            ChartRange::Last(p) if ChartRange::Last(p) == ChartRange::default() => String::new(),
            ChartRange::Last(p) => format!("?range={}", p.as_str()),
            ChartRange::Custom { from, to } => super::query::query_string(&[
                ("from", Some(super::to_datetime_local(from))),
                ("to", to.map(super::to_datetime_local)),
            ]),
        }
    }

    /// [from, to] at `now`.
    pub fn bounds(self, now: EpochMs) -> (EpochMs, EpochMs) {
        match self {
            ChartRange::Last(p) => (now - p.duration_ms(), now),
            ChartRange::Custom { from, to } => (from, to.unwrap_or(now)),
        }
    }

    /// Whether new values belong in the charts (the range ends now).
    pub fn is_live(self) -> bool {
        match self {
            ChartRange::Last(_) => true,
            ChartRange::Custom { to, .. } => to.is_none(),
        }
    }
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
    /// One chart per numeric resource that `chart_shown` picks, for `range`.
    pub charts: Vec<Chart>,
    /// The numeric resources without a chart, in path order.
    #[serde(default)]
    pub uncharted: Vec<UnchartedResource>,
    pub range: ChartRange,
    /// The range's bounds when the page was read.
    pub from: EpochMs,
    pub to: EpochMs,
    /// The newest events of this endpoint.
    pub events: Vec<super::EventView>,
    pub commands: Vec<super::CommandView>,
    pub firmware_updates: Vec<super::UpdateView>,
    /// Resources this endpoint has that can be written or executed.
    pub command_targets: Vec<super::CommandTarget>,
    /// How the device reaches flownexus itself, when it is registered with
    /// the native LwM2M server; None when Leshan forwards its values.
    pub native: Option<NativeConnection>,
}

/// An endpoint's registration with the native LwM2M server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeConnection {
    /// The device's address, `ip:port`.
    pub address: String,
    /// Over DTLS.
    pub secure: bool,
    pub lwm2m_version: String,
    pub binding: String,
    pub queue_mode: bool,
    pub lifetime_s: i64,
    pub registered_at: EpochMs,
    pub expires_at: EpochMs,
    /// The registered object list in CoRE link format.
    pub object_links: String,
    /// What the server observes on the device now.
    pub observations: Vec<Observed>,
}

/// One active observation of a native device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Its path; an observe-composite's paths comma-separated.
    pub path: String,
    /// The notification attributes in effect on each of its paths, as
    /// written by confirmed write-attributes commands (Core §5.1.2):
    /// path and `(name, value)`s; empty when none were written.
    pub attributes: Vec<(String, Vec<(String, String)>)>,
}

impl Observed {
    /// The attributes as one line: `pmin=10 pmax=60`, a composite's
    /// prefixed by each path (`/3303/0/5700: pmin=10; ...`).
    pub fn attributes_text(&self) -> String {
        let one = |attrs: &[(String, String)]| {
            attrs
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self.attributes.as_slice() {
            [] => String::new(),
            [(_, attrs)] if !self.path.contains(',') => one(attrs),
            many => many
                .iter()
                .map(|(p, attrs)| format!("{p}: {}", one(attrs)))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

impl NativeConnection {
    /// The object list as links, e.g. `</3303/0>;ver=1.1`.
    pub fn links(&self) -> Vec<String> {
        self.object_links
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl EndpointDetail {
    /// The latest value of one resource of object 3 (Device), instance 0.
    pub fn device_fact(&self, resource_id: i64) -> Option<&LatestValue> {
        self.latest.iter().find(|l| {
            l.path.object_id == 3
                && l.path.instance_id == 0
                && l.path.resource_id == resource_id
                && l.path.resource_instance_id.is_none()
        })
    }
}

/// The columns the endpoint table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointSort {
    Name,
    #[default]
    LastSeen,
    Presence,
}

impl EndpointSort {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointSort::Name => "name",
            EndpointSort::LastSeen => "last_seen",
            EndpointSort::Presence => "presence",
        }
    }

    pub fn parse(s: &str) -> Option<EndpointSort> {
        [
            EndpointSort::Name,
            EndpointSort::LastSeen,
            EndpointSort::Presence,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// The direction a first click on the column sorts in: names A-Z, the
    /// rest newest or most present first.
    pub fn default_descending(self) -> bool {
        !matches!(self, EndpointSort::Name)
    }
}

/// The endpoint table's state, carried in the URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointListQuery {
    /// Part of the name, case-insensitive; empty for all.
    pub search: String,
    pub presence: Option<Presence>,
    pub sort: EndpointSort,
    pub descending: bool,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

impl Default for EndpointListQuery {
    fn default() -> Self {
        EndpointListQuery {
            search: String::new(),
            presence: None,
            sort: EndpointSort::LastSeen,
            descending: true,
            page: 1,
            per_page: Self::DEFAULT_PER_PAGE,
        }
    }
}

impl EndpointListQuery {
    pub const DEFAULT_PER_PAGE: u32 = 50;
    pub const MAX_PER_PAGE: u32 = 500;

    /// Reads the URL's query parameters (`q`, `presence`, `sort`, `dir`,
    /// `page`, `per_page`); what is missing or invalid takes its default.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let sort = get("sort")
            .and_then(|s| EndpointSort::parse(&s))
            .unwrap_or_default();
        let descending = match get("dir").as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => sort.default_descending(),
        };
        EndpointListQuery {
            search: get("q").map(|q| q.trim().to_string()).unwrap_or_default(),
            presence: get("presence").and_then(|p| Presence::parse(&p)),
            sort,
            descending,
            page: super::query::page_param(get("page")),
            per_page: get("per_page")
                .and_then(|p| p.parse::<u32>().ok())
                .map(|p| p.clamp(1, Self::MAX_PER_PAGE))
                .unwrap_or(Self::DEFAULT_PER_PAGE),
        }
    }

    /// The query string of this state (`?...`), leaving out defaults.
    pub fn to_query(&self) -> String {
        let defaults = EndpointListQuery::default();
        super::query::query_string(&[
            ("q", (!self.search.is_empty()).then(|| self.search.clone())),
            ("presence", self.presence.map(|p| p.as_str().to_string())),
            (
                "sort",
                (self.sort != defaults.sort).then(|| self.sort.as_str().to_string()),
            ),
            (
                "dir",
                (self.descending != self.sort.default_descending())
                    .then(|| if self.descending { "desc" } else { "asc" }.to_string()),
            ),
            ("page", (self.page != 1).then(|| self.page.to_string())),
            (
                "per_page",
                (self.per_page != defaults.per_page).then(|| self.per_page.to_string()),
            ),
        ])
    }

    /// The state after clicking a column header: the same column flips its
    /// direction, another starts in its default one; back to page 1.
    pub fn sorted_by(&self, sort: EndpointSort) -> Self {
        let descending = if sort == self.sort {
            !self.descending
        } else {
            sort.default_descending()
        };
        EndpointListQuery {
            sort,
            descending,
            page: 1,
            ..self.clone()
        }
    }

    pub fn at_page(&self, page: u32) -> Self {
        EndpointListQuery {
            page: page.max(1),
            ..self.clone()
        }
    }

    pub fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.per_page)
    }
}

/// One row of the endpoint table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRow {
    pub summary: EndpointSummary,
    /// 3/0/3, when reported.
    pub firmware_version: Option<String>,
    /// 3/0/9 in percent, when reported.
    pub battery_level: Option<i64>,
}

/// How many endpoints are in each presence state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceCounts {
    pub online: i64,
    pub sleeping: i64,
    pub offline: i64,
}

impl PresenceCounts {
    pub fn total(&self) -> i64 {
        self.online + self.sleeping + self.offline
    }

    pub fn get(&self, presence: Presence) -> i64 {
        match presence {
            Presence::Online => self.online,
            Presence::Sleeping => self.sleeping,
            Presence::Offline => self.offline,
        }
    }

    pub fn add(&mut self, presence: Presence, n: i64) {
        match presence {
            Presence::Online => self.online += n,
            Presence::Sleeping => self.sleeping += n,
            Presence::Offline => self.offline += n,
        }
    }
}

/// One page of the endpoint table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointListPage {
    pub rows: Vec<EndpointRow>,
    /// Endpoints matching the search and presence filter.
    pub total: i64,
    /// Endpoints matching the search, by presence (for the filter's counts).
    pub counts: PresenceCounts,
}

impl EndpointListPage {
    pub fn page_count(&self, per_page: u32) -> u32 {
        let per_page = i64::from(per_page.max(1));
        u32::try_from((self.total + per_page - 1) / per_page)
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_chart_is_drawn_when_pinned_observed_or_changed_and_not_hidden() {
        use ChartChoice::*;
        for (observed, changed) in [(false, false), (true, false), (false, true), (true, true)] {
            assert!(chart_shown(Some(Pinned), observed, changed));
            assert!(!chart_shown(Some(Hidden), observed, changed));
            assert_eq!(chart_shown(None, observed, changed), observed || changed);
        }
        for c in [Pinned, Hidden] {
            assert_eq!(ChartChoice::parse(c.as_str()), Some(c));
        }
        assert_eq!(ChartChoice::parse("auto"), None);
    }

    fn parse(pairs: &[(&str, &str)]) -> EndpointListQuery {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EndpointListQuery::from_params(|k| map.get(k).cloned())
    }

    #[test]
    fn the_url_round_trips_and_leaves_out_defaults() {
        assert_eq!(EndpointListQuery::default().to_query(), "");
        let q = parse(&[
            ("q", "urn:imei"),
            ("presence", "sleeping"),
            ("sort", "name"),
            ("dir", "desc"),
            ("page", "3"),
        ]);
        assert_eq!(q.search, "urn:imei");
        assert_eq!(q.presence, Some(Presence::Sleeping));
        assert_eq!(
            (q.sort, q.descending, q.page),
            (EndpointSort::Name, true, 3)
        );
        assert_eq!(
            q.to_query(),
            "?q=urn%3Aimei&presence=sleeping&sort=name&dir=desc&page=3"
        );
        let decoded: Vec<(String, String)> = q.to_query()[1..]
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.replace("%3A", ":"))
            })
            .collect();
        let again = EndpointListQuery::from_params(|k| {
            decoded
                .iter()
                .find(|(dk, _)| dk == k)
                .map(|(_, v)| v.clone())
        });
        assert_eq!(again, q);
    }

    #[test]
    fn invalid_parameters_take_their_defaults() {
        let q = parse(&[
            ("presence", "asleep"),
            ("sort", "battery"),
            ("page", "0"),
            ("per_page", "100000"),
        ]);
        assert_eq!(q.presence, None);
        assert_eq!(q.sort, EndpointSort::LastSeen);
        assert!(q.descending);
        assert_eq!(q.page, 1);
        assert_eq!(q.per_page, EndpointListQuery::MAX_PER_PAGE);
    }

    #[test]
    fn clicking_a_column_sorts_then_flips() {
        let q = EndpointListQuery::default().at_page(4);
        let by_name = q.sorted_by(EndpointSort::Name);
        assert_eq!(
            (by_name.sort, by_name.descending, by_name.page),
            (EndpointSort::Name, false, 1)
        );
        let flipped = by_name.sorted_by(EndpointSort::Name);
        assert!(flipped.descending);
        assert_eq!(q.offset(), 150);
    }

    #[test]
    fn chart_ranges_come_from_the_url() {
        let get = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(pk, _)| *pk == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            ChartRange::from_params(get(&[])),
            ChartRange::Last(RangePreset::Hour24)
        );
        assert_eq!(
            ChartRange::from_params(get(&[("range", "7d")])),
            ChartRange::Last(RangePreset::Day7)
        );
        assert_eq!(
            ChartRange::from_params(get(&[("range", "2y")])),
            ChartRange::default()
        );
        let custom = ChartRange::from_params(get(&[
            ("from", "2024-05-31T16:08"),
            ("to", "2024-05-31T18:00"),
        ]));
        assert_eq!(
            custom,
            ChartRange::Custom {
                from: 1_717_171_680_000,
                to: Some(1_717_178_400_000)
            }
        );
        assert!(!custom.is_live());
        assert_eq!(
            custom.to_query(),
            "?from=2024-05-31T16%3A08&to=2024-05-31T18%3A00"
        );
        // A reversed range is ignored.
        assert_eq!(
            ChartRange::from_params(get(&[
                ("from", "2024-05-31T18:00"),
                ("to", "2024-05-31T16:00")
            ])),
            ChartRange::default()
        );
        assert_eq!(
            ChartRange::Last(RangePreset::Hour1).bounds(10_000_000),
            (6_400_000, 10_000_000)
        );
        assert_eq!(
            ChartRange::Last(RangePreset::Min15).to_query(),
            "?range=15m"
        );
        assert_eq!(ChartRange::default().to_query(), "");
    }

    #[test]
    fn page_count_rounds_up() {
        let page = |total| EndpointListPage {
            rows: vec![],
            total,
            counts: PresenceCounts::default(),
        };
        assert_eq!(page(0).page_count(50), 1);
        assert_eq!(page(50).page_count(50), 1);
        assert_eq!(page(51).page_count(50), 2);
    }
}

/// The longest endpoint name, in bytes.
pub const MAX_ENDPOINT_NAME: usize = 255;

/// Why `name` cannot be an endpoint's name, or None when it can. Names are
/// kept as the device sends them; what is refused is what could only hide
/// or disguise a name where it is shown: nothing but whitespace, control
/// characters, and the bidirectional formatting characters (U+061C,
/// U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069) that make a name
/// read differently from what it is.
pub fn endpoint_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.trim().is_empty() {
        return Some("must not be only whitespace".into());
    }
    if name.len() > MAX_ENDPOINT_NAME {
        return Some(format!("longer than {MAX_ENDPOINT_NAME} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Some("contains control characters".into());
    }
    if let Some(c) = name.chars().find(|c| is_bidi_format(*c)) {
        return Some(format!(
            "contains the bidirectional formatting character U+{:04X}",
            u32::from(c)
        ));
    }
    None
}

fn is_bidi_format(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod endpoint_name_tests {
    use super::endpoint_name_problem;

    #[test]
    fn ordinary_names_pass_and_disguised_ones_do_not() {
        for ok in [
            "qemu_x86",
            "urn:imei:490154203237518",
            "Gerät 7",
            "a b",
            " lead",
            "名前",
        ] {
            assert_eq!(endpoint_name_problem(ok), None, "{ok:?}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("   ", "whitespace"),
            ("\u{3000}\t", "whitespace"),
            ("a\u{0}b", "control"),
            ("a\nb", "control"),
            ("abc\u{202E}fdp.exe", "U+202E"),
            ("\u{2066}x", "U+2066"),
            ("x\u{200F}", "U+200F"),
        ] {
            let problem = endpoint_name_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad:?}: {problem}");
        }
        assert!(endpoint_name_problem(&"a".repeat(256)).is_some());
        assert_eq!(endpoint_name_problem(&"a".repeat(255)), None);
    }
}
