//! The ingest writer: one task owns every telemetry write and commits many
//! requests in one transaction (group commit). A request is acknowledged
//! only after the transaction holding its rows has committed, so nothing
//! acknowledged can be lost, and a request that is rejected writes nothing.
//!
//! Batching is natural, not timed: while one batch commits, new requests
//! queue up and form the next one, so a lone request waits for no one and a
//! busy server writes thousands of rows per commit with multi-row inserts
//! (`store::json_rows`: on SQLite each table's rows as one JSON parameter of a
//! statement that stays prepared).
//!
//! A timed hold (a small batch waiting a fraction of a millisecond for
//! more, like PostgreSQL's `commit_delay`) was built and measured on SQLite
//! and left out (2026-12-02): at 1,250 composite posts/s a 1 ms hold took
//! up to twice the requests per commit and 9-17% less server CPU per
//! request, but raised the median latency by 0.6-1.6 ms and did not lower
//! p99 (5.4-7.3 ms without, 6.7-7.3 with; with both cores also kept busy
//! by other processes, 5.8-7.4 without, 8.5-9.7 and once 108 ms with). And
//! with 64 connections in a closed loop a 500 µs hold cut single posts
//! from 36,000-38,800 to 27,200-30,400/s.
use super::firmware::{self, FW_UPDATE_PATH};
use super::{
    object_event_type, registration_change, IngestReceipt, KnownType, StoredValue, TypeCache,
    TypeKey, Uplink, UplinkKind, DEVICE_BINDING, REGISTRATION_OBJECT, SERVER_LIFETIME,
    SERVER_OBJECT,
};
use crate::error::AppError;
use crate::model::{DataType, EventNotice, FleetNotice, LiveValue, Value};
use crate::server::db;
use crate::server::db::endpoint::{RegistrationChange, SeenEndpoint};
use crate::server::db::endpoint_operation::{NewOperation, OperationType};
use crate::server::db::event::NewEvent;
use crate::server::db::firmware_update::ActiveUpdate;
use crate::server::db::resource::{Columns, NewResource};
use crate::server::domain::{DomainEvent, DomainEvents};
use crate::server::live::LiveHub;
use crate::server::store::script::Script;
use crate::server::store::{self, Conn, Db, IdSource, IdTable};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the writer. When full, handlers wait: backpressure
/// instead of unbounded memory.
const QUEUE_CAPACITY: usize = 16_384;
/// A batch closes at this many rows (or requests), keeping commits short.
const MAX_BATCH_ROWS: usize = 8_192;
const MAX_BATCH_REQUESTS: usize = 2_048;

/// Counters of the writer's work, for the metrics endpoint and the benchmark.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub requests: AtomicU64,
    pub rows: AtomicU64,
    pub batches: AtomicU64,
    pub failed_batches: AtomicU64,
}

struct Job {
    uplink: Uplink,
    kind: UplinkKind,
    received_at: i64,
    reply: oneshot::Sender<Result<Stored, AppError>>,
}

/// What the writer hands back once a request's rows are committed: the
/// uplink itself (moved, not copied) plus what the commit added. The
/// receipt is built from it in the request's own task, so that work runs in
/// parallel instead of on the writer's serial path.
struct Stored {
    uplink: Uplink,
    events: Vec<String>,
    discovered: usize,
}

/// The handle request handlers submit to.
#[derive(Clone)]
pub struct IngestWriter {
    jobs: mpsc::Sender<Job>,
    pub stats: Arc<WriterStats>,
}

