//! The Leshan JSON decoder (see the contract in the README): one source of
//! uplinks in front of the writer, turning a request body into the neutral
//! [`Uplink`] of typed values. Pure: no I/O, so it is unit-tested and fuzzed
//! directly. Every rejection names the JSON path of the offending field.
use super::{Connection, DecodedValue, Uplink, UplinkKind};
use crate::error::{AppError, FieldError};
use crate::model::{DataType, ResourcePath, Value};
use serde_json::{Map, Value as Json};

pub use crate::model::MAX_ENDPOINT_NAME;

/// Collects problems so that one answer lists all of them.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, path: &str, reason: impl Into<String>) {
        // Bound the answer's size for pathological inputs.
        if self.0.len() < 100 {
            self.0.push(FieldError::new(path, reason));
        }
    }
}

/// Parses the body of `POST /leshan_api/resource/single`.
pub fn parse_single(body: &[u8]) -> Result<Uplink, AppError> {
    let root = parse_json(body)?;
    let mut problems = Problems::default();
    let obj = root_object(&root)?;
    let endpoint = endpoint_name(obj, &mut problems);
    let object_id = match obj.get("obj_id") {
        Some(v) => id_field(v, "obj_id", &mut problems),
        None => {
            problems.add("obj_id", "missing");
            None
        }
    };
    let mut values = Vec::new();
    match (obj.get("val"), object_id) {
        (None, _) => problems.add("val", "missing"),
        (Some(val), Some(object_id)) => {
            // The single form carries no instance id: LwM2M servers forward
            // observations of instance 0 this way. A whole object or
            // instance node carries its own ids.
            let ctx = Ctx {
                object_id,
                instance_id: Some(0),
                resource_id: None,
            };
            decode_node(val, "val", ctx, Depth::Any, &mut values, &mut problems);
        }
        (Some(_), None) => {}
    }
    finish(endpoint, UplinkKind::Single, values, problems)
}

/// Parses the body of `POST /leshan_api/resource/composite`.
pub fn parse_composite(body: &[u8]) -> Result<Uplink, AppError> {
    let root = parse_json(body)?;
    let mut problems = Problems::default();
    let obj = root_object(&root)?;
    let endpoint = endpoint_name(obj, &mut problems);
    let mut values = Vec::new();
    match obj.get("val") {
        None => problems.add("val", "missing"),
        Some(Json::Object(map)) => {
            for (key, node) in map {
                let here = format!("val.{key}");
                match parse_lwm2m_path(key) {
                    Some(ids) => {
                        let ctx = Ctx {
                            object_id: ids[0],
                            instance_id: ids.get(1).copied(),
                            resource_id: ids.get(2).copied(),
                        };
                        let depth = match ids.len() {
                            1 => Depth::Object,
                            2 => Depth::Instance,
                            3 => Depth::Resource,
                            _ => Depth::ResourceInstance(ids[3]),
                        };
                        decode_node(node, &here, ctx, depth, &mut values, &mut problems);
                    }
                    None => problems.add(
                        &here,
                        "key is not an LwM2M path such as /3, /3/0, /3/0/1 or /3/0/7/1",
                    ),
                }
            }
        }
        Some(_) => problems.add("val", "must be an object mapping LwM2M paths to nodes"),
    }
    finish(endpoint, UplinkKind::Composite, values, problems)
}

fn parse_json(body: &[u8]) -> Result<Json, AppError> {
    serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request(
            "malformed JSON",
            vec![FieldError::new(
                "$",
                format!("line {} column {}: {e}", e.line(), e.column()),
            )],
        )
    })
}

fn root_object(root: &Json) -> Result<&Map<String, Json>, AppError> {
    root.as_object().ok_or_else(|| {
        AppError::bad_request(
            "the body must be a JSON object",
            vec![FieldError::new("$", "expected an object")],
        )
    })
}

