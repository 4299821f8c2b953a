//! CBOR, Content-Format 60 (Core TS 1.1.1 §7.4.6): one value of one
//! resource or resource instance as a single CBOR data item.
//!
//! CBOR carries part of the type; the declared type decides the rest:
//! integers for FLOAT read as floats, text for OBJLNK parses `oid:iid`, text
//! for CORELINK stays text, TIME is integer seconds, plain or under tag 1
//! (epoch time, RFC 8949 §3.4.2). Without a declared type: integers →
//! INTEGER, floats → FLOAT, text → STRING, bytes → OPAQUE, booleans →
//! BOOLEAN, tag 1 → TIME, null → NONE. Any other item (arrays, maps, other
//! tags, undefined) is malformed.
use super::cbor_reader::{self, Item, Writer};
use super::common::{mismatch, ms_to_secs, num_to_value, text_to_value, unencodable, Num};
use super::{DecodeContext, Entry, FormatError, Record};
use crate::model::lwm2m::{DataType, Value};
use std::fmt::Display;

/// RFC 8949 §3.4.2 epoch-based date/time.
const TAG_EPOCH_TIME: u64 = 1;

pub(crate) fn decode(payload: &[u8], ctx: &DecodeContext<'_>) -> Result<Vec<Record>, FormatError> {
    let path = ctx.request_path;
    let resource = path
        .to_resource_path()
        .ok_or_else(|| FormatError::BadPath {
            path: path.to_string(),
            reason: "CBOR carries one resource (instance) value".into(),
        })?;
    let item = cbor_reader::decode_single(payload)?;
    let value = item_to_value(item, ctx.type_of(&path), &path)?;
    Ok(vec![Record {
        path: resource,
        value,
        time_ms: None,
    }])
}

/// One CBOR item as a value of the declared (or inferred) type; shared with
/// LwM2M CBOR, whose leaves follow the same table.
pub(crate) fn item_to_value(
    item: Item,
    ty: Option<DataType>,
    at: &dyn Display,
) -> Result<Value, FormatError> {
    let got = item.kind();
    match item {
        Item::Uint(_) | Item::Nint(_) => {
            let n = item.as_int().unwrap_or_default();
            num_to_value(Num::Int(n), ty.unwrap_or(DataType::Integer), at)
        }
        Item::Float(f) => match ty.unwrap_or(DataType::Float) {
            DataType::Float => Ok(Value::Float(f)),
            other => num_to_value(Num::Float(f), other, at),
        },
        Item::Tag(TAG_EPOCH_TIME, inner) => match (ty, *inner) {
            (None | Some(DataType::Time), inner @ (Item::Uint(_) | Item::Nint(_))) => {
                let n = inner.as_int().unwrap_or_default();
                num_to_value(Num::Int(n), DataType::Time, at)
            }
            (None | Some(DataType::Time), inner) => Err(super::common::malformed(
                at,
                format!("tag 1 time must be integer seconds, not {}", inner.kind()),
            )),
            (Some(other), _) => Err(mismatch(at, "a tag 1 time", other)),
        },
        Item::Text(s) => text_to_value(s, ty, at),
        Item::Bytes(b) => match ty {
            None | Some(DataType::Opaque) => Ok(Value::Opaque(b)),
            Some(other) => Err(mismatch(at, got, other)),
        },
        Item::Bool(b) => match ty {
            None | Some(DataType::Boolean) => Ok(Value::Boolean(b)),
            Some(other) => Err(mismatch(at, got, other)),
        },
        Item::Null => match ty {
            None | Some(DataType::None) => Ok(Value::None),
            Some(other) => Err(mismatch(at, got, other)),
        },
        _ => Err(super::common::malformed(
            at,
            format!("{got} is not a resource value"),
        )),
    }
}

pub(crate) fn encode(entry: &Entry<'_>) -> Result<Vec<u8>, FormatError> {
    let mut w = Writer::default();
    write_value(&mut w, entry.value, &entry.path)?;
    Ok(w.buf)
}

