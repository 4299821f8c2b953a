//! What SenML JSON and SenML CBOR share: record resolution (RFC 8428 §4.5)
//! with the LwM2M mapping (Core TS 1.1.1 §7.4.4, §7.4.5), and the choice of
//! base name, names, times and value fields when encoding.
//!
//! Decoding: base fields carry forward to later records; the name is
//! `bn + n` and must be a resource or resource-instance path. Value fields:
//! `v` → FLOAT, or the declared INTEGER/UNSIGNED_INTEGER/TIME (then the
//! number, plus `bv`, must be integral and in range; TIME is seconds); `vs`
//! → STRING, or the declared CORELINK/OBJLNK; `vb` → BOOLEAN; `vd` → OPAQUE;
//! `vlo` → OBJLNK. A value field that contradicts the declared type is an
//! error. Records without a value (base-only, name-only or sum-only) are
//! skipped. Time is `bt + t`, relative to now below 2^28 s (§4.5.3); with
//! neither field in force the record has no time. `bver` above 10 and
//! unknown must-understand fields (names ending in `_`) are refused.
use super::common::{
    malformed, mismatch, num_to_value, parse_objlnk, resolve_senml_time, text_to_value,
    unencodable, Num,
};
use super::{DecodeContext, Entry, FormatError, LwPath, Record};
use crate::model::lwm2m::{DataType, Value};

/// The SenML version RFC 8428 defines; larger `bver` values are refused.
const SENML_VERSION: i128 = 10;

/// A value field as read from the wire.
#[derive(Debug)]
pub(crate) enum SValue {
    Num(Num),
    Str(String),
    Bool(bool),
    Data(Vec<u8>),
    ObjLnk(String),
}

/// One record's fields as read from the wire, before base resolution.
#[derive(Debug, Default)]
pub(crate) struct RawRecord {
    pub bn: Option<String>,
    pub bt: Option<f64>,
    pub bv: Option<Num>,
    pub bver: Option<i128>,
    pub n: Option<String>,
    pub t: Option<f64>,
    /// The value and the name of the field it came in, for errors.
    pub value: Option<(&'static str, SValue)>,
}

impl RawRecord {
    pub(crate) fn set_value(
        &mut self,
        index: usize,
        field: &'static str,
        v: SValue,
    ) -> Result<(), FormatError> {
        if let Some((first, _)) = &self.value {
            return Err(malformed(
                format!("record {index}: field '{field}'"),
                format!("a second value field besides '{first}'"),
            ));
        }
        self.value = Some((field, v));
        Ok(())
    }
}

/// A must-understand field (RFC 8428 §4.4) that this decoder does not know.
pub(crate) fn must_understand(index: usize, key: &str) -> FormatError {
    malformed(
        format!("record {index}: field '{key}'"),
        "must-understand field not supported",
    )
}

/// Where in a payload a value is, for its errors: written out only when
/// there is one, not for every record decoded.
struct FieldAt<'a> {
    record: usize,
    path: &'a LwPath,
    field: &'static str,
}

impl std::fmt::Display for FieldAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record {} ({}): field '{}'",
            self.record, self.path, self.field
        )
    }
}

/// Resolves base fields and maps values onto declared types.
pub(crate) fn resolve(
    records: Vec<RawRecord>,
    ctx: &DecodeContext<'_>,
) -> Result<Vec<Record>, FormatError> {
    let mut base_name = String::new();
    let mut base_time: Option<f64> = None;
    let mut base_value: Option<Num> = None;
    let mut out = Vec::new();
    for (i, r) in records.into_iter().enumerate() {
        if let Some(v) = r.bver {
            if v > SENML_VERSION {
                return Err(malformed(
                    format!("record {i}: field 'bver'"),
                    format!("SenML version {v} is not supported"),
                ));
            }
        }
        if let Some(bn) = r.bn {
            base_name = bn;
        }
        if r.bt.is_some() {
            base_time = r.bt;
        }
        if r.bv.is_some() {
            base_value = r.bv;
        }
        let Some((field, raw)) = r.value else {
            continue;
        };
        super::check_record_count(&out)?;
        // bn + n, made only when both are there.
        let n = r.n.as_deref().unwrap_or("");
        let name: std::borrow::Cow<str> = match (base_name.is_empty(), n.is_empty()) {
            (true, _) => n.into(),
            (false, true) => base_name.as_str().into(),
            (false, false) => format!("{base_name}{n}").into(),
        };
        let path = LwPath::parse(&name)
            .filter(|p| p.len() >= 3)
            .ok_or_else(|| {
                malformed(
                    format!("record {i}: name '{name}'"),
                    "not a resource or resource instance path",
                )
            })?;
        let resource = path
            .to_resource_path()
            .ok_or_else(|| malformed(format!("record {i}"), "not a resource path"))?;
        let at = FieldAt {
            record: i,
            path: &path,
            field,
        };
        let at: &dyn std::fmt::Display = &at;
        let ty = ctx.type_of(&path);
        let value = match raw {
            SValue::Num(n) => {
                let n = match base_value {
                    Some(b) => b.add(n),
                    None => n,
                };
                num_to_value(n, ty.unwrap_or(DataType::Float), at)?
            }
            SValue::Str(s) => text_to_value(s, ty, at)?,
            SValue::Bool(b) => match ty {
                None | Some(DataType::Boolean) => Value::Boolean(b),
                Some(other) => return Err(mismatch(at, "a boolean", other)),
            },
            SValue::Data(d) => match ty {
                None | Some(DataType::Opaque) => Value::Opaque(d),
                Some(other) => return Err(mismatch(at, "data", other)),
            },
            SValue::ObjLnk(s) => match ty {
                None | Some(DataType::Objlnk) => parse_objlnk(&s)
                    .ok_or_else(|| malformed(at, format!("'{s}' is not an object link oid:iid")))?,
                Some(other) => return Err(mismatch(at, "an object link", other)),
            },
        };
        let time_ms = match (base_time, r.t) {
            (None, None) => None,
            (bt, t) => {
                let secs = bt.unwrap_or(0.0) + t.unwrap_or(0.0);
                Some(resolve_senml_time(secs, ctx.now_ms).ok_or_else(|| {
                    malformed(format!("record {i}: field 't'"), "time out of range")
                })?)
            }
        };
        out.push(Record {
            path: resource,
            value,
            time_ms,
        });
    }
    Ok(out)
}

