//! The pure half of the ingest writer: from a batch of decoded uplinks, and
//! what the database told the writer when it opened the transaction (the
//! endpoints' ids, the ids of new resource types, fresh resource ids, the
//! active firmware updates), to the rows to write and the domain events to
//! publish after the commit. No database and no `async`: the writer
//! (`writer::WriterTask::write`) gathers the inputs, calls [`plan`] and
//! executes the result in the same transaction.
//!
//! The type check ([`check_types`]) runs before the transaction: a request
//! whose values disagree with their resource types is rejected alone and
//! the rest of the batch goes on.
use super::firmware;
use super::{
    object_event_type, registration_change, Connection, KnownType, TypeKey, Uplink, UplinkKind,
    DEVICE_BINDING, REGISTRATION_OBJECT, SERVER_LIFETIME, SERVER_OBJECT,
};
use crate::error::AppError;
use crate::model::{DataType, Value};
use crate::server::db::endpoint::{RegistrationChange, SeenEndpoint};
use crate::server::db::event::NewEvent;
use crate::server::db::firmware_update::ActiveUpdate;
use crate::server::db::resource::{Columns, NewResource, SeriesRow};
use crate::server::domain::DomainEvent;
use std::collections::{BTreeMap, HashMap};

/// The resource type of one value: known before the batch, or one of the
/// batch's discoveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeRef {
    Known(i64),
    /// Index into [`TypeCheck::discover`].
    Discovered(usize),
}

/// The types of an accepted request's values, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTypes {
    pub types: Vec<TypeRef>,
    /// How many of the batch's discoveries this request made first (its
    /// receipt's `discovered_types`).
    pub discovered: usize,
}

/// The outcome of [`check_types`].
#[derive(Debug)]
pub struct TypeCheck {
    /// Per request, in order: its values' types, or why it is rejected.
    pub requests: Vec<Result<CheckedTypes, AppError>>,
    /// The batch's unknown types, each typed by the first request that
    /// reports it.
    pub discover: Vec<(TypeKey, DataType)>,
}

/// Checks every value against its resource type, in memory. A request with
/// a mismatch is rejected (422, naming the field) and leaves no trace in
/// the batch; unknown types become discoveries, typed by the first request
/// that reports them (later ones in the batch must agree, as if sequential).
pub fn check_types<'a>(
    uplinks: impl IntoIterator<Item = &'a Uplink>,
    known: impl Fn(TypeKey) -> Option<KnownType>,
) -> TypeCheck {
    let mut discover: Vec<(TypeKey, DataType)> = Vec::new();
    let mut requests = Vec::new();
    'requests: for uplink in uplinks {
        let mut types = Vec::with_capacity(uplink.values.len());
        let mut own_discoveries = 0;
        for decoded in &uplink.values {
            let key = (decoded.path.object_id, decoded.path.resource_id);
            let declared = decoded.value.data_type();
            let (type_ref, data_type) = match known(key) {
                Some((id, t)) => (TypeRef::Known(id), t),
                None => match discover.iter().position(|(k, _)| *k == key) {
                    Some(i) => (TypeRef::Discovered(i), discover[i].1),
                    None => {
                        discover.push((key, declared));
                        own_discoveries += 1;
                        (TypeRef::Discovered(discover.len() - 1), declared)
                    }
                },
            };
            if data_type != declared {
                // Forget what this request alone would have discovered.
                discover.truncate(discover.len() - own_discoveries);
                requests.push(Err(AppError::invalid_field(
                    decoded.field_name(),
                    format!(
                        "resource /{}/{} is of type {data_type}, not {declared}",
                        key.0, key.1
                    ),
                )));
                continue 'requests;
            }
            types.push(type_ref);
        }
        requests.push(Ok(CheckedTypes {
            types,
            discovered: own_discoveries,
        }));
    }
    TypeCheck { requests, discover }
}

/// An accepted request as the plan reads it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub uplink: &'a Uplink,
    pub received_at: i64,
    /// From [`check_types`], one per value.
    pub types: &'a [TypeRef],
}

