//! The simulated device's object model: which objects and resources exist,
//! what each allows, and the values one device holds. Pure: no clock, no
//! socket; the device passes time and randomness in.
//!
//! Objects: 1 Server, 3 Device, 5 Firmware Update, 3303 Temperature and
//! 3304 Humidity (IPSO, instances creatable and deletable). Definitions
//! follow the OMA registry (Core TS 1.1.1 Appendix E, IPSO 3303/3304 v1.1).

use coap_lite::ResponseType;
use rand::Rng;

use crate::model::lwm2m::{DataType, ResourcePath, Value};
use crate::server::lwm2m::format::{LwPath, Record};
use crate::server::lwm2m::link_format::ObjectLink;

/// What the LwM2M server may do with a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ops {
    R,
    W,
    RW,
    E,
}

impl Ops {
    pub fn readable(self) -> bool {
        matches!(self, Ops::R | Ops::RW)
    }
    pub fn writable(self) -> bool {
        matches!(self, Ops::W | Ops::RW)
    }
    pub fn executable(self) -> bool {
        self == Ops::E
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    pub id: u16,
    pub name: &'static str,
    pub ops: Ops,
    pub multiple: bool,
    /// `DataType::None` for executables.
    pub ty: DataType,
}

#[derive(Debug)]
pub struct ObjectDef {
    pub id: u16,
    /// The `ver` attribute announced at registration; `None` for the
    /// object's default version under LwM2M 1.1.
    pub version: Option<&'static str>,
    /// Whether the server may Create and Delete instances.
    pub creatable: bool,
    pub resources: &'static [ResourceDef],
}

impl ObjectDef {
    pub fn resource(&self, id: u16) -> Option<&'static ResourceDef> {
        self.resources.iter().find(|r| r.id == id)
    }
}

const fn res(id: u16, name: &'static str, ops: Ops, multiple: bool, ty: DataType) -> ResourceDef {
    ResourceDef {
        id,
        name,
        ops,
        multiple,
        ty,
    }
}

use DataType as T;
use Ops::{E, R, RW, W};

pub const SERVER: u16 = 1;
pub const DEVICE: u16 = 3;
pub const FIRMWARE: u16 = 5;
pub const TEMPERATURE: u16 = 3303;
pub const HUMIDITY: u16 = 3304;

/// IPSO sensor resources shared by 3303 and 3304.
pub const SENSOR_VALUE: u16 = 5700;
pub const SENSOR_UNITS: u16 = 5701;
pub const MIN_MEASURED: u16 = 5601;
pub const MAX_MEASURED: u16 = 5602;
pub const MIN_RANGE: u16 = 5603;
pub const MAX_RANGE: u16 = 5604;
pub const RESET_MIN_MAX: u16 = 5605;
pub const APPLICATION_TYPE: u16 = 5750;

const SENSOR_RESOURCES: &[ResourceDef] = &[
    res(MIN_MEASURED, "Min Measured Value", R, false, T::Float),
    res(MAX_MEASURED, "Max Measured Value", R, false, T::Float),
    res(MIN_RANGE, "Min Range Value", R, false, T::Float),
    res(MAX_RANGE, "Max Range Value", R, false, T::Float),
    res(
        RESET_MIN_MAX,
        "Reset Min and Max Measured Values",
        E,
        false,
        T::None,
    ),
    res(SENSOR_VALUE, "Sensor Value", R, false, T::Float),
    res(SENSOR_UNITS, "Sensor Units", R, false, T::String),
    res(APPLICATION_TYPE, "Application Type", RW, false, T::String),
];

pub static OBJECTS: &[ObjectDef] = &[
    ObjectDef {
        id: SERVER,
        version: None,
        creatable: false,
        resources: &[
            res(0, "Short Server ID", R, false, T::Integer),
            res(1, "Lifetime", RW, false, T::Integer),
            res(2, "Default Minimum Period", RW, false, T::Integer),
            res(3, "Default Maximum Period", RW, false, T::Integer),
            res(6, "Notification Storing", RW, false, T::Boolean),
            res(7, "Binding", RW, false, T::String),
            res(8, "Registration Update Trigger", E, false, T::None),
        ],
    },
    ObjectDef {
        id: DEVICE,
        version: None,
        creatable: false,
        resources: &[
            res(0, "Manufacturer", R, false, T::String),
            res(1, "Model Number", R, false, T::String),
            res(2, "Serial Number", R, false, T::String),
            res(3, "Firmware Version", R, false, T::String),
            res(4, "Reboot", E, false, T::None),
            res(9, "Battery Level", R, false, T::Integer),
            res(10, "Memory Free", R, false, T::Integer),
            res(11, "Error Code", R, true, T::Integer),
            res(13, "Current Time", RW, false, T::Time),
            res(16, "Supported Binding and Modes", R, false, T::String),
            res(17, "Device Type", R, false, T::String),
            res(18, "Hardware Version", R, false, T::String),
            res(19, "Software Version", R, false, T::String),
        ],
    },
    ObjectDef {
        id: FIRMWARE,
        version: None,
        creatable: false,
        resources: &[
            res(0, "Package", W, false, T::Opaque),
            res(1, "Package URI", RW, false, T::String),
            res(2, "Update", E, false, T::None),
            res(3, "State", R, false, T::Integer),
            res(5, "Update Result", R, false, T::Integer),
            res(6, "PkgName", R, false, T::String),
            res(7, "PkgVersion", R, false, T::String),
            res(8, "Firmware Update Protocol Support", R, true, T::Integer),
            res(9, "Firmware Update Delivery Method", R, false, T::Integer),
        ],
    },
    ObjectDef {
        id: TEMPERATURE,
        version: Some("1.1"),
        creatable: true,
        resources: SENSOR_RESOURCES,
    },
    ObjectDef {
        id: HUMIDITY,
        version: Some("1.1"),
        creatable: true,
        resources: SENSOR_RESOURCES,
    },
];

