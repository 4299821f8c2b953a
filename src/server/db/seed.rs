//! The resource types every installation starts with. Seeding runs at each
//! start: it adds rows that are new in this release and leaves existing rows
//! (which an operator may have renamed) alone.
use crate::model::DataType;
use crate::server::store::{self, Db, DbInitError, StoreOptions};

pub struct SeedType {
    pub object_id: i64,
    pub resource_id: i64,
    pub name: &'static str,
    pub data_type: DataType,
    pub unit: Option<&'static str>,
    pub writable: bool,
    pub executable: bool,
}

const fn r(object_id: i64, resource_id: i64, name: &'static str, data_type: DataType) -> SeedType {
    SeedType {
        object_id,
        resource_id,
        name,
        data_type,
        unit: None,
        writable: false,
        executable: false,
    }
}

const fn unit(mut t: SeedType, unit: &'static str) -> SeedType {
    t.unit = Some(unit);
    t
}

const fn rw(mut t: SeedType) -> SeedType {
    t.writable = true;
    t
}

const fn exec(mut t: SeedType) -> SeedType {
    t.executable = true;
    t
}

use DataType as T;

/// The original deployment's types (with the data types corrected: 5/0 is
/// OPAQUE, 3/22 OBJLNK, the 10240 registration events TIME), the standard
/// units and min/max resources of IPSO 3303/3304, and the rest of object 5.
/// Names of the original rows are kept: the compatibility data API looks
/// resources up by them.
pub const SEED_TYPES: &[SeedType] = &[
    // IPSO 3303 Temperature
    unit(r(3303, 5700, "temperature", T::Float), "Cel"),
    unit(r(3303, 5601, "temperature_min_measured", T::Float), "Cel"),
    unit(r(3303, 5602, "temperature_max_measured", T::Float), "Cel"),
    unit(r(3303, 5603, "temperature_min_range", T::Float), "Cel"),
    unit(r(3303, 5604, "temperature_max_range", T::Float), "Cel"),
    exec(r(3303, 5605, "temperature_reset_min_max", T::None)),
    r(3303, 5701, "temperature_sensor_units", T::String),
    // IPSO 3304 Humidity
    unit(r(3304, 5700, "humidity", T::Float), "%RH"),
    unit(r(3304, 5601, "humidity_min_measured", T::Float), "%RH"),
    unit(r(3304, 5602, "humidity_max_measured", T::Float), "%RH"),
    unit(r(3304, 5603, "humidity_min_range", T::Float), "%RH"),
    unit(r(3304, 5604, "humidity_max_range", T::Float), "%RH"),
    exec(r(3304, 5605, "humidity_reset_min_max", T::None)),
    r(3304, 5701, "humidity_sensor_units", T::String),
    // Object 3 Device
    r(3, 0, "manufacturer", T::String),
    r(3, 1, "model_number", T::String),
    r(3, 2, "serial_number", T::String),
    r(3, 3, "firmware_version", T::String),
    exec(r(3, 4, "reboot", T::None)),
    exec(r(3, 5, "factory_reset", T::None)),
    r(3, 6, "power_source", T::Integer),
    unit(r(3, 7, "power_source_v", T::Integer), "mV"),
    unit(r(3, 8, "power_source_i", T::Integer), "mA"),
    unit(r(3, 9, "battery_level", T::Integer), "%"),
    unit(r(3, 10, "memory_free", T::Integer), "KiB"),
    r(3, 11, "error_code", T::Integer),
    exec(r(3, 12, "reset_error_code", T::None)),
    rw(r(3, 13, "current_time", T::Time)),
    rw(r(3, 14, "utc_offset", T::String)),
    rw(r(3, 15, "timezone", T::String)),
    r(3, 16, "binding_mode", T::String),
    r(3, 17, "device_type", T::String),
    r(3, 18, "hardware_version", T::String),
    r(3, 19, "software_version", T::String),
    r(3, 20, "battery_status", T::Integer),
    unit(r(3, 21, "memory_total", T::Integer), "KiB"),
    r(3, 22, "ext_dev_info", T::Objlnk),
    // Object 5 Firmware Update
    rw(r(5, 0, "package", T::Opaque)),
    rw(r(5, 1, "package_uri", T::String)),
    exec(r(5, 2, "update", T::None)),
    r(5, 3, "state", T::Integer),
    rw(r(5, 4, "update_supported_objects", T::Boolean)),
    r(5, 5, "update_result", T::Integer),
    // The contract and the original call 5/6 the package version.
    r(5, 6, "package_version", T::String),
    r(5, 7, "package_version_name", T::String),
    r(5, 8, "firmware_update_protocol_support", T::Integer),
    r(5, 9, "firmware_update_delivery_method", T::Integer),
    // Pseudo-object 10240: registration events forwarded by the LwM2M server
    r(10240, 0, "ep_registered", T::Time),
    r(10240, 1, "ep_unregistered", T::Time),
    r(10240, 2, "ep_registration_update", T::Time),
];

/// Opens the database as the server runs on it: connects, applies the
/// pending migrations and seeds the resource types. Any failure is
/// returned: the server refuses to start on it.
pub async fn open(url: &str, options: StoreOptions) -> Result<Db, DbInitError> {
    let db = Db::connect_with(url, options).await?;
    db.migrate().await?;
    seed_resource_types(&db.pool)
        .await
        .map_err(DbInitError::Seed)?;
    Ok(db)
}

/// Inserts the seed rows that are missing. Idempotent.
pub async fn seed_resource_types(pool: &store::Pool) -> Result<u64, sqlx::Error> {
    let mut tx = store::begin_write(pool).await?;
    let mut added = 0;
    for t in SEED_TYPES {
        added += super::resource_type::insert_if_missing(
            &mut *tx,
            &super::resource_type::NewResourceType {
                object_id: t.object_id,
                resource_id: t.resource_id,
                name: t.name,
                data_type: t.data_type,
                unit: t.unit,
                writable: t.writable,
                executable: t.executable,
                origin: super::resource_type::Origin::Seeded,
            },
        )
        .await?;
    }
    tx.commit().await?;
    if added > 0 {
        tracing::info!(added, "seeded resource types");
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_has_no_duplicate_pairs_or_names() {
        let pairs: HashSet<_> = SEED_TYPES
            .iter()
            .map(|t| (t.object_id, t.resource_id))
            .collect();
        assert_eq!(pairs.len(), SEED_TYPES.len());
        let names: HashSet<_> = SEED_TYPES.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), SEED_TYPES.len());
    }

    #[test]
    fn corrected_types_of_the_original_seed() {
        let find = |o, r| {
            SEED_TYPES
                .iter()
                .find(|t| t.object_id == o && t.resource_id == r)
                .unwrap()
        };
        assert_eq!(find(5, 0).data_type, DataType::Opaque);
        assert_eq!(find(3, 22).data_type, DataType::Objlnk);
        for r in 0..3 {
            assert_eq!(find(10240, r).data_type, DataType::Time);
        }
        assert_eq!(find(3303, 5700).unit, Some("Cel"));
        for r in [4, 6, 7, 8, 9] {
            find(5, r);
        }
    }
}