fn endpoint_name(obj: &Map<String, Json>, problems: &mut Problems) -> Option<String> {
    match obj.get("ep") {
        None => problems.add("ep", "missing"),
        Some(Json::String(s)) => match crate::model::endpoint_name_problem(s) {
            None => return Some(s.clone()),
            Some(problem) => problems.add("ep", problem),
        },
        Some(_) => problems.add("ep", "must be a string"),
    }
    None
}

fn finish(
    endpoint: Option<String>,
    kind: UplinkKind,
    values: Vec<DecodedValue>,
    problems: Problems,
) -> Result<Uplink, AppError> {
    if !problems.0.is_empty() {
        let message = if problems.0.len() == 1 {
            format!(
                "invalid field {}: {}",
                problems.0[0].path, problems.0[0].reason
            )
        } else {
            format!("{} invalid fields", problems.0.len())
        };
        return Err(AppError::Unprocessable {
            message,
            details: problems.0,
        });
    }
    match endpoint {
        Some(endpoint) => Ok(Uplink {
            endpoint,
            kind,
            values,
            connection: Connection::Forwarded,
        }),
        None => Err(AppError::invalid_field("ep", "missing")),
    }
}

/// Splits "/3/0/5700" into ids; at most four segments, each 0..=65535.
pub fn parse_lwm2m_path(key: &str) -> Option<Vec<i64>> {
    let rest = key.strip_prefix('/')?;
    let ids: Option<Vec<i64>> = rest
        .split('/')
        .map(|s| {
            if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                s.parse::<i64>().ok().filter(|v| *v <= 65535)
            }
        })
        .collect();
    ids.filter(|v| (1..=4).contains(&v.len()))
}

#[derive(Clone, Copy)]
struct Ctx {
    object_id: i64,
    instance_id: Option<i64>,
    resource_id: Option<i64>,
}

/// Which node kinds are allowed where a node is found.
#[derive(Clone, Copy, PartialEq)]
enum Depth {
    /// The single endpoint's `val`: any node whose ids are complete.
    Any,
    Object,
    Instance,
    Resource,
    ResourceInstance(i64),
}

fn id_field(v: &Json, path: &str, problems: &mut Problems) -> Option<i64> {
    match v.as_u64() {
        Some(id) if id <= 65535 => Some(id as i64),
        Some(_) => {
            problems.add(path, "must be between 0 and 65535");
            None
        }
        None => {
            problems.add(path, "must be a non-negative integer");
            None
        }
    }
}