pub fn object_def(oid: u16) -> Option<&'static ObjectDef> {
    OBJECTS.iter().find(|o| o.id == oid)
}

pub fn resource_def(oid: u16, rid: u16) -> Option<&'static ResourceDef> {
    object_def(oid)?.resource(rid)
}

/// The resolver for `DecodeContext`: the declared type of a resource.
pub fn declared_type(oid: i64, rid: i64) -> Option<DataType> {
    let def = resource_def(u16::try_from(oid).ok()?, u16::try_from(rid).ok()?)?;
    (def.ty != DataType::None).then_some(def.ty)
}

/// Why an operation was refused; each maps onto the CoAP code Core TS
/// 1.1.1 §6 prescribes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpError {
    /// 4.00: malformed payload, wrong type, bad attribute.
    BadRequest,
    /// 4.04: no such object, instance or resource.
    NotFound,
    /// 4.05: the resource does not allow the operation.
    MethodNotAllowed,
    /// 4.06: the Accept format cannot carry the answer.
    NotAcceptable,
    /// 4.15: the request's Content-Format is not understood.
    UnsupportedFormat,
    /// 5.00: our own values could not be encoded.
    Internal,
}

impl OpError {
    pub fn code(self) -> ResponseType {
        match self {
            OpError::BadRequest => ResponseType::BadRequest,
            OpError::NotFound => ResponseType::NotFound,
            OpError::MethodNotAllowed => ResponseType::MethodNotAllowed,
            OpError::NotAcceptable => ResponseType::NotAcceptable,
            OpError::UnsupportedFormat => ResponseType::UnsupportedContentFormat,
            OpError::Internal => ResponseType::InternalServerError,
        }
    }
}

/// A resource's value: single, or instances of a multiple resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    One(Value),
    Many(Vec<(u16, Value)>),
}

#[derive(Debug, Clone, PartialEq)]
struct Instance {
    oid: u16,
    iid: u16,
    /// Sorted by resource id; executables have no slot.
    values: Vec<(u16, Slot)>,
}

impl Instance {
    fn slot(&self, rid: u16) -> Option<&Slot> {
        self.values
            .iter()
            .find(|(id, _)| *id == rid)
            .map(|(_, s)| s)
    }

    fn slot_mut(&mut self, rid: u16) -> Option<&mut Slot> {
        self.values
            .iter_mut()
            .find(|(id, _)| *id == rid)
            .map(|(_, s)| s)
    }

    fn put(&mut self, rid: u16, slot: Slot) {
        match self.values.binary_search_by_key(&rid, |(id, _)| *id) {
            Ok(i) => self.values[i].1 = slot,
            Err(i) => self.values.insert(i, (rid, slot)),
        }
    }
}

/// The identity a device is created with.
#[derive(Debug, Clone)]
pub struct Profile {
    pub serial: String,
    pub firmware_version: String,
    pub lifetime_s: u32,
    /// `U` or `UQ` (1.0 style) for 1/0/7; 1.1 signals queue mode with `Q`
    /// in the registration query, so this stays `U`.
    pub binding: String,
    pub http_download: bool,
}

/// How a Write treats what is already there (Core TS 1.1.1 §5.4.3):
/// PUT replaces, POST updates partially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Replace,
    Partial,
}

/// The values one device holds.
#[derive(Debug, Clone)]
pub struct Objects {
    /// Sorted by (object, instance).
    instances: Vec<Instance>,
    /// Offset of the device's clock (3/0/13) from the host clock, in ms;
    /// a Write of Current Time moves it.
    clock_offset_ms: i64,
    now_ms: i64,
}

