//! LwM2M CBOR, Content-Format 11544 (Core TS 1.2 §7.4.6).
//!
//! Nested CBOR maps from the root: each key is one path id (unsigned
//! integer) or a run of ids (an array of unsigned integers, e.g.
//! `{[3, 0]: {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}}}`); a non-map
//! value ends its path, which must then be a resource or resource instance
//! below the request path. Leaves follow the CBOR (60) value table, see
//! `cbor.rs`. The format has no timestamps. Paths longer than four ids,
//! values above resource level and the same path twice are refused.
use super::cbor::{item_to_value, write_value};
use super::cbor_reader::{self, Item, Writer};
use super::common::{malformed, unencodable};
use super::{DecodeContext, Entry, FormatError, LwPath, Record};
use crate::model::lwm2m::Value;
use std::collections::{BTreeMap, HashSet};

pub(crate) fn decode(payload: &[u8], ctx: &DecodeContext<'_>) -> Result<Vec<Record>, FormatError> {
    let root = cbor_reader::decode_single(payload)?;
    let Item::Map(pairs) = root else {
        return Err(malformed("payload", "LwM2M CBOR is a map"));
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    walk(pairs, LwPath::ROOT, ctx, &mut out, &mut seen)?;
    Ok(out)
}

fn walk(
    pairs: Vec<(Item, Item)>,
    parent: LwPath,
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Record>,
    seen: &mut HashSet<LwPath>,
) -> Result<(), FormatError> {
    for (key, value) in pairs {
        let ids: Vec<Item> = match key {
            Item::Array(ids) if !ids.is_empty() => ids,
            Item::Array(_) => {
                return Err(malformed(
                    format!("below {parent}"),
                    "empty path array as a key",
                ))
            }
            single => vec![single],
        };
        let mut path = parent;
        for id in ids {
            let next = match id {
                Item::Uint(id) => u16::try_from(id).ok().and_then(|id| path.child(id)),
                other => {
                    return Err(malformed(
                        format!("below {path}"),
                        format!("{} as a path id", other.kind()),
                    ));
                }
            };
            path = next.ok_or_else(|| {
                malformed(
                    format!("below {path}"),
                    "path id out of range or path longer than 4 ids",
                )
            })?;
        }
        match value {
            Item::Map(children) => walk(children, path, ctx, out, seen)?,
            leaf => {
                let resource = path
                    .to_resource_path()
                    .ok_or_else(|| malformed(path, "a value above resource level"))?;
                if !path.starts_with(&ctx.request_path) {
                    return Err(malformed(
                        path,
                        format!("outside the request path {}", ctx.request_path),
                    ));
                }
                super::check_record_count(out)?;
                if !seen.insert(path) {
                    return Err(malformed(path, "the same path appears twice"));
                }
                let value = item_to_value(leaf, ctx.type_of(&path), &path)?;
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

enum Node<'a> {
    Leaf(&'a Value),
    Branch(BTreeMap<u16, Node<'a>>),
}

/// Encodes full paths from the root; chains of single children share one
/// array key (`{[3, 0, 9]: 100}`), which the spec allows and keeps single
/// writes small.
pub(crate) fn encode(entries: &[Entry<'_>]) -> Result<Vec<u8>, FormatError> {
    let mut root: BTreeMap<u16, Node<'_>> = BTreeMap::new();
    for e in entries {
        let path = e.lw_path()?;
        let (last, above) = path
            .ids()
            .split_last()
            .ok_or_else(|| unencodable(e.path, "empty path"))?;
        let mut level = &mut root;
        for id in above {
            let node = level
                .entry(*id)
                .or_insert_with(|| Node::Branch(BTreeMap::new()));
            level = match node {
                Node::Branch(children) => children,
                Node::Leaf(_) => {
                    return Err(unencodable(
                        e.path,
                        "a resource given both as a value and as instances",
                    ))
                }
            };
        }
        if level.insert(*last, Node::Leaf(e.value)).is_some() {
            return Err(unencodable(
                e.path,
                "the same path is given twice, or both as a value and as instances",
            ));
        }
    }
    let mut w = Writer::default();
    write_map(&mut w, &root)?;
    Ok(w.buf)
}

fn write_map(w: &mut Writer, map: &BTreeMap<u16, Node<'_>>) -> Result<(), FormatError> {
    w.map(map.len());
    for (&id, node) in map {
        let mut ids = vec![id];
        let mut node = node;
        while let Node::Branch(children) = node {
            if children.len() != 1 {
                break;
            }
            let (&child_id, child) = children.iter().next().unwrap_or((&0, node));
            ids.push(child_id);
            node = child;
        }
        if let [one] = ids[..] {
            w.int(i64::from(one));
        } else {
            w.array(ids.len());
            for id in &ids {
                w.int(i64::from(*id));
            }
        }
        match node {
            Node::Leaf(v) => write_value(
                w,
                v,
                &format!(
                    "/{}",
                    ids.iter().map(u16::to_string).collect::<Vec<_>>().join("/")
                ),
            )?,
            Node::Branch(children) => write_map(w, children)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{decode as decode_any, encode as encode_any, ContentFormat};
    use super::*;
    use crate::model::lwm2m::{DataType, ResourcePath};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn dec(path: &str, bytes: &[u8]) -> Result<Vec<Record>, FormatError> {
        let types = |_: i64, rid: i64| match rid {
            0 => Some(DataType::String),
            6 | 9 => Some(DataType::Integer),
            13 => Some(DataType::Time),
            _ => None,
        };
        let ctx = DecodeContext {
            request_path: LwPath::parse(path).unwrap(),
            now_ms: 0,
            resolve: &types,
        };
        decode_any(ContentFormat::LwM2mCbor, bytes, &ctx)
    }

    fn rp(s: &str) -> ResourcePath {
        LwPath::parse(s).unwrap().to_resource_path().unwrap()
    }

    #[test]
    fn decodes_nested_maps_and_array_keys() {
        // {3: {0: {0: "OMA", 6: {0: 1, 1: 5}, 13: 1(1367491215)}}}
        let nested = hex("a1 03 a1 00 a3 00 63 4f 4d 41 06 a2 00 01 01 05 0d c1 1a 51 82 42 8f");
        // {[3, 0]: {0: "OMA", [6, 0]: 1, [6, 1]: 5, 13: 1367491215}}
        let arrays = hex("a1 82 03 00 a4 00 63 4f 4d 41 82 06 00 01 82 06 01 05 0d 1a 51 82 42 8f");
        for bytes in [nested, arrays] {
            let r = dec("/3/0", &bytes).unwrap();
            let got: Vec<_> = r.iter().map(|r| (r.path, r.value.clone())).collect();
            assert_eq!(
                got,
                vec![
                    (rp("/3/0/0"), Value::String("OMA".into())),
                    (rp("/3/0/6/0"), Value::Integer(1)),
                    (rp("/3/0/6/1"), Value::Integer(5)),
                    (rp("/3/0/13"), Value::Time(1_367_491_215_000)),
                ]
            );
        }
        // {[3, 0, 9]: 100} answering Read /3/0/9.
        assert_eq!(
            dec("/3/0/9", &hex("a1 83 03 00 09 18 64")).unwrap()[0].value,
            Value::Integer(100)
        );
    }

    #[test]
    fn rejects_bad_structure() {
        assert!(dec("/", &hex("81 00")).is_err());
        assert!(dec("/", &hex("a1 03 01"))
            .unwrap_err()
            .to_string()
            .contains("above resource level"));
        assert!(dec("/", &hex("a1 85 03 00 06 00 01 01")).is_err());
        assert!(dec("/", &hex("a1 80 01")).is_err());
        assert!(dec("/", &hex("a1 61 33 01")).is_err());
        assert!(dec("/", &hex("a2 83 03 00 09 01 83 03 00 09 02"))
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(dec("/4", &hex("a1 83 03 00 09 01"))
            .unwrap_err()
            .to_string()
            .contains("outside"));
        assert!(dec("/", &hex("a1 83 03 00 00 01"))
            .unwrap_err()
            .to_string()
            .contains("declared STRING"));
    }

    #[test]
    fn encodes_with_collapsed_chains() {
        let values = vec![
            (rp("/3/0/9"), Value::Integer(100)),
            (rp("/3/0/6/0"), Value::Integer(1)),
            (rp("/3/0/6/1"), Value::Integer(5)),
        ];
        let bytes = encode_any(ContentFormat::LwM2mCbor, &values, &LwPath::ROOT).unwrap();
        // {[3, 0]: {6: {0: 1, 1: 5}, 9: 100}}
        assert_eq!(bytes, hex("a1 82 03 00 a2 06 a2 00 01 01 05 09 18 64"));
        let one = encode_any(ContentFormat::LwM2mCbor, &values[..1], &LwPath::ROOT).unwrap();
        assert_eq!(one, hex("a1 83 03 00 09 18 64"));
        let clash = [
            (rp("/3/0/6"), Value::Integer(1)),
            (rp("/3/0/6/0"), Value::Integer(1)),
        ];
        assert!(encode_any(ContentFormat::LwM2mCbor, &clash, &LwPath::ROOT).is_err());
    }
}