impl IngestWriter {
    /// Starts the writer on a thread of its own. It ends when every handle
    /// is dropped, after writing what was queued.
    ///
    /// Why a thread: every request waits for the writer's commits, and a
    /// commit is several awaits on the database. As a task among the HTTP
    /// connections' tasks, the writer waited behind them after each await
    /// (measured: a batch took 2.1 ms on average, of which the database
    /// work was a fraction). On its own thread, with its own single-threaded
    /// runtime, it is woken directly when a statement finishes (PostgreSQL)
    /// or does the SQLite work itself (`store::sqlite::InlineSqlite`).
    pub fn start(db: Db, types: TypeCache, hub: LiveHub, domain: DomainEvents) -> IngestWriter {
        let (jobs, rx) = mpsc::channel(QUEUE_CAPACITY);
        let stats = Arc::new(WriterStats::default());
        let task = WriterTask {
            db,
            types,
            hub,
            domain,
            stats: stats.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the ingest writer");
        std::thread::Builder::new()
            .name("ingest-writer".into())
            .spawn(move || runtime.block_on(task.run(rx)))
            .expect("a thread for the ingest writer");
        IngestWriter { jobs, stats }
    }

    /// Stores an uplink and returns its receipt once committed. All or
    /// nothing: a rejected uplink writes nothing.
    pub async fn submit(
        &self,
        uplink: Uplink,
        kind: UplinkKind,
    ) -> Result<IngestReceipt, AppError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            uplink,
            kind,
            received_at: store::now_ms(),
            reply,
        };
        if self.jobs.send(job).await.is_err() {
            tracing::error!("ingest writer is gone");
            return Err(AppError::Internal);
        }
        let stored = answer.await.unwrap_or_else(|_| {
            tracing::error!("ingest writer dropped a request");
            Err(AppError::Internal)
        })?;
        let Stored {
            uplink,
            events,
            discovered,
        } = stored;
        let resources: Vec<StoredValue> = uplink
            .readings
            .iter()
            .map(|r| StoredValue {
                path: r.path.to_string(),
                data_type: r.value.data_type(),
                value: r.value.to_json(),
            })
            .collect();
        Ok(IngestReceipt {
            stored: resources.len(),
            endpoint: uplink.endpoint,
            discovered_types: discovered,
            events,
            resources,
        })
    }
}

/// A request whose values passed the type checks, with the type of each.
struct Checked {
    job: Job,
    types: Vec<TypeRef>,
    discovered: usize,
}

#[derive(Debug, Clone, Copy)]
enum TypeRef {
    Known(i64),
    /// Index into the batch's list of types to discover.
    Discovered(usize),
}

/// What a committed batch hands back for acknowledging its requests.
struct Committed {
    events: Vec<Vec<String>>,
    domain: Vec<DomainEvent>,
    discovered: Vec<(TypeKey, KnownType)>,
    /// Live notices of the stored events (empty without subscribers).
    notices: Vec<EventNotice>,
}

struct WriterTask {
    db: Db,
    types: TypeCache,
    hub: LiveHub,
    domain: DomainEvents,
    stats: Arc<WriterStats>,
}

impl WriterTask {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut rows = first.uplink.readings.len();
            let mut batch = vec![first];
            while rows < MAX_BATCH_ROWS && batch.len() < MAX_BATCH_REQUESTS {
                match rx.try_recv() {
                    Ok(job) => {
                        rows += job.uplink.readings.len();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.process(batch).await;
        }
    }

    async fn process(&self, jobs: Vec<Job>) {
        let (checked, discover) = self.check_types(jobs);
        if checked.is_empty() {
            return;
        }
        match self.commit(&checked, &discover).await {
            Ok(committed) => self.acknowledge(checked, committed),
            Err(err) => {
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                if checked.len() == 1 {
                    let error = match err {
                        CommitError::Db(e) => AppError::from(e),
                        CommitError::TypeRace => AppError::Internal,
                    };
                    for c in checked {
                        let _ = c.job.reply.send(Err(error.clone()));
                    }
                } else {
                    // One request may be to blame: retry each on its own so
                    // the others still go through.
                    tracing::warn!(
                        requests = checked.len(),
                        "ingest batch failed; retrying its requests one by one"
                    );
                    for c in checked {
                        Box::pin(self.process(vec![c.job])).await;
                    }
                }
            }
        }
    }

    /// Checks every value against its known resource type, in memory. A
    /// request with a mismatch is answered 422 here and leaves the batch;
    /// unknown types become discoveries, typed by the first request that
    /// reports them (later ones in the batch must agree, as if sequential).
    fn check_types(&self, jobs: Vec<Job>) -> (Vec<Checked>, Vec<(TypeKey, DataType)>) {
        let mut discover: Vec<(TypeKey, DataType)> = Vec::new();
        let mut checked = Vec::with_capacity(jobs.len());
        'jobs: for job in jobs {
            let mut types = Vec::with_capacity(job.uplink.readings.len());
            let mut own_discoveries = 0;
            for reading in &job.uplink.readings {
                let key = (reading.path.object_id, reading.path.resource_id);
                let declared = reading.value.data_type();
                let (type_ref, data_type) = match self.types.get(key) {
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
                    let error = AppError::invalid_field(
                        reading.json_path.clone(),
                        format!(
                            "resource /{}/{} is of type {data_type}, not {declared}",
                            key.0, key.1
                        ),
                    );
                    let _ = job.reply.send(Err(error));
                    continue 'jobs;
                }
                types.push(type_ref);
            }
            checked.push(Checked {
                job,
                types,
                discovered: own_discoveries,
            });
        }
        (checked, discover)
    }

