//! LwM2M JSON, Content-Format 11543 (LwM2M 1.0 TS §6.4.4; Core TS 1.1.1
//! §7.4.7): decode only, for LwM2M 1.0 devices.
//!
//! `{"bn": "/3/0/", "bt": 1367491215, "e": [{"n": "0", "sv": "…"},
//! {"n": "1", "v": 1, "t": -5}, {"n": "2", "bv": true}, {"n": "3", "ov":
//! "3:0"}]}`. The base name defaults to the request path; a missing `/`
//! between base name and name is supplied (1.0 devices differ here, and a
//! plain concatenation would silently name another resource). `v` maps like
//! SenML `v` (FLOAT unless declared INTEGER/UNSIGNED_INTEGER/TIME), `sv` is
//! STRING, or base64 for a declared OPAQUE, or CORELINK/OBJLNK when
//! declared; `bv` BOOLEAN; `ov` OBJLNK. Time is `bt + t` in seconds,
//! relative to now below 2^28 as in SenML. Entries without a value are
//! skipped.
use super::common::{
    base64_decode, malformed, mismatch, num_to_value, parse_objlnk, resolve_senml_time,
    text_to_value,
};
use super::senml_json::{json_num, parse_json};
use super::{DecodeContext, FormatError, LwPath, Record};
use crate::model::lwm2m::{DataType, Value};
use serde_json::Value as Json;

pub(crate) fn decode(payload: &[u8], ctx: &DecodeContext<'_>) -> Result<Vec<Record>, FormatError> {
    let Json::Object(mut doc) = parse_json(payload)? else {
        return Err(malformed(
            "payload",
            "LwM2M JSON is an object with an 'e' array",
        ));
    };
    let base_name = match doc.remove("bn") {
        None => ctx.request_path.to_string(),
        Some(Json::String(s)) => s,
        Some(_) => return Err(malformed("field 'bn'", "not a string")),
    };
    let base_time = match doc.remove("bt") {
        None => None,
        Some(Json::Number(n)) => Some(json_num(&n).as_f64()),
        Some(_) => return Err(malformed("field 'bt'", "not a number")),
    };
    let Some(Json::Array(entries)) = doc.remove("e") else {
        return Err(malformed("field 'e'", "missing or not an array"));
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let Json::Object(fields) = entry else {
            return Err(malformed(format!("entry {i}"), "not a JSON object"));
        };
        let mut name = None;
        let mut time = None;
        let mut value = None;
        for (key, v) in fields {
            let at = format!("entry {i}: field '{key}'");
            match (key.as_str(), v) {
                ("n", Json::String(s)) => name = Some(s),
                ("t", Json::Number(n)) => time = Some(json_num(&n).as_f64()),
                ("v" | "sv" | "bv" | "ov", v) => {
                    if value.is_some() {
                        return Err(malformed(at, "a second value field"));
                    }
                    value = Some((key, v));
                }
                ("n" | "t", _) => return Err(malformed(at, "wrong JSON type")),
                _ => {}
            }
        }
        let Some((field, raw)) = value else {
            continue;
        };
        super::check_record_count(&out)?;
        let name = join(&base_name, name.as_deref().unwrap_or(""));
        let path = LwPath::parse(&name)
            .filter(|p| p.len() >= 3)
            .ok_or_else(|| {
                malformed(
                    format!("entry {i}: name '{name}'"),
                    "not a resource or resource instance path",
                )
            })?;
        let Some(resource) = path.to_resource_path() else {
            continue;
        };
        let at = format!("entry {i} ({path}): field '{field}'");
        let at: &dyn std::fmt::Display = &at;
        let ty = ctx.type_of(&path);
        let value = match (field.as_str(), raw) {
            ("v", Json::Number(n)) => {
                num_to_value(json_num(&n), ty.unwrap_or(DataType::Float), at)?
            }
            ("sv", Json::String(s)) => match ty {
                Some(DataType::Opaque) => {
                    Value::Opaque(base64_decode(&s).ok_or_else(|| malformed(at, "not base64"))?)
                }
                _ => text_to_value(s, ty, at)?,
            },
            ("bv", Json::Bool(b)) => match ty {
                None | Some(DataType::Boolean) => Value::Boolean(b),
                Some(other) => return Err(mismatch(at, "a boolean", other)),
            },
            ("ov", Json::String(s)) => match ty {
                None | Some(DataType::Objlnk) => parse_objlnk(&s)
                    .ok_or_else(|| malformed(at, format!("'{s}' is not an object link oid:iid")))?,
                Some(other) => return Err(mismatch(at, "an object link", other)),
            },
            _ => return Err(malformed(at, "wrong JSON type")),
        };
        let time_ms = match (base_time, time) {
            (None, None) => None,
            (bt, t) => Some(
                resolve_senml_time(bt.unwrap_or(0.0) + t.unwrap_or(0.0), ctx.now_ms).ok_or_else(
                    || malformed(format!("entry {i}: field 't'"), "time out of range"),
                )?,
            ),
        };
        out.push(Record {
            path: resource,
            value,
            time_ms,
        });
    }
    Ok(out)
}

