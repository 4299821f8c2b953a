//! LwM2M content formats (OMA LwM2M Core TS 1.1.1 §7.4 and 1.2 §7.4.6):
//! decoding what devices send, encoding what the server sends.
//!
//! Every decoder is total over arbitrary bytes: it returns a [`FormatError`]
//! instead of panicking, bounds nesting at [`MAX_DEPTH`], refuses payloads
//! over [`MAX_PAYLOAD_BYTES`] and never allocates for a length the input
//! claims before checking that the bytes are there.
//!
//! Decoded values are typed with the server's knowledge of the resource
//! (the resolver in [`DecodeContext`]) where the format does not carry the
//! type itself; each format module documents what it infers without it.

mod cbor;
mod cbor_reader;
mod common;
mod lwm2m_cbor;
mod lwm2m_json;
mod opaque;
mod senml;
mod senml_cbor;
mod senml_json;
mod text;
mod tlv;

#[cfg(test)]
mod proptests;

use crate::model::lwm2m::{DataType, ResourcePath, Value};
use std::fmt;

/// Deepest nesting any decoder accepts (CBOR arrays/maps/tags, JSON
/// arrays/objects). LwM2M needs at most 6 (LwM2M CBOR: four map levels plus
/// a path-array key); the bound keeps recursion and adversarial input cheap.
pub const MAX_DEPTH: usize = 8;

/// Largest payload any decoder accepts, in bytes. Block-wise transfers can
/// assemble big bodies; data reads above this are not plausible telemetry,
/// and the bound caps the decoded tree (at most ~32 bytes per input byte).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Most records one payload may yield, so that a small payload of tiny
/// records cannot fan out into an unbounded amount of server work.
pub const MAX_RECORDS: usize = 65_536;

/// The LwM2M content formats, by what they are rather than by number: the
/// legacy pre-IANA numbers (1541–1544) map onto the same variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentFormat {
    /// `text/plain` (0): one value in its text form.
    Text,
    /// `application/link-format` (40): Discover answers; not decoded here.
    LinkFormat,
    /// `application/octet-stream` (42): one opaque value, raw.
    Opaque,
    /// `application/cbor` (60): one value as a single CBOR data item.
    Cbor,
    /// `application/vnd.oma.lwm2m+tlv` (11542).
    Tlv,
    /// `application/vnd.oma.lwm2m+json` (11543): the LwM2M 1.0 JSON format.
    LwM2mJson,
    /// `application/senml+json` (110).
    SenmlJson,
    /// `application/senml+cbor` (112).
    SenmlCbor,
    /// `application/vnd.oma.lwm2m+cbor` (11544, LwM2M 1.2).
    LwM2mCbor,
}

impl ContentFormat {
    /// Every format, for iteration in tests and capability lists.
    pub const ALL: [ContentFormat; 9] = [
        ContentFormat::Text,
        ContentFormat::LinkFormat,
        ContentFormat::Opaque,
        ContentFormat::Cbor,
        ContentFormat::Tlv,
        ContentFormat::LwM2mJson,
        ContentFormat::SenmlJson,
        ContentFormat::SenmlCbor,
        ContentFormat::LwM2mCbor,
    ];

    /// The format a CoAP Content-Format number names, including the legacy
    /// numbers LwM2M 1.0 devices used before IANA registration: 1541 text,
    /// 1542 TLV, 1543 JSON, 1544 opaque.
    pub fn from_u16(n: u16) -> Option<ContentFormat> {
        Some(match n {
            0 | 1541 => ContentFormat::Text,
            40 => ContentFormat::LinkFormat,
            42 | 1544 => ContentFormat::Opaque,
            60 => ContentFormat::Cbor,
            11542 | 1542 => ContentFormat::Tlv,
            11543 | 1543 => ContentFormat::LwM2mJson,
            110 => ContentFormat::SenmlJson,
            112 => ContentFormat::SenmlCbor,
            11544 => ContentFormat::LwM2mCbor,
            _ => return None,
        })
    }

