//! Plain text, Content-Format 0 (Core TS 1.1.1 §7.4.1): one value of one
//! resource or resource instance as UTF-8 text.
//!
//! Per declared type: numbers in decimal, BOOLEAN `0`/`1`, OPAQUE base64,
//! TIME integer seconds, OBJLNK `oid:iid`, CORELINK and STRING as they are.
//! Without a declared type: an integer reads as INTEGER, a decimal number
//! as FLOAT, anything else as STRING. Text never carries `inf`/`nan`.
use super::common::{
    base64_decode, base64_encode, malformed, ms_to_secs, parse_objlnk, secs_to_ms, unencodable,
};
use super::{DecodeContext, Entry, FormatError, Record};
use crate::model::lwm2m::{DataType, Value};

pub(crate) fn decode(payload: &[u8], ctx: &DecodeContext<'_>) -> Result<Vec<Record>, FormatError> {
    let path = ctx.request_path;
    let resource = path
        .to_resource_path()
        .ok_or_else(|| FormatError::BadPath {
            path: path.to_string(),
            reason: "plain text carries one resource (instance) value".into(),
        })?;
    let text = std::str::from_utf8(payload)
        .map_err(|e| malformed(format!("{path}: byte {}", e.valid_up_to()), "not UTF-8"))?;
    let value = parse(text, ctx.type_of(&path), &path.to_string())?;
    Ok(vec![Record {
        path: resource,
        value,
        time_ms: None,
    }])
}

fn is_decimal(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
}

fn parse(text: &str, ty: Option<DataType>, at: &str) -> Result<Value, FormatError> {
    let bad = |what: &str| malformed(at, format!("'{}' is not {what}", truncate(text)));
    let int = || text.parse::<i64>().map_err(|_| bad("an integer"));
    Ok(match ty {
        None => {
            if let Ok(i) = text.parse::<i64>() {
                Value::Integer(i)
            } else if let Some(f) = is_decimal(text).then(|| text.parse::<f64>().ok()).flatten() {
                Value::Float(f)
            } else {
                Value::String(text.to_owned())
            }
        }
        Some(DataType::String) => Value::String(text.to_owned()),
        Some(DataType::Corelink) => Value::Corelink(text.to_owned()),
        Some(DataType::Integer) => Value::Integer(int()?),
        Some(DataType::UnsignedInteger) => {
            let i = int()?;
            if i < 0 || text.starts_with('-') {
                return Err(bad("an unsigned integer"));
            }
            Value::UnsignedInteger(i)
        }
        Some(DataType::Float) => {
            let f = is_decimal(text)
                .then(|| text.parse::<f64>().ok())
                .flatten()
                .ok_or_else(|| bad("a decimal number"))?;
            Value::Float(f)
        }
        Some(DataType::Boolean) => match text {
            "0" => Value::Boolean(false),
            "1" => Value::Boolean(true),
            _ => return Err(bad("a boolean (0 or 1)")),
        },
        Some(DataType::Opaque) => Value::Opaque(base64_decode(text).ok_or_else(|| bad("base64"))?),
        Some(DataType::Time) => {
            Value::Time(secs_to_ms(int()?).ok_or_else(|| malformed(at, "time out of range"))?)
        }
        Some(DataType::Objlnk) => {
            parse_objlnk(text).ok_or_else(|| bad("an object link oid:iid"))?
        }
        Some(DataType::None) => Value::None,
    })
}

/// Keeps error messages short for long payloads.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