fn sensor_instance(oid: u16, iid: u16, value: f64) -> Instance {
    let (units, lo, hi, app) = if oid == TEMPERATURE {
        ("Cel", -40.0, 85.0, "indoor")
    } else {
        ("%RH", 0.0, 100.0, "indoor")
    };
    Instance {
        oid,
        iid,
        values: vec![
            (MIN_MEASURED, Slot::One(Value::Float(value))),
            (MAX_MEASURED, Slot::One(Value::Float(value))),
            (MIN_RANGE, Slot::One(Value::Float(lo))),
            (MAX_RANGE, Slot::One(Value::Float(hi))),
            (SENSOR_VALUE, Slot::One(Value::Float(value))),
            (SENSOR_UNITS, Slot::One(Value::String(units.into()))),
            (APPLICATION_TYPE, Slot::One(Value::String(app.into()))),
        ],
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Objects {
    pub fn new<R: Rng + ?Sized>(p: &Profile, rng: &mut R) -> Objects {
        let s = |v: &str| Slot::One(Value::String(v.to_owned()));
        let i = |v: i64| Slot::One(Value::Integer(v));
        let mut protocols = vec![(0, Value::Integer(0))];
        if p.http_download {
            protocols.push((1, Value::Integer(2)));
        }
        let instances = vec![
            Instance {
                oid: SERVER,
                iid: 0,
                values: vec![
                    (0, i(1)),
                    (1, i(i64::from(p.lifetime_s))),
                    (2, i(0)),
                    (3, i(0)),
                    (6, Slot::One(Value::Boolean(true))),
                    (7, s(&p.binding)),
                ],
            },
            Instance {
                oid: DEVICE,
                iid: 0,
                values: vec![
                    (0, s("flownexus")),
                    (1, s("sim-1")),
                    (2, s(&p.serial)),
                    (3, s(&p.firmware_version)),
                    (9, i(rng.gen_range(60..=100))),
                    (10, i(rng.gen_range(64..=256))),
                    (11, Slot::Many(vec![(0, Value::Integer(0))])),
                    (13, Slot::One(Value::Time(0))),
                    (16, s("UQ")),
                    (17, s("sensor")),
                    (18, s("1.0")),
                    (19, s(&p.firmware_version)),
                ],
            },
            Instance {
                oid: FIRMWARE,
                iid: 0,
                values: vec![
                    (1, s("")),
                    (3, i(0)),
                    (5, i(0)),
                    (6, s("")),
                    (7, s("")),
                    (8, Slot::Many(protocols)),
                    // 2: pull (5/0/1) and push (5/0/0).
                    (9, i(2)),
                ],
            },
            sensor_instance(TEMPERATURE, 0, round2(rng.gen_range(18.0..25.0))),
            sensor_instance(HUMIDITY, 0, round2(rng.gen_range(30.0..60.0))),
        ];
        Objects {
            instances,
            clock_offset_ms: 0,
            now_ms: 0,
        }
    }

    fn find(&self, oid: u16, iid: u16) -> Option<&Instance> {
        self.instances
            .binary_search_by_key(&(oid, iid), |i| (i.oid, i.iid))
            .ok()
            .map(|i| &self.instances[i])
    }

    fn find_mut(&mut self, oid: u16, iid: u16) -> Option<&mut Instance> {
        let i = self
            .instances
            .binary_search_by_key(&(oid, iid), |i| (i.oid, i.iid))
            .ok()?;
        Some(&mut self.instances[i])
    }

    pub fn has_instance(&self, oid: u16, iid: u16) -> bool {
        self.find(oid, iid).is_some()
    }

    pub fn instance_ids(&self, oid: u16) -> impl Iterator<Item = u16> + '_ {
        self.instances
            .iter()
            .filter(move |i| i.oid == oid)
            .map(|i| i.iid)
    }

    /// The objects and instances announced in Register and Update.
    pub fn links(&self) -> Vec<ObjectLink> {
        self.instances
            .iter()
            .map(|i| ObjectLink {
                object_id: i.oid,
                instance_id: Some(i.iid),
                version: object_def(i.oid).and_then(|d| d.version).map(str::to_owned),
            })
            .collect()
    }

    /// Sets the host time the next operations see (3/0/13 follows it).
    pub fn set_now(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        let t = now_ms + self.clock_offset_ms;
        if let Some(Slot::One(v)) = self.find_mut(DEVICE, 0).and_then(|i| i.slot_mut(13)) {
            *v = Value::Time(t);
        }
    }

    /// One single-resource value, unchecked (for the device's own logic).
    pub fn get(&self, oid: u16, iid: u16, rid: u16) -> Option<&Value> {
        match self.find(oid, iid)?.slot(rid)? {
            Slot::One(v) => Some(v),
            Slot::Many(_) => None,
        }
    }

    pub fn get_f64(&self, oid: u16, iid: u16, rid: u16) -> Option<f64> {
        self.get(oid, iid, rid).and_then(Value::as_f64)
    }

    pub fn get_str(&self, oid: u16, iid: u16, rid: u16) -> &str {
        match self.get(oid, iid, rid) {
            Some(Value::String(s)) => s,
            _ => "",
        }
    }

    /// Sets a single-resource value without permission checks; true when
    /// the value changed (so observers of it are due).
    pub fn set(&mut self, oid: u16, iid: u16, rid: u16, value: Value) -> bool {
        let Some(inst) = self.find_mut(oid, iid) else {
            return false;
        };
        match inst.slot_mut(rid) {
            Some(Slot::One(v)) if *v == value => false,
            _ => {
                inst.put(rid, Slot::One(value));
                true
            }
        }
    }

    /// Read (Core TS 1.1.1 §5.4.1) of an object, instance, resource or
    /// resource instance: the readable values below the path. Reading a
    /// non-readable resource directly is 4.05; at object or instance level
    /// such resources are left out.
    pub fn read(&self, path: &LwPath) -> Result<Vec<(ResourcePath, Value)>, OpError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(OpError::MethodNotAllowed);
        };
        let def = object_def(oid).ok_or(OpError::NotFound)?;
        let mut out = Vec::new();
        if ids.len() >= 3 {
            let rdef = def.resource(ids[2]).ok_or(OpError::NotFound)?;
            let inst = self.find(oid, ids[1]).ok_or(OpError::NotFound)?;
            if !rdef.ops.readable() {
                return Err(if rdef.ops == Ops::W && inst.slot(rdef.id).is_none() {
                    OpError::NotFound
                } else {
                    OpError::MethodNotAllowed
                });
            }
            let slot = inst.slot(ids[2]).ok_or(OpError::NotFound)?;
            push_slot(&mut out, oid, ids[1], ids[2], slot, ids.get(3).copied())?;
            return Ok(out);
        }
        let mut found = ids.len() == 1;
        for inst in self
            .instances
            .iter()
            .filter(|i| i.oid == oid && (ids.len() == 1 || i.iid == ids[1]))
        {
            found = true;
            for (rid, slot) in &inst.values {
                if def.resource(*rid).is_some_and(|r| r.ops.readable()) {
                    push_slot(&mut out, oid, inst.iid, *rid, slot, None)?;
                }
            }
        }
        if !found {
            return Err(OpError::NotFound);
        }
        Ok(out)
    }

    /// Write (Core TS 1.1.1 §5.4.3) of decoded records below `path`, which
    /// names an instance, resource or resource instance. All records are
    /// checked before any is applied. Returns the resource paths written.
    /// Whether `path` exists and may be written, before any payload is
    /// looked at (4.04 and 4.05 win over 4.00).
    pub fn check_write(&self, path: &LwPath) -> Result<&'static ObjectDef, OpError> {
        let ids = path.ids();
        if ids.len() < 2 {
            return Err(if ids.is_empty() || object_def(ids[0]).is_some() {
                OpError::MethodNotAllowed
            } else {
                OpError::NotFound
            });
        }
        let def = object_def(ids[0]).ok_or(OpError::NotFound)?;
        if !self.has_instance(ids[0], ids[1]) {
            return Err(OpError::NotFound);
        }
        if ids.len() >= 3 {
            let r = def.resource(ids[2]).ok_or(OpError::NotFound)?;
            if !r.ops.writable() {
                return Err(OpError::MethodNotAllowed);
            }
            if ids.len() == 4 && !r.multiple {
                return Err(OpError::NotFound);
            }
        }
        Ok(def)
    }

    pub fn write(
        &mut self,
        path: &LwPath,
        records: Vec<Record>,
        mode: WriteMode,
    ) -> Result<Vec<LwPath>, OpError> {
        let def = self.check_write(path)?;
        let ids = path.ids();
        let (oid, iid) = (ids[0], ids[1]);
        let mut checked = Vec::with_capacity(records.len());
        for rec in records {
            let lw = LwPath::from_resource_path(&rec.path).ok_or(OpError::BadRequest)?;
            if !lw.starts_with(path) || lw.ids()[..2] != [oid, iid] {
                return Err(OpError::BadRequest);
            }
            let r = def.resource(lw.ids()[2]).ok_or(OpError::NotFound)?;
            if !r.ops.writable() {
                return Err(OpError::MethodNotAllowed);
            }
            // A multiple resource takes instance values, a single one a value.
            if r.multiple != (lw.len() == 4) {
                return Err(OpError::BadRequest);
            }
            let value = coerce(rec.value, r.ty).ok_or(OpError::BadRequest)?;
            checked.push((lw, value));
        }
        if checked.is_empty() && ids.len() >= 3 {
            // Only a multiple resource can be written empty.
            let multiple = def.resource(ids[2]).is_some_and(|r| r.multiple);
            if !(multiple && ids.len() == 3) {
                return Err(OpError::BadRequest);
            }
        }
        let inst = self.find_mut(oid, iid).ok_or(OpError::NotFound)?;
        // Replacing a multiple resource drops the instances not written.
        if mode == WriteMode::Replace {
            let multi: Vec<u16> = if ids.len() == 3 {
                vec![ids[2]]
            } else if ids.len() == 2 {
                checked
                    .iter()
                    .filter(|(p, _)| p.len() == 4)
                    .map(|(p, _)| p.ids()[2])
                    .collect()
            } else {
                Vec::new()
            };
            for rid in multi {
                inst.put(rid, Slot::Many(Vec::new()));
            }
        }
        let mut written = Vec::with_capacity(checked.len());
        for (lw, value) in checked {
            let rid = lw.ids()[2];
            if rid == 13 && oid == DEVICE {
                if let Value::Time(t) = value {
                    self.clock_offset_ms = t - self.now_ms;
                }
            }
            let inst = self.find_mut(oid, iid).ok_or(OpError::NotFound)?;
            if let Some(&ri) = lw.ids().get(3) {
                let mut items = match inst.slot(rid) {
                    Some(Slot::Many(items)) => items.clone(),
                    _ => Vec::new(),
                };
                match items.binary_search_by_key(&ri, |(id, _)| *id) {
                    Ok(i) => items[i].1 = value,
                    Err(i) => items.insert(i, (ri, value)),
                }
                inst.put(rid, Slot::Many(items));
            } else {
                inst.put(rid, Slot::One(value));
            }
            written.push(lw);
        }
        Ok(written)
    }

    /// Whether `path` names an executable resource (Core TS 1.1.1 §5.4.5).
    pub fn check_execute(&self, path: &LwPath) -> Result<(), OpError> {
        let ids = path.ids();
        if ids.len() != 3 {
            return Err(if ids.is_empty() {
                OpError::NotFound
            } else {
                OpError::MethodNotAllowed
            });
        }
        let r = resource_def(ids[0], ids[2]).ok_or(OpError::NotFound)?;
        if !self.has_instance(ids[0], ids[1]) {
            return Err(OpError::NotFound);
        }
        if !r.ops.executable() {
            return Err(OpError::MethodNotAllowed);
        }
        Ok(())
    }

    /// Create (Core TS 1.1.1 §5.4.6) of an instance of a creatable object:
    /// the id from the payload, or the lowest free one. Resources the
    /// payload names are set (read-only ones too: they are initial values).
    pub fn create(&mut self, oid: u16, records: Vec<Record>) -> Result<u16, OpError> {
        let def = object_def(oid).ok_or(OpError::NotFound)?;
        if !def.creatable {
            return Err(OpError::MethodNotAllowed);
        }
        let mut iid = None;
        let mut values = Vec::new();
        for rec in records {
            let lw = LwPath::from_resource_path(&rec.path).ok_or(OpError::BadRequest)?;
            if lw.ids()[0] != oid || lw.len() != 3 {
                return Err(OpError::BadRequest);
            }
            match iid {
                None => iid = Some(lw.ids()[1]),
                Some(i) if i != lw.ids()[1] => return Err(OpError::BadRequest),
                Some(_) => {}
            }
            let r = def.resource(lw.ids()[2]).ok_or(OpError::NotFound)?;
            if r.ops.executable() {
                return Err(OpError::BadRequest);
            }
            values.push((r.id, coerce(rec.value, r.ty).ok_or(OpError::BadRequest)?));
        }
        let iid = match iid {
            Some(i) if self.has_instance(oid, i) => return Err(OpError::BadRequest),
            Some(i) => i,
            None => (0..LwPath::MAX_ID)
                .find(|i| !self.has_instance(oid, *i))
                .ok_or(OpError::BadRequest)?,
        };
        let start = values
            .iter()
            .find(|(rid, _)| *rid == SENSOR_VALUE)
            .and_then(|(_, v)| v.as_f64())
            .unwrap_or(if oid == TEMPERATURE { 21.0 } else { 45.0 });
        let mut inst = sensor_instance(oid, iid, start);
        for (rid, v) in values {
            inst.put(rid, Slot::One(v));
        }
        let at = self
            .instances
            .binary_search_by_key(&(oid, iid), |i| (i.oid, i.iid))
            .unwrap_err();
        self.instances.insert(at, inst);
        Ok(iid)
    }

    /// Delete (Core TS 1.1.1 §5.4.7) of an instance of a creatable object.
    pub fn delete(&mut self, path: &LwPath) -> Result<(), OpError> {
        let ids = path.ids();
        let def = ids
            .first()
            .and_then(|&o| object_def(o))
            .ok_or(OpError::NotFound)?;
        if ids.len() != 2 || !def.creatable {
            return Err(OpError::MethodNotAllowed);
        }
        let i = self
            .instances
            .binary_search_by_key(&(ids[0], ids[1]), |i| (i.oid, i.iid))
            .map_err(|_| OpError::NotFound)?;
        self.instances.remove(i);
        Ok(())
    }

    /// The links of a Discover (Core TS 1.1.1 §5.4.2) below `path`, each
    /// with its `dim` for multiple resources; `attrs` gives the attribute
    /// text (`;pmin=10…`) set on a path.
    pub fn discover(
        &self,
        path: &LwPath,
        attrs: &dyn Fn(&LwPath) -> String,
    ) -> Result<String, OpError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(OpError::MethodNotAllowed);
        };
        let def = object_def(oid).ok_or(OpError::NotFound)?;
        let mut links: Vec<String> = Vec::new();
        let link = |p: LwPath, extra: &str| format!("<{p}>{extra}{}", attrs(&p));
        if ids.len() == 1 {
            let ver = def.version.map(|v| format!(";ver={v}")).unwrap_or_default();
            links.push(link(*path, &ver));
        }
        let mut found = ids.len() == 1;
        for inst in self
            .instances
            .iter()
            .filter(|i| i.oid == oid && (ids.len() == 1 || i.iid == ids[1]))
        {
            found = true;
            let ip = LwPath::new(&[oid, inst.iid]).ok_or(OpError::Internal)?;
            if ids.len() <= 2 {
                links.push(link(ip, ""));
            }
            for r in def.resources {
                if ids.len() >= 3 && r.id != ids[2] {
                    continue;
                }
                let slot = inst.slot(r.id);
                if slot.is_none() && !r.ops.executable() {
                    continue;
                }
                let rp = ip.child(r.id).ok_or(OpError::Internal)?;
                let dim = match slot {
                    Some(Slot::Many(items)) => format!(";dim={}", items.len()),
                    _ => String::new(),
                };
                links.push(link(rp, &dim));
                // A resource's own Discover also lists its instances.
                if let (3, Some(Slot::Many(items))) = (ids.len(), slot) {
                    for (ri, _) in items {
                        links.push(link(rp.child(*ri).ok_or(OpError::Internal)?, ""));
                    }
                }
            }
        }
        if !found || (ids.len() >= 3 && links.is_empty()) {
            return Err(OpError::NotFound);
        }
        if ids.len() == 4 {
            return Err(OpError::MethodNotAllowed);
        }
        Ok(links.join(","))
    }

    /// One step of the sensors' random walk and the device's slow drift
    /// (battery, free memory). Returns the resource paths that changed.
    pub fn tick<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Vec<LwPath> {
        let mut changed = Vec::new();
        for inst in self
            .instances
            .iter_mut()
            .filter(|i| i.oid == TEMPERATURE || i.oid == HUMIDITY)
        {
            let get = |inst: &Instance, rid| match inst.slot(rid) {
                Some(Slot::One(v)) => v.as_f64(),
                _ => None,
            };
            let (Some(v), Some(lo), Some(hi)) = (
                get(inst, SENSOR_VALUE),
                get(inst, MIN_RANGE),
                get(inst, MAX_RANGE),
            ) else {
                continue;
            };
            let step = if inst.oid == TEMPERATURE { 0.25 } else { 1.0 };
            // Smooth: small steps, pulled gently toward a comfortable middle.
            let mid = if inst.oid == TEMPERATURE { 21.5 } else { 45.0 };
            let next = round2((v + rng.gen_range(-step..=step) + (mid - v) * 0.02).clamp(lo, hi));
            if next == v {
                continue;
            }
            let (oid, iid) = (inst.oid, inst.iid);
            inst.put(SENSOR_VALUE, Slot::One(Value::Float(next)));
            let ip = |rid| LwPath::new(&[oid, iid, rid]);
            changed.extend(ip(SENSOR_VALUE));
            if get(inst, MIN_MEASURED).is_some_and(|m| next < m) {
                inst.put(MIN_MEASURED, Slot::One(Value::Float(next)));
                changed.extend(ip(MIN_MEASURED));
            }
            if get(inst, MAX_MEASURED).is_some_and(|m| next > m) {
                inst.put(MAX_MEASURED, Slot::One(Value::Float(next)));
                changed.extend(ip(MAX_MEASURED));
            }
        }
        if rng.gen_ratio(1, 20) {
            if let Some(Value::Integer(b)) = self.get(DEVICE, 0, 9).cloned() {
                if b > 1 && self.set(DEVICE, 0, 9, Value::Integer(b - 1)) {
                    changed.extend(LwPath::new(&[DEVICE, 0, 9]));
                }
            }
        }
        if let Some(Value::Integer(m)) = self.get(DEVICE, 0, 10).cloned() {
            let next = (m + rng.gen_range(-2..=2)).clamp(32, 512);
            if self.set(DEVICE, 0, 10, Value::Integer(next)) {
                changed.extend(LwPath::new(&[DEVICE, 0, 10]));
            }
        }
        changed
    }

    /// 5605: the min/max measured values restart from the current value.
    pub fn reset_min_max(&mut self, oid: u16, iid: u16) -> Vec<LwPath> {
        let Some(v) = self.get(oid, iid, SENSOR_VALUE).cloned() else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for rid in [MIN_MEASURED, MAX_MEASURED] {
            if self.set(oid, iid, rid, v.clone()) {
                changed.extend(LwPath::new(&[oid, iid, rid]));
            }
        }
        changed
    }
}

