//! OMA TLV, Content-Format 11542 (Core TS 1.1.1 §7.4.3).
//!
//! Each TLV's type byte says what it is (bits 7-6: 00 object instance, 01
//! resource instance, 10 multiple resource, 11 resource with value), how
//! wide its id is (bit 5: 8 or 16 bits) and where its length is (bits 4-3:
//! 00 in bits 2-0, 01/10/11 in the next 8/16/24 bits). Object instances
//! hold resources, multiple resources hold resource instances.
//!
//! Ids are relative to the request path: a TLV's kind fixes its level
//! (instance, resource, resource instance); the levels above come from the
//! request path, and where the request path names that level too the ids
//! must agree. A request on an object answered with bare resources is read
//! as instance 0 (single-instance objects, as Leshan and Wakaama send).
//!
//! Values carry no type: the declared type decides (integers 1/2/4/8 bytes
//! two's complement, unsigned 1/2/4/8 bytes, floats 4/8 bytes, booleans one
//! byte 0/1, object links 4 bytes, TIME integer seconds). Without a declared
//! type, bytes that are printable UTF-8 read as STRING, others as OPAQUE:
//! lengths 1/2/4/8 fit integers and text alike, so nothing better is sound.
use super::common::{looks_like_text, malformed, ms_to_secs, secs_to_ms, unencodable};
use super::{DecodeContext, Entry, FormatError, LwPath, Record};
use crate::model::lwm2m::{DataType, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ObjectInstance = 0,
    ResourceInstance = 1,
    MultipleResource = 2,
    Resource = 3,
}

impl Kind {
    /// How many path ids precede this TLV's own id.
    fn depth(self) -> usize {
        match self {
            Kind::ObjectInstance => 1,
            Kind::Resource | Kind::MultipleResource => 2,
            Kind::ResourceInstance => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::ObjectInstance => "object instance",
            Kind::ResourceInstance => "resource instance",
            Kind::MultipleResource => "multiple resource",
            Kind::Resource => "resource",
        }
    }
}

struct Tlv<'a> {
    kind: Kind,
    id: u16,
    value: &'a [u8],
    /// Offset of the TLV's type byte in the whole payload, for errors.
    offset: usize,
    /// Offset of the value in the whole payload.
    value_offset: usize,
}

/// Splits one level of TLVs; `base` is the offset of `buf` in the payload.
fn parse_level(buf: &[u8], base: usize) -> Result<Vec<Tlv<'_>>, FormatError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let offset = base + pos;
        let truncated = || FormatError::Truncated {
            at: format!("TLV at byte {offset}"),
        };
        let ty = buf[pos];
        let kind = match ty >> 6 {
            0 => Kind::ObjectInstance,
            1 => Kind::ResourceInstance,
            2 => Kind::MultipleResource,
            _ => Kind::Resource,
        };
        let id_len = if ty & 0x20 != 0 { 2 } else { 1 };
        let len_len = usize::from((ty >> 3) & 0x03);
        let header = 1 + id_len + len_len;
        let head = buf.get(pos..pos + header).ok_or_else(truncated)?;
        let id = head[1..1 + id_len]
            .iter()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        if id > u32::from(LwPath::MAX_ID) {
            return Err(malformed(
                format!("TLV at byte {offset}"),
                "id 65535 is reserved",
            ));
        }
        let len = if len_len == 0 {
            usize::from(ty & 0x07)
        } else {
            head[1 + id_len..]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let start = pos + header;
        let value = buf.get(start..start + len).ok_or_else(truncated)?;
        out.push(Tlv {
            kind,
            id: id as u16,
            value,
            offset,
            value_offset: base + start,
        });
        pos = start + len;
    }
    Ok(out)
}

pub(crate) fn decode(payload: &[u8], ctx: &DecodeContext<'_>) -> Result<Vec<Record>, FormatError> {
    let request = ctx.request_path;
    if request.is_empty() {
        return Err(FormatError::BadPath {
            path: request.to_string(),
            reason: "TLV needs at least an object in the request path".into(),
        });
    }
    let mut out = Vec::new();
    for tlv in parse_level(payload, 0)? {
        let parent = parent_from_request(&tlv, &request)?;
        walk(&tlv, parent, ctx, &mut out)?;
    }
    Ok(out)
}