pub(crate) fn encode(entry: &Entry<'_>) -> Result<Vec<u8>, FormatError> {
    let text = match entry.value {
        Value::Float(f) if !f.is_finite() => {
            return Err(unencodable(
                entry.path,
                "plain text has no form for inf or nan",
            ));
        }
        Value::UnsignedInteger(i) if *i < 0 => {
            return Err(unencodable(entry.path, "negative UNSIGNED_INTEGER"));
        }
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => u8::from(*b).to_string(),
        Value::Opaque(bytes) => base64_encode(bytes, false),
        Value::Time(ms) => ms_to_secs(*ms).to_string(),
        // Strings, numbers, object links and core links: their Display form
        // is the wire text.
        other => other.to_string(),
    };
    Ok(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::{decode as decode_any, encode as encode_any, ContentFormat, LwPath};
    use super::*;
    use crate::model::lwm2m::ResourcePath;

    fn one(text: &str, ty: Option<DataType>) -> Result<Value, FormatError> {
        let resolve = move |_: i64, _: i64| ty;
        let ctx = DecodeContext {
            request_path: LwPath::parse("/3/0/9").unwrap(),
            now_ms: 0,
            resolve: &resolve,
        };
        let records = decode_any(ContentFormat::Text, text.as_bytes(), &ctx)?;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].path.to_string(), "/3/0/9");
        Ok(records.into_iter().next().unwrap().value)
    }

    #[test]
    fn decodes_declared_types() {
        // Core TS §7.4.1 example: Read /3/0/9 (battery level) → "100".
        assert_eq!(one("100", Some(DataType::Integer)), Ok(Value::Integer(100)));
        assert_eq!(one("100", Some(DataType::Float)), Ok(Value::Float(100.0)));
        assert_eq!(
            one("-1.5e3", Some(DataType::Float)),
            Ok(Value::Float(-1500.0))
        );
        assert_eq!(one("1", Some(DataType::Boolean)), Ok(Value::Boolean(true)));
        assert_eq!(
            one("AQI=", Some(DataType::Opaque)),
            Ok(Value::Opaque(vec![1, 2]))
        );
        assert_eq!(
            one("1367491215", Some(DataType::Time)),
            Ok(Value::Time(1_367_491_215_000))
        );
        assert_eq!(
            one("3:0", Some(DataType::Objlnk)),
            Ok(Value::Objlnk {
                object_id: 3,
                instance_id: 0
            })
        );
        assert_eq!(
            one("U", Some(DataType::String)),
            Ok(Value::String("U".into()))
        );
        assert_eq!(one("", Some(DataType::None)), Ok(Value::None));
    }

    #[test]
    fn infers_types_without_declaration() {
        assert_eq!(one("42", None), Ok(Value::Integer(42)));
        assert_eq!(one("4.5", None), Ok(Value::Float(4.5)));
        assert_eq!(one("inf", None), Ok(Value::String("inf".into())));
        assert_eq!(one("+02:00", None), Ok(Value::String("+02:00".into())));
        assert_eq!(one("", None), Ok(Value::String(String::new())));
    }

    #[test]
    fn rejects_what_the_type_forbids() {
        for (text, ty) in [
            ("abc", DataType::Integer),
            ("1.5", DataType::Integer),
            ("-1", DataType::UnsignedInteger),
            ("nan", DataType::Float),
            ("true", DataType::Boolean),
            ("!!", DataType::Opaque),
            ("3", DataType::Objlnk),
            ("99999999999999999", DataType::Time),
        ] {
            let err = one(text, Some(ty)).unwrap_err();
            assert_eq!(err.coap_code(), (4, 0), "{text} {ty}: {err}");
        }
        let resolve = |_: i64, _: i64| None;
        let ctx = DecodeContext {
            request_path: LwPath::parse("/3/0").unwrap(),
            now_ms: 0,
            resolve: &resolve,
        };
        assert!(matches!(
            decode_any(ContentFormat::Text, b"1", &ctx),
            Err(FormatError::BadPath { .. })
        ));
        let ctx = DecodeContext {
            request_path: LwPath::parse("/3/0/1").unwrap(),
            ..ctx
        };
        assert!(decode_any(ContentFormat::Text, &[0xff], &ctx).is_err());
    }

    #[test]
    fn encodes_one_value() {
        let path = ResourcePath {
            object_id: 3,
            instance_id: 0,
            resource_id: 13,
            resource_instance_id: None,
        };
        let base = LwPath::parse("/3/0/13").unwrap();
        let enc = |v: Value| encode_any(ContentFormat::Text, &[(path, v)], &base);
        assert_eq!(enc(Value::Time(1_367_491_215_999)).unwrap(), b"1367491215");
        assert_eq!(enc(Value::Boolean(false)).unwrap(), b"0");
        assert_eq!(enc(Value::Opaque(vec![1, 2])).unwrap(), b"AQI=");
        assert_eq!(enc(Value::Float(0.1)).unwrap(), b"0.1");
        assert!(enc(Value::Float(f64::NAN)).is_err());
        assert!(encode_any(ContentFormat::Text, &[], &base).is_err());
    }
}