/// Writes one value: TIME as tag 1 with integer seconds, OBJLNK as
/// `oid:iid` text, NONE as null.
pub(crate) fn write_value(
    w: &mut Writer,
    value: &Value,
    at: &dyn Display,
) -> Result<(), FormatError> {
    match value {
        Value::String(s) | Value::Corelink(s) => w.text(s),
        Value::Integer(i) => w.int(*i),
        Value::UnsignedInteger(i) if *i < 0 => {
            return Err(unencodable(at, "negative UNSIGNED_INTEGER"));
        }
        Value::UnsignedInteger(i) => w.int(*i),
        Value::Float(f) => w.float(*f),
        Value::Boolean(b) => w.bool(*b),
        Value::Opaque(b) => w.bytes(b),
        Value::Time(ms) => {
            w.tag(TAG_EPOCH_TIME);
            w.int(ms_to_secs(*ms));
        }
        Value::Objlnk { .. } => w.text(&value.to_string()),
        Value::None => w.null(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{decode as decode_any, ContentFormat, LwPath};
    use super::*;

    fn ctx_with<'a>(
        path: &str,
        resolve: &'a dyn Fn(i64, i64) -> Option<DataType>,
    ) -> DecodeContext<'a> {
        DecodeContext {
            request_path: LwPath::parse(path).unwrap(),
            now_ms: 0,
            resolve,
        }
    }

    fn one(bytes: &[u8], ty: Option<DataType>) -> Result<Value, FormatError> {
        let resolve = move |_: i64, _: i64| ty;
        let records = decode_any(ContentFormat::Cbor, bytes, &ctx_with("/3/0/13", &resolve))?;
        Ok(records.into_iter().next().unwrap().value)
    }

    #[test]
    fn decodes_each_type() {
        assert_eq!(one(&[0x18, 0x64], None), Ok(Value::Integer(100)));
        assert_eq!(
            one(&[0x20], Some(DataType::Integer)),
            Ok(Value::Integer(-1))
        );
        assert_eq!(
            one(&[0x18, 0x64], Some(DataType::Float)),
            Ok(Value::Float(100.0))
        );
        assert_eq!(one(&[0xf9, 0x3c, 0x00], None), Ok(Value::Float(1.0)));
        assert_eq!(one(&[0x61, 0x55], None), Ok(Value::String("U".into())));
        assert_eq!(one(&[0x42, 1, 2], None), Ok(Value::Opaque(vec![1, 2])));
        assert_eq!(one(&[0xf5], None), Ok(Value::Boolean(true)));
        assert_eq!(one(&[0xf6], None), Ok(Value::None));
        // 1367491215 s, the current time of the Core TS Device example.
        let secs = [0x1a, 0x51, 0x82, 0x42, 0x8f];
        assert_eq!(
            one(&secs, Some(DataType::Time)),
            Ok(Value::Time(1_367_491_215_000))
        );
        let tagged = [&[0xc1][..], &secs].concat();
        assert_eq!(one(&tagged, None), Ok(Value::Time(1_367_491_215_000)));
        assert_eq!(
            one(b"\x633:0", Some(DataType::Objlnk)),
            Ok(Value::Objlnk {
                object_id: 3,
                instance_id: 0
            })
        );
        assert_eq!(
            one(b"\x64</1>", Some(DataType::Corelink)),
            Ok(Value::Corelink("</1>".into()))
        );
    }

    #[test]
    fn rejects_mismatches_and_non_values() {
        assert!(one(&[0x61, 0x55], Some(DataType::Integer)).is_err());
        assert!(one(&[0xf5], Some(DataType::String)).is_err());
        assert!(one(&[0x80], None).is_err());
        assert!(one(&[0xa0], None).is_err());
        assert!(one(&[0xc2, 0x40], None).is_err());
        assert!(one(&[0xc1, 0x61, 0x55], None).is_err());
        assert!(one(&[0x01, 0x02], None).is_err());
        assert!(one(&[0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0], None).is_err());
        let resolve = |_: i64, _: i64| None;
        assert!(matches!(
            decode_any(ContentFormat::Cbor, &[0x01], &ctx_with("/3/0", &resolve)),
            Err(FormatError::BadPath { .. })
        ));
    }
}