    /// Writes a batch in one transaction. The transaction is opened and
    /// closed with plain statements, so that the opening statements and
    /// the closing ones each go as one script (`Script`). On SQLite they
    /// run on this thread (`store::Writer::Sqlite`); on PostgreSQL each
    /// statement is a round trip on the writer's own connection.
    async fn commit(
        &self,
        checked: &[Checked],
        discover: &[(TypeKey, DataType)],
    ) -> Result<Committed, CommitError> {
        let mut inline;
        let mut pooled;
        let mut conn = match &self.db.writer {
            store::Writer::Sqlite(gate) => {
                inline = gate.lock().await;
                Conn::Inline(&mut inline)
            }
            store::Writer::Postgres(pool) => {
                pooled = pool.acquire().await?;
                Conn::Any(&mut pooled)
            }
        };
        let result = self.write(&mut conn, checked, discover).await;
        match (&result, &self.db.wal) {
            (Err(_), _) => store::rollback(&mut conn).await,
            (Ok(_), Some(wal)) => wal.committed(),
            (Ok(_), None) => {}
        }
        result
    }

    async fn write(
        &self,
        conn: &mut Conn<'_>,
        checked: &[Checked],
        discover: &[(TypeKey, DataType)],
    ) -> Result<Committed, CommitError> {
        let backend = self.db.backend;
        let mut steps = Steps::start();
        let seen = seen_endpoints(checked);

        // Open: begin, (SQLite) the highest ids in use, and the endpoints'
        // upsert, which returns their ids.
        let mut open = Script::new(backend);
        store::push_begin_write(&mut open);
        IdSource::push_query(&mut open);
        db::endpoint::upsert_seen_many(&mut open, &seen);
        let mut opened = open.fetch_all(conn).await?.into_iter();
        let mut ids = IdSource::read(backend, &mut opened)?;
        let endpoint_ids: HashMap<String, i64> = opened
            .map(|row| db::endpoint::seen_id(&row))
            .collect::<Result<_, _>>()?;
        steps.mark("open");
        let endpoint_id = |name: &str| {
            endpoint_ids
                .get(name)
                .copied()
                .ok_or(CommitError::Db(sqlx::Error::RowNotFound))
        };

        // Types before the values that reference them.
        let mut discovered = Vec::with_capacity(discover.len());
        for (key, declared) in discover {
            let known = super::resolve_or_discover(conn, *key, *declared).await?;
            if known.1 != *declared {
                // Another server registered it differently since we loaded
                // the cache: learn its type and let the retry reject the
                // request that disagrees.
                self.types.insert(*key, known);
                return Err(CommitError::TypeRace);
            }
            discovered.push((*key, known));
        }
        let type_id = |r: TypeRef| match r {
            TypeRef::Known(id) => id,
            TypeRef::Discovered(i) => discovered[i].1 .0,
        };

        // Active firmware updates of the endpoints that reported progress
        // (rare: a statement of its own).
        let mut updates: HashMap<i64, ActiveUpdate> = HashMap::new();
        let mut firmware_ids = checked
            .iter()
            .map(|c| &c.job.uplink)
            .filter(|up| {
                up.readings
                    .iter()
                    .any(|r| firmware::is_tracked((r.path.object_id, r.path.resource_id)))
            })
            .map(|up| endpoint_id(&up.endpoint))
            .collect::<Result<Vec<_>, _>>()?;
        if !firmware_ids.is_empty() {
            firmware_ids.sort_unstable();
            firmware_ids.dedup();
            for u in db::firmware_update::active_for_endpoints(conn, backend, &firmware_ids).await?
            {
                updates.insert(u.endpoint_id, u);
            }
        }

        // Values. Ids are allocated up front so events can link to them.
        let total: usize = checked.iter().map(|c| c.job.uplink.readings.len()).sum();
        let resource_ids = ids.take(conn, IdTable::Resource, total).await?;
        let mut rows = Vec::with_capacity(total);
        // Per row, whether its type is charted (the rollups sum it).
        let mut numeric = Vec::with_capacity(total);
        let mut planned_events: Vec<(i64, String, i64, Vec<i64>)> = Vec::new();
        let mut events_per_job: Vec<Vec<String>> = Vec::with_capacity(checked.len());
        let mut registrations: Vec<(i64, RegistrationChange, i64)> = Vec::new();
        let mut domain = vec![DomainEvent::EndpointsHeard {
            endpoint_ids: endpoint_ids.values().copied().collect(),
        }];
        let mut changed_updates: Vec<i64> = Vec::new();
        let mut execute_needed: Vec<i64> = Vec::new();
        let mut next_id = resource_ids.iter().copied();
        for c in checked {
            let up = &c.job.uplink;
            let at = c.job.received_at;
            let eid = endpoint_id(&up.endpoint)?;
            let first_row = rows.len();
            let mut job_events = Vec::new();
            for (reading, type_ref) in up.readings.iter().zip(&c.types) {
                let id = next_id
                    .next()
                    .ok_or(CommitError::Db(sqlx::Error::RowNotFound))?;
                rows.push(NewResource {
                    id,
                    endpoint_id: eid,
                    resource_type_id: type_id(*type_ref),
                    object_instance_id: reading.path.instance_id,
                    resource_instance_id: reading.path.resource_instance_id,
                    columns: Columns::from_value(&reading.value),
                    received_at: at,
                });
                // check_types made the value's type the resource type's.
                numeric.push(reading.value.data_type().is_numeric());
                if let Some((change, event_type)) = registration_change(&reading.path) {
                    registrations.push((eid, change, at));
                    planned_events.push((eid, event_type.to_string(), at, vec![id]));
                    job_events.push(event_type.to_string());
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
                let key = (reading.path.object_id, reading.path.resource_id);
                if let Some(update) = updates.get_mut(&eid) {
                    if let Some(step) = firmware::apply(update, key, &reading.value) {
                        planned_events.push((eid, step.event_type.to_string(), at, vec![id]));
                        job_events.push(step.event_type.to_string());
                        if !changed_updates.contains(&eid) {
                            changed_updates.push(eid);
                        }
                        if step.queue_execute {
                            execute_needed.push(eid);
                        }
                    }
                }
            }
            if c.job.kind == UplinkKind::Composite {
                // One event per reported object, linking every value stored for it.
                let mut by_object: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
                for (reading, row) in up.readings.iter().zip(&rows[first_row..]) {
                    if reading.path.object_id != REGISTRATION_OBJECT {
                        by_object
                            .entry(reading.path.object_id)
                            .or_default()
                            .push(row.id);
                    }
                }
                for (object_id, linked) in by_object {
                    let event_type = object_event_type(object_id);
                    job_events.push(event_type.clone());
                    planned_events.push((eid, event_type, at, linked));
                }
            }
            events_per_job.push(job_events);
        }

        // resource_latest: the newest value per series (rows are in arrival order).
        let mut newest: HashMap<(i64, i64, i64, i64), usize> = HashMap::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let key = (
                r.endpoint_id,
                r.resource_type_id,
                r.object_instance_id,
                r.resource_instance_id.unwrap_or(-1),
            );
            newest.insert(key, i);
        }
        let mut latest: Vec<&NewResource> = newest.into_values().map(|i| &rows[i]).collect();
        // A stable order keeps concurrent writers (another server on the same
        // PostgreSQL) from deadlocking on these rows.
        latest.sort_unstable_by_key(|r| {
            (
                r.endpoint_id,
                r.resource_type_id,
                r.object_instance_id,
                r.resource_instance_id,
            )
        });
        // Close: everything else, then COMMIT, as one script on SQLite.
        let mut close = Script::new(backend);
        db::resource::insert_many(&mut close, &rows);
        db::resource::set_latest_many(&mut close, &latest);
        for (eid, change, at) in registrations {
            db::endpoint::apply_registration(&mut close, eid, change, at);
        }

        let now = store::now_ms();
        for eid in changed_updates {
            let Some(update) = updates.get_mut(&eid) else {
                continue;
            };
            if execute_needed.contains(&eid) && update.execute_operation_id.is_none() {
                let op = NewOperation {
                    endpoint_id: eid,
                    resource_type_id: self.types.get((5, 2)).map(|t| t.0),
                    path: FW_UPDATE_PATH,
                    operation_type: OperationType::Execute,
                    value: Columns::default(),
                    created_by: None,
                    now,
                };
                let op_id = db::endpoint_operation::enqueue(&mut *conn, &op).await?;
                update.execute_operation_id = Some(op_id);
                domain.push(DomainEvent::OperationQueued {
                    operation_id: op_id,
                    endpoint_id: eid,
                });
            }
            db::firmware_update::save_progress(&mut *conn, update, now).await?;
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
        }

        let event_ids = ids.take(conn, IdTable::Event, planned_events.len()).await?;
        let mut events = Vec::with_capacity(planned_events.len());
        let mut links = Vec::new();
        for ((eid, event_type, at, linked), id) in planned_events.into_iter().zip(event_ids) {
            links.extend(linked.into_iter().map(|rid| (id, rid)));
            events.push(NewEvent {
                id,
                endpoint_id: eid,
                event_type,
                created_at: at,
            });
        }
        // For live event subscribers only: the events as the page lists them.
        let notices = if self.hub.wants_events() && !events.is_empty() {
            let names: HashMap<i64, &str> = endpoint_ids
                .iter()
                .map(|(name, id)| (*id, name.as_str()))
                .collect();
            events
                .iter()
                .map(|e| EventNotice {
                    id: e.id,
                    endpoint: names
                        .get(&e.endpoint_id)
                        .copied()
                        .unwrap_or_default()
                        .to_string(),
                    event_type: e.event_type.clone(),
                    created_at: e.created_at,
                })
                .collect()
        } else {
            Vec::new()
        };
        db::event::insert_many(&mut close, &events);
        db::event::link_many(&mut close, &links);
        store::push_commit(&mut close);
        close.execute(conn).await?;
        steps.mark("close");
        self.db
            .rollup_feed
            .record(rows.iter().zip(numeric.iter().copied()));
        steps.warn_if_slow(checked.len(), total);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        Ok(Committed {
            events: events_per_job,
            domain,
            discovered,
            notices,
        })
    }