/// The path above a top-level TLV, taken from the request path.
fn parent_from_request(tlv: &Tlv<'_>, request: &LwPath) -> Result<LwPath, FormatError> {
    let depth = tlv.kind.depth();
    let ids = request.ids();
    let at = || format!("TLV at byte {}", tlv.offset);
    if ids.len() < depth {
        // Bare resources answering a Read on a single-instance object.
        if ids.len() == 1 && depth == 2 {
            return Ok(request.child(0).unwrap_or(*request));
        }
        return Err(malformed(
            at(),
            format!(
                "a {} needs a deeper request path than {request}",
                tlv.kind.name()
            ),
        ));
    }
    if let Some(&named) = ids.get(depth) {
        if named != tlv.id {
            return Err(malformed(
                at(),
                format!(
                    "{} {} does not match the request path {request}",
                    tlv.kind.name(),
                    tlv.id
                ),
            ));
        }
    }
    Ok(LwPath::new(&ids[..depth]).unwrap_or(LwPath::ROOT))
}

fn walk(
    tlv: &Tlv<'_>,
    parent: LwPath,
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Record>,
) -> Result<(), FormatError> {
    let path = parent
        .child(tlv.id)
        .ok_or_else(|| malformed(format!("TLV at byte {}", tlv.offset), "path too deep"))?;
    let children_of = |want: &[Kind]| -> Result<Vec<Tlv<'_>>, FormatError> {
        let children = parse_level(tlv.value, tlv.value_offset)?;
        for c in &children {
            if !want.contains(&c.kind) {
                return Err(malformed(
                    format!("TLV at byte {}", c.offset),
                    format!("a {} cannot be inside a {}", c.kind.name(), tlv.kind.name()),
                ));
            }
        }
        Ok(children)
    };
    match tlv.kind {
        Kind::ObjectInstance => {
            for c in children_of(&[Kind::Resource, Kind::MultipleResource])? {
                walk(&c, path, ctx, out)?;
            }
        }
        Kind::MultipleResource => {
            for c in children_of(&[Kind::ResourceInstance])? {
                walk(&c, path, ctx, out)?;
            }
        }
        Kind::Resource | Kind::ResourceInstance => {
            let at = format!("{path} (TLV at byte {})", tlv.offset);
            super::check_record_count(out)?;
            let value = decode_value(tlv.value, ctx.type_of(&path), &at)?;
            if let Some(resource) = path.to_resource_path() {
                out.push(Record {
                    path: resource,
                    value,
                    time_ms: None,
                });
            }
        }
    }
    Ok(())
}

fn be_uint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn decode_value(bytes: &[u8], ty: Option<DataType>, at: &str) -> Result<Value, FormatError> {
    let int = || -> Result<i64, FormatError> {
        match bytes.len() {
            1 => Ok(i64::from(bytes[0] as i8)),
            2 => Ok(i64::from(i16::from_be_bytes([bytes[0], bytes[1]]))),
            4 => Ok(i64::from(i32::from_be_bytes([
                bytes[0], bytes[1], bytes[2], bytes[3],
            ]))),
            8 => Ok(be_uint(bytes) as i64),
            n => Err(malformed(
                at,
                format!("an integer is 1, 2, 4 or 8 bytes, not {n}"),
            )),
        }
    };
    let utf8 =
        || String::from_utf8(bytes.to_vec()).map_err(|_| malformed(at, "string is not UTF-8"));
    Ok(match ty {
        None => match looks_like_text(bytes) {
            Some(s) => Value::String(s.to_owned()),
            None => Value::Opaque(bytes.to_vec()),
        },
        Some(DataType::String) => Value::String(utf8()?),
        Some(DataType::Corelink) => Value::Corelink(utf8()?),
        Some(DataType::Opaque) => Value::Opaque(bytes.to_vec()),
        Some(DataType::Integer) => Value::Integer(int()?),
        Some(DataType::UnsignedInteger) => {
            if !matches!(bytes.len(), 1 | 2 | 4 | 8) {
                return Err(malformed(at, "an unsigned integer is 1, 2, 4 or 8 bytes"));
            }
            let u = be_uint(bytes);
            Value::UnsignedInteger(
                i64::try_from(u).map_err(|_| malformed(at, format!("{u} is out of range")))?,
            )
        }
        Some(DataType::Time) => {
            Value::Time(secs_to_ms(int()?).ok_or_else(|| malformed(at, "time out of range"))?)
        }
        Some(DataType::Float) => match bytes.len() {
            4 => Value::Float(f64::from(f32::from_bits(be_uint(bytes) as u32))),
            8 => Value::Float(f64::from_bits(be_uint(bytes))),
            n => return Err(malformed(at, format!("a float is 4 or 8 bytes, not {n}"))),
        },
        Some(DataType::Boolean) => match bytes {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            _ => return Err(malformed(at, "a boolean is one byte 0 or 1")),
        },
        Some(DataType::Objlnk) => match bytes {
            [a, b, c, d] => Value::Objlnk {
                object_id: u16::from_be_bytes([*a, *b]),
                instance_id: u16::from_be_bytes([*c, *d]),
            },
            _ => return Err(malformed(at, "an object link is 4 bytes")),
        },
        Some(DataType::None) => Value::None,
    })
}

