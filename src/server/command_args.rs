//! The arguments of the device-management commands (write-attributes,
//! create, observe), checked when a command is queued and read back when it
//! is sent. Pure: no database, no I/O.
use crate::model::{DataType, Value};
use serde_json::Value as Json;

/// Most paths one observe-composite names.
pub const MAX_COMPOSITE_PATHS: usize = 16;

/// The notification attributes of LwM2M 1.1 (Core §5.1.2): name, and
/// whether its value is an integer number of seconds (else a number).
const ATTRIBUTES: [(&str, bool); 7] = [
    ("pmin", true),
    ("pmax", true),
    ("gt", false),
    ("lt", false),
    ("st", false),
    ("epmin", true),
    ("epmax", true),
];

/// One attribute to set (with a value) or to clear (without).
pub type Attribute = (&'static str, Option<f64>);

/// Parses a write-attributes query such as `pmin=10&pmax=60&st=0.5`
/// (a leading `?` is allowed; `pmin` alone clears pmin) and checks the
/// rules of LwM2M 1.1 Core §5.1.2: known names, each at most once,
/// non-negative whole seconds for the periods, a positive step,
/// `pmin <= pmax`, `epmin <= epmax`, and `lt + 2 * st < gt` (`lt < gt`
/// without `st`).
pub fn parse_attributes(query: &str) -> Result<Vec<Attribute>, String> {
    let query = query.trim().trim_start_matches('?');
    if query.is_empty() {
        return Err("name at least one attribute, e.g. pmin=10&pmax=60".into());
    }
    let mut out: Vec<Attribute> = Vec::new();
    for part in query.split('&') {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (part.trim(), None),
        };
        let Some(&(known, whole)) = ATTRIBUTES.iter().find(|(a, _)| *a == name) else {
            return Err(format!(
                "unknown attribute {name:?}; known: pmin, pmax, gt, lt, st, epmin, epmax"
            ));
        };
        if out.iter().any(|(n, _)| *n == known) {
            return Err(format!("{known} is given twice"));
        }
        let value = match value {
            None | Some("") => None,
            Some(v) => {
                let n: f64 = v
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite())
                    .ok_or_else(|| format!("{known}={v:?} is not a number"))?;
                if whole && (n < 0.0 || n.fract() != 0.0 || n > f64::from(u32::MAX)) {
                    return Err(format!("{known} must be whole seconds, 0 or more"));
                }
                if known == "st" && n <= 0.0 {
                    return Err("st must be more than 0".into());
                }
                Some(n)
            }
        };
        out.push((known, value));
    }
    let get = |name: &str| out.iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v);
    for (lo, hi) in [("pmin", "pmax"), ("epmin", "epmax")] {
        if let (Some(a), Some(b)) = (get(lo), get(hi)) {
            if a > b {
                return Err(format!("{lo} ({a}) must not be more than {hi} ({b})"));
            }
        }
    }
    if let (Some(lt), Some(gt)) = (get("lt"), get("gt")) {
        let st = get("st").unwrap_or(0.0);
        if lt + 2.0 * st >= gt {
            return Err(format!(
                "lt + 2 * st must be less than gt ({lt} + 2 * {st} >= {gt})"
            ));
        }
    }
    Ok(out)
}

/// The canonical query of parsed attributes, as stored and as sent in
/// Uri-Query options: `pmin=10`, `st=0.5`, `pmax` (cleared).
pub fn attribute_queries(attributes: &[Attribute]) -> Vec<String> {
    attributes
        .iter()
        .map(|(name, value)| match value {
            Some(v) => format!("{name}={v}"),
            None => name.to_string(),
        })
        .collect()
}