    /// After commit: learn the new types, publish, answer every request.
    fn acknowledge(&self, checked: Vec<Checked>, committed: Committed) {
        for (key, t) in &committed.discovered {
            self.types.insert(*key, *t);
        }
        // Counted before the answers go out, so that a client that reads
        // the metrics after its answer sees its request counted.
        let requests = checked.len();
        let rows: usize = checked.iter().map(|c| c.job.uplink.readings.len()).sum();
        self.stats
            .requests
            .fetch_add(requests as u64, Ordering::Relaxed);
        self.stats.rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.hub.count_ingested(rows);
        for (c, events) in checked.into_iter().zip(committed.events) {
            let Job {
                uplink,
                received_at,
                reply,
                ..
            } = c.job;
            // Free without live subscribers (the hub checks first).
            self.hub.publish(&uplink.endpoint, || {
                uplink.readings.iter().map(|r| LiveValue {
                    endpoint: uplink.endpoint.clone(),
                    path: r.path,
                    value: r.value.to_string(),
                    numeric: r.value.as_f64(),
                    received_at,
                })
            });
            // The client may have gone away; its data is stored regardless.
            let _ = reply.send(Ok(Stored {
                uplink,
                events,
                discovered: c.discovered,
            }));
        }
        self.hub.publish_events(committed.notices);
        for event in committed.domain {
            match &event {
                DomainEvent::DeviceAwake {
                    endpoint,
                    registered: true,
                    ..
                } => self.hub.publish_fleet(FleetNotice::Registered {
                    endpoint: endpoint.clone(),
                }),
                DomainEvent::DeviceDeregistered { endpoint, .. } => {
                    self.hub.publish_fleet(FleetNotice::Deregistered {
                        endpoint: endpoint.clone(),
                    })
                }
                // The pages that show updates refetch on it.
                DomainEvent::FirmwareUpdateChanged {
                    update_id,
                    endpoint,
                    state,
                    ..
                } => self.hub.publish_command(crate::model::CommandNotice {
                    endpoint: endpoint.clone(),
                    command_id: None,
                    update_id: Some(*update_id),
                    status: state.as_str().to_string(),
                }),
                _ => {}
            }
            self.domain.publish(event);
        }
    }
}