/// Encodes the entries below `base` (object, instance, resource or
/// resource instance). Entries are sorted by path; values of one resource
/// with instance ids go into one multiple-resource TLV.
pub(crate) fn encode(entries: &[Entry<'_>], base: &LwPath) -> Result<Vec<u8>, FormatError> {
    if base.is_empty() {
        return Err(FormatError::BadPath {
            path: base.to_string(),
            reason: "TLV needs at least an object in the request path".into(),
        });
    }
    if base.len() == 4 {
        // A single resource instance goes alone, without the
        // multiple-resource wrapper.
        let [e] = entries else {
            return Err(unencodable(
                base,
                "a resource instance path takes exactly one value",
            ));
        };
        let mut out = Vec::new();
        write_tlv(
            &mut out,
            Kind::ResourceInstance,
            base.ids()[3],
            &encode_value(e.value, &base.to_string())?,
        )?;
        return Ok(out);
    }
    // instance → resource → (single value | resource instances)
    let mut tree: BTreeMap<u16, BTreeMap<u16, Res<'_>>> = BTreeMap::new();
    for e in entries {
        let p = e.lw_path()?;
        let ids = p.ids();
        let dup = || {
            unencodable(
                e.path,
                "the same path is given twice, or both as a resource and as resource instances",
            )
        };
        let res = tree.entry(ids[1]).or_default();
        match (ids.get(3), res.get_mut(&ids[2])) {
            (None, None) => {
                res.insert(ids[2], Res::Single(e.value));
            }
            (Some(&ri), None) => {
                res.insert(ids[2], Res::Multi(BTreeMap::from([(ri, e.value)])));
            }
            (Some(&ri), Some(Res::Multi(m))) => {
                if m.insert(ri, e.value).is_some() {
                    return Err(dup());
                }
            }
            _ => return Err(dup()),
        }
    }
    let mut out = Vec::new();
    match base.len() {
        1 => {
            for (iid, resources) in &tree {
                let mut inner = Vec::new();
                write_resources(&mut inner, resources)?;
                write_tlv(&mut out, Kind::ObjectInstance, *iid, &inner)?;
            }
        }
        _ => {
            for resources in tree.values() {
                write_resources(&mut out, resources)?;
            }
        }
    }
    Ok(out)
}

enum Res<'a> {
    Single(&'a Value),
    Multi(BTreeMap<u16, &'a Value>),
}

fn write_resources(
    out: &mut Vec<u8>,
    resources: &BTreeMap<u16, Res<'_>>,
) -> Result<(), FormatError> {
    for (rid, res) in resources {
        match res {
            Res::Single(v) => write_tlv(
                out,
                Kind::Resource,
                *rid,
                &encode_value(v, &format!("resource {rid}"))?,
            )?,
            Res::Multi(instances) => {
                let mut inner = Vec::new();
                for (ri, v) in instances {
                    let bytes = encode_value(v, &format!("resource {rid}/{ri}"))?;
                    write_tlv(&mut inner, Kind::ResourceInstance, *ri, &bytes)?;
                }
                write_tlv(out, Kind::MultipleResource, *rid, &inner)?;
            }
        }
    }
    Ok(())
}

fn write_tlv(out: &mut Vec<u8>, kind: Kind, id: u16, value: &[u8]) -> Result<(), FormatError> {
    let len = value.len();
    let mut ty = (kind as u8) << 6;
    if id > 0xff {
        ty |= 0x20;
    }
    let len_bytes: &[u8] = &(len as u32).to_be_bytes();
    let len_field = match len {
        0..=7 => {
            ty |= len as u8;
            &[][..]
        }
        8..=0xff => {
            ty |= 0x08;
            &len_bytes[3..]
        }
        0x100..=0xffff => {
            ty |= 0x10;
            &len_bytes[2..]
        }
        0x1_0000..=0xff_ffff => {
            ty |= 0x18;
            &len_bytes[1..]
        }
        _ => {
            return Err(FormatError::TooLarge {
                what: format!("TLV value of {len} bytes"),
                max: 0xff_ffff,
            })
        }
    };
    out.push(ty);
    if id > 0xff {
        out.extend_from_slice(&id.to_be_bytes());
    } else {
        out.push(id as u8);
    }
    out.extend_from_slice(len_field);
    out.extend_from_slice(value);
    Ok(())
}

/// The shortest of 1/2/4/8 bytes that holds `v` in two's complement.
fn encode_int(v: i64) -> Vec<u8> {
    if let Ok(b) = i8::try_from(v) {
        b.to_be_bytes().to_vec()
    } else if let Ok(s) = i16::try_from(v) {
        s.to_be_bytes().to_vec()
    } else if let Ok(w) = i32::try_from(v) {
        w.to_be_bytes().to_vec()
    } else {
        v.to_be_bytes().to_vec()
    }
}

fn encode_value(value: &Value, at: &str) -> Result<Vec<u8>, FormatError> {
    Ok(match value {
        Value::String(s) | Value::Corelink(s) => s.as_bytes().to_vec(),
        Value::Integer(i) => encode_int(*i),
        Value::UnsignedInteger(i) => {
            let u = u64::try_from(*i).map_err(|_| unencodable(at, "negative UNSIGNED_INTEGER"))?;
            if let Ok(b) = u8::try_from(u) {
                vec![b]
            } else if let Ok(s) = u16::try_from(u) {
                s.to_be_bytes().to_vec()
            } else if let Ok(w) = u32::try_from(u) {
                w.to_be_bytes().to_vec()
            } else {
                u.to_be_bytes().to_vec()
            }
        }
        Value::Float(f) => {
            let single = *f as f32;
            if f64::from(single).to_bits() == f.to_bits() {
                single.to_be_bytes().to_vec()
            } else {
                f.to_be_bytes().to_vec()
            }
        }
        Value::Boolean(b) => vec![u8::from(*b)],
        Value::Opaque(b) => b.clone(),
        Value::Time(ms) => encode_int(ms_to_secs(*ms)),
        Value::Objlnk {
            object_id,
            instance_id,
        } => [object_id.to_be_bytes(), instance_id.to_be_bytes()].concat(),
        Value::None => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{decode as decode_any, encode as encode_any, ContentFormat};
    use super::*;
    use crate::model::lwm2m::ResourcePath;

    /// Declared types of the Device object (3) resources in the example.
    fn device_types(oid: i64, rid: i64) -> Option<DataType> {
        if oid != 3 {
            return None;
        }
        Some(match rid {
            0..=3 | 14 | 15 => DataType::String,
            6..=11 => DataType::Integer,
            13 => DataType::Time,
            _ => return None,
        })
    }

    fn decode_at(path: &str, bytes: &[u8]) -> Result<Vec<Record>, FormatError> {
        let ctx = DecodeContext {
            request_path: LwPath::parse(path).unwrap(),
            now_ms: 0,
            resolve: &device_types,
        };
        decode_any(ContentFormat::Tlv, bytes, &ctx)
    }

    fn rp(s: &str) -> ResourcePath {
        LwPath::parse(s).unwrap().to_resource_path().unwrap()
    }

    /// Core TS §7.4.3.1 example: Read /3/0 (Device object instance) as TLV;
    /// the same bytes are Wakaama's TLV test vector.
    const DEVICE_3_0: [u8; 121] = [
        0xC8, 0x00, 0x14, 0x4F, 0x70, 0x65, 0x6E, 0x20, 0x4D, 0x6F, 0x62, 0x69, 0x6C, 0x65, 0x20,
        0x41, 0x6C, 0x6C, 0x69, 0x61, 0x6E, 0x63, 0x65, 0xC8, 0x01, 0x16, 0x4C, 0x69, 0x67, 0x68,
        0x74, 0x77, 0x65, 0x69, 0x67, 0x68, 0x74, 0x20, 0x4D, 0x32, 0x4D, 0x20, 0x43, 0x6C, 0x69,
        0x65, 0x6E, 0x74, 0xC8, 0x02, 0x09, 0x33, 0x34, 0x35, 0x30, 0x30, 0x30, 0x31, 0x32, 0x33,
        0xC3, 0x03, 0x31, 0x2E, 0x30, 0x86, 0x06, 0x41, 0x00, 0x01, 0x41, 0x01, 0x05, 0x88, 0x07,
        0x08, 0x42, 0x00, 0x0E, 0xD8, 0x42, 0x01, 0x13, 0x88, 0x87, 0x08, 0x41, 0x00, 0x7D, 0x42,
        0x01, 0x03, 0x84, 0xC1, 0x09, 0x64, 0xC1, 0x0A, 0x0F, 0x83, 0x0B, 0x41, 0x00, 0x00, 0xC4,
        0x0D, 0x51, 0x82, 0x42, 0x8F, 0xC6, 0x0E, 0x2B, 0x30, 0x32, 0x3A, 0x30, 0x30, 0xC1, 0x0F,
        0x55,
    ];

    #[test]
    fn decodes_the_spec_device_example() {
        let records = decode_at("/3/0", &DEVICE_3_0).unwrap();
        let got: Vec<(String, Value)> = records
            .iter()
            .map(|r| (r.path.to_string(), r.value.clone()))
            .collect();
        let s = |v: &str| Value::String(v.into());
        let want = vec![
            ("/3/0/0", s("Open Mobile Alliance")),
            ("/3/0/1", s("Lightweight M2M Client")),
            ("/3/0/2", s("345000123")),
            ("/3/0/3", s("1.0")),
            ("/3/0/6/0", Value::Integer(1)),
            ("/3/0/6/1", Value::Integer(5)),
            ("/3/0/7/0", Value::Integer(3800)),
            ("/3/0/7/1", Value::Integer(5000)),
            ("/3/0/8/0", Value::Integer(125)),
            ("/3/0/8/1", Value::Integer(900)),
            ("/3/0/9", Value::Integer(100)),
            ("/3/0/10", Value::Integer(15)),
            ("/3/0/11/0", Value::Integer(0)),
            ("/3/0/13", Value::Time(1_367_491_215_000)),
            ("/3/0/14", s("+02:00")),
            ("/3/0/15", s("U")),
        ];
        let want: Vec<(String, Value)> =
            want.into_iter().map(|(p, v)| (p.to_string(), v)).collect();
        assert_eq!(got, want);
        assert!(records.iter().all(|r| r.time_ms.is_none()));
    }

    #[test]
    fn encodes_the_spec_device_example_byte_for_byte() {
        let records = decode_at("/3/0", &DEVICE_3_0).unwrap();
        let values: Vec<(ResourcePath, Value)> =
            records.into_iter().map(|r| (r.path, r.value)).collect();
        let bytes =
            encode_any(ContentFormat::Tlv, &values, &LwPath::parse("/3/0").unwrap()).unwrap();
        assert_eq!(bytes, DEVICE_3_0);
    }

    #[test]
    fn decodes_object_level_instances() {
        // Wakaama's first TLV vector: instances 10, 11, 12 of an object,
        // each with resource 1 = 0x14, 0x15, 0x16.
        let bytes = [
            0x03, 0x0A, 0xC1, 0x01, 0x14, 0x03, 0x0B, 0xC1, 0x01, 0x15, 0x03, 0x0C, 0xC1, 0x01,
            0x16,
        ];
        let int = |_: i64, _: i64| Some(DataType::Integer);
        let ctx = DecodeContext {
            request_path: LwPath::parse("/1").unwrap(),
            now_ms: 0,
            resolve: &int,
        };
        let records = decode_any(ContentFormat::Tlv, &bytes, &ctx).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].path, rp("/1/12/1"));
        assert_eq!(records[2].value, Value::Integer(0x16));
        let values: Vec<_> = records.into_iter().map(|r| (r.path, r.value)).collect();
        assert_eq!(
            encode_any(ContentFormat::Tlv, &values, &LwPath::parse("/1").unwrap()).unwrap(),
            bytes
        );
    }

    #[test]
    fn single_resources_and_instances_follow_the_request_path() {
        // Core TS: Read /3/0/9 → C1 09 64; Read /3/0/6 → 86 06 41 00 01 41 01 05.
        assert_eq!(
            decode_at("/3/0/9", &[0xC1, 0x09, 0x64]).unwrap()[0].path,
            rp("/3/0/9")
        );
        let multi = [0x86, 0x06, 0x41, 0x00, 0x01, 0x41, 0x01, 0x05];
        let records = decode_at("/3/0/6", &multi).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].path, rp("/3/0/6/1"));
        // Bare resource instances under a resource request path.
        let records = decode_at("/3/0/6", &multi[2..]).unwrap();
        assert_eq!(records[1].path, rp("/3/0/6/1"));
        // A single-instance object answered without the instance wrapper.
        assert_eq!(
            decode_at("/3", &[0xC1, 0x09, 0x64]).unwrap()[0].path,
            rp("/3/0/9")
        );
        // Ids that contradict the request path.
        assert!(decode_at("/3/0/9", &[0xC1, 0x0A, 0x64]).is_err());
        assert!(decode_at("/3/1", &[0x03, 0x00, 0xC1, 0x09, 0x64]).is_err());
        assert!(decode_at("/", &[0xC1, 0x09, 0x64]).is_err());
        // Kinds in the wrong place.
        assert!(decode_at("/3/0", &[0x83, 0x06, 0xC1, 0x00, 0x01]).is_err());
        assert!(decode_at("/3", &[0x03, 0x00, 0x41, 0x00, 0x01]).is_err());
    }

    #[test]
    fn lengths_and_ids_of_every_width() {
        // 16-bit id, 8/16/24-bit lengths.
        let mut out = Vec::new();
        write_tlv(&mut out, Kind::Resource, 300, &[b'a'; 300]).unwrap();
        assert_eq!(&out[..5], &[0xF0, 0x01, 0x2C, 0x01, 0x2C]);
        let opaque = |_: i64, _: i64| Some(DataType::Opaque);
        let ctx = DecodeContext {
            request_path: LwPath::parse("/5/0").unwrap(),
            now_ms: 0,
            resolve: &opaque,
        };
        let r = decode_any(ContentFormat::Tlv, &out, &ctx).unwrap();
        assert_eq!(r[0].path, rp("/5/0/300"));
        let mut big = Vec::new();
        write_tlv(&mut big, Kind::Resource, 1, &vec![0; 70_000]).unwrap();
        assert_eq!(&big[..5], &[0xD8, 0x01, 0x01, 0x11, 0x70]);
        assert_eq!(
            decode_any(ContentFormat::Tlv, &big, &ctx).unwrap()[0].value,
            Value::Opaque(vec![0; 70_000])
        );
        // Claimed lengths beyond the payload are truncation, not allocation.
        assert!(matches!(
            decode_any(
                ContentFormat::Tlv,
                &[0xD8, 0x01, 0xff, 0xff, 0xff, 0x00],
                &ctx
            ),
            Err(FormatError::Truncated { .. })
        ));
        assert!(decode_any(ContentFormat::Tlv, &[0xE0, 0xff, 0xff, 0x00], &ctx).is_err());
    }

    #[test]
    fn values_by_declared_type() {
        let at = "x";
        assert_eq!(
            decode_value(&[0xff], Some(DataType::Integer), at),
            Ok(Value::Integer(-1))
        );
        assert_eq!(
            decode_value(&[0xff], Some(DataType::UnsignedInteger), at),
            Ok(Value::UnsignedInteger(255))
        );
        assert!(decode_value(&[0xff; 8], Some(DataType::UnsignedInteger), at).is_err());
        assert!(decode_value(&[0; 3], Some(DataType::Integer), at).is_err());
        assert_eq!(
            decode_value(&1.5f32.to_be_bytes(), Some(DataType::Float), at),
            Ok(Value::Float(1.5))
        );
        assert_eq!(
            decode_value(&0.1f64.to_be_bytes(), Some(DataType::Float), at),
            Ok(Value::Float(0.1))
        );
        assert!(decode_value(&[2], Some(DataType::Boolean), at).is_err());
        assert_eq!(
            decode_value(&[0, 3, 0, 1], Some(DataType::Objlnk), at),
            Ok(Value::Objlnk {
                object_id: 3,
                instance_id: 1
            })
        );
        assert_eq!(
            decode_value(&[0x00, 0x01], None, at),
            Ok(Value::Opaque(vec![0, 1]))
        );
        assert_eq!(
            decode_value(b"hi", None, at),
            Ok(Value::String("hi".into()))
        );
        assert_eq!(encode_int(-129), vec![0xff, 0x7f]);
        assert_eq!(encode_int(i64::MIN).len(), 8);
    }
}
