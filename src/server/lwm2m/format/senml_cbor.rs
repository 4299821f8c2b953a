//! SenML CBOR, Content-Format 112 (RFC 8428 §6; Core TS 1.1.1 §7.4.5).
//!
//! A CBOR array of maps keyed by the integer labels of RFC 8428 Table 4
//! (bver -1, bn -2, bt -3, bu -4, bv -5, bs -6, n 0, u 1, v 2, vs 3, vb 4,
//! s 5, t 6, ut 7, vd 8) plus LwM2M's text key `"vlo"`. `vd` is a byte
//! string here (no base64). Unknown labels are ignored, unknown text keys
//! ending in `_` refused, duplicate keys in one record refused (RFC 8949
//! §5.6). Field meanings and the LwM2M mapping are in `senml.rs`.
use super::cbor_reader::{self, Item, Writer};
use super::common::{malformed, Num};
use super::senml::{self, OutValue, RawRecord, SValue};
use super::{DecodeContext, Entry, FormatError, LwPath, Record};

const BVER: i128 = -1;
const BN: i128 = -2;
const BT: i128 = -3;
const BU: i128 = -4;
const BV: i128 = -5;
const BS: i128 = -6;
const N: i128 = 0;
const U: i128 = 1;
const V: i128 = 2;
const VS: i128 = 3;
const VB: i128 = 4;
const S: i128 = 5;
const T: i128 = 6;
const UT: i128 = 7;
const VD: i128 = 8;
const VLO: &str = "vlo";

pub(crate) fn decode(payload: &[u8], ctx: &DecodeContext<'_>) -> Result<Vec<Record>, FormatError> {
    let Item::Array(items) = cbor_reader::decode_single(payload)? else {
        return Err(malformed("payload", "SenML CBOR is an array of records"));
    };
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Item::Map(pairs) = item else {
            return Err(malformed(format!("record {i}"), "not a CBOR map"));
        };
        records.push(read_record(i, pairs)?);
    }
    senml::resolve(records, ctx)
}

fn label_name(label: i128) -> &'static str {
    match label {
        BVER => "bver",
        BN => "bn",
        BT => "bt",
        BU => "bu",
        BV => "bv",
        BS => "bs",
        N => "n",
        U => "u",
        V => "v",
        VS => "vs",
        VB => "vb",
        S => "s",
        T => "t",
        UT => "ut",
        VD => "vd",
        _ => "unknown",
    }
}

