//! Ingest: a decoder (`parse`, for Leshan JSON) turns a request into the
//! neutral [`Uplink`] of typed values; the group-commit `writer` stores it
//! (many requests per transaction, each acknowledged after its commit):
//! `plan` decides the rows and domain events of a batch without a database,
//! the writer executes the plan in one transaction, and `after_commit`
//! publishes what it committed. `firmware` tracks OTA progress.
pub mod firmware;
pub mod parse;
pub mod plan;
pub mod writer;

use super::db::{self, endpoint::RegistrationChange};
use super::store;
use crate::model::{DataType, ResourcePath, Value};
pub use parse::{parse_composite, parse_single};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
pub use writer::IngestWriter;

pub use crate::model::REGISTRATION_OBJECT;
/// 3/x/16: the device's binding mode as Leshan forwards it, e.g. "U" or
/// "UQ" (queue mode).
const DEVICE_BINDING: TypeKey = (3, 16);
/// LwM2M Server object 1, resource 1: the registration lifetime in seconds.
const SERVER_OBJECT: i64 = 1;
const SERVER_LIFETIME: i64 = 1;

/// (object id, resource id) -> (resource type id, data type). Types are only
/// ever added, so a cached entry never goes stale; entries are added after
/// the transaction that created them commits.
#[derive(Clone, Default)]
pub struct TypeCache(Arc<RwLock<HashMap<TypeKey, KnownType>>>);

/// (object id, resource id)
pub type TypeKey = (i64, i64);
/// (resource type id, data type)
pub type KnownType = (i64, DataType);

impl TypeCache {
    pub async fn load(&self, pool: &store::Pool) -> Result<(), sqlx::Error> {
        let all = db::resource_type::list(pool).await?;
        let mut map = self.0.write().expect("type cache lock");
        for t in all {
            map.insert((t.object_id, t.resource_id), (t.id, t.data_type));
        }
        Ok(())
    }

    pub fn get(&self, key: TypeKey) -> Option<KnownType> {
        self.0.read().expect("type cache lock").get(&key).copied()
    }

    fn insert(&self, key: TypeKey, value: KnownType) {
        self.0.write().expect("type cache lock").insert(key, value);
    }
}

/// One stored value, as echoed in the 201 answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredValue {
    pub path: String,
    #[serde(rename = "type")]
    pub data_type: DataType,
    pub value: serde_json::Value,
}

/// The 201 answer of the uplink endpoints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IngestReceipt {
    pub endpoint: String,
    pub stored: usize,
    pub discovered_types: usize,
    pub events: Vec<String>,
    pub resources: Vec<StoredValue>,
}

/// The event type recorded for a composite report of an object.
pub fn object_event_type(object_id: i64) -> String {
    match object_id {
        3 => "device".into(),
        5 => "firmware_update".into(),
        3303 => "temperature".into(),
        3304 => "humidity".into(),
        other => format!("object_{other}"),
    }
}

fn registration_change(path: &ResourcePath) -> Option<(RegistrationChange, &'static str)> {
    if path.object_id != REGISTRATION_OBJECT {
        return None;
    }
    match path.resource_id {
        0 => Some((RegistrationChange::Registered, "registered")),
        2 => Some((RegistrationChange::Updated, "registration_update")),
        1 => Some((RegistrationChange::Deregistered, "deregistered")),
        _ => None,
    }
}

/// One decoded value, whatever the source: the writer's input knows
/// nothing of the wire format it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedValue {
    pub path: ResourcePath,
    /// Typed as the sender declared it (`Value::data_type`).
    pub value: Value,
    /// When the device measured the value (ms since the epoch), if the
    /// source says. Values are stored with the time they were received.
    pub measured_at: Option<i64>,
    /// Where the value was in the request, named when the value is
    /// rejected.
    pub field: Field,
}

/// Where a value was in its request.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A JSON path (Leshan JSON) or another name.
    Named(String),
    /// The n-th record of an LwM2M payload: named with its path only when
    /// it is rejected, so a stored notification builds no text for it.
    Record(usize),
}

impl From<&str> for Field {
    fn from(name: &str) -> Field {
        Field::Named(name.to_string())
    }
}

impl From<String> for Field {
    fn from(name: String) -> Field {
        Field::Named(name)
    }
}

impl DecodedValue {
    /// A registration change, which is reported as a value of the
    /// registration object (10240/0/0 registered, /1 deregistered, /2
    /// updated) carrying the time of the change.
    pub fn registration(change: RegistrationChange, at: i64, field: impl Into<Field>) -> Self {
        let resource_id = match change {
            RegistrationChange::Registered => 0,
            RegistrationChange::Deregistered => 1,
            RegistrationChange::Updated => 2,
        };
        DecodedValue {
            path: ResourcePath {
                object_id: REGISTRATION_OBJECT,
                instance_id: 0,
                resource_id,
                resource_instance_id: None,
            },
            value: Value::Time(at),
            measured_at: Some(at),
            field: field.into(),
        }
    }

    /// Where the value was in its request, as an error names it.
    pub fn field_name(&self) -> String {
        match &self.field {
            Field::Named(name) => name.clone(),
            Field::Record(i) => format!("record {i} ({})", self.path),
        }
    }
}

/// What one request reported: one endpoint's values, decoded.
/// Registrations, updates and deregistrations are values of the
/// registration object (see [`DecodedValue::registration`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    pub endpoint: String,
    pub kind: UplinkKind,
    pub values: Vec<DecodedValue>,
    /// Which part of the server the uplink came through, and so where the
    /// device's binding and lifetime come from.
    pub connection: Connection,
}

/// Where an uplink's binding and lifetime come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Forwarded by a Leshan server, whose JSON reports them as values:
    /// 3/x/16 and 1/x/1.
    Forwarded,
    /// The native LwM2M server: the registration says how the device is
    /// connected (`Some` for a registration or an update), never its
    /// values. 3/x/16 is the bindings and modes a device *supports*: a
    /// client that can sleep says "UQ" there while it registered with
    /// `b=U` and stays awake.
    Native(Option<Session>),
}

/// A registration's binding and lifetime, as the endpoint row keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// With a `Q` when the client is in queue mode, e.g. "UQ".
    pub binding: String,
    pub lifetime_s: i64,
}

/// Whether a composite report (one event per object) or a single value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UplinkKind {
    Single,
    Composite,
}

/// Finds the resource type in the database (another server may have added
/// it), or registers it as discovered: named by its path, typed as declared.
async fn resolve_or_discover<C>(
    conn: &mut C,
    key: (i64, i64),
    declared: DataType,
) -> Result<(i64, DataType), sqlx::Error>
where
    for<'e> &'e mut C: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if let Some(t) = db::resource_type::find(&mut *conn, key.0, key.1).await? {
        return Ok((t.id, t.data_type));
    }
    let name = format!("/{}/{}", key.0, key.1);
    db::resource_type::insert_if_missing(
        &mut *conn,
        &db::resource_type::NewResourceType {
            object_id: key.0,
            resource_id: key.1,
            name: &name,
            data_type: declared,
            unit: None,
            writable: false,
            executable: declared == DataType::None,
            origin: db::resource_type::Origin::Discovered,
        },
    )
    .await?;
    tracing::info!(path = name, data_type = %declared, "discovered resource type");
    let t = db::resource_type::find(&mut *conn, key.0, key.1)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok((t.id, t.data_type))
}
