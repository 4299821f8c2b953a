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
        match self {
            Value::Float(f) => serde_json::json!(f),
            Value::Integer(i) | Value::UnsignedInteger(i) | Value::Time(i) => serde_json::json!(i),
            Value::Boolean(b) => serde_json::json!(b),
            Value::None => serde_json::Value::Null,
            other => serde_json::Value::String(other.to_string()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
