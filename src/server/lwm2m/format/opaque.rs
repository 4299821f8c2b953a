//! Opaque, Content-Format 42 (Core TS 1.1.1 §7.4.2): the raw bytes of one
//! OPAQUE resource or resource instance.
//!
//! The format is only for OPAQUE resources; a resource the server knows to
//! be of another type is refused rather than stored as bytes.
use super::common::{mismatch, unencodable};
use super::{DecodeContext, Entry, FormatError, Record};
use crate::model::lwm2m::{DataType, Value};

pub(crate) fn decode(payload: &[u8], ctx: &DecodeContext<'_>) -> Result<Vec<Record>, FormatError> {
    let path = ctx.request_path;
    let resource = path
        .to_resource_path()
        .ok_or_else(|| FormatError::BadPath {
            path: path.to_string(),
            reason: "opaque carries one resource (instance) value".into(),
        })?;
    match ctx.type_of(&path) {
        None | Some(DataType::Opaque) => {}
        Some(other) => return Err(mismatch(&path, "opaque content", other)),
    }
    Ok(vec![Record {
        path: resource,
        value: Value::Opaque(payload.to_vec()),
        time_ms: None,
    }])
}

pub(crate) fn encode(entry: &Entry<'_>) -> Result<Vec<u8>, FormatError> {
    match entry.value {
        Value::Opaque(bytes) => Ok(bytes.clone()),
        other => Err(unencodable(
            entry.path,
            format!("opaque carries OPAQUE values, not {}", other.data_type()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode as decode_any, encode as encode_any, ContentFormat, LwPath};
    use super::*;
    use crate::model::lwm2m::ResourcePath;

    #[test]
    fn passes_bytes_through_for_opaque_resources_only() {
        let opaque = |_: i64, _: i64| Some(DataType::Opaque);
        let ctx = DecodeContext {
            request_path: LwPath::parse("/5/0/0").unwrap(),
            now_ms: 0,
            resolve: &opaque,
        };
        let records = decode_any(ContentFormat::Opaque, &[0, 0xff], &ctx).unwrap();
        assert_eq!(records[0].value, Value::Opaque(vec![0, 0xff]));
        let string = |_: i64, _: i64| Some(DataType::String);
        let ctx = DecodeContext {
            resolve: &string,
            ..ctx
        };
        assert!(decode_any(ContentFormat::Opaque, &[1], &ctx).is_err());

        let path = ResourcePath {
            object_id: 5,
            instance_id: 0,
            resource_id: 0,
            resource_instance_id: None,
        };
        let base = LwPath::parse("/5/0/0").unwrap();
        assert_eq!(
            encode_any(
                ContentFormat::Opaque,
                &[(path, Value::Opaque(vec![9]))],
                &base
            )
            .unwrap(),
            [9]
        );
        assert!(encode_any(ContentFormat::Opaque, &[(path, Value::Integer(9))], &base).is_err());
    }
}