    /// The IANA Content-Format number, the one the server sends.
    pub fn number(self) -> u16 {
        match self {
            ContentFormat::Text => 0,
            ContentFormat::LinkFormat => 40,
            ContentFormat::Opaque => 42,
            ContentFormat::Cbor => 60,
            ContentFormat::Tlv => 11542,
            ContentFormat::LwM2mJson => 11543,
            ContentFormat::SenmlJson => 110,
            ContentFormat::SenmlCbor => 112,
            ContentFormat::LwM2mCbor => 11544,
        }
    }

    /// The media type, for logs and error messages.
    pub fn media_type(self) -> &'static str {
        match self {
            ContentFormat::Text => "text/plain",
            ContentFormat::LinkFormat => "application/link-format",
            ContentFormat::Opaque => "application/octet-stream",
            ContentFormat::Cbor => "application/cbor",
            ContentFormat::Tlv => "application/vnd.oma.lwm2m+tlv",
            ContentFormat::LwM2mJson => "application/vnd.oma.lwm2m+json",
            ContentFormat::SenmlJson => "application/senml+json",
            ContentFormat::SenmlCbor => "application/senml+cbor",
            ContentFormat::LwM2mCbor => "application/vnd.oma.lwm2m+cbor",
        }
    }

    /// Whether [`decode`] reads this format.
    pub fn can_decode(self) -> bool {
        self != ContentFormat::LinkFormat
    }

    /// Whether [`encode`] writes this format (LwM2M JSON is deprecated since
    /// LwM2M 1.1 and only read, for old devices).
    pub fn can_encode(self) -> bool {
        !matches!(self, ContentFormat::LinkFormat | ContentFormat::LwM2mJson)
    }
}

impl fmt::Display for ContentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.media_type(), self.number())
    }
}

/// An LwM2M path of 0 to 4 ids: root, object, object instance, resource,
/// resource instance. Request paths and SenML names can stop at any level,
/// which [`ResourcePath`] cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct LwPath {
    // Field order matters for the derived `Ord`: ids (zero-padded) first
    // gives depth-first path order, parents before children.
    ids: [u16; 4],
    len: u8,
}

impl LwPath {
    /// The root path `/`.
    pub const ROOT: LwPath = LwPath {
        ids: [0; 4],
        len: 0,
    };

    /// The largest valid id: 65535 is reserved by LwM2M (Core TS §7.2.2).
    pub const MAX_ID: u16 = 65534;

    /// A path from its ids; `None` for more than four ids or a reserved id.
    pub fn new(ids: &[u16]) -> Option<LwPath> {
        if ids.len() > 4 || ids.iter().any(|&id| id > Self::MAX_ID) {
            return None;
        }
        let mut path = LwPath::ROOT;
        path.ids[..ids.len()].copy_from_slice(ids);
        path.len = ids.len() as u8;
        Some(path)
    }

    /// Parses `/3/0/1` style paths. The empty string and `/` are the root;
    /// one trailing slash is tolerated (`/3/0/`). Ids are canonical decimal
    /// (no sign, no leading zero) so that one path has one spelling.
    pub fn parse(s: &str) -> Option<LwPath> {
        if s.is_empty() || s == "/" {
            return Some(LwPath::ROOT);
        }
        let s = s.strip_prefix('/').unwrap_or(s);
        let s = s.strip_suffix('/').unwrap_or(s);
        let mut ids = [0u16; 4];
        let mut len = 0;
        for part in s.split('/') {
            if len == 4 {
                return None;
            }
            ids[len] = common::parse_id(part)?;
            len += 1;
        }
        LwPath::new(&ids[..len])
    }

    /// The ids, outermost first.
    pub fn ids(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }

