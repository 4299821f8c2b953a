//! Helpers shared by the codecs: error builders, ids, object links, times,
//! base64 and the mapping of a wire number onto a declared type.
use super::FormatError;
use crate::model::lwm2m::{DataType, Value};
use std::fmt::Display;

pub(crate) fn malformed(at: impl Display, reason: impl Display) -> FormatError {
    FormatError::Malformed {
        at: at.to_string(),
        reason: reason.to_string(),
    }
}

pub(crate) fn unencodable(at: impl Display, reason: impl Display) -> FormatError {
    FormatError::Unencodable {
        at: at.to_string(),
        reason: reason.to_string(),
    }
}

/// A canonical decimal id: digits only, no leading zero, at most 65534.
pub(crate) fn parse_id(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse::<u16>()
        .ok()
        .filter(|&id| id <= super::LwPath::MAX_ID)
}

/// An object link `oid:iid`. Both halves may be 65535: `65535:65535` is
/// LwM2M's null link (Core TS §C.1).
pub(crate) fn parse_objlnk(s: &str) -> Option<Value> {
    let (o, i) = s.split_once(':')?;
    let num = |p: &str| {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            p.parse::<u16>().ok()
        }
    };
    Some(Value::Objlnk {
        object_id: num(o)?,
        instance_id: num(i)?,
    })
}

pub(crate) fn secs_to_ms(secs: i64) -> Option<i64> {
    secs.checked_mul(1000)
}

/// LwM2M times are whole seconds on the wire; `Value::Time` is ms, so
/// sub-second parts are dropped (floor) when sending.
pub(crate) fn ms_to_secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// Seconds as a float to ms, rounded; `None` when not finite or beyond
/// ±2^53 ms (where f64 stops being exact anyway).
pub(crate) fn secs_f64_to_ms(secs: f64) -> Option<i64> {
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    let ms = (secs * 1000.0).round();
    (ms.is_finite() && ms.abs() <= LIMIT).then_some(ms as i64)
}

/// RFC 8428 §4.5.3: a resolved time below 2^28 s is relative to now
/// (negative = in the past); at or above it is seconds since the epoch.
pub(crate) fn resolve_senml_time(secs: f64, now_ms: i64) -> Option<i64> {
    const RELATIVE_BELOW: f64 = (1u64 << 28) as f64;
    let ms = secs_f64_to_ms(secs)?;
    if secs < RELATIVE_BELOW {
        now_ms.checked_add(ms)
    } else {
        Some(ms)
    }
}

/// A number as read from JSON or CBOR: integers kept exact (CBOR's range
/// is -2^64..2^64, hence i128), floats as they came.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// The number as an exact integer: integral floats count.
    fn as_int(self) -> Option<i128> {
        match self {
            Num::Int(i) => Some(i),
            // 2^63 bounds keep the cast exact and in range for i64 checks.
            Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.3e18 => Some(f as i128),
            Num::Float(_) => None,
        }
    }

    /// Adds a SenML base value.
    pub(crate) fn add(self, other: Num) -> Num {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => match a.checked_add(b) {
                Some(s) => Num::Int(s),
                None => Num::Float(a as f64 + b as f64),
            },
            (a, b) => Num::Float(a.as_f64() + b.as_f64()),
        }
    }
}

/// A number as the declared type: integers must be integral and in range,
/// TIME is seconds on the wire and ms in `Value::Time`.
pub(crate) fn num_to_value(num: Num, ty: DataType, at: &dyn Display) -> Result<Value, FormatError> {
    let int = || {
        num.as_int()
            .ok_or_else(|| malformed(at, format!("{ty} needs an integral number in range")))
    };
    let i64_of = |i: i128| {
        i64::try_from(i).map_err(|_| malformed(at, format!("{i} is out of range for {ty}")))
    };
    Ok(match ty {
        DataType::Float => Value::Float(num.as_f64()),
        DataType::Integer => Value::Integer(i64_of(int()?)?),
        DataType::UnsignedInteger => {
            let i = int()?;
            if i < 0 {
                return Err(malformed(at, format!("{i} is negative for {ty}")));
            }
            Value::UnsignedInteger(i64_of(i)?)
        }
        // TIME values are whole seconds in every LwM2M format.
        DataType::Time => Value::Time(
            secs_to_ms(i64_of(int()?)?).ok_or_else(|| malformed(at, "time out of range"))?,
        ),
        other => return Err(mismatch(at, "a number", other)),
    })
}