fn decode_node(
    node: &Json,
    path: &str,
    ctx: Ctx,
    depth: Depth,
    out: &mut Vec<DecodedValue>,
    problems: &mut Problems,
) {
    let Some(map) = node.as_object() else {
        problems.add(path, "must be an object");
        return;
    };
    let kind = match map.get("kind") {
        Some(Json::String(k)) => k.as_str(),
        Some(_) => {
            problems.add(&format!("{path}.kind"), "must be a string");
            return;
        }
        None => {
            // Leshan omits nothing, but an object node keyed by "/3" is
            // unambiguous without its kind.
            match depth {
                Depth::Object => "obj",
                Depth::Instance => "instance",
                _ => {
                    problems.add(&format!("{path}.kind"), "missing");
                    return;
                }
            }
        }
    };
    let allowed = match (depth, kind) {
        (Depth::Any, "obj" | "instance" | "singleResource" | "multiResource") => true,
        (Depth::Object, "obj") => true,
        (Depth::Instance, "instance") => true,
        (Depth::Resource, "singleResource" | "multiResource") => true,
        (Depth::ResourceInstance(_), "resourceInstance") => true,
        (Depth::Any, "resourceInstance") => {
            problems.add(
                &format!("{path}.kind"),
                "a resourceInstance needs its resource path: send it to /resource/composite keyed by /obj/inst/res/ri",
            );
            return;
        }
        (_, "obj" | "instance" | "singleResource" | "multiResource" | "resourceInstance") => false,
        _ => {
            problems.add(
                &format!("{path}.kind"),
                format!(
                    "unknown kind {kind:?}: expected obj, instance, singleResource, multiResource or resourceInstance"
                ),
            );
            return;
        }
    };
    if !allowed {
        problems.add(
            &format!("{path}.kind"),
            format!("a {kind} node is not allowed at this path"),
        );
        return;
    }
    let id = match map.get("id") {
        Some(v) => id_field(v, &format!("{path}.id"), problems),
        None if matches!(depth, Depth::Object | Depth::Instance) => None,
        None => {
            problems.add(&format!("{path}.id"), "missing");
            return;
        }
    };
    match kind {
        "obj" => {
            if let Some(id) = id {
                if depth == Depth::Object && id != ctx.object_id {
                    problems.add(
                        &format!("{path}.id"),
                        "does not match the object id of the key",
                    );
                    return;
                }
            }
            let object_id = if depth == Depth::Any {
                id.unwrap_or(ctx.object_id)
            } else {
                ctx.object_id
            };
            if depth == Depth::Any && object_id != ctx.object_id {
                problems.add(&format!("{path}.id"), "does not match obj_id");
                return;
            }
            let Some(instances) = array_field(map, "instances", path, problems) else {
                return;
            };
            for (i, inst) in instances.iter().enumerate() {
                let here = format!("{path}.instances[{i}]");
                let inner = Ctx {
                    object_id,
                    instance_id: None,
                    resource_id: None,
                };
                decode_node(inst, &here, inner, Depth::Instance, out, problems);
            }
        }
        "instance" => {
            let instance_id = match (id, ctx.instance_id, depth) {
                (Some(id), Some(key_id), Depth::Instance) if id != key_id => {
                    problems.add(
                        &format!("{path}.id"),
                        "does not match the instance id of the key",
                    );
                    return;
                }
                (Some(id), _, _) => id,
                (None, Some(key_id), Depth::Instance) => key_id,
                (None, _, _) => {
                    problems.add(&format!("{path}.id"), "missing");
                    return;
                }
            };
            let Some(resources) = array_field(map, "resources", path, problems) else {
                return;
            };
            for (i, res) in resources.iter().enumerate() {
                let here = format!("{path}.resources[{i}]");
                let inner = Ctx {
                    object_id: ctx.object_id,
                    instance_id: Some(instance_id),
                    resource_id: None,
                };
                decode_node(res, &here, inner, Depth::Resource, out, problems);
            }
        }
        _ => {
            let Some(id) = id else { return };
            let data_type = match map.get("type") {
                Some(Json::String(t)) => match DataType::parse(t) {
                    Some(t) => t,
                    None => {
                        problems.add(
                            &format!("{path}.type"),
                            format!("unknown type {t:?}: expected one of STRING, INTEGER, UNSIGNED_INTEGER, FLOAT, BOOLEAN, OPAQUE, TIME, OBJLNK, CORELINK, NONE"),
                        );
                        return;
                    }
                },
                Some(_) => {
                    problems.add(&format!("{path}.type"), "must be a string");
                    return;
                }
                None => {
                    problems.add(&format!("{path}.type"), "missing");
                    return;
                }
            };
            let instance_id = ctx.instance_id.unwrap_or(0);
            // A resource's id must match the key's resource id; a resource
            // instance's id is the resource instance id, under the key's resource.
            let (resource_id, mismatch) = match depth {
                Depth::ResourceInstance(key_ri) => (
                    ctx.resource_id.unwrap_or(0),
                    (key_ri != id).then_some("resource instance"),
                ),
                _ => (
                    id,
                    ctx.resource_id
                        .is_some_and(|r| r != id)
                        .then_some("resource"),
                ),
            };
            if let Some(what) = mismatch {
                problems.add(
                    &format!("{path}.id"),
                    format!("does not match the {what} id of the key"),
                );
                return;
            }
            let mut push = |resource_instance_id: Option<i64>,
                            v: Option<&Json>,
                            here: String,
                            problems: &mut Problems| {
                if let Some(value) = decode_value(v, data_type, &here, problems) {
                    out.push(DecodedValue {
                        path: ResourcePath {
                            object_id: ctx.object_id,
                            instance_id,
                            resource_id,
                            resource_instance_id,
                        },
                        value,
                        // Leshan JSON carries no time of measurement.
                        measured_at: None,
                        field: here.into(),
                    });
                }
            };
            match kind {
                "multiResource" => {
                    let values = match map.get("values") {
                        Some(Json::Object(values)) => values,
                        Some(_) => {
                            problems.add(
                                &format!("{path}.values"),
                                "must be an object mapping resource instance ids to values",
                            );
                            return;
                        }
                        None => {
                            problems.add(&format!("{path}.values"), "missing");
                            return;
                        }
                    };
                    for (ri, v) in values {
                        let here = format!("{path}.values.{ri}");
                        match ri
                            .parse::<u32>()
                            .ok()
                            .filter(|n| *n <= 65535 && !ri.starts_with('+'))
                        {
                            Some(ri) => push(Some(i64::from(ri)), Some(v), here, problems),
                            None => problems.add(
                                &here,
                                "key must be a resource instance id between 0 and 65535",
                            ),
                        }
                    }
                }
                "resourceInstance" => push(
                    Some(id),
                    map.get("value"),
                    format!("{path}.value"),
                    problems,
                ),
                _ => push(None, map.get("value"), format!("{path}.value"), problems),
            }
        }
    }
}

