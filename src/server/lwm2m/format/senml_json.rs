//! SenML JSON, Content-Format 110 (RFC 8428 §5; Core TS 1.1.1 §7.4.4).
//!
//! A JSON array of objects. Field meanings and the LwM2M mapping are in
//! `senml.rs`; here `vd` is base64url (RFC 8428 §5), read with or without
//! padding, and `vlo` is LwM2M's object link `"oid:iid"`.
use super::common::{base64_decode, base64_encode, malformed, Num};
use super::senml::{self, OutValue, RawRecord, SValue};
use super::{DecodeContext, Entry, FormatError, LwPath, Record, MAX_DEPTH};
use serde_json::{Map, Number, Value as Json};

pub(crate) fn decode(payload: &[u8], ctx: &DecodeContext<'_>) -> Result<Vec<Record>, FormatError> {
    let doc = parse_json(payload)?;
    let Json::Array(items) = doc else {
        return Err(malformed("payload", "SenML JSON is an array of records"));
    };
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Json::Object(fields) = item else {
            return Err(malformed(format!("record {i}"), "not a JSON object"));
        };
        records.push(read_record(i, fields)?);
    }
    senml::resolve(records, ctx)
}

/// Parses JSON after checking the nesting depth, so that the bound is ours
/// rather than serde_json's recursion limit.
pub(crate) fn parse_json(payload: &[u8]) -> Result<Json, FormatError> {
    check_depth(payload)?;
    serde_json::from_slice(payload).map_err(|e| {
        let at = format!("line {} column {}", e.line(), e.column());
        if e.classify() == serde_json::error::Category::Eof {
            FormatError::Truncated { at }
        } else {
            let reason = e.to_string();
            // serde_json appends the position, which `at` already gives.
            let reason = reason
                .split(" at line ")
                .next()
                .unwrap_or(&reason)
                .to_owned();
            FormatError::Malformed { at, reason }
        }
    })
}

fn check_depth(payload: &[u8]) -> Result<(), FormatError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in payload.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FormatError::TooDeep {
                        at: format!("byte {i}"),
                        max: MAX_DEPTH,
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn json_num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn read_record(i: usize, fields: Map<String, Json>) -> Result<RawRecord, FormatError> {
    let mut r = RawRecord::default();
    for (key, v) in fields {
        let field =
            |what: &str| malformed(format!("record {i}: field '{key}'"), format!("not {what}"));
        let string = |v: Json| match v {
            Json::String(s) => Ok(s),
            _ => Err(field("a string")),
        };
        let number = |v: &Json| match v {
            Json::Number(n) => Ok(json_num(n)),
            _ => Err(field("a number")),
        };
        match key.as_str() {
            "bn" => r.bn = Some(string(v)?),
            "n" => r.n = Some(string(v)?),
            "bt" => r.bt = Some(number(&v)?.as_f64()),
            "t" => r.t = Some(number(&v)?.as_f64()),
            "bv" => r.bv = Some(number(&v)?),
            "bver" => match number(&v)? {
                Num::Int(n) => r.bver = Some(n),
                Num::Float(_) => return Err(field("an integer")),
            },
            "v" => r.set_value(i, "v", SValue::Num(number(&v)?))?,
            "vs" => r.set_value(i, "vs", SValue::Str(string(v)?))?,
            "vb" => match v {
                Json::Bool(b) => r.set_value(i, "vb", SValue::Bool(b))?,
                _ => return Err(field("a boolean")),
            },
            "vd" => {
                let data = base64_decode(&string(v)?).ok_or_else(|| field("base64url"))?;
                r.set_value(i, "vd", SValue::Data(data))?;
            }
            "vlo" => r.set_value(i, "vlo", SValue::ObjLnk(string(v)?))?,
            "s" | "bs" => {
                number(&v)?;
            }
            "u" | "bu" | "ut" => {}
            k if k.ends_with('_') => return Err(senml::must_understand(i, k)),
            _ => {}
        }
    }
    Ok(r)
}

fn num_json(n: Num) -> Json {
    match n {
        Num::Int(i) => match i64::try_from(i) {
            Ok(i) => Json::from(i),
            Err(_) => Json::from(i as f64),
        },
        Num::Float(f) => Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null),
    }
}