    /// How many ids: 0 root, 1 object, 2 instance, 3 resource, 4 resource
    /// instance.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether this is the root path.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `self` is `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &LwPath) -> bool {
        self.ids().starts_with(prefix.ids())
    }

    /// The path one level down, `None` below a resource instance or for a
    /// reserved id.
    pub fn child(&self, id: u16) -> Option<LwPath> {
        if self.len == 4 || id > Self::MAX_ID {
            return None;
        }
        let mut path = *self;
        path.ids[path.len as usize] = id;
        path.len += 1;
        Some(path)
    }

    /// The resource (instance) this path names; `None` above resource level.
    pub fn to_resource_path(&self) -> Option<ResourcePath> {
        let ids = self.ids();
        if ids.len() < 3 {
            return None;
        }
        Some(ResourcePath {
            object_id: i64::from(ids[0]),
            instance_id: i64::from(ids[1]),
            resource_id: i64::from(ids[2]),
            resource_instance_id: ids.get(3).map(|&ri| i64::from(ri)),
        })
    }

    /// The path of a resource (instance); `None` when an id is outside the
    /// LwM2M range 0..=65534.
    pub fn from_resource_path(p: &ResourcePath) -> Option<LwPath> {
        let id = |v: i64| u16::try_from(v).ok().filter(|&v| v <= Self::MAX_ID);
        let mut path = LwPath::new(&[id(p.object_id)?, id(p.instance_id)?, id(p.resource_id)?])?;
        if let Some(ri) = p.resource_instance_id {
            path = path.child(id(ri)?)?;
        }
        Some(path)
    }
}

impl fmt::Display for LwPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("/");
        }
        for id in self.ids() {
            write!(f, "/{id}")?;
        }
        Ok(())
    }
}

/// One decoded value of one resource (instance).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Which resource (instance) the value belongs to.
    pub path: ResourcePath,
    /// The typed value.
    pub value: Value,
    /// When the device measured it, in ms since the Unix epoch, if the
    /// payload says (SenML `bt`/`t`, LwM2M JSON `bt`/`t`); `None` means the
    /// device gave no time and the reception time applies.
    pub time_ms: Option<i64>,
}

/// The writer's input for decoded records, each named by its place in the
/// payload.
pub fn decoded_values(records: Vec<Record>) -> Vec<crate::server::ingest::DecodedValue> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| crate::server::ingest::DecodedValue {
            path: r.path,
            value: r.value,
            measured_at: r.time_ms,
            field: crate::server::ingest::Field::Record(i),
        })
        .collect()
}

/// What a decoder needs to know besides the payload.
pub struct DecodeContext<'a> {
    /// The path the payload answers (the Read/Observe target). Payloads of
    /// text, opaque, CBOR and TLV name ids relative to it; SenML and LwM2M
    /// CBOR carry absolute paths. `/` for Send.
    pub request_path: LwPath,
    /// The server's time now, in ms since the epoch, to resolve relative
    /// SenML times (RFC 8428 §4.5.3). Decoders never read the clock.
    pub now_ms: i64,
    /// The declared type of a resource (object id, resource id), if the
    /// server knows the object.
    pub resolve: &'a dyn Fn(i64, i64) -> Option<DataType>,
}

impl DecodeContext<'_> {
    fn type_of(&self, path: &LwPath) -> Option<DataType> {
        let ids = path.ids();
        if ids.len() < 3 {
            return None;
        }
        (self.resolve)(i64::from(ids[0]), i64::from(ids[2]))
    }
}

/// Why a payload could not be decoded or encoded. Each message names where
/// ("record 3: field 'bt': not a number"); [`FormatError::coap_code`] gives
/// the CoAP response code the server should answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The content format is not one this module reads (or writes).
    #[error("content format {0} is not supported here")]
    Unsupported(u16),
    /// The payload breaks the format's rules or names a wrong type.
    #[error("{at}: {reason}")]
    Malformed { at: String, reason: String },
    /// The payload ends inside an item.
    #[error("{at}: payload ends early")]
    Truncated { at: String },
    /// The payload nests deeper than [`MAX_DEPTH`].
    #[error("{at}: nested deeper than {max} levels")]
    TooDeep { at: String, max: usize },
    /// The payload is over [`MAX_PAYLOAD_BYTES`], yields more than
    /// [`MAX_RECORDS`] records, or a value exceeds what the format can hold.
    #[error("{what} exceeds the limit of {max}")]
    TooLarge { what: String, max: usize },
    /// The request path does not fit the format (e.g. plain text for an
    /// object instance).
    #[error("request path {path}: {reason}")]
    BadPath { path: String, reason: String },
    /// The values given to an encoder cannot be expressed in the format.
    #[error("{at}: cannot encode: {reason}")]
    Unencodable { at: String, reason: String },
}