fn array_field<'a>(
    map: &'a Map<String, Json>,
    key: &str,
    path: &str,
    problems: &mut Problems,
) -> Option<&'a Vec<Json>> {
    match map.get(key) {
        Some(Json::Array(a)) => Some(a),
        Some(_) => {
            problems.add(&format!("{path}.{key}"), "must be an array");
            None
        }
        None => {
            problems.add(&format!("{path}.{key}"), "missing");
            None
        }
    }
}

/// Decodes one value as its declared type, the way the contract says senders
/// encode it.
pub fn decode_value(
    v: Option<&Json>,
    data_type: DataType,
    path: &str,
    problems: &mut impl ProblemSink,
) -> Option<Value> {
    let v = match (v, data_type) {
        (None | Some(Json::Null), DataType::None) => return Some(Value::None),
        (Some(v), DataType::None) => {
            problems.problem(path, format!("a NONE resource carries no value, got {v}"));
            return None;
        }
        (None, _) => {
            problems.problem(path, "missing");
            return None;
        }
        (Some(v), _) => v,
    };
    let result: Result<Value, String> = match data_type {
        DataType::String => match v {
            Json::String(s) => text(s).map(Value::String),
            _ => Err("STRING value must be a JSON string".into()),
        },
        DataType::Corelink => match v {
            Json::String(s) => text(s).map(Value::Corelink),
            _ => Err("CORELINK value must be a JSON string".into()),
        },
        DataType::Integer => integer(v).map(Value::Integer),
        DataType::UnsignedInteger => integer(v).and_then(|i| {
            if i < 0 {
                Err("UNSIGNED_INTEGER value must not be negative".into())
            } else {
                Ok(Value::UnsignedInteger(i))
            }
        }),
        DataType::Time => integer(v).map(Value::Time),
        DataType::Float => float(v).map(Value::Float),
        DataType::Boolean => match v {
            Json::Bool(b) => Ok(Value::Boolean(*b)),
            _ => Err("BOOLEAN value must be true or false".into()),
        },
        DataType::Opaque => match v {
            Json::String(s) => hex_decode(s).map(Value::Opaque),
            _ => Err("OPAQUE value must be a hex string".into()),
        },
        DataType::Objlnk => objlnk(v),
        DataType::None => unreachable!("handled above"),
    };
    match result {
        Ok(value) => Some(value),
        Err(reason) => {
            problems.problem(path, reason);
            None
        }
    }
}

/// Where `decode_value` reports; lets callers outside this module use it.
pub trait ProblemSink {
    fn problem(&mut self, path: &str, reason: impl Into<String>);
}

