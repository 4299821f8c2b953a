//! The LwM2M value model: data types, typed values and their text form.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every LwM2M resource data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataType {
    String,
    Integer,
    UnsignedInteger,
    Float,
    Boolean,
    Opaque,
    Time,
    Objlnk,
    Corelink,
    None,
}

impl DataType {
    pub const ALL: [DataType; 10] = [
        DataType::String,
        DataType::Integer,
        DataType::UnsignedInteger,
        DataType::Float,
        DataType::Boolean,
        DataType::Opaque,
        DataType::Time,
        DataType::Objlnk,
        DataType::Corelink,
        DataType::None,
    ];

    /// The name used on the wire and in the database's check constraint.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::String => "STRING",
            DataType::Integer => "INTEGER",
            DataType::UnsignedInteger => "UNSIGNED_INTEGER",
            DataType::Float => "FLOAT",
            DataType::Boolean => "BOOLEAN",
            DataType::Opaque => "OPAQUE",
            DataType::Time => "TIME",
            DataType::Objlnk => "OBJLNK",
            DataType::Corelink => "CORELINK",
            DataType::None => "NONE",
        }
    }

    /// Parses a type name; case-insensitive because older senders (and the
    /// original seed data) wrote `opaque` and `objlnk`.
    pub fn parse(s: &str) -> Option<DataType> {
        DataType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether values of this type can be drawn on a chart.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            DataType::Integer | DataType::UnsignedInteger | DataType::Float | DataType::Time
        )
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded resource value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Value {
    String(String),
    Integer(i64),
    /// Unsigned values above i64::MAX do not occur in LwM2M 1.1 devices we
    /// know of; the parser rejects them rather than wrapping.
    UnsignedInteger(i64),
    Float(f64),
    Boolean(bool),
    Opaque(Vec<u8>),
    /// Milliseconds since the Unix epoch.
    Time(i64),
    Objlnk {
        object_id: u16,
        instance_id: u16,
    },
    Corelink(String),
    None,
}

impl Value {
    pub fn data_type(&self) -> DataType {
        match self {
            Value::String(_) => DataType::String,
            Value::Integer(_) => DataType::Integer,
            Value::UnsignedInteger(_) => DataType::UnsignedInteger,
            Value::Float(_) => DataType::Float,
            Value::Boolean(_) => DataType::Boolean,
            Value::Opaque(_) => DataType::Opaque,
            Value::Time(_) => DataType::Time,
            Value::Objlnk { .. } => DataType::Objlnk,
            Value::Corelink(_) => DataType::Corelink,
            Value::None => DataType::None,
        }
    }

    /// The value in JSON answers: numbers and booleans as JSON, the rest as
    /// their wire text.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json_form()).unwrap_or(serde_json::Value::Null)
    }

    /// The same JSON form as `to_json`, serialized in place: for answers
    /// with many values, where a `serde_json::Value` per value would cost an
    /// allocation each.
    pub fn json_form(&self) -> ValueJson<'_> {
        ValueJson(self)
    }

    /// The value as a chart coordinate, for numeric types.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) | Value::UnsignedInteger(i) | Value::Time(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// A value in its JSON answer form (see `Value::to_json`).
pub struct ValueJson<'a>(&'a Value);

impl Serialize for ValueJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            // Non-finite floats cannot be stored, but JSON has no form for them.
            Value::Float(f) if !f.is_finite() => s.serialize_none(),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Integer(i) | Value::UnsignedInteger(i) | Value::Time(i) => s.serialize_i64(*i),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::None => s.serialize_none(),
            other => s.collect_str(other),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) | Value::Corelink(s) => f.write_str(s),
            Value::Integer(i) | Value::UnsignedInteger(i) | Value::Time(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Opaque(bytes) => {
                for b in bytes {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            Value::Objlnk {
                object_id,
                instance_id,
            } => write!(f, "{object_id}:{instance_id}"),
            Value::None => Ok(()),
        }
    }
}

/// Identifies one time series: one resource (instance) of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ResourcePath {
    pub object_id: i64,
    pub instance_id: i64,
    pub resource_id: i64,
    /// Set for an instance of a multi-instance resource.
    pub resource_instance_id: Option<i64>,
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/{}/{}/{}",
            self.object_id, self.instance_id, self.resource_id
        )?;
        if let Some(ri) = self.resource_instance_id {
            write!(f, "/{ri}")?;
        }
        Ok(())
    }
}

/// The pseudo-object through which the LwM2M server reports registrations:
/// 10240/x/0 registered, /1 deregistered, /2 registration update.
pub const REGISTRATION_OBJECT: i64 = 10240;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_answer_as_json_numbers_booleans_or_their_wire_text() {
        let cases = [
            (Value::Float(21.5), serde_json::json!(21.5)),
            (Value::Float(f64::NAN), serde_json::Value::Null),
            (Value::Integer(-3), serde_json::json!(-3)),
            (Value::UnsignedInteger(7), serde_json::json!(7)),
            (
                Value::Time(1_700_000_000_000),
                serde_json::json!(1_700_000_000_000i64),
            ),
            (Value::Boolean(true), serde_json::json!(true)),
            (Value::None, serde_json::Value::Null),
            (Value::String("a\"b".into()), serde_json::json!("a\"b")),
            (Value::Opaque(vec![0xde, 0xad]), serde_json::json!("dead")),
            (
                Value::Objlnk {
                    object_id: 3,
                    instance_id: 0,
                },
                serde_json::json!("3:0"),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(value.to_json(), expected, "{value:?}");
            let text = serde_json::to_string(&value.json_form()).unwrap();
            assert_eq!(text, expected.to_string(), "{value:?}");
        }
    }

    #[test]
    fn data_type_names_round_trip_case_insensitively() {
        for t in DataType::ALL {
            assert_eq!(DataType::parse(t.as_str()), Some(t));
            assert_eq!(DataType::parse(&t.as_str().to_lowercase()), Some(t));
        }
        assert_eq!(DataType::parse("DOUBLE"), None);
    }

    #[test]
    fn values_display_as_the_wire_text() {
        assert_eq!(Value::Opaque(vec![0xde, 0xad]).to_string(), "dead");
        assert_eq!(
            Value::Objlnk {
                object_id: 3,
                instance_id: 0
            }
            .to_string(),
            "3:0"
        );
        let path = ResourcePath {
            object_id: 3,
            instance_id: 0,
            resource_id: 7,
            resource_instance_id: Some(1),
        };
        assert_eq!(path.to_string(), "/3/0/7/1");
    }
}