/// The attributes in effect on `path` (e.g. `/3303/0/5700`) after the
/// confirmed write-attributes commands `writes` (path and canonical query,
/// oldest first), in the order of Core §5.1.2's table: `("pmin", "10")`.
/// A write sets the attributes it gives a value and clears the ones it
/// names alone; attributes written on the object or the instance apply to
/// the resources under them unless a deeper level sets its own (Core
/// §5.1.2, "attachment level"). Pure.
pub fn effective_attributes<'a>(
    path: &str,
    writes: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'static str, String)> {
    let levels: Vec<&str> = {
        let trimmed = path.trim().trim_end_matches('/');
        let cuts: Vec<usize> = trimmed
            .match_indices('/')
            .map(|(i, _)| i)
            .skip(1)
            .chain([trimmed.len()])
            .collect();
        cuts.into_iter().map(|i| &trimmed[..i]).collect()
    };
    // Attributes by level, most general first.
    let mut at: Vec<Vec<(&'static str, String)>> = vec![Vec::new(); levels.len()];
    for (write_path, query) in writes {
        let Some(level) = levels
            .iter()
            .position(|l| *l == write_path.trim().trim_end_matches('/'))
        else {
            continue;
        };
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (part, None),
            };
            let Some(&(known, _)) = ATTRIBUTES.iter().find(|(a, _)| *a == name) else {
                continue;
            };
            at[level].retain(|(n, _)| *n != known);
            if let Some(v) = value {
                at[level].push((known, v.to_string()));
            }
        }
    }
    ATTRIBUTES
        .iter()
        .filter_map(|(name, _)| {
            at.iter()
                .rev()
                .find_map(|attrs| attrs.iter().find(|(n, _)| n == name))
                .cloned()
        })
        .collect()
}