fn read_record(i: usize, pairs: Vec<(Item, Item)>) -> Result<RawRecord, FormatError> {
    let mut r = RawRecord::default();
    let mut seen_labels: Vec<i128> = Vec::new();
    let mut seen_vlo = false;
    for (key, v) in pairs {
        match key {
            Item::Text(k) if k == VLO => {
                if std::mem::replace(&mut seen_vlo, true) {
                    return Err(malformed(
                        format!("record {i}: field 'vlo'"),
                        "duplicate key",
                    ));
                }
                let Item::Text(s) = v else {
                    return Err(malformed(
                        format!("record {i}: field 'vlo'"),
                        "not a text string",
                    ));
                };
                r.set_value(i, "vlo", SValue::ObjLnk(s))?;
            }
            Item::Text(k) if k.ends_with('_') => return Err(senml::must_understand(i, &k)),
            Item::Text(_) => {}
            key => {
                let Some(label) = key.as_int() else {
                    return Err(malformed(
                        format!("record {i}"),
                        format!("{} as a key", key.kind()),
                    ));
                };
                let name = label_name(label);
                let at = format!("record {i}: field '{name}'");
                if seen_labels.contains(&label) {
                    return Err(malformed(at, "duplicate key"));
                }
                seen_labels.push(label);
                let got = v.kind();
                let field = |what: &str| malformed(&at, format!("{got}, not {what}"));
                let number = |v: &Item| match *v {
                    Item::Float(f) => Ok(Num::Float(f)),
                    _ => v.as_int().map(Num::Int).ok_or_else(|| field("a number")),
                };
                let text = |v: Item| match v {
                    Item::Text(s) => Ok(s),
                    _ => Err(field("a text string")),
                };
                match label {
                    BN => r.bn = Some(text(v)?),
                    N => r.n = Some(text(v)?),
                    BT => r.bt = Some(number(&v)?.as_f64()),
                    T => r.t = Some(number(&v)?.as_f64()),
                    BV => r.bv = Some(number(&v)?),
                    BVER => r.bver = Some(v.as_int().ok_or_else(|| field("an integer"))?),
                    V => r.set_value(i, "v", SValue::Num(number(&v)?))?,
                    VS => r.set_value(i, "vs", SValue::Str(text(v)?))?,
                    VB => match v {
                        Item::Bool(b) => r.set_value(i, "vb", SValue::Bool(b))?,
                        _ => return Err(field("a boolean")),
                    },
                    VD => match v {
                        Item::Bytes(d) => r.set_value(i, "vd", SValue::Data(d))?,
                        _ => return Err(field("a byte string")),
                    },
                    S | BS => {
                        number(&v)?;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(r)
}

fn write_num(w: &mut Writer, n: Num) {
    match n {
        Num::Int(i) => match i64::try_from(i) {
            Ok(i) => w.int(i),
            Err(_) => w.float(i as f64),
        },
        Num::Float(f) => w.float(f),
    }
}

pub(crate) fn encode(entries: &[Entry<'_>], base: &LwPath) -> Result<Vec<u8>, FormatError> {
    let (bn, names) = senml::names(entries, base)?;
    let mut w = Writer::default();
    w.array(entries.len());
    for (i, (entry, name)) in entries.iter().zip(names).enumerate() {
        let value = senml::out_value(entry)?;
        let time = senml::out_time(entry)?;
        let bn = bn.as_deref().filter(|_| i == 0);
        let fields = 1
            + usize::from(bn.is_some())
            + usize::from(!name.is_empty())
            + usize::from(time.is_some());
        w.map(fields);
        if let Some(bn) = bn {
            w.int(BN as i64);
            w.text(bn);
        }
        if !name.is_empty() {
            w.int(N as i64);
            w.text(&name);
        }
        match value {
            OutValue::Int(i) => {
                w.int(V as i64);
                w.int(i);
            }
            OutValue::Float(f) => {
                w.int(V as i64);
                w.float(f);
            }
            OutValue::Str(s) => {
                w.int(VS as i64);
                w.text(s);
            }
            OutValue::Bool(b) => {
                w.int(VB as i64);
                w.bool(b);
            }
            OutValue::Data(d) => {
                w.int(VD as i64);
                w.bytes(d);
            }
            OutValue::ObjLnk(s) => {
                w.text(VLO);
                w.text(&s);
            }
        }
        if let Some(t) = time {
            w.int(T as i64);
            write_num(&mut w, t);
        }
    }
    Ok(w.buf)
}

pub(crate) fn encode_paths(paths: &[LwPath]) -> Vec<u8> {
    let mut w = Writer::default();
    w.array(paths.len());
    for p in paths {
        w.map(1);
        w.int(N as i64);
        w.text(&p.to_string());
    }
    w.buf
}

#[cfg(test)]
mod tests {
    use super::super::{
        decode as decode_any, encode_paths as paths_any, encode_records, ContentFormat,
    };
    use super::*;
    use crate::model::lwm2m::{DataType, Value};

    const NOW: i64 = 1_700_000_000_000;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn dec(
        bytes: &[u8],
        resolve: &dyn Fn(i64, i64) -> Option<DataType>,
    ) -> Result<Vec<Record>, FormatError> {
        let ctx = DecodeContext {
            request_path: LwPath::ROOT,
            now_ms: NOW,
            resolve,
        };
        decode_any(ContentFormat::SenmlCbor, bytes, &ctx)
    }

    #[test]
    fn decodes_an_rfc8428_style_record_with_integer_labels() {
        // RFC 8428 §6 (CBOR form of §5.1.1) labels: [{-2: "urn:dev:ow:10e2073a01080063",
        // 0: "", 1: "Cel", 2: 23.1}]. Its name is not an LwM2M path, so
        // the same structure is used with an LwM2M base name.
        let bytes = hex(
            "81 a4 21 66 2f 33 2f 30 2f 39  00 60  01 63 43 65 6c  02 fb 40 37 19 99 99 99 99 9a",
        );
        let r = dec(&bytes, &|_, _| None).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].path.to_string(), "/3/0/9");
        assert_eq!(r[0].value, Value::Float(23.1));
    }

    #[test]
    fn reads_labels_times_and_lwm2m_vlo() {
        // [{-2:"/3/0/", -3:1367491215, 0:"13", 2:1367491215},
        //  {0:"9", 6:-10, 2:100}, {"vlo":"3:0", 0:"20"}, {0:"21", 8:h'0102'}]
        let mut w = Writer::default();
        w.array(4);
        w.map(4);
        w.int(BN as i64);
        w.text("/3/0/");
        w.int(BT as i64);
        w.int(1_367_491_215);
        w.int(N as i64);
        w.text("13");
        w.int(V as i64);
        w.int(1_367_491_215);
        w.map(3);
        w.int(N as i64);
        w.text("9");
        w.int(T as i64);
        w.int(-10);
        w.int(V as i64);
        w.int(100);
        w.map(2);
        w.text("vlo");
        w.text("3:0");
        w.int(N as i64);
        w.text("20");
        w.map(2);
        w.int(N as i64);
        w.text("21");
        w.int(VD as i64);
        w.bytes(&[1, 2]);
        let types = |_: i64, rid: i64| match rid {
            13 => Some(DataType::Time),
            9 => Some(DataType::Integer),
            _ => None,
        };
        let r = dec(&w.buf, &types).unwrap();
        assert_eq!(r[0].value, Value::Time(1_367_491_215_000));
        assert_eq!(r[0].time_ms, Some(1_367_491_215_000));
        assert_eq!(r[1].value, Value::Integer(100));
        assert_eq!(r[1].time_ms, Some(1_367_491_205_000));
        assert_eq!(
            r[2].value,
            Value::Objlnk {
                object_id: 3,
                instance_id: 0
            }
        );
        assert_eq!(r[2].time_ms, Some(1_367_491_215_000));
        assert_eq!(r[3].value, Value::Opaque(vec![1, 2]));
    }

    #[test]
    fn rejects_bad_records() {
        let none = |_: i64, _: i64| None;
        // Duplicate label, wrong types, non-map record, non-array payload.
        assert!(
            dec(&hex("81 a3 00 66 2f 33 2f 30 2f 39 02 01 02 02"), &none)
                .unwrap_err()
                .to_string()
                .contains("duplicate")
        );
        assert!(dec(&hex("81 a2 00 66 2f 33 2f 30 2f 39 02 61 31"), &none)
            .unwrap_err()
            .to_string()
            .contains("record 0: field 'v'"));
        assert!(dec(&hex("81 01"), &none).is_err());
        assert!(dec(&hex("a0"), &none).is_err());
        assert!(dec(&hex("81 a1 62 78 5f 01"), &none)
            .unwrap_err()
            .to_string()
            .contains("must-understand"));
        assert!(dec(&hex("81 a2 00 66 2f 33 2f 30 2f 39 08 61 31"), &none).is_err());
        assert!(matches!(
            dec(&hex("81 a2 00 66 2f 33 2f 30 2f"), &none),
            Err(FormatError::Truncated { .. })
        ));
    }

    #[test]
    fn encodes_with_integer_labels() {
        let rec = Record {
            path: LwPath::parse("/3/0/9").unwrap().to_resource_path().unwrap(),
            value: Value::Integer(100),
            time_ms: Some(1_367_491_215_000),
        };
        let bytes = encode_records(
            ContentFormat::SenmlCbor,
            &[rec],
            &LwPath::parse("/3/0").unwrap(),
        )
        .unwrap();
        // [{-2: "/3/0/", 0: "9", 2: 100, 6: 1367491215}]
        assert_eq!(
            bytes,
            hex("81 a4 21 65 2f 33 2f 30 2f 00 61 39 02 18 64 06 1a 51 82 42 8f")
        );
        let paths = [LwPath::parse("/3/0/9").unwrap()];
        assert_eq!(
            paths_any(ContentFormat::SenmlCbor, &paths).unwrap(),
            hex("81 a1 00 66 2f 33 2f 30 2f 39")
        );
    }
}