/// The error for a payload that yields more than [`MAX_RECORDS`] records;
/// decoders check as they go so that memory stays bounded too.
pub(crate) fn check_record_count(records: &[Record]) -> Result<(), FormatError> {
    if records.len() >= MAX_RECORDS {
        return Err(FormatError::TooLarge {
            what: "records".into(),
            max: MAX_RECORDS,
        });
    }
    Ok(())
}

impl FormatError {
    /// The CoAP response code as (class, detail): 4.15 for an unsupported
    /// format, 4.13 for too large, 5.00 for an encoder refusing the
    /// server's own values, 4.00 for everything a device got wrong.
    pub fn coap_code(&self) -> (u8, u8) {
        match self {
            FormatError::Unsupported(_) => (4, 15),
            FormatError::TooLarge { .. } => (4, 13),
            FormatError::Unencodable { .. } => (5, 0),
            FormatError::Malformed { .. }
            | FormatError::Truncated { .. }
            | FormatError::TooDeep { .. }
            | FormatError::BadPath { .. } => (4, 0),
        }
    }
}

/// Decodes a payload into records, in payload order.
///
/// Records without a value (SenML name-only or base-only records) are
/// skipped; a value on a path above resource level is an error.
pub fn decode(
    format: ContentFormat,
    payload: &[u8],
    ctx: &DecodeContext<'_>,
) -> Result<Vec<Record>, FormatError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(FormatError::TooLarge {
            what: format!("payload of {} bytes", payload.len()),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let records = match format {
        ContentFormat::Text => text::decode(payload, ctx)?,
        ContentFormat::Opaque => opaque::decode(payload, ctx)?,
        ContentFormat::Cbor => cbor::decode(payload, ctx)?,
        ContentFormat::Tlv => tlv::decode(payload, ctx)?,
        ContentFormat::LwM2mJson => lwm2m_json::decode(payload, ctx)?,
        ContentFormat::SenmlJson => senml_json::decode(payload, ctx)?,
        ContentFormat::SenmlCbor => senml_cbor::decode(payload, ctx)?,
        ContentFormat::LwM2mCbor => lwm2m_cbor::decode(payload, ctx)?,
        ContentFormat::LinkFormat => return Err(FormatError::Unsupported(format.number())),
    };
    if records.len() > MAX_RECORDS {
        return Err(FormatError::TooLarge {
            what: format!("{} records", records.len()),
            max: MAX_RECORDS,
        });
    }
    Ok(records)
}

/// One value to encode; borrowed so that [`encode`] and [`encode_records`]
/// share the encoders without cloning values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub path: &'a ResourcePath,
    pub value: &'a Value,
    pub time_ms: Option<i64>,
}

impl Entry<'_> {
    fn lw_path(&self) -> Result<LwPath, FormatError> {
        LwPath::from_resource_path(self.path).ok_or_else(|| FormatError::Unencodable {
            at: self.path.to_string(),
            reason: "ids must be within 0..=65534".into(),
        })
    }
}

/// Encodes values for a Write (or Create, Write-Composite) request to a
/// device. `base` is the request path: text, opaque and CBOR take exactly
/// one value; TLV writes everything below `base` (which must be at least an
/// object); SenML and LwM2M CBOR carry full paths and `base` only checks
/// that every value lies below it.
pub fn encode(
    format: ContentFormat,
    values: &[(ResourcePath, Value)],
    base: &LwPath,
) -> Result<Vec<u8>, FormatError> {
    let entries: Vec<Entry<'_>> = values
        .iter()
        .map(|(path, value)| Entry {
            path,
            value,
            time_ms: None,
        })
        .collect();
    encode_entries(format, &entries, base)
}