/// A text value as the declared type (SenML `vs`, CBOR text strings).
pub(crate) fn text_to_value(
    s: String,
    ty: Option<DataType>,
    at: &dyn Display,
) -> Result<Value, FormatError> {
    match ty {
        None | Some(DataType::String) => Ok(Value::String(s)),
        Some(DataType::Corelink) => Ok(Value::Corelink(s)),
        Some(DataType::Objlnk) => parse_objlnk(&s)
            .ok_or_else(|| malformed(at, format!("'{s}' is not an object link oid:iid"))),
        Some(other) => Err(mismatch(at, "a string", other)),
    }
}

pub(crate) fn mismatch(at: &dyn Display, got: &str, declared: DataType) -> FormatError {
    malformed(
        at,
        format!("{got} where the resource is declared {declared}"),
    )
}

/// Whether bytes of unknown type read best as text: valid UTF-8 without
/// control characters other than tab, CR and LF.
pub(crate) fn looks_like_text(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .then_some(s)
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 (RFC 4648 §4, padded) for plain text and LwM2M JSON opaque
/// values, or base64url without padding (§5) for SenML `vd`.
pub(crate) fn base64_encode(bytes: &[u8], url: bool) -> String {
    let alphabet = if url { URL } else { STD };
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64 in either alphabet, padded or not: devices differ, and
/// the two alphabets share all but two characters, so accepting both
/// cannot misread a valid input.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_test_vectors() {
        // RFC 4648 §10.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes(), false), coded);
            assert_eq!(
                base64_encode(plain.as_bytes(), true),
                coded.trim_end_matches('=')
            );
            assert_eq!(base64_decode(coded).unwrap(), plain.as_bytes());
            assert_eq!(
                base64_decode(coded.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
        assert_eq!(base64_encode(&[0xfb, 0xff], true), "-_8");
        assert_eq!(base64_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("Zg=a"), None);
        assert_eq!(base64_decode("Z"), None);
    }

    #[test]
    fn senml_times_below_2_pow_28_are_relative() {
        let now = 1_700_000_000_000;
        assert_eq!(resolve_senml_time(0.0, now), Some(now));
        assert_eq!(resolve_senml_time(-5.0, now), Some(now - 5000));
        assert_eq!(
            resolve_senml_time(268_435_455.0, now),
            Some(now + 268_435_455_000)
        );
        assert_eq!(
            resolve_senml_time(268_435_456.0, now),
            Some(268_435_456_000)
        );
        assert_eq!(
            resolve_senml_time(1.7e9 + 0.25, now),
            Some(1_700_000_000_250)
        );
        assert_eq!(resolve_senml_time(f64::NAN, now), None);
        assert_eq!(resolve_senml_time(1e300, now), None);
    }

    #[test]
    fn numbers_map_onto_declared_types() {
        let at = &"here";
        assert_eq!(
            num_to_value(Num::Int(5), DataType::Float, at),
            Ok(Value::Float(5.0))
        );
        assert_eq!(
            num_to_value(Num::Float(5.0), DataType::Integer, at),
            Ok(Value::Integer(5))
        );
        assert!(num_to_value(Num::Float(5.5), DataType::Integer, at).is_err());
        assert!(num_to_value(Num::Int(-1), DataType::UnsignedInteger, at).is_err());
        assert!(num_to_value(Num::Int(1 << 63), DataType::UnsignedInteger, at).is_err());
        assert_eq!(
            num_to_value(Num::Int(7), DataType::Time, at),
            Ok(Value::Time(7000))
        );
        assert!(num_to_value(Num::Int(i64::MAX as i128), DataType::Time, at).is_err());
        assert!(num_to_value(Num::Int(1), DataType::Boolean, at).is_err());
    }

    #[test]
    fn object_links_parse_including_the_null_link() {
        assert_eq!(
            parse_objlnk("3:0"),
            Some(Value::Objlnk {
                object_id: 3,
                instance_id: 0
            })
        );
        assert!(parse_objlnk("65535:65535").is_some());
        for bad in ["3", "3:", ":0", "3:0:1", "65536:0", "a:b", "+3:0"] {
            assert_eq!(parse_objlnk(bad), None, "{bad}");
        }
    }
}