/// An active observation with the attributes in effect on each of its
/// paths (a composite's comma-separated), from the confirmed
/// write-attributes commands `written` (path, query; oldest first).
pub fn observed(path: String, written: &[(String, String)]) -> crate::model::Observed {
    let attributes = path
        .split(',')
        .map(str::trim)
        .map(|p| {
            let attrs =
                effective_attributes(p, written.iter().map(|(wp, q)| (wp.as_str(), q.as_str())));
            (
                p.to_string(),
                attrs
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, attrs)| !attrs.is_empty())
        .collect();
    crate::model::Observed { path, attributes }
}

/// The paths of an observe: one, or several comma-separated for an
/// observe-composite, each an object, instance, resource or resource
/// instance. Duplicates are refused.
pub fn observe_paths(text: &str) -> Result<Vec<Vec<i64>>, String> {
    let mut out: Vec<Vec<i64>> = Vec::new();
    for part in text.split(',') {
        let part = part.trim().trim_end_matches('/');
        let ids = crate::server::ingest::parse::parse_lwm2m_path(part)
            .filter(|ids| (1..=4).contains(&ids.len()))
            .ok_or_else(|| format!("{part:?} is not an LwM2M path such as /3303/0/5700"))?;
        if out.contains(&ids) {
            return Err(format!("{part} is named twice"));
        }
        out.push(ids);
    }
    if out.len() > MAX_COMPOSITE_PATHS {
        return Err(format!("at most {MAX_COMPOSITE_PATHS} paths at once"));
    }
    Ok(out)
}

/// Checks the resources of a Create, a JSON object of resource ids to
/// values (`{"5750": "kitchen", "5700": 21.5}`), against the data types
/// `data_type` knows for the object (None: not a known resource). Returns
/// the values typed, in resource order; an error names the field
/// (`value.<id>`).
pub fn create_values(
    value: Option<&Json>,
    data_type: impl Fn(i64) -> Option<DataType>,
    parse: impl Fn(&Json, DataType) -> Result<Value, String>,
) -> Result<Vec<(i64, Value)>, (String, String)> {
    let Some(Json::Object(map)) = value else {
        return Err((
            "value".into(),
            r#"a create needs a JSON object of resource ids to values, e.g. {"5750": "kitchen"}"#
                .into(),
        ));
    };
    let mut out = Vec::with_capacity(map.len());
    for (key, raw) in map {
        let field = format!("value.{key}");
        let id: i64 = key
            .parse()
            .ok()
            .filter(|id| (0..=65535).contains(id))
            .ok_or_else(|| (field.clone(), "must be a resource id, 0-65535".to_string()))?;
        let t = data_type(id).ok_or_else(|| {
            (
                field.clone(),
                format!("resource {id} is not a known resource of this object"),
            )
        })?;
        let v = parse(raw, t).map_err(|reason| (field, reason))?;
        out.push((id, v));
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_attributes_fold_writes_and_inherit_from_parents() {
        let writes = [
            ("/3303", "pmin=5&st=1"),
            ("/3303/0/5700", "pmin=10&pmax=60"),
            ("/3303/1/5700", "pmin=99"),
            ("/3303/0/5700", "pmax"),
            ("/3303/0", "gt=30&lt=10"),
            ("/3304/0/5700", "pmin=7"),
        ];
        assert_eq!(
            effective_attributes("/3303/0/5700", writes),
            vec![
                ("pmin", "10".to_string()),
                ("gt", "30".to_string()),
                ("lt", "10".to_string()),
                ("st", "1".to_string()),
            ]
        );
        // The object's attributes reach another instance's resources.
        assert_eq!(
            effective_attributes("/3303/2/5700", writes),
            vec![("pmin", "5".to_string()), ("st", "1".to_string())]
        );
        // A resource's own attributes do not reach its parent.
        assert_eq!(
            effective_attributes("/3303/0", writes),
            vec![
                ("pmin", "5".to_string()),
                ("gt", "30".to_string()),
                ("lt", "10".to_string()),
                ("st", "1".to_string()),
            ]
        );
        assert!(effective_attributes("/3/0/13", writes).is_empty());
    }

    #[test]
    fn attributes_follow_the_rules_of_lwm2m_core() {
        assert_eq!(
            parse_attributes("?pmin=10&pmax=60&st=0.5").unwrap(),
            vec![
                ("pmin", Some(10.0)),
                ("pmax", Some(60.0)),
                ("st", Some(0.5))
            ]
        );
        assert_eq!(
            attribute_queries(&parse_attributes("pmin&gt=30&lt=10&st=2").unwrap()),
            vec!["pmin", "gt=30", "lt=10", "st=2"]
        );
        for (bad, why) in [
            ("", "at least one"),
            ("foo=1", "unknown attribute"),
            ("pmin=1&pmin=2", "twice"),
            ("pmin=-1", "whole seconds"),
            ("pmax=1.5", "whole seconds"),
            ("gt=abc", "not a number"),
            ("gt=NaN", "not a number"),
            ("st=0", "more than 0"),
            ("pmin=60&pmax=10", "must not be more than"),
            ("epmin=5&epmax=1", "must not be more than"),
            ("lt=10&gt=10", "less than gt"),
            ("lt=10&gt=13&st=2", "less than gt"),
        ] {
            let e = parse_attributes(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(parse_attributes("lt=10&gt=15&st=2").is_ok());
    }

    #[test]
    fn observe_takes_one_path_or_a_composite() {
        assert_eq!(
            observe_paths("/3303/0/5700").unwrap(),
            vec![vec![3303, 0, 5700]]
        );
        assert_eq!(
            observe_paths("/3303/0/5700, /3304/0/5700,/3").unwrap(),
            vec![vec![3303, 0, 5700], vec![3304, 0, 5700], vec![3]]
        );
        assert!(observe_paths("/3303/0/5700,/3303/0/5700").is_err());
        assert!(observe_paths("/").is_err());
        assert!(observe_paths("3303").is_err());
        assert!(observe_paths("/3/0/7/1/2").is_err());
        let many: Vec<String> = (0..17).map(|i| format!("/3/0/{i}")).collect();
        assert!(observe_paths(&many.join(",")).is_err());
    }

    #[test]
    fn create_values_are_typed_and_name_their_field() {
        let types = |id: i64| match id {
            5700 => Some(DataType::Float),
            5750 => Some(DataType::String),
            _ => None,
        };
        let parse = |v: &Json, t: DataType| match (v, t) {
            (Json::Number(n), DataType::Float) => Ok(Value::Float(n.as_f64().unwrap())),
            (Json::String(s), DataType::String) => Ok(Value::String(s.clone())),
            _ => Err("wrong type".to_string()),
        };
        let json: Json = serde_json::from_str(r#"{"5750": "kitchen", "5700": 21.5}"#).unwrap();
        assert_eq!(
            create_values(Some(&json), types, parse).unwrap(),
            vec![
                (5700, Value::Float(21.5)),
                (5750, Value::String("kitchen".into()))
            ]
        );
        let bad: Json = serde_json::from_str(r#"{"5700": "hot"}"#).unwrap();
        assert_eq!(
            create_values(Some(&bad), types, parse).unwrap_err().0,
            "value.5700"
        );
        let unknown: Json = serde_json::from_str(r#"{"1": 1}"#).unwrap();
        assert_eq!(
            create_values(Some(&unknown), types, parse).unwrap_err().0,
            "value.1"
        );
        let not_id: Json = serde_json::from_str(r#"{"x": 1}"#).unwrap();
        assert_eq!(
            create_values(Some(&not_id), types, parse).unwrap_err().0,
            "value.x"
        );
        assert_eq!(create_values(None, types, parse).unwrap_err().0, "value");
    }
}