/// As [`encode`], keeping each record's time: SenML writes it as `t`
/// (absolute seconds); the other formats have no timestamps and refuse
/// records that carry one.
pub fn encode_records(
    format: ContentFormat,
    records: &[Record],
    base: &LwPath,
) -> Result<Vec<u8>, FormatError> {
    let entries: Vec<Entry<'_>> = records
        .iter()
        .map(|r| Entry {
            path: &r.path,
            value: &r.value,
            time_ms: r.time_ms,
        })
        .collect();
    encode_entries(format, &entries, base)
}

fn encode_entries(
    format: ContentFormat,
    entries: &[Entry<'_>],
    base: &LwPath,
) -> Result<Vec<u8>, FormatError> {
    for entry in entries {
        if !entry.lw_path()?.starts_with(base) {
            return Err(FormatError::Unencodable {
                at: entry.path.to_string(),
                reason: format!("not below the request path {base}"),
            });
        }
        let timed = matches!(format, ContentFormat::SenmlJson | ContentFormat::SenmlCbor);
        if entry.time_ms.is_some() && !timed {
            return Err(FormatError::Unencodable {
                at: entry.path.to_string(),
                reason: format!("{format} has no timestamps"),
            });
        }
    }
    let single_value = matches!(
        format,
        ContentFormat::Text | ContentFormat::Opaque | ContentFormat::Cbor
    );
    if single_value {
        if let Some(e) = entries
            .iter()
            .find(|e| e.lw_path().ok().as_ref() != Some(base))
        {
            return Err(FormatError::Unencodable {
                at: e.path.to_string(),
                reason: format!("{format} carries the value of the request path {base} only"),
            });
        }
    }
    match format {
        ContentFormat::Text => text::encode(single(format, entries)?),
        ContentFormat::Opaque => opaque::encode(single(format, entries)?),
        ContentFormat::Cbor => cbor::encode(single(format, entries)?),
        ContentFormat::Tlv => tlv::encode(entries, base),
        ContentFormat::SenmlJson => senml_json::encode(entries, base),
        ContentFormat::SenmlCbor => senml_cbor::encode(entries, base),
        ContentFormat::LwM2mCbor => lwm2m_cbor::encode(entries),
        ContentFormat::LinkFormat | ContentFormat::LwM2mJson => {
            Err(FormatError::Unsupported(format.number()))
        }
    }
}

fn single<'a>(
    format: ContentFormat,
    entries: &'a [Entry<'a>],
) -> Result<&'a Entry<'a>, FormatError> {
    match entries {
        [one] => Ok(one),
        _ => Err(FormatError::Unencodable {
            at: format.to_string(),
            reason: format!("carries exactly one value, not {}", entries.len()),
        }),
    }
}