/// The number of values of a batch: the resource ids it needs.
pub fn value_count(requests: &[Request<'_>]) -> usize {
    requests.iter().map(|r| r.uplink.values.len()).sum()
}

/// The batch's endpoints, one row each, carrying the last binding and
/// lifetime the batch reported.
pub fn seen_endpoints<'a>(requests: &[Request<'a>]) -> Vec<SeenEndpoint<'a>> {
    let mut seen: BTreeMap<&str, SeenEndpoint<'a>> = BTreeMap::new();
    for r in requests {
        let up = r.uplink;
        let entry = seen.entry(up.endpoint.as_str()).or_insert(SeenEndpoint {
            name: &up.endpoint,
            seen_at: r.received_at,
            binding: None,
            lifetime_s: None,
        });
        entry.seen_at = entry.seen_at.max(r.received_at);
        match &up.connection {
            Connection::Native(Some(session)) => {
                entry.binding = Some(&session.binding);
                entry.lifetime_s = Some(session.lifetime_s);
            }
            Connection::Native(None) => {}
            Connection::Forwarded => {
                for v in &up.values {
                    match ((v.path.object_id, v.path.resource_id), &v.value) {
                        (DEVICE_BINDING, Value::String(b)) => entry.binding = Some(b),
                        ((SERVER_OBJECT, SERVER_LIFETIME), Value::Integer(l)) => {
                            entry.lifetime_s = Some(*l)
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    seen.into_values().collect()
}

/// The plan met an input it was not given (an endpoint without an id, too
/// few resource ids): the writer's own inconsistency, never the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingInput(pub &'static str);

/// The endpoints whose active firmware update the plan needs: those that
/// reported a value that can move one (rare, so loaded only for them).
pub fn firmware_endpoints(
    requests: &[Request<'_>],
    endpoint_ids: &HashMap<String, i64>,
) -> Result<Vec<i64>, MissingInput> {
    let mut ids = requests
        .iter()
        .map(|r| r.uplink)
        .filter(|up| {
            up.values
                .iter()
                .any(|v| firmware::is_tracked((v.path.object_id, v.path.resource_id)))
        })
        .map(|up| endpoint_id(endpoint_ids, &up.endpoint))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

fn endpoint_id(endpoint_ids: &HashMap<String, i64>, name: &str) -> Result<i64, MissingInput> {
    endpoint_ids
        .get(name)
        .copied()
        .ok_or(MissingInput("endpoint id"))
}

/// What the database told the writer, as plain data.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The batch's endpoints by name (upserted as the transaction opened).
    pub endpoint_ids: &'a HashMap<String, i64>,
    /// The ids and types of [`TypeCheck::discover`], in its order.
    pub discovered: &'a [(TypeKey, KnownType)],
    /// One fresh resource id per value of the batch ([`value_count`]).
    pub resource_ids: &'a [i64],
    /// The active firmware updates of [`firmware_endpoints`], by endpoint id.
    pub updates: HashMap<i64, ActiveUpdate>,
}

/// One event to record; its id is allocated once the plan knows how many.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    pub endpoint_id: i64,
    pub event_type: String,
    pub at: i64,
    /// The resource ids of the values it links.
    pub linked: Vec<i64>,
}

/// An active update that the batch moved along.
#[derive(Debug, Clone, PartialEq)]
pub struct FirmwareProgress {
    /// As the batch's values left it.
    pub update: ActiveUpdate,
    /// The Execute of 5/0/2 must be queued now.
    pub queue_execute: bool,
}

/// The rows and the domain events of one batch.
#[derive(Debug)]
pub struct Plan {
    /// Every value, in arrival order.
    pub rows: Vec<NewResource>,
    /// Per row, whether its type is charted (the rollups sum it).
    pub numeric: Vec<bool>,
    /// (endpoint id, change, time) per registration value.
    pub registrations: Vec<(i64, RegistrationChange, i64)>,
    pub events: Vec<PlannedEvent>,
    /// Per request, the event types its receipt lists.
    pub events_per_request: Vec<Vec<String>>,
    /// In the order the batch first moved each update.
    pub firmware: Vec<FirmwareProgress>,
    /// To publish after the commit. The writer adds an `OperationQueued`
    /// before an update's `FirmwareUpdateChanged` when it queues the
    /// update's Execute (the operation's id comes from the database).
    pub domain: Vec<DomainEvent>,
    /// Values whose device time was implausible (`device_time`) and which
    /// are stored under their receive time instead.
    pub clock_refused: usize,
}

/// Plans a batch: its rows, registrations, events, firmware steps and
/// domain events.
pub fn plan(requests: &[Request<'_>], inputs: Inputs<'_>) -> Result<Plan, MissingInput> {
    let Inputs {
        endpoint_ids,
        discovered,
        resource_ids,
        mut updates,
    } = inputs;
    let type_id = |r: TypeRef| match r {
        TypeRef::Known(id) => Ok(id),
        TypeRef::Discovered(i) => discovered
            .get(i)
            .map(|d| d.1 .0)
            .ok_or(MissingInput("discovered type")),
    };
    let total = value_count(requests);
    let mut rows = Vec::with_capacity(total);
    let mut numeric = Vec::with_capacity(total);
    let mut events: Vec<PlannedEvent> = Vec::new();
    let mut events_per_request: Vec<Vec<String>> = Vec::with_capacity(requests.len());
    let mut registrations: Vec<(i64, RegistrationChange, i64)> = Vec::new();
    let mut domain = vec![DomainEvent::EndpointsHeard {
        endpoint_ids: endpoint_ids.values().copied().collect(),
    }];
    let mut changed_updates: Vec<i64> = Vec::new();
    let mut execute_needed: Vec<i64> = Vec::new();
    let mut next_id = resource_ids.iter().copied();
    let mut clock_refused = 0;
    for request in requests {
        let up = request.uplink;
        let at = request.received_at;
        let eid = endpoint_id(endpoint_ids, &up.endpoint)?;
        let first_row = rows.len();
        let mut request_events = Vec::new();
        for (decoded, type_ref) in up.values.iter().zip(request.types) {
            let id = next_id.next().ok_or(MissingInput("resource id"))?;
            rows.push(NewResource {
                id,
                endpoint_id: eid,
                resource_type_id: type_id(*type_ref)?,
                object_instance_id: decoded.path.instance_id,
                resource_instance_id: decoded.path.resource_instance_id,
                columns: Columns::from_value(&decoded.value),
                received_at: at,
                measured_at: match device_time(decoded.measured_at, at) {
                    Ok(t) => t,
                    Err(ImplausibleTime) => {
                        clock_refused += 1;
                        at
                    }
                },
            });
            // check_types made the value's type the resource type's.
            numeric.push(decoded.value.data_type().is_numeric());
            if let Some((change, event_type)) = registration_change(&decoded.path) {
                registrations.push((eid, change, at));
                events.push(PlannedEvent {
                    endpoint_id: eid,
                    event_type: event_type.to_string(),
                    at,
                    linked: vec![id],
                });
                request_events.push(event_type.to_string());
                domain.push(match change {
                    RegistrationChange::Deregistered => DomainEvent::DeviceDeregistered {
                        endpoint_id: eid,
                        endpoint: up.endpoint.clone(),
                        at,
                    },
                    _ => DomainEvent::DeviceAwake {
                        endpoint_id: eid,
                        endpoint: up.endpoint.clone(),
                        registered: change == RegistrationChange::Registered,
                        at,
                    },
                });
            }
            let key = (decoded.path.object_id, decoded.path.resource_id);
            if let Some(update) = updates.get_mut(&eid) {
                if let Some(step) = firmware::apply(update, key, &decoded.value) {
                    events.push(PlannedEvent {
                        endpoint_id: eid,
                        event_type: step.event_type.to_string(),
                        at,
                        linked: vec![id],
                    });
                    request_events.push(step.event_type.to_string());
                    if !changed_updates.contains(&eid) {
                        changed_updates.push(eid);
                    }
                    if step.queue_execute {
                        execute_needed.push(eid);
                    }
                }
            }
        }
        if up.kind == UplinkKind::Composite {
            // One event per reported object, linking every value stored for it.
            let mut by_object: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (decoded, row) in up.values.iter().zip(&rows[first_row..]) {
                if decoded.path.object_id != REGISTRATION_OBJECT {
                    by_object
                        .entry(decoded.path.object_id)
                        .or_default()
                        .push(row.id);
                }
            }
            for (object_id, linked) in by_object {
                let event_type = object_event_type(object_id);
                request_events.push(event_type.clone());
                events.push(PlannedEvent {
                    endpoint_id: eid,
                    event_type,
                    at,
                    linked,
                });
            }
        }
        events_per_request.push(request_events);
    }

    let mut firmware = Vec::with_capacity(changed_updates.len());
    for eid in changed_updates {
        let Some(update) = updates.remove(&eid) else {
            continue;
        };
        // Rare (a firmware step): a scan of this batch's endpoints is fine.
        let endpoint = endpoint_ids
            .iter()
            .find(|(_, id)| **id == eid)
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        domain.push(DomainEvent::FirmwareUpdateChanged {
            update_id: update.id,
            endpoint_id: eid,
            endpoint,
            state: update.state,
            result: update.result,
        });
        firmware.push(FirmwareProgress {
            queue_execute: execute_needed.contains(&eid) && update.execute_operation_id.is_none(),
            update,
        });
    }
    Ok(Plan {
        rows,
        numeric,
        registrations,
        events,
        events_per_request,
        firmware,
        domain,
        clock_refused,
    })
}

/// Earliest device time taken as such (2000-01-01T00:00:00Z): a device
/// whose clock was never set counts from 1970 or from its boot.
pub const EARLIEST_DEVICE_TIME_MS: i64 = 946_684_800_000;
/// How far ahead of our clock a device's time may be (clock skew). A value
/// further in the future would stay a series' latest value until then.
pub const DEVICE_CLOCK_AHEAD_MS: i64 = 5 * 60_000;

/// The time a value is stored under: the device's time when it gave one
/// that is plausible, else the time it was received. Err when the device
/// gave a time outside [`EARLIEST_DEVICE_TIME_MS`, received +
/// `DEVICE_CLOCK_AHEAD_MS`], which is then replaced by the receive time.
pub fn device_time(measured_at: Option<i64>, received_at: i64) -> Result<i64, ImplausibleTime> {
    match measured_at {
        None => Ok(received_at),
        Some(t)
            if (EARLIEST_DEVICE_TIME_MS..=received_at.saturating_add(DEVICE_CLOCK_AHEAD_MS))
                .contains(&t) =>
        {
            Ok(t)
        }
        Some(_) => Err(ImplausibleTime),
    }
}

/// A device time `device_time` does not believe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImplausibleTime;

impl Plan {
    /// The series of the batch's values, once each, for
    /// `resource_series`. In a stable order: it keeps concurrent writers
    /// (another server on the same PostgreSQL) from deadlocking on them.
    pub fn series(&self) -> Vec<SeriesRow> {
        let mut series: Vec<SeriesRow> = self.rows.iter().map(SeriesRow::of).collect();
        series.sort_unstable();
        series.dedup();
        series
    }

    /// Records that the writer queued `operation_id`, the Execute of the
    /// update of `endpoint_id`: the update carries it, and its domain event
    /// goes out just before the update's `FirmwareUpdateChanged`.
    pub fn execute_queued(&mut self, endpoint_id: i64, operation_id: i64) {
        for progress in &mut self.firmware {
            if progress.update.endpoint_id == endpoint_id {
                progress.update.execute_operation_id = Some(operation_id);
            }
        }
        let queued = DomainEvent::OperationQueued {
            operation_id,
            endpoint_id,
        };
        let at = self.domain.iter().position(|e| {
            matches!(e, DomainEvent::FirmwareUpdateChanged { endpoint_id: id, .. } if *id == endpoint_id)
        });
        match at {
            Some(i) => self.domain.insert(i, queued),
            None => self.domain.push(queued),
        }
    }
}

/// The planned events with their ids (`ids` in order, one per event), and
/// the (event id, resource id) links.
pub fn number_events(events: Vec<PlannedEvent>, ids: Vec<i64>) -> (Vec<NewEvent>, Vec<(i64, i64)>) {
    let mut numbered = Vec::with_capacity(events.len());
    let mut links = Vec::new();
    for (event, id) in events.into_iter().zip(ids) {
        links.extend(event.linked.into_iter().map(|rid| (id, rid)));
        numbered.push(NewEvent {
            id,
            endpoint_id: event.endpoint_id,
            event_type: event.event_type,
            created_at: event.at,
        });
    }
    (numbered, links)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FirmwareUpdateState, ResourcePath};
    use crate::server::ingest::DecodedValue;

    /// 2025-11-24T16:00:00Z: device times are taken only after 2000.
    const RECEIVED: i64 = 1_764_000_000_000;

    fn value(path: &str, value: Value) -> DecodedValue {
        let ids = crate::server::ingest::parse::parse_lwm2m_path(path).unwrap();
        DecodedValue {
            path: ResourcePath {
                object_id: ids[0],
                instance_id: ids[1],
                resource_id: ids[2],
                resource_instance_id: ids.get(3).copied(),
            },
            value,
            measured_at: None,
            field: format!("val.{path}").into(),
        }
    }

    fn uplink(endpoint: &str, kind: UplinkKind, values: Vec<DecodedValue>) -> Uplink {
        Uplink {
            endpoint: endpoint.into(),
            kind,
            values,
            connection: Connection::Forwarded,
        }
    }

    /// Known types: temperature 3303/5700 (id 10, FLOAT), the firmware
    /// resources and the registration object's.
    fn known(key: TypeKey) -> Option<KnownType> {
        match key {
            (3303, 5700) => Some((10, DataType::Float)),
            (5, 3) => Some((20, DataType::Integer)),
            (5, 5) => Some((21, DataType::Integer)),
            (3, 3) => Some((22, DataType::String)),
            (10240, r) => Some((30 + r, DataType::Time)),
            _ => None,
        }
    }

    /// The batch checked, with ids for its endpoints (1, 2, ... by first
    /// appearance), its discoveries (100, 101, ...) and values (1000, ...).
    struct Batch {
        uplinks: Vec<Uplink>,
        check: Vec<CheckedTypes>,
        endpoint_ids: HashMap<String, i64>,
        discovered: Vec<(TypeKey, KnownType)>,
        resource_ids: Vec<i64>,
    }

    impl Batch {
        fn new(uplinks: Vec<Uplink>) -> Batch {
            let check = check_types(&uplinks, known);
            let discovered = check
                .discover
                .iter()
                .enumerate()
                .map(|(i, (key, t))| (*key, (100 + i as i64, *t)))
                .collect();
            let check: Vec<CheckedTypes> = check
                .requests
                .into_iter()
                .map(|r| r.expect("every request of this batch is accepted"))
                .collect();
            let mut endpoint_ids = HashMap::new();
            for up in &uplinks {
                let next = endpoint_ids.len() as i64 + 1;
                endpoint_ids.entry(up.endpoint.clone()).or_insert(next);
            }
            let total = uplinks.iter().map(|u| u.values.len()).sum::<usize>();
            Batch {
                uplinks,
                check,
                endpoint_ids,
                discovered,
                resource_ids: (1000..1000 + total as i64).collect(),
            }
        }

        fn requests(&self) -> Vec<Request<'_>> {
            self.uplinks
                .iter()
                .zip(&self.check)
                .enumerate()
                .map(|(i, (uplink, types))| Request {
                    uplink,
                    received_at: RECEIVED + i as i64,
                    types: &types.types,
                })
                .collect()
        }

        fn plan(&self, updates: Vec<ActiveUpdate>) -> Plan {
            plan(
                &self.requests(),
                Inputs {
                    endpoint_ids: &self.endpoint_ids,
                    discovered: &self.discovered,
                    resource_ids: &self.resource_ids,
                    updates: updates.into_iter().map(|u| (u.endpoint_id, u)).collect(),
                },
            )
            .unwrap()
        }
    }

    fn update(endpoint_id: i64, state: FirmwareUpdateState) -> ActiveUpdate {
        crate::server::ingest::firmware::active_update(50 + endpoint_id, endpoint_id, state)
    }

    fn heard(plan: &Plan) -> Vec<i64> {
        match &plan.domain[0] {
            DomainEvent::EndpointsHeard { endpoint_ids } => {
                let mut ids = endpoint_ids.clone();
                ids.sort_unstable();
                ids
            }
            other => panic!("the first domain event is {other:?}"),
        }
    }

    #[test]
    fn values_of_several_endpoints_become_rows_in_arrival_order() {
        let batch = Batch::new(vec![
            uplink(
                "a",
                UplinkKind::Single,
                vec![value("/3303/0/5700", Value::Float(21.5))],
            ),
            uplink(
                "b",
                UplinkKind::Single,
                vec![value("/3303/1/5700", Value::Float(-3.0))],
            ),
            uplink(
                "a",
                UplinkKind::Single,
                vec![value("/3303/0/5700", Value::Float(22.0))],
            ),
        ]);
        let plan = batch.plan(vec![]);
        let rows: Vec<(i64, i64, i64, i64, Option<f64>, i64)> = plan
            .rows
            .iter()
            .map(|r| {
                (
                    r.id,
                    r.endpoint_id,
                    r.resource_type_id,
                    r.object_instance_id,
                    r.columns.float_value,
                    r.received_at,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (1000, 1, 10, 0, Some(21.5), RECEIVED),
                (1001, 2, 10, 1, Some(-3.0), RECEIVED + 1),
                (1002, 1, 10, 0, Some(22.0), RECEIVED + 2),
            ]
        );
        assert_eq!(plan.numeric, vec![true, true, true]);
        // Two series, each listed once, in key order.
        let series: Vec<(i64, i64, i64, i64)> = plan
            .series()
            .iter()
            .map(|s| {
                (
                    s.endpoint_id,
                    s.resource_type_id,
                    s.object_instance_id,
                    s.resource_instance_key,
                )
            })
            .collect();
        assert_eq!(series, vec![(1, 10, 0, -1), (2, 10, 1, -1)]);
        // Single reports record no events; the endpoints were heard.
        assert!(plan.events.is_empty());
        assert_eq!(plan.events_per_request, vec![Vec::<String>::new(); 3]);
        assert_eq!(heard(&plan), vec![1, 2]);
        assert_eq!(plan.domain.len(), 1);
        assert!(plan.registrations.is_empty() && plan.firmware.is_empty());
    }

    fn measured(path: &str, v: f64, at: Option<i64>) -> DecodedValue {
        DecodedValue {
            measured_at: at,
            ..value(path, Value::Float(v))
        }
    }

    #[test]
    fn device_times_are_kept_when_plausible_and_replaced_when_not() {
        let r = RECEIVED;
        assert_eq!(device_time(None, r), Ok(r));
        assert_eq!(device_time(Some(r - 3_600_000), r), Ok(r - 3_600_000));
        assert_eq!(
            device_time(Some(EARLIEST_DEVICE_TIME_MS), r),
            Ok(EARLIEST_DEVICE_TIME_MS)
        );
        assert_eq!(
            device_time(Some(EARLIEST_DEVICE_TIME_MS - 1), r),
            Err(ImplausibleTime)
        );
        // A clock never set: seconds since boot, read as 1970.
        assert_eq!(device_time(Some(42_000), r), Err(ImplausibleTime));
        assert_eq!(
            device_time(Some(r + DEVICE_CLOCK_AHEAD_MS), r),
            Ok(r + DEVICE_CLOCK_AHEAD_MS)
        );
        assert_eq!(
            device_time(Some(r + DEVICE_CLOCK_AHEAD_MS + 1), r),
            Err(ImplausibleTime)
        );
        assert_eq!(device_time(Some(i64::MAX), i64::MAX), Ok(i64::MAX));
    }

    #[test]
    fn a_buffered_batch_keeps_every_device_time_in_one_series() {
        let hour_ago = RECEIVED - 3_600_000;
        // A current value, then an hour of buffered ones (two of them with
        // the same time, which are both kept), then two implausible times.
        let mut values = vec![measured("/3303/0/5700", 20.0, Some(RECEIVED - 1_000))];
        for i in 0..4 {
            values.push(measured(
                "/3303/0/5700",
                i as f64,
                Some(hour_ago + i * 60_000),
            ));
        }
        values.push(measured("/3303/0/5700", 9.0, Some(hour_ago + 3 * 60_000)));
        values.push(measured("/3303/0/5700", 7.0, Some(5_000)));
        values.push(measured("/3303/0/5700", 8.0, Some(RECEIVED + 86_400_000)));
        let batch = Batch::new(vec![uplink("a", UplinkKind::Composite, values)]);
        let plan = batch.plan(vec![]);
        let times: Vec<(i64, i64)> = plan
            .rows
            .iter()
            .map(|r| (r.measured_at, r.received_at))
            .collect();
        assert_eq!(
            times,
            vec![
                (RECEIVED - 1_000, RECEIVED),
                (hour_ago, RECEIVED),
                (hour_ago + 60_000, RECEIVED),
                (hour_ago + 120_000, RECEIVED),
                (hour_ago + 180_000, RECEIVED),
                (hour_ago + 180_000, RECEIVED),
                (RECEIVED, RECEIVED),
                (RECEIVED, RECEIVED),
            ]
        );
        assert_eq!(plan.clock_refused, 2);
        // One series, however many values and times.
        assert_eq!(plan.series().len(), 1);
    }

    #[test]
    fn a_new_type_is_discovered_once_per_batch_typed_by_its_first_report() {
        let uplinks = vec![
            uplink(
                "a",
                UplinkKind::Single,
                vec![
                    value("/3304/0/5700", Value::Float(40.0)),
                    value("/3304/1/5700", Value::Float(41.0)),
                ],
            ),
            uplink(
                "b",
                UplinkKind::Single,
                vec![value("/3304/0/5700", Value::Float(42.0))],
            ),
        ];
        let check = check_types(&uplinks, known);
        assert_eq!(check.discover, vec![((3304, 5700), DataType::Float)]);
        let accepted: Vec<CheckedTypes> = check.requests.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            accepted,
            vec![
                CheckedTypes {
                    types: vec![TypeRef::Discovered(0), TypeRef::Discovered(0)],
                    discovered: 1,
                },
                CheckedTypes {
                    types: vec![TypeRef::Discovered(0)],
                    discovered: 0,
                },
            ]
        );
        let plan = Batch::new(uplinks).plan(vec![]);
        assert!(plan.rows.iter().all(|r| r.resource_type_id == 100));
    }

    #[test]
    fn a_request_of_the_wrong_type_is_rejected_alone() {
        let uplinks = vec![
            uplink(
                "good",
                UplinkKind::Single,
                vec![value("/3303/0/5700", Value::Float(1.0))],
            ),
            // Discovers 3304/5700 first, then fails on a known type: its
            // discovery must not type the batch's later reports.
            uplink(
                "bad",
                UplinkKind::Composite,
                vec![
                    value("/3304/0/5700", Value::String("wet".into())),
                    value("/3303/0/5700", Value::String("warm".into())),
                ],
            ),
            uplink(
                "later",
                UplinkKind::Single,
                vec![value("/3304/0/5700", Value::Float(55.0))],
            ),
            // Disagrees with the type the previous request discovered.
            uplink(
                "late",
                UplinkKind::Single,
                vec![value("/3304/0/5700", Value::Integer(5))],
            ),
        ];
        let check = check_types(&uplinks, known);
        assert_eq!(check.discover, vec![((3304, 5700), DataType::Float)]);
        let outcome: Vec<Result<CheckedTypes, (u16, String, String)>> = check
            .requests
            .into_iter()
            .map(|r| {
                r.map_err(|e| {
                    let detail = &e.details()[0];
                    (e.status_code(), detail.path.clone(), detail.reason.clone())
                })
            })
            .collect();
        assert_eq!(
            outcome,
            vec![
                Ok(CheckedTypes {
                    types: vec![TypeRef::Known(10)],
                    discovered: 0,
                }),
                Err((
                    422,
                    "val./3303/0/5700".into(),
                    "resource /3303/5700 is of type FLOAT, not STRING".into()
                )),
                Ok(CheckedTypes {
                    types: vec![TypeRef::Discovered(0)],
                    discovered: 1,
                }),
                Err((
                    422,
                    "val./3304/0/5700".into(),
                    "resource /3304/5700 is of type FLOAT, not INTEGER".into()
                )),
            ]
        );
    }

    #[test]
    fn registration_update_and_deregistration_record_rows_events_and_domain_events() {
        let batch = Batch::new(vec![
            uplink(
                "dev",
                UplinkKind::Single,
                vec![DecodedValue::registration(
                    RegistrationChange::Registered,
                    7,
                    "val",
                )],
            ),
            uplink(
                "dev",
                UplinkKind::Single,
                vec![value("/10240/0/2", Value::Time(8))],
            ),
            uplink(
                "other",
                UplinkKind::Single,
                vec![value("/10240/0/1", Value::Time(9))],
            ),
        ]);
        let plan = batch.plan(vec![]);
        assert_eq!(
            plan.rows
                .iter()
                .map(|r| (r.id, r.resource_type_id, r.columns.int_value))
                .collect::<Vec<_>>(),
            vec![
                (1000, 30, Some(7)),
                (1001, 32, Some(8)),
                (1002, 31, Some(9))
            ]
        );
        assert_eq!(
            plan.registrations,
            vec![
                (1, RegistrationChange::Registered, RECEIVED),
                (1, RegistrationChange::Updated, RECEIVED + 1),
                (2, RegistrationChange::Deregistered, RECEIVED + 2),
            ]
        );
        let event = |endpoint_id, event_type: &str, at, id| PlannedEvent {
            endpoint_id,
            event_type: event_type.into(),
            at,
            linked: vec![id],
        };
        assert_eq!(
            plan.events,
            vec![
                event(1, "registered", RECEIVED, 1000),
                event(1, "registration_update", RECEIVED + 1, 1001),
                event(2, "deregistered", RECEIVED + 2, 1002),
            ]
        );
        assert_eq!(
            plan.events_per_request,
            vec![
                vec!["registered".to_string()],
                vec!["registration_update".to_string()],
                vec!["deregistered".to_string()],
            ]
        );
        assert_eq!(heard(&plan), vec![1, 2]);
        assert_eq!(
            plan.domain[1..],
            [
                DomainEvent::DeviceAwake {
                    endpoint_id: 1,
                    endpoint: "dev".into(),
                    registered: true,
                    at: RECEIVED,
                },
                DomainEvent::DeviceAwake {
                    endpoint_id: 1,
                    endpoint: "dev".into(),
                    registered: false,
                    at: RECEIVED + 1,
                },
                DomainEvent::DeviceDeregistered {
                    endpoint_id: 2,
                    endpoint: "other".into(),
                    at: RECEIVED + 2,
                },
            ]
        );
    }

    #[test]
    fn a_composite_report_records_one_event_per_object_linking_its_values() {
        let batch = Batch::new(vec![uplink(
            "dev",
            UplinkKind::Composite,
            vec![
                value("/3303/0/5700", Value::Float(1.0)),
                value("/3303/1/5700", Value::Float(2.0)),
                value("/3/0/3", Value::String("1.0".into())),
                value("/10240/0/2", Value::Time(5)),
            ],
        )]);
        let plan = batch.plan(vec![]);
        let events: Vec<(String, Vec<i64>)> = plan
            .events
            .iter()
            .map(|e| (e.event_type.clone(), e.linked.clone()))
            .collect();
        // The registration value has its own event, not an object's.
        assert_eq!(
            events,
            vec![
                ("registration_update".to_string(), vec![1003]),
                ("device".to_string(), vec![1002]),
                ("temperature".to_string(), vec![1000, 1001]),
            ]
        );
        let (numbered, links) = number_events(plan.events.clone(), vec![7, 8, 9]);
        assert_eq!(
            numbered
                .iter()
                .map(|e| (e.id, e.event_type.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (7, "registration_update"),
                (8, "device"),
                (9, "temperature")
            ]
        );
        assert_eq!(links, vec![(7, 1003), (8, 1002), (9, 1000), (9, 1001)]);
    }

    #[test]
    fn firmware_progress_moves_the_active_update_and_queues_its_execute() {
        let batch = Batch::new(vec![
            // 5/0/3 = 2: downloaded, so the Execute must be queued.
            uplink(
                "downloading",
                UplinkKind::Single,
                vec![value("/5/0/3", Value::Integer(2))],
            ),
            // 5/0/5 = 1 after 5/0/3 = 3 (updating): succeeded.
            uplink(
                "updating",
                UplinkKind::Composite,
                vec![
                    value("/5/0/3", Value::Integer(3)),
                    value("/5/0/5", Value::Integer(1)),
                ],
            ),
            // 3/0/3: the target version, once executed, is success.
            uplink(
                "executed",
                UplinkKind::Single,
                vec![value("/3/0/3", Value::String("2.0.0".into()))],
            ),
            // Without an active update the values are telemetry only.
            uplink(
                "idle",
                UplinkKind::Single,
                vec![value("/5/0/3", Value::Integer(2))],
            ),
        ]);
        assert_eq!(
            firmware_endpoints(&batch.requests(), &batch.endpoint_ids).unwrap(),
            vec![1, 2, 3, 4]
        );
        let mut executed = update(3, FirmwareUpdateState::Updating);
        executed.executed = true;
        let mut plan = batch.plan(vec![
            update(1, FirmwareUpdateState::Downloading),
            update(2, FirmwareUpdateState::Downloaded),
            executed,
        ]);
        let progress: Vec<(i64, FirmwareUpdateState, Option<i64>, bool)> = plan
            .firmware
            .iter()
            .map(|f| {
                (
                    f.update.endpoint_id,
                    f.update.state,
                    f.update.result,
                    f.queue_execute,
                )
            })
            .collect();
        assert_eq!(
            progress,
            vec![
                (1, FirmwareUpdateState::Downloaded, None, true),
                (2, FirmwareUpdateState::Succeeded, Some(1), false),
                (3, FirmwareUpdateState::Succeeded, None, false),
            ]
        );
        let steps: Vec<(i64, &str, Vec<i64>)> = plan
            .events
            .iter()
            .map(|e| (e.endpoint_id, e.event_type.as_str(), e.linked.clone()))
            .collect();
        assert_eq!(
            steps,
            vec![
                (1, "firmware_downloaded", vec![1000]),
                (2, "firmware_updating", vec![1001]),
                (2, "firmware_succeeded", vec![1002]),
                (2, "firmware_update", vec![1001, 1002]),
                (3, "firmware_succeeded", vec![1003]),
            ]
        );
        assert_eq!(plan.rows.len(), 5);
        // The writer queues the Execute: its event goes out before the
        // update's change, and the update remembers it.
        plan.execute_queued(1, 77);
        assert_eq!(plan.firmware[0].update.execute_operation_id, Some(77));
        let changed =
            |endpoint_id: i64, endpoint: &str, state, result| DomainEvent::FirmwareUpdateChanged {
                update_id: 50 + endpoint_id,
                endpoint_id,
                endpoint: endpoint.into(),
                state,
                result,
            };
        assert_eq!(
            plan.domain[1..],
            [
                DomainEvent::OperationQueued {
                    operation_id: 77,
                    endpoint_id: 1,
                },
                changed(1, "downloading", FirmwareUpdateState::Downloaded, None),
                changed(2, "updating", FirmwareUpdateState::Succeeded, Some(1)),
                changed(3, "executed", FirmwareUpdateState::Succeeded, None),
            ]
        );
    }

    #[test]
    fn seen_endpoints_carry_the_last_binding_and_lifetime_reported() {
        let batch = Batch::new(vec![
            uplink(
                "q",
                UplinkKind::Composite,
                vec![
                    value("/3/0/16", Value::String("U".into())),
                    value("/1/0/1", Value::Integer(300)),
                ],
            ),
            uplink(
                "q",
                UplinkKind::Single,
                vec![value("/3/0/16", Value::String("UQ".into()))],
            ),
            uplink("plain", UplinkKind::Single, vec![]),
        ]);
        let requests = batch.requests();
        let seen: Vec<(&str, i64, Option<&str>, Option<i64>)> = seen_endpoints(&requests)
            .into_iter()
            .map(|s| (s.name, s.seen_at, s.binding, s.lifetime_s))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("plain", RECEIVED + 2, None, None),
                ("q", RECEIVED + 1, Some("UQ"), Some(300)),
            ]
        );
    }

    #[test]
    fn a_session_sets_the_binding_and_lifetime_of_a_native_registration() {
        let mut registered = uplink(
            "native",
            UplinkKind::Single,
            vec![DecodedValue::registration(
                RegistrationChange::Registered,
                RECEIVED,
                "register",
            )],
        );
        registered.connection = Connection::Native(Some(crate::server::ingest::Session {
            binding: "UQ".into(),
            lifetime_s: 86_400,
        }));
        let batch = Batch::new(vec![registered]);
        let requests = batch.requests();
        let seen: Vec<(&str, Option<&str>, Option<i64>)> = seen_endpoints(&requests)
            .into_iter()
            .map(|s| (s.name, s.binding, s.lifetime_s))
            .collect();
        assert_eq!(seen, vec![("native", Some("UQ"), Some(86_400))]);
    }

    /// A native device's /3 answer holds 3/0/16, the bindings and modes it
    /// supports ("UQ" for one that can sleep), and its /1 answer 1/0/1:
    /// neither is how it registered, so neither touches the endpoint row,
    /// which would otherwise put an awake device in queue mode.
    #[test]
    fn a_native_devices_values_leave_its_binding_and_lifetime_alone() {
        let mut read = uplink(
            "native",
            UplinkKind::Composite,
            vec![
                value("/3/0/16", Value::String("UQ".into())),
                value("/1/0/1", Value::Integer(300)),
            ],
        );
        read.connection = Connection::Native(None);
        let batch = Batch::new(vec![read]);
        let requests = batch.requests();
        let seen: Vec<(&str, Option<&str>, Option<i64>)> = seen_endpoints(&requests)
            .into_iter()
            .map(|s| (s.name, s.binding, s.lifetime_s))
            .collect();
        assert_eq!(seen, vec![("native", None, None)]);
    }

    #[test]
    fn missing_inputs_are_an_error_not_a_panic() {
        let batch = Batch::new(vec![uplink(
            "a",
            UplinkKind::Single,
            vec![value("/3303/0/5700", Value::Float(1.0))],
        )]);
        let requests = batch.requests();
        let no_ids = plan(
            &requests,
            Inputs {
                endpoint_ids: &batch.endpoint_ids,
                discovered: &[],
                resource_ids: &[],
                updates: HashMap::new(),
            },
        );
        assert_eq!(no_ids.unwrap_err(), MissingInput("resource id"));
        let no_endpoint = plan(
            &requests,
            Inputs {
                endpoint_ids: &HashMap::new(),
                discovered: &[],
                resource_ids: &batch.resource_ids,
                updates: HashMap::new(),
            },
        );
        assert_eq!(no_endpoint.unwrap_err(), MissingInput("endpoint id"));
    }
}