/// The batch's endpoints, one row each, carrying the last binding and
/// lifetime the batch reported.
fn seen_endpoints(checked: &[Checked]) -> Vec<SeenEndpoint<'_>> {
    let mut seen: BTreeMap<&str, SeenEndpoint<'_>> = BTreeMap::new();
    for c in checked {
        let up = &c.job.uplink;
        let entry = seen.entry(up.endpoint.as_str()).or_insert(SeenEndpoint {
            name: &up.endpoint,
            seen_at: c.job.received_at,
            binding: None,
            lifetime_s: None,
        });
        entry.seen_at = entry.seen_at.max(c.job.received_at);
        for r in &up.readings {
            match ((r.path.object_id, r.path.resource_id), &r.value) {
                (DEVICE_BINDING, Value::String(b)) => entry.binding = Some(b),
                ((SERVER_OBJECT, SERVER_LIFETIME), Value::Integer(l)) => {
                    entry.lifetime_s = Some(*l)
                }
                _ => {}
            }
        }
    }
    seen.into_values().collect()
}

/// Times the steps of a commit, to name the slow one when a commit stalls
/// (every request in the batch waits for it).
struct Steps {
    started: std::time::Instant,
    last: std::time::Instant,
    marks: Vec<(&'static str, u128)>,
}

const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(50);

impl Steps {
    fn start() -> Steps {
        let now = std::time::Instant::now();
        Steps {
            started: now,
            last: now,
            marks: Vec::with_capacity(8),
        }
    }

    fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.marks.push((step, (now - self.last).as_micros()));
        self.last = now;
    }

    fn warn_if_slow(&self, requests: usize, rows: usize) {
        let total = self.started.elapsed();
        let steps = || {
            self.marks
                .iter()
                .map(|(step, us)| format!("{step} {:.2} ms", *us as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if total >= SLOW_COMMIT {
            tracing::warn!(
                ms = total.as_millis() as u64,
                requests,
                rows,
                steps = %steps(),
                "slow ingest commit"
            );
        } else {
            // For profiling the writer: FLOWNEXUS_LOG=flownexus::server::ingest::writer=debug
            tracing::debug!(
                us = total.as_micros() as u64,
                requests,
                rows,
                steps = %steps(),
                "ingest commit"
            );
        }
    }
}

enum CommitError {
    Db(sqlx::Error),
    /// A discovered type was registered differently by another server.
    TypeRace,
}

impl From<sqlx::Error> for CommitError {
    fn from(e: sqlx::Error) -> Self {
        CommitError::Db(e)
    }
}