/// Encodes a list of paths without values: the body of a Read-Composite,
/// Observe-Composite or Cancel-Observe-Composite FETCH (Core TS 1.1.1
/// §6.3.2, §6.4.3): SenML records with only `n`. Only SenML JSON and SenML
/// CBOR can carry it.
pub fn encode_paths(format: ContentFormat, paths: &[LwPath]) -> Result<Vec<u8>, FormatError> {
    match format {
        ContentFormat::SenmlJson => Ok(senml_json::encode_paths(paths)),
        ContentFormat::SenmlCbor => Ok(senml_cbor::encode_paths(paths)),
        _ => Err(FormatError::Unsupported(format.number())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_format_numbers_round_trip_and_legacy_numbers_alias() {
        for f in ContentFormat::ALL {
            assert_eq!(ContentFormat::from_u16(f.number()), Some(f));
        }
        assert_eq!(ContentFormat::from_u16(1541), Some(ContentFormat::Text));
        assert_eq!(ContentFormat::from_u16(1542), Some(ContentFormat::Tlv));
        assert_eq!(
            ContentFormat::from_u16(1543),
            Some(ContentFormat::LwM2mJson)
        );
        assert_eq!(ContentFormat::from_u16(1544), Some(ContentFormat::Opaque));
        assert_eq!(ContentFormat::from_u16(50), None);
        assert_eq!(ContentFormat::from_u16(1545), None);
    }

    #[test]
    fn paths_parse_canonically() {
        assert_eq!(LwPath::parse("/"), Some(LwPath::ROOT));
        assert_eq!(LwPath::parse(""), Some(LwPath::ROOT));
        assert_eq!(LwPath::parse("/3/0/1").unwrap().ids(), &[3, 0, 1]);
        assert_eq!(LwPath::parse("/3/0/").unwrap().ids(), &[3, 0]);
        assert_eq!(LwPath::parse("3/0/6/1").unwrap().to_string(), "/3/0/6/1");
        for bad in [
            "/3//1",
            "/01",
            "/+1",
            "/3/0/1/2/3",
            "/65535",
            "/a",
            "//",
            "/3/-0",
        ] {
            assert_eq!(LwPath::parse(bad), None, "{bad}");
        }
        assert_eq!(LwPath::parse("/65534").unwrap().ids(), &[65534]);
    }

    #[test]
    fn resource_paths_convert_both_ways() {
        let rp = ResourcePath {
            object_id: 3,
            instance_id: 0,
            resource_id: 6,
            resource_instance_id: Some(1),
        };
        let lw = LwPath::from_resource_path(&rp).unwrap();
        assert_eq!(lw.to_string(), "/3/0/6/1");
        assert_eq!(lw.to_resource_path(), Some(rp));
        assert_eq!(LwPath::parse("/3/0").unwrap().to_resource_path(), None);
        let bad = ResourcePath {
            object_id: 70000,
            ..rp
        };
        assert_eq!(LwPath::from_resource_path(&bad), None);
    }

    #[test]
    fn errors_map_to_coap_codes() {
        assert_eq!(FormatError::Unsupported(40).coap_code(), (4, 15));
        let m = FormatError::Malformed {
            at: "record 3: field 'bt'".into(),
            reason: "not a number".into(),
        };
        assert_eq!(m.coap_code(), (4, 0));
        assert_eq!(m.to_string(), "record 3: field 'bt': not a number");
    }

    #[test]
    fn payload_size_and_record_count_are_bounded() {
        let ctx = DecodeContext {
            request_path: LwPath::parse("/3/0").unwrap(),
            now_ms: 0,
            resolve: &|_, _| None,
        };
        let huge = vec![0u8; MAX_PAYLOAD_BYTES + 1];
        let err = decode(ContentFormat::Opaque, &huge, &ctx).unwrap_err();
        assert_eq!(err.coap_code(), (4, 13));
        // 65,537 one-byte resources in 197 KB of TLV.
        let many: Vec<u8> = [0xC1, 0x01, 0x00].repeat(MAX_RECORDS + 1);
        assert!(matches!(
            decode(ContentFormat::Tlv, &many, &ctx),
            Err(FormatError::TooLarge { .. })
        ));
        let ok: Vec<u8> = [0xC1, 0x01, 0x00].repeat(MAX_RECORDS - 1);
        assert_eq!(
            decode(ContentFormat::Tlv, &ok, &ctx).unwrap().len(),
            MAX_RECORDS - 1
        );
    }

    #[test]
    fn single_value_formats_encode_the_request_path_only() {
        let path = ResourcePath {
            object_id: 3,
            instance_id: 0,
            resource_id: 9,
            resource_instance_id: None,
        };
        let values = [(path, Value::Integer(1))];
        assert!(encode(
            ContentFormat::Text,
            &values,
            &LwPath::parse("/3/0/9").unwrap()
        )
        .is_ok());
        let err = encode(
            ContentFormat::Text,
            &values,
            &LwPath::parse("/3/0").unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.coap_code(), (5, 0));
        assert!(encode(ContentFormat::Tlv, &values, &LwPath::parse("/4").unwrap()).is_err());
    }

    #[test]
    fn link_format_is_not_decoded_and_lwm2m_json_not_encoded() {
        let ctx = DecodeContext {
            request_path: LwPath::ROOT,
            now_ms: 0,
            resolve: &|_, _| None,
        };
        assert_eq!(
            decode(ContentFormat::LinkFormat, b"</3/0>", &ctx),
            Err(FormatError::Unsupported(40))
        );
        assert_eq!(
            encode(ContentFormat::LwM2mJson, &[], &LwPath::ROOT),
            Err(FormatError::Unsupported(11543))
        );
    }
}