fn join(base: &str, name: &str) -> String {
    if name.is_empty() || base.ends_with('/') || name.starts_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode as decode_any, ContentFormat};
    use super::*;

    fn dec(path: &str, json: &str) -> Result<Vec<Record>, FormatError> {
        let types = |_: i64, rid: i64| match rid {
            0..=3 | 14 | 15 => Some(DataType::String),
            6..=11 => Some(DataType::Integer),
            13 => Some(DataType::Time),
            20 => Some(DataType::Opaque),
            _ => None,
        };
        let ctx = DecodeContext {
            request_path: LwPath::parse(path).unwrap(),
            now_ms: 1_700_000_000_000,
            resolve: &types,
        };
        decode_any(ContentFormat::LwM2mJson, json.as_bytes(), &ctx)
    }

    #[test]
    fn decodes_the_spec_device_example() {
        // LwM2M 1.0 TS §6.4.4 example: Read /3/0 as JSON (no bn: the
        // request path is the base).
        let json = r#"{"e":[
            {"n":"0","sv":"Open Mobile Alliance"},
            {"n":"1","sv":"Lightweight M2M Client"},
            {"n":"2","sv":"345000123"},
            {"n":"3","sv":"1.0"},
            {"n":"6/0","v":1},
            {"n":"6/1","v":5},
            {"n":"7/0","v":3800},
            {"n":"7/1","v":5000},
            {"n":"8/0","v":125},
            {"n":"8/1","v":900},
            {"n":"9","v":100},
            {"n":"10","v":15},
            {"n":"11/0","v":0},
            {"n":"13","v":1367491215},
            {"n":"14","sv":"+02:00"},
            {"n":"15","sv":"U"}]}"#;
        let r = dec("/3/0", json).unwrap();
        assert_eq!(r.len(), 16);
        assert_eq!(r[4].path.to_string(), "/3/0/6/0");
        assert_eq!(r[13].value, Value::Time(1_367_491_215_000));
        assert_eq!(r[15].value, Value::String("U".into()));
    }

    #[test]
    fn base_name_time_and_value_kinds() {
        let json = r#"{"bn":"/3/0/","bt":1367491215,"e":[
            {"n":"9","v":100,"t":-5},{"n":"16","bv":true},{"n":"17","ov":"3:1"},{"n":"20","sv":"AQI="},{"n":"21"}]}"#;
        let r = dec("/", json).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].time_ms, Some(1_367_491_210_000));
        assert_eq!(r[1].value, Value::Boolean(true));
        assert_eq!(
            r[2].value,
            Value::Objlnk {
                object_id: 3,
                instance_id: 1
            }
        );
        assert_eq!(r[3].value, Value::Opaque(vec![1, 2]));
        let r = dec("/", r#"{"bn":"/3/0","e":[{"n":"9","v":1}]}"#).unwrap();
        assert_eq!(r[0].path.to_string(), "/3/0/9");
    }

    #[test]
    fn rejects_malformed() {
        assert!(dec("/3/0", r#"[]"#).is_err());
        assert!(dec("/3/0", r#"{"e":{}}"#).is_err());
        assert!(dec("/3/0", r#"{"bt":"x","e":[]}"#)
            .unwrap_err()
            .to_string()
            .contains("field 'bt'"));
        assert!(dec("/3/0", r#"{"e":[{"n":"9","v":"1"}]}"#).is_err());
        assert!(dec("/3/0", r#"{"e":[{"n":"9","v":1,"sv":"1"}]}"#).is_err());
        assert!(dec("/3/0", r#"{"e":[{"n":"0","v":1}]}"#)
            .unwrap_err()
            .to_string()
            .contains("entry 0 (/3/0/0)"));
        assert!(dec("/3", r#"{"e":[{"n":"0","v":1}]}"#).is_err());
    }
}