/// A value field to write.
pub(crate) enum OutValue<'a> {
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bool(bool),
    Data(&'a [u8]),
    ObjLnk(String),
}

pub(crate) fn out_value<'a>(entry: &Entry<'a>) -> Result<OutValue<'a>, FormatError> {
    Ok(match entry.value {
        Value::Integer(i) => OutValue::Int(*i),
        Value::UnsignedInteger(i) if *i < 0 => {
            return Err(unencodable(entry.path, "negative UNSIGNED_INTEGER"));
        }
        Value::UnsignedInteger(i) => OutValue::Int(*i),
        Value::Time(ms) => OutValue::Int(super::common::ms_to_secs(*ms)),
        Value::Float(f) if !f.is_finite() => {
            return Err(unencodable(entry.path, "SenML has no form for inf or nan"));
        }
        Value::Float(f) => OutValue::Float(*f),
        Value::Boolean(b) => OutValue::Bool(*b),
        Value::String(s) | Value::Corelink(s) => OutValue::Str(s),
        Value::Opaque(d) => OutValue::Data(d),
        Value::Objlnk { .. } => OutValue::ObjLnk(entry.value.to_string()),
        Value::None => {
            return Err(unencodable(
                entry.path,
                "SenML has no form for a NONE value",
            ))
        }
    })
}

/// The measurement time as absolute seconds (`t`). Times before 2^28 s
/// (1978) cannot be written: a reader would take them as relative.
pub(crate) fn out_time(entry: &Entry<'_>) -> Result<Option<Num>, FormatError> {
    let Some(ms) = entry.time_ms else {
        return Ok(None);
    };
    if ms < (1i64 << 28) * 1000 {
        return Err(unencodable(
            entry.path,
            "a time before 2^28 s would read as relative (RFC 8428 §4.5.3)",
        ));
    }
    Ok(Some(if ms % 1000 == 0 {
        Num::Int(i128::from(ms / 1000))
    } else {
        Num::Float(ms as f64 / 1000.0)
    }))
}

/// The base name and each record's name: `/oid/iid/` plus relative names
/// when every value lies strictly below `base` (the form of the Core TS
/// examples), `base` itself plus `/…` suffixes when one is `base`, and full
/// names without a base name for the root.
pub(crate) fn names(
    entries: &[Entry<'_>],
    base: &LwPath,
) -> Result<(Option<String>, Vec<String>), FormatError> {
    let paths = entries
        .iter()
        .map(|e| e.lw_path())
        .collect::<Result<Vec<_>, _>>()?;
    if base.is_empty() {
        return Ok((None, paths.iter().map(|p| p.to_string()).collect()));
    }
    let below_all = paths.iter().all(|p| p.len() > base.len());
    let rel = |p: &LwPath| {
        p.ids()[base.len()..]
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    if below_all {
        Ok((Some(format!("{base}/")), paths.iter().map(rel).collect()))
    } else {
        let names = paths
            .iter()
            .map(|p| {
                if p.len() == base.len() {
                    String::new()
                } else {
                    format!("/{}", rel(p))
                }
            })
            .collect();
        Ok((Some(base.to_string()), names))
    }
}