impl ProblemSink for Problems {
    fn problem(&mut self, path: &str, reason: impl Into<String>) {
        self.add(path, reason)
    }
}

impl ProblemSink for Vec<FieldError> {
    fn problem(&mut self, path: &str, reason: impl Into<String>) {
        self.push(FieldError::new(path, reason))
    }
}

/// Text as stored: PostgreSQL text cannot hold U+0000, so no database may.
fn text(s: &str) -> Result<String, String> {
    if s.contains('\0') {
        Err("text must not contain the NUL character (U+0000)".into())
    } else {
        Ok(s.to_string())
    }
}

fn integer(v: &Json) -> Result<i64, String> {
    match v {
        Json::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{n} is not an integer in the 64-bit range")),
        Json::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is not an integer in the 64-bit range")),
        _ => Err("must be an integer, as a JSON number or a decimal string".into()),
    }
}

fn float(v: &Json) -> Result<f64, String> {
    let x = match v {
        Json::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number"))?,
        Json::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{s:?} is not a decimal number"))?,
        _ => return Err("must be a number, as a JSON number or a decimal string".into()),
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err("must be a finite number".into())
    }
}

fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return Err("hex string has an odd number of digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| "not a hex string".to_string())
        })
        .collect()
}

fn objlnk(v: &Json) -> Result<Value, String> {
    let (o, i) = match v {
        Json::String(s) => {
            let (o, i) = s.split_once(':').ok_or_else(|| {
                format!("{s:?} is not an object link of the form objectId:instanceId")
            })?;
            (o.parse::<u64>().ok(), i.parse::<u64>().ok())
        }
        Json::Object(m) => (
            m.get("objectId").and_then(Json::as_u64),
            m.get("objectInstanceId").and_then(Json::as_u64),
        ),
        _ => return Err(
            "OBJLNK value must be \"objectId:instanceId\" or {\"objectId\", \"objectInstanceId\"}"
                .into(),
        ),
    };
    match (o, i) {
        (Some(o), Some(i)) if o <= 65535 && i <= 65535 => Ok(Value::Objlnk {
            object_id: o as u16,
            instance_id: i as u16,
        }),
        _ => Err("object link ids must be integers between 0 and 65535".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn single(body: Json) -> Result<Uplink, AppError> {
        parse_single(body.to_string().as_bytes())
    }

    #[test]
    fn temperature_payload_decodes_to_one_float() {
        let up = single(json!({"ep": "qemu_x86", "obj_id": 3303, "val": {
            "kind": "singleResource", "id": 5700, "type": "FLOAT", "value": "24.899181214836236"}}))
        .unwrap();
        assert_eq!(up.endpoint, "qemu_x86");
        assert_eq!(up.values.len(), 1);
        assert_eq!(up.values[0].path.to_string(), "/3303/0/5700");
        assert_eq!(up.values[0].value, Value::Float(24.899181214836236));
    }

    #[test]
    fn composite_object_with_multi_resources() {
        let body = include_str!("../../../tests/payloads/composite__onboarding_read_object3.json");
        let up = parse_composite(body.as_bytes()).unwrap();
        // 15 single resources + 2 + 2 + 2 + 1 multi-resource instances
        assert_eq!(up.values.len(), 15 + 7);
        let power = up
            .values
            .iter()
            .find(|r| r.path.resource_id == 7 && r.path.resource_instance_id == Some(1))
            .unwrap();
        assert_eq!(power.value, Value::Integer(5000));
        let time = up.values.iter().find(|r| r.path.resource_id == 13).unwrap();
        assert_eq!(time.value, Value::Time(2000));
    }

    #[test]
    fn composite_keys_at_every_depth() {
        let body = json!({"ep": "e", "val": {
            "/3/0": {"kind": "instance", "id": 0, "resources": [
                {"kind": "singleResource", "id": 9, "type": "INTEGER", "value": 95}]},
            "/3303/1/5700": {"kind": "singleResource", "id": 5700, "type": "FLOAT", "value": 21.5},
            "/3/0/7/1": {"kind": "resourceInstance", "id": 1, "type": "INTEGER", "value": "5000"},
        }});
        let up = parse_composite(body.to_string().as_bytes()).unwrap();
        let paths: Vec<String> = up.values.iter().map(|r| r.path.to_string()).collect();
        assert!(paths.contains(&"/3/0/9".to_string()));
        assert!(paths.contains(&"/3303/1/5700".to_string()));
        assert!(paths.contains(&"/3/0/7/1".to_string()));
    }

    #[test]
    fn every_type_decodes_as_the_sender_encodes_it() {
        let cases = [
            ("STRING", json!("x"), Value::String("x".into())),
            ("INTEGER", json!("-95"), Value::Integer(-95)),
            ("INTEGER", json!(95), Value::Integer(95)),
            ("UNSIGNED_INTEGER", json!("7"), Value::UnsignedInteger(7)),
            ("FLOAT", json!(1.5), Value::Float(1.5)),
            ("FLOAT", json!("2.25"), Value::Float(2.25)),
            ("BOOLEAN", json!(true), Value::Boolean(true)),
            ("TIME", json!(1717171717171i64), Value::Time(1717171717171)),
            ("OPAQUE", json!("dEad"), Value::Opaque(vec![0xde, 0xad])),
            (
                "OBJLNK",
                json!("3:0"),
                Value::Objlnk {
                    object_id: 3,
                    instance_id: 0,
                },
            ),
            (
                "OBJLNK",
                json!({"objectId": 4, "objectInstanceId": 1}),
                Value::Objlnk {
                    object_id: 4,
                    instance_id: 1,
                },
            ),
            (
                "CORELINK",
                json!("</3/0>"),
                Value::Corelink("</3/0>".into()),
            ),
            ("NONE", Json::Null, Value::None),
        ];
        for (t, v, expected) in cases {
            let up = single(json!({"ep": "e", "obj_id": 1, "val": {
                "kind": "singleResource", "id": 1, "type": t, "value": v}}))
            .unwrap_or_else(|e| panic!("{t}: {e:?}"));
            assert_eq!(up.values[0].value, expected, "{t}");
        }
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            (json!([]), "$"),
            (json!({"obj_id": 1, "val": {}}), "ep"),
            (json!({"ep": "", "obj_id": 1, "val": {}}), "ep"),
            (json!({"ep": "x".repeat(256), "obj_id": 1, "val": {}}), "ep"),
            (json!({"ep": "e", "obj_id": -1, "val": {}}), "obj_id"),
            (json!({"ep": "e", "obj_id": 1}), "val"),
            (
                json!({"ep": "e", "obj_id": 1, "val": {"kind": "weird", "id": 1}}),
                "val.kind",
            ),
            (
                json!({"ep": "e", "obj_id": 1, "val": {"kind": "singleResource", "id": 1, "type": "DOUBLE", "value": 1}}),
                "val.type",
            ),
            (
                json!({"ep": "e", "obj_id": 1, "val": {"kind": "singleResource", "id": 1, "type": "FLOAT", "value": "abc"}}),
                "val.value",
            ),
            (
                json!({"ep": "e", "obj_id": 1, "val": {"kind": "singleResource", "id": 1, "type": "INTEGER", "value": 1.5}}),
                "val.value",
            ),
            (
                json!({"ep": "e", "obj_id": 1, "val": {"kind": "singleResource", "id": 1, "type": "BOOLEAN", "value": "yes"}}),
                "val.value",
            ),
            (
                json!({"ep": "e", "obj_id": 1, "val": {"kind": "singleResource", "id": 1, "type": "STRING", "value": "a\u{0}b"}}),
                "val.value",
            ),
            (
                json!({"ep": "e", "obj_id": 1, "val": {"kind": "singleResource", "id": 1, "type": "OPAQUE", "value": "abc"}}),
                "val.value",
            ),
            (
                json!({"ep": "e", "obj_id": 1, "val": {"kind": "multiResource", "id": 1, "type": "INTEGER", "values": {"x": 1}}}),
                "val.values.x",
            ),
        ];
        for (body, path) in cases {
            let err = single(body.clone()).expect_err(&body.to_string());
            assert!((400..500).contains(&err.status_code()));
            assert!(
                err.details().iter().any(|d| d.path == path),
                "{body}: {:?}",
                err.details()
            );
        }
        let err = parse_single(b"{not json").unwrap_err();
        assert_eq!(err.status_code(), 400);
        let err = parse_composite(br#"{"ep": "e", "val": {"/3/x": {}}}"#).unwrap_err();
        assert_eq!(err.details()[0].path, "val./3/x");
        let err = parse_composite(
            br#"{"ep": "e", "val": {"/3": {"kind": "obj", "id": 3, "instances": [{"kind": "instance", "id": 0, "resources": [{"kind": "singleResource", "id": 1, "type": "FLOAT", "value": "n"}]}]}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.details()[0].path,
            "val./3.instances[0].resources[0].value"
        );
    }

    #[test]
    fn lwm2m_paths() {
        assert_eq!(parse_lwm2m_path("/3/0/5700"), Some(vec![3, 0, 5700]));
        assert_eq!(parse_lwm2m_path("3/0"), None);
        assert_eq!(parse_lwm2m_path("/3//1"), None);
        assert_eq!(parse_lwm2m_path("/70000"), None);
        assert_eq!(parse_lwm2m_path("/1/2/3/4/5"), None);
    }
}

/// Property tests: no input makes the parser panic, and every rejection is a
/// client error that names where the problem is.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Json::Number)
                .unwrap_or(Json::Null)),
            "[a-zA-Z0-9:/._ -]{0,12}".prop_map(Json::String),
            prop::sample::select(vec![
                "obj",
                "instance",
                "singleResource",
                "multiResource",
                "resourceInstance",
                "STRING",
                "INTEGER",
                "FLOAT",
                "BOOLEAN",
                "OPAQUE",
                "TIME",
                "OBJLNK",
                "NONE",
                "/3",
                "/3/0",
                "/3/0/1",
                "/3/0/7/1",
                "3:0",
                "dead",
                "24.5",
                "-1",
                "65536",
            ])
            .prop_map(|s| Json::String(s.to_string())),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            let keys = prop::sample::select(vec![
                "ep",
                "obj_id",
                "val",
                "kind",
                "id",
                "type",
                "value",
                "values",
                "instances",
                "resources",
                "objectId",
                "objectInstanceId",
                "/3",
                "/3/0",
                "/3/0/7",
                "/3/0/7/1",
                "0",
                "x",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| {
                    Json::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    fn check(result: Result<Uplink, AppError>) {
        match result {
            Ok(up) => {
                assert!(!up.endpoint.is_empty() && up.endpoint.len() <= MAX_ENDPOINT_NAME);
                for r in up.values {
                    assert!((0..=65535).contains(&r.path.object_id));
                    assert!((0..=65535).contains(&r.path.resource_id));
                }
            }
            Err(e) => {
                assert!((400..500).contains(&e.status_code()), "{e:?}");
                assert!(!e.details().is_empty(), "a rejection must say where: {e:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_json_never_panics(v in any_json()) {
            let body = v.to_string();
            check(parse_single(body.as_bytes()));
            check(parse_composite(body.as_bytes()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            check(parse_single(&bytes));
            check(parse_composite(&bytes));
        }

        #[test]
        fn wrapped_nodes_never_panic(ep in "[a-z]{0,3}", obj in any::<i32>(), val in any_json()) {
            let single = serde_json::json!({"ep": ep, "obj_id": obj, "val": val}).to_string();
            check(parse_single(single.as_bytes()));
            let composite = serde_json::json!({"ep": ep, "val": {"/3": val.clone(), "/3/0/7": val}}).to_string();
            check(parse_composite(composite.as_bytes()));
        }
    }
}
