//! Ingest: decoded uplinks are stored in one transaction per request, then
//! published to the live hub after commit.
pub mod parse;

use super::db::{self, endpoint::RegistrationChange, now_ms, resource::Columns};
use super::state::AppState;
use crate::error::AppError;
use crate::model::{DataType, LiveValue, ResourcePath};
pub use parse::{parse_composite, parse_single, Reading, Uplink};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// The pseudo-object the LwM2M server uses for registration events.
pub const REGISTRATION_OBJECT: i64 = 10240;
/// 3/x/16: the device's binding mode, e.g. "U" or "UQ" (queue mode).
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
    pub async fn load(&self, pool: &db::Pool) -> Result<(), sqlx::Error> {
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

/// Whether a composite report (one event per object) or a single value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UplinkKind {
    Single,
    Composite,
}

/// Stores an uplink. All or nothing: any error rolls the whole request back.
pub async fn store(
    state: &AppState,
    uplink: Uplink,
    kind: UplinkKind,
) -> Result<IngestReceipt, AppError> {
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let endpoint_id = db::endpoint::upsert_seen(&mut *tx, &uplink.endpoint, now).await?;

    let mut discovered: Vec<(TypeKey, KnownType)> = Vec::new();
    let mut resource_ids = Vec::with_capacity(uplink.readings.len());
    let mut events = Vec::new();
    for reading in &uplink.readings {
        let key = (reading.path.object_id, reading.path.resource_id);
        let declared = reading.value.data_type();
        let known = match state.types.get(key) {
            Some(t) => Some(t),
            None => discovered.iter().find(|(k, _)| *k == key).map(|(_, t)| *t),
        };
        let (type_id, data_type) = match known {
            Some(t) => t,
            None => {
                let t = resolve_or_discover(&mut tx, key, declared).await?;
                discovered.push((key, t));
                t
            }
        };
        if data_type != declared {
            return Err(AppError::invalid_field(
                reading.json_path.clone(),
                format!(
                    "resource /{}/{} is of type {data_type}, not {declared}",
                    key.0, key.1
                ),
            ));
        }
        let columns = Columns::from_value(&reading.value);
        let new = db::resource::NewResource {
            endpoint_id,
            resource_type_id: type_id,
            object_instance_id: reading.path.instance_id,
            resource_instance_id: reading.path.resource_instance_id,
            columns: &columns,
            received_at: now,
        };
        let id = db::resource::insert(&mut *tx, &new).await?;
        db::resource::set_latest(&mut *tx, &new, id).await?;
        resource_ids.push(id);

        match (key, &reading.value) {
            (DEVICE_BINDING, crate::model::Value::String(binding)) => {
                db::endpoint::set_binding(&mut *tx, endpoint_id, binding).await?
            }
            ((SERVER_OBJECT, SERVER_LIFETIME), crate::model::Value::Integer(lifetime)) => {
                db::endpoint::set_lifetime(&mut *tx, endpoint_id, *lifetime).await?
            }
            _ => {}
        }
        if let Some((change, event_type)) = registration_change(&reading.path) {
            db::endpoint::apply_registration(&mut *tx, endpoint_id, change, now).await?;
            let event_id = db::event::insert(&mut *tx, endpoint_id, event_type, now).await?;
            db::event::link_resource(&mut *tx, event_id, id).await?;
            events.push(event_type.to_string());
        }
    }

    if kind == UplinkKind::Composite {
        // One event per reported object, linking every value stored for it.
        let mut by_object: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (reading, id) in uplink.readings.iter().zip(&resource_ids) {
            if reading.path.object_id != REGISTRATION_OBJECT {
                by_object
                    .entry(reading.path.object_id)
                    .or_default()
                    .push(*id);
            }
        }
        for (object_id, ids) in by_object {
            let event_type = object_event_type(object_id);
            let event_id = db::event::insert(&mut *tx, endpoint_id, &event_type, now).await?;
            for id in ids {
                db::event::link_resource(&mut *tx, event_id, id).await?;
            }
            events.push(event_type);
        }
    }

    tx.commit().await?;
    for (key, t) in &discovered {
        state.types.insert(*key, *t);
    }

    let resources: Vec<StoredValue> = uplink
        .readings
        .iter()
        .map(|r| StoredValue {
            path: r.path.to_string(),
            data_type: r.value.data_type(),
            value: r.value.to_json(),
        })
        .collect();
    state.hub.publish(uplink.readings.iter().map(|r| LiveValue {
        endpoint: uplink.endpoint.clone(),
        path: r.path,
        value: r.value.to_string(),
        numeric: r.value.as_f64(),
        received_at: now,
    }));
    Ok(IngestReceipt {
        endpoint: uplink.endpoint,
        stored: resources.len(),
        discovered_types: discovered.len(),
        events,
        resources,
    })
}

/// Finds the resource type in the database (another server may have added
/// it), or registers it as discovered: named by its path, typed as declared.
async fn resolve_or_discover(
    tx: &mut db::Tx<'_>,
    key: (i64, i64),
    declared: DataType,
) -> Result<(i64, DataType), AppError> {
    if let Some(t) = db::resource_type::find(&mut **tx, key.0, key.1).await? {
        return Ok((t.id, t.data_type));
    }
    let name = format!("/{}/{}", key.0, key.1);
    db::resource_type::insert_if_missing(
        &mut **tx,
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
    let t = db::resource_type::find(&mut **tx, key.0, key.1)
        .await?
        .ok_or(AppError::Internal)?;
    Ok((t.id, t.data_type))
}