fn push_slot(
    out: &mut Vec<(ResourcePath, Value)>,
    oid: u16,
    iid: u16,
    rid: u16,
    slot: &Slot,
    only: Option<u16>,
) -> Result<(), OpError> {
    let path = |ri: Option<u16>| ResourcePath {
        object_id: oid.into(),
        instance_id: iid.into(),
        resource_id: rid.into(),
        resource_instance_id: ri.map(i64::from),
    };
    match (slot, only) {
        (Slot::One(v), None) => out.push((path(None), v.clone())),
        (Slot::One(_), Some(_)) => return Err(OpError::NotFound),
        (Slot::Many(items), None) => {
            out.extend(items.iter().map(|(ri, v)| (path(Some(*ri)), v.clone())))
        }
        (Slot::Many(items), Some(ri)) => {
            let (_, v) = items
                .iter()
                .find(|(id, _)| *id == ri)
                .ok_or(OpError::NotFound)?;
            out.push((path(Some(ri)), v.clone()));
        }
    }
    Ok(())
}

/// A written value in the resource's declared type: decoders that carry
/// no type (SenML numbers, CBOR) may hand an integer for a float, a
/// string for an opaque, and so on.
pub fn coerce(v: Value, ty: DataType) -> Option<Value> {
    Some(match (v, ty) {
        (v, t) if v.data_type() == t => v,
        (Value::Integer(i) | Value::UnsignedInteger(i), DataType::Float) => Value::Float(i as f64),
        (Value::Float(f), DataType::Integer) if f.fract() == 0.0 => Value::Integer(f as i64),
        (Value::UnsignedInteger(i), DataType::Integer) => Value::Integer(i),
        (Value::Integer(i), DataType::UnsignedInteger) if i >= 0 => Value::UnsignedInteger(i),
        (Value::Integer(i) | Value::UnsignedInteger(i), DataType::Time) => Value::Time(i * 1000),
        (Value::String(s), DataType::Opaque) => Value::Opaque(s.into_bytes()),
        (Value::Opaque(b), DataType::String) => Value::String(String::from_utf8(b).ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::lwm2m::format::{decode, encode, ContentFormat, DecodeContext};
    use rand::SeedableRng;

    fn objects() -> Objects {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let p = Profile {
            serial: "SN-1".into(),
            firmware_version: "1.0.0".into(),
            lifetime_s: 300,
            binding: "U".into(),
            http_download: true,
        };
        let mut o = Objects::new(&p, &mut rng);
        o.set_now(1_700_000_000_000);
        o
    }

    fn path(s: &str) -> LwPath {
        LwPath::parse(s).unwrap()
    }

    fn ctx(p: LwPath) -> DecodeContext<'static> {
        DecodeContext {
            request_path: p,
            now_ms: 1_700_000_000_000,
            resolve: &declared_type,
        }
    }

    #[test]
    fn reads_in_every_format_decode_back_to_the_values() {
        let o = objects();
        let cases: &[(&str, &[ContentFormat])] = &[
            (
                "/3",
                &[
                    ContentFormat::SenmlCbor,
                    ContentFormat::SenmlJson,
                    ContentFormat::Tlv,
                ],
            ),
            (
                "/3/0",
                &[
                    ContentFormat::SenmlCbor,
                    ContentFormat::SenmlJson,
                    ContentFormat::Tlv,
                ],
            ),
            (
                "/3/0/11",
                &[
                    ContentFormat::SenmlCbor,
                    ContentFormat::SenmlJson,
                    ContentFormat::Tlv,
                ],
            ),
            (
                "/3/0/11/0",
                &[ContentFormat::Text, ContentFormat::Cbor, ContentFormat::Tlv],
            ),
            (
                "/3303/0",
                &[
                    ContentFormat::SenmlCbor,
                    ContentFormat::Tlv,
                    ContentFormat::SenmlJson,
                ],
            ),
            (
                "/3303/0/5700",
                &[
                    ContentFormat::Text,
                    ContentFormat::Cbor,
                    ContentFormat::SenmlCbor,
                ],
            ),
            (
                "/3/0/13",
                &[ContentFormat::Text, ContentFormat::Cbor, ContentFormat::Tlv],
            ),
            ("/1/0/6", &[ContentFormat::Text, ContentFormat::Tlv]),
            ("/5/0/8", &[ContentFormat::Tlv, ContentFormat::SenmlCbor]),
        ];
        for (p, formats) in cases {
            let p = path(p);
            let values = o.read(&p).unwrap();
            assert!(!values.is_empty(), "{p}");
            for &f in *formats {
                let bytes = encode(f, &values, &p).unwrap_or_else(|e| panic!("{p} {f}: {e}"));
                let back = decode(f, &bytes, &ctx(p)).unwrap_or_else(|e| panic!("{p} {f}: {e}"));
                let back: Vec<_> = back.into_iter().map(|r| (r.path, r.value)).collect();
                let mut want = values.clone();
                want.sort_by_key(|(rp, _)| {
                    (rp.instance_id, rp.resource_id, rp.resource_instance_id)
                });
                let mut got = back;
                got.sort_by_key(|(rp, _)| {
                    (rp.instance_id, rp.resource_id, rp.resource_instance_id)
                });
                assert_eq!(got, want, "{p} {f}");
            }
        }
    }

    #[test]
    fn reads_leave_out_what_cannot_be_read_and_refuse_it_directly() {
        let o = objects();
        let fw = o.read(&path("/5/0")).unwrap();
        assert!(fw
            .iter()
            .all(|(p, _)| p.resource_id != 0 && p.resource_id != 2));
        assert_eq!(o.read(&path("/5/0/2")), Err(OpError::MethodNotAllowed));
        assert_eq!(o.read(&path("/3/0/4")), Err(OpError::MethodNotAllowed));
        assert_eq!(o.read(&path("/3/1")), Err(OpError::NotFound));
        assert_eq!(o.read(&path("/3/0/99")), Err(OpError::NotFound));
        assert_eq!(o.read(&path("/4")), Err(OpError::NotFound));
        assert_eq!(o.read(&path("/3/0/11/5")), Err(OpError::NotFound));
        assert_eq!(o.read(&path("/3/0/9/0")), Err(OpError::NotFound));
        assert_eq!(o.read(&LwPath::ROOT), Err(OpError::MethodNotAllowed));
        let v = o.read(&path("/3/0/13")).unwrap();
        assert_eq!(v[0].1, Value::Time(1_700_000_000_000));
    }

    fn rec(p: &str, value: Value) -> Record {
        Record {
            path: path(p).to_resource_path().unwrap(),
            value,
            time_ms: None,
        }
    }

    #[test]
    fn write_permissions_and_types() {
        let mut o = objects();
        // Read-only resource, executable, unknown path.
        let ro = vec![rec("/3/0/0", Value::String("x".into()))];
        assert_eq!(
            o.write(&path("/3/0/0"), ro.clone(), WriteMode::Replace),
            Err(OpError::MethodNotAllowed)
        );
        assert_eq!(
            o.write(&path("/3/0"), ro, WriteMode::Partial),
            Err(OpError::MethodNotAllowed)
        );
        assert_eq!(
            o.check_write(&path("/3/0/4")).unwrap_err(),
            OpError::MethodNotAllowed
        );
        assert_eq!(o.check_write(&path("/3/9")).unwrap_err(), OpError::NotFound);
        assert_eq!(
            o.check_write(&path("/3")).unwrap_err(),
            OpError::MethodNotAllowed
        );
        // Wrong type, value outside the path.
        let bad = vec![rec("/1/0/1", Value::String("x".into()))];
        assert_eq!(
            o.write(&path("/1/0/1"), bad, WriteMode::Replace),
            Err(OpError::BadRequest)
        );
        let outside = vec![rec("/1/0/2", Value::Integer(1))];
        assert_eq!(
            o.write(&path("/1/0/1"), outside, WriteMode::Replace),
            Err(OpError::BadRequest)
        );
        // A good write; an integer is taken for a float-free integer.
        let w = o
            .write(
                &path("/1/0"),
                vec![
                    rec("/1/0/1", Value::Integer(120)),
                    rec("/1/0/2", Value::Float(5.0)),
                ],
                WriteMode::Partial,
            )
            .unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(o.get(1, 0, 1), Some(&Value::Integer(120)));
        assert_eq!(o.get(1, 0, 2), Some(&Value::Integer(5)));
        // Writing Current Time moves the device clock.
        o.write(
            &path("/3/0/13"),
            vec![rec("/3/0/13", Value::Time(1_700_000_060_000))],
            WriteMode::Replace,
        )
        .unwrap();
        o.set_now(1_700_000_001_000);
        assert_eq!(o.get(3, 0, 13), Some(&Value::Time(1_700_000_061_000)));
    }

    #[test]
    fn execute_create_delete_rules() {
        let mut o = objects();
        assert_eq!(o.check_execute(&path("/3/0/4")), Ok(()));
        assert_eq!(o.check_execute(&path("/5/0/2")), Ok(()));
        assert_eq!(
            o.check_execute(&path("/3/0/9")),
            Err(OpError::MethodNotAllowed)
        );
        assert_eq!(
            o.check_execute(&path("/3/0")),
            Err(OpError::MethodNotAllowed)
        );
        assert_eq!(o.check_execute(&path("/3/1/4")), Err(OpError::NotFound));
        assert_eq!(o.check_execute(&path("/9/0/4")), Err(OpError::NotFound));

        assert_eq!(o.create(3, vec![]), Err(OpError::MethodNotAllowed));
        assert_eq!(o.create(5, vec![]), Err(OpError::MethodNotAllowed));
        assert_eq!(o.create(3303, vec![]), Ok(1));
        let id = o
            .create(3303, vec![rec("/3303/7/5700", Value::Float(30.0))])
            .unwrap();
        assert_eq!(id, 7);
        assert_eq!(o.get_f64(3303, 7, SENSOR_VALUE), Some(30.0));
        assert_eq!(
            o.create(3303, vec![rec("/3303/7/5700", Value::Float(1.0))]),
            Err(OpError::BadRequest)
        );
        assert_eq!(o.links().len(), 7);
        assert_eq!(o.delete(&path("/3303/7")), Ok(()));
        assert_eq!(o.delete(&path("/3303/7")), Err(OpError::NotFound));
        assert_eq!(o.delete(&path("/3/0")), Err(OpError::MethodNotAllowed));
        assert_eq!(o.delete(&path("/5/0")), Err(OpError::MethodNotAllowed));
        assert_eq!(o.delete(&path("/3303")), Err(OpError::MethodNotAllowed));
    }

    #[test]
    fn read_only_multiple_resource_refuses_writes_and_discovers_with_dim() {
        let mut o = objects();
        let w = |ri: &str, v: i64| rec(&format!("/3/0/11/{ri}"), Value::Integer(v));
        assert_eq!(
            o.write(&path("/3/0/11"), vec![w("1", 2)], WriteMode::Partial),
            Err(OpError::MethodNotAllowed)
        );
        let d = o.discover(&path("/3/0/11"), &|_| String::new()).unwrap();
        assert_eq!(d, "</3/0/11>;dim=1,</3/0/11/0>");
    }

    #[test]
    fn discover_lists_objects_instances_and_resources_with_attributes() {
        let o = objects();
        let attrs = |p: &LwPath| {
            if *p == path("/3303/0/5700") {
                ";pmin=10".to_string()
            } else {
                String::new()
            }
        };
        let d = o.discover(&path("/3303"), &attrs).unwrap();
        assert!(
            d.starts_with("</3303>;ver=1.1,</3303/0>,</3303/0/5601>"),
            "{d}"
        );
        assert!(d.contains("</3303/0/5700>;pmin=10"), "{d}");
        assert!(d.contains("</3303/0/5605>"), "{d}");
        let d = o.discover(&path("/3/0"), &attrs).unwrap();
        assert!(d.contains("</3/0/11>;dim=1"), "{d}");
        assert_eq!(o.discover(&path("/3/0/99"), &attrs), Err(OpError::NotFound));
        assert_eq!(o.discover(&path("/77"), &attrs), Err(OpError::NotFound));
    }

    #[test]
    fn sensors_walk_smoothly_within_range() {
        let mut o = objects();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut last = o.get_f64(3303, 0, SENSOR_VALUE).unwrap();
        let mut changes = 0;
        for _ in 0..500 {
            if o.tick(&mut rng).contains(&path("/3303/0/5700")) {
                changes += 1;
            }
            let v = o.get_f64(3303, 0, SENSOR_VALUE).unwrap();
            assert!((v - last).abs() <= 0.4, "{last} -> {v}");
            assert!((-40.0..=85.0).contains(&v));
            assert!(o.get_f64(3303, 0, MIN_MEASURED).unwrap() <= v);
            assert!(o.get_f64(3303, 0, MAX_MEASURED).unwrap() >= v);
            last = v;
        }
        assert!(changes > 400);
        let h = o.get_f64(3304, 0, SENSOR_VALUE).unwrap();
        assert!((0.0..=100.0).contains(&h));
    }

    #[test]
    fn coercions() {
        assert_eq!(
            coerce(Value::Integer(2), DataType::Float),
            Some(Value::Float(2.0))
        );
        assert_eq!(coerce(Value::Float(2.5), DataType::Integer), None);
        assert_eq!(
            coerce(Value::Integer(3), DataType::Time),
            Some(Value::Time(3000))
        );
        assert_eq!(
            coerce(Value::String("a".into()), DataType::Opaque),
            Some(Value::Opaque(b"a".to_vec()))
        );
        assert_eq!(coerce(Value::Boolean(true), DataType::String), None);
    }
}