pub(crate) fn encode(entries: &[Entry<'_>], base: &LwPath) -> Result<Vec<u8>, FormatError> {
    let (bn, names) = senml::names(entries, base)?;
    let mut records = Vec::with_capacity(entries.len());
    for (i, (entry, name)) in entries.iter().zip(names).enumerate() {
        let mut m = Map::new();
        if let (0, Some(bn)) = (i, &bn) {
            m.insert("bn".into(), Json::from(bn.as_str()));
        }
        if !name.is_empty() {
            m.insert("n".into(), Json::from(name));
        }
        let (key, value) = match senml::out_value(entry)? {
            OutValue::Int(i) => ("v", Json::from(i)),
            OutValue::Float(f) => ("v", num_json(Num::Float(f))),
            OutValue::Str(s) => ("vs", Json::from(s)),
            OutValue::Bool(b) => ("vb", Json::from(b)),
            OutValue::Data(d) => ("vd", Json::from(base64_encode(d, true))),
            OutValue::ObjLnk(s) => ("vlo", Json::from(s)),
        };
        m.insert(key.into(), value);
        if let Some(t) = senml::out_time(entry)? {
            m.insert("t".into(), num_json(t));
        }
        records.push(Json::Object(m));
    }
    Ok(serde_json::to_vec(&records).unwrap_or_default())
}

pub(crate) fn encode_paths(paths: &[LwPath]) -> Vec<u8> {
    let records: Vec<Json> = paths
        .iter()
        .map(|p| {
            let mut m = Map::new();
            m.insert("n".into(), Json::from(p.to_string()));
            Json::Object(m)
        })
        .collect();
    serde_json::to_vec(&records).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::{
        decode as decode_any, encode as encode_any, encode_paths as paths_any, ContentFormat,
    };
    use super::*;
    use crate::model::lwm2m::{DataType, ResourcePath, Value};

    const NOW: i64 = 1_700_000_000_000;

    fn device_types(oid: i64, rid: i64) -> Option<DataType> {
        match (oid, rid) {
            (3, 0..=3 | 14 | 15) => Some(DataType::String),
            (3, 6..=11) => Some(DataType::Integer),
            (3, 13) => Some(DataType::Time),
            (3303, 5700) => Some(DataType::Float),
            _ => None,
        }
    }

    fn dec(json: &str) -> Result<Vec<Record>, FormatError> {
        let ctx = DecodeContext {
            request_path: LwPath::ROOT,
            now_ms: NOW,
            resolve: &device_types,
        };
        decode_any(ContentFormat::SenmlJson, json.as_bytes(), &ctx)
    }

    fn rp(s: &str) -> ResourcePath {
        LwPath::parse(s).unwrap().to_resource_path().unwrap()
    }

    #[test]
    fn decodes_the_spec_device_example() {
        // Core TS 1.1.1 §7.4.4 example: Read /3/0 as SenML JSON.
        let json = r#"[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
            {"n":"1","vs":"Lightweight M2M Client"},
            {"n":"2","vs":"345000123"},
            {"n":"3","vs":"1.0"},
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
            {"n":"14","vs":"+02:00"},
            {"n":"16","vs":"U"}]"#;
        let r = dec(json).unwrap();
        assert_eq!(r.len(), 16);
        assert_eq!(r[0].path, rp("/3/0/0"));
        assert_eq!(r[0].value, Value::String("Open Mobile Alliance".into()));
        assert_eq!(r[5].path, rp("/3/0/6/1"));
        assert_eq!(r[5].value, Value::Integer(5));
        assert_eq!(r[13].value, Value::Time(1_367_491_215_000));
        // Resource 16 is not declared: the string stays a string.
        assert_eq!(r[15].value, Value::String("U".into()));
        assert!(r.iter().all(|r| r.time_ms.is_none()));
    }

    #[test]
    fn resolves_base_time_and_relative_times() {
        // RFC 8428 §5.1.2-style: base time plus offsets; then relative.
        let json = r#"[{"bn":"/3303/0/","bt":1.320067464e9,"n":"5700","v":23.1},
            {"n":"5700","t":10,"v":23.5},
            {"bt":-5,"n":"5700","v":24},
            {"bt":0,"n":"5700","t":0,"v":24}]"#;
        let r = dec(json).unwrap();
        assert_eq!(r[0].time_ms, Some(1_320_067_464_000));
        assert_eq!(r[1].time_ms, Some(1_320_067_474_000));
        assert_eq!(r[2].time_ms, Some(NOW - 5000));
        assert_eq!(r[3].time_ms, Some(NOW));
        assert_eq!(r[2].value, Value::Float(24.0));
    }

    #[test]
    fn base_value_adds_and_types_follow_the_resolver() {
        let r = dec(r#"[{"bn":"/3/0/","bv":100,"n":"9","v":-1},{"n":"7/0","v":5}]"#).unwrap();
        assert_eq!(r[0].value, Value::Integer(99));
        assert_eq!(r[1].value, Value::Integer(105));
        let r = dec(
            r#"[{"n":"/9/0/1","v":5},{"n":"/9/0/2","vd":"AQI"},{"n":"/9/0/3","vd":"AQI="},
            {"n":"/9/0/4","vlo":"3:0"},{"n":"/9/0/5","vb":false}]"#,
        )
        .unwrap();
        assert_eq!(r[0].value, Value::Float(5.0));
        assert_eq!(r[1].value, Value::Opaque(vec![1, 2]));
        assert_eq!(r[2].value, Value::Opaque(vec![1, 2]));
        assert_eq!(
            r[3].value,
            Value::Objlnk {
                object_id: 3,
                instance_id: 0
            }
        );
        assert_eq!(r[4].value, Value::Boolean(false));
    }

    #[test]
    fn skips_records_without_values() {
        let r = dec(r#"[{"bn":"/3/0/"},{"n":"9"},{"n":"1","s":3},{"n":"9","v":7}]"#).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].value, Value::Integer(7));
    }

    #[test]
    fn errors_name_record_and_field() {
        let cases = [
            (
                r#"[{"bn":"/3/0/","bt":"x","n":"9","v":1}]"#,
                "record 0: field 'bt': not a number",
            ),
            (
                r#"[{"n":"/3/0/9","v":1},{"n":"/3/0/9","v":1.5}]"#,
                "record 1 (/3/0/9): field 'v'",
            ),
            (r#"[{"n":"/3/0","v":1}]"#, "record 0: name '/3/0'"),
            (r#"[{"n":"/3/0/9","v":1,"vs":"a"}]"#, "a second value field"),
            (r#"[{"n":"/3/0/0","v":1}]"#, "declared STRING"),
            (r#"[{"n":"/3/0/9","v":1,"x_":1}]"#, "must-understand"),
            (r#"[{"bver":11,"n":"/3/0/9","v":1}]"#, "version 11"),
            (r#"[{"n":"/3/0/9","v":1e300}]"#, "in range"),
            (r#"[{"n":"/9/0/1","vd":"!!"}]"#, "base64url"),
            (r#"{"n":"/3/0/9"}"#, "array of records"),
            (r#"[1]"#, "not a JSON object"),
        ];
        for (json, want) in cases {
            let err = dec(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        assert!(matches!(
            dec(r#"[{"n":"/3/0/9","v":1}"#),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            dec(&"[".repeat(9)),
            Err(FormatError::TooDeep { .. })
        ));
        assert!(matches!(
            dec(&"[".repeat(100_000)),
            Err(FormatError::TooDeep { .. })
        ));
    }

    #[test]
    fn encodes_in_the_spec_shape() {
        let values = vec![
            (rp("/3/0/9"), Value::Integer(100)),
            (rp("/3/0/6/0"), Value::Integer(1)),
            (rp("/3/0/14"), Value::String("+02:00".into())),
            (rp("/3/0/13"), Value::Time(1_367_491_215_000)),
        ];
        let bytes = encode_any(
            ContentFormat::SenmlJson,
            &values,
            &LwPath::parse("/3/0").unwrap(),
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"[{"bn":"/3/0/","n":"9","v":100},{"n":"6/0","v":1},{"n":"14","vs":"+02:00"},{"n":"13","v":1367491215}]"#
        );
        let one = encode_any(
            ContentFormat::SenmlJson,
            &values[..1],
            &LwPath::parse("/3/0/9").unwrap(),
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&one).unwrap(),
            r#"[{"bn":"/3/0/9","v":100}]"#
        );
        let paths = [
            LwPath::parse("/3/0/9").unwrap(),
            LwPath::parse("/1").unwrap(),
        ];
        assert_eq!(
            paths_any(ContentFormat::SenmlJson, &paths).unwrap(),
            br#"[{"n":"/3/0/9"},{"n":"/1"}]"#
        );
        assert!(encode_any(
            ContentFormat::SenmlJson,
            &[(rp("/3/0/9"), Value::None)],
            &LwPath::ROOT
        )
        .is_err());
        assert!(encode_any(
            ContentFormat::SenmlJson,
            &[(rp("/3/0/9"), Value::Float(f64::INFINITY))],
            &LwPath::ROOT
        )
        .is_err());
    }
}
