//! The ingest writer: one task owns every telemetry write and commits many
//! requests in one transaction (group commit). A request is acknowledged
//! only after the transaction holding its rows has committed, so nothing
//! acknowledged can be lost, and a request that is rejected writes nothing.
//!
//! Batching is natural, not timed: while one batch commits, new requests
//! queue up and form the next one, so a lone request waits for no one and a
//! busy server writes thousands of rows per commit with multi-row inserts
//! (`store::rows`: statements of a few sizes with bound values, each of
//! which stays prepared).
//!
//! There is no timed hold (a small batch waiting a fraction of a
//! millisecond for more, like PostgreSQL's `commit_delay`): measured on
//! SQLite it raised the median latency without lowering p99, and cut
//! closed-loop throughput (`docs/benchmarks.md`).
//!
//! A batch is written in three steps: the opening statements tell the
//! writer the endpoints' ids, the new types' ids, fresh resource ids and
//! the active firmware updates; `plan::plan` turns the batch and those
//! into rows and domain events without touching the database; the rest of
//! the plan is written and committed. After the commit, everything is
//! published through `after_commit::AfterCommit`.
use super::firmware::FW_UPDATE_PATH;
use super::plan::{self, CheckedTypes, MissingInput, Plan, Request};
use super::{IngestReceipt, KnownType, StoredValue, TypeCache, TypeKey, Uplink};
use crate::error::AppError;
use crate::model::DataType;
use crate::server::after_commit::AfterCommit;
use crate::server::db;
use crate::server::db::endpoint_operation::{NewOperation, OperationType};
use crate::server::db::event::NewEvent;
use crate::server::db::firmware_update::ActiveUpdate;
use crate::server::db::resource::Columns;
use crate::server::domain::DomainEvent;
use crate::server::rollup::Feed;
use crate::server::store::script::Script;
use crate::server::store::{self, Conn, Db, IdSource, IdTable};
use std::collections::HashMap;
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
    /// Values whose device time was implausible, stored under their
    /// receive time (`plan::device_time`).
    pub device_times_refused: AtomicU64,
}

struct Job {
    uplink: Uplink,
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
    /// connections' tasks, the writer waits behind them after each await,
    /// which costs more than the database work of a batch. On its own
    /// thread, with its own single-threaded runtime, it is woken directly
    /// when a statement finishes (PostgreSQL) or does the SQLite work
    /// itself (`store::sqlite::InlineSqlite`).
    ///
    /// After each commit the writer hands its values to `rollup_feed`
    /// (shared with the rollup worker) and publishes through `after_commit`.
    pub fn start(
        db: Db,
        types: TypeCache,
        after_commit: AfterCommit,
        rollup_feed: Arc<Feed>,
    ) -> IngestWriter {
        let (jobs, rx) = mpsc::channel(QUEUE_CAPACITY);
        let stats = Arc::new(WriterStats::default());
        let task = WriterTask {
            db,
            types,
            after_commit,
            rollup_feed,
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

    /// Queues an uplink without waiting, for a caller that must never
    /// wait on the database (the LwM2M socket loop): the uplink comes back
    /// when the queue is full. The returned future resolves, once the
    /// uplink's rows are committed, to the number of values stored; no
    /// receipt is built. All or nothing, as `submit`.
    pub fn try_queue(&self, uplink: Uplink) -> Result<Queued, Uplink> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            uplink,
            received_at: store::now_ms(),
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(Queued(answer)),
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                Err(job.uplink)
            }
        }
    }

    /// Stores an uplink and returns its receipt once committed. All or
    /// nothing: a rejected uplink writes nothing.
    pub async fn submit(&self, uplink: Uplink) -> Result<IngestReceipt, AppError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            uplink,
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
            .values
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

/// An uplink of `IngestWriter::try_queue`, until its commit: resolves to
/// the number of values stored.
pub struct Queued(oneshot::Receiver<Result<Stored, AppError>>);

impl std::future::Future for Queued {
    type Output = Result<usize, AppError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|answer| {
            answer
                .unwrap_or_else(|_| {
                    tracing::error!("ingest writer dropped a request");
                    Err(AppError::Internal)
                })
                .map(|stored| stored.uplink.values.len())
        })
    }
}

/// A request whose values passed the type check, with the type of each.
struct Checked {
    job: Job,
    types: CheckedTypes,
}

impl Checked {
    fn request(&self) -> Request<'_> {
        Request {
            uplink: &self.job.uplink,
            received_at: self.job.received_at,
            types: &self.types.types,
        }
    }
}

/// What a committed batch hands back for acknowledging its requests.
struct Committed {
    events_per_request: Vec<Vec<String>>,
    domain: Vec<DomainEvent>,
    discovered: Vec<(TypeKey, KnownType)>,
    /// The stored events, for live event subscribers.
    events: Vec<NewEvent>,
    endpoint_ids: HashMap<String, i64>,
}

/// What the opening statements and the reads before the plan found.
struct Opened {
    ids: IdSource,
    endpoint_ids: HashMap<String, i64>,
}

struct WriterTask {
    db: Db,
    types: TypeCache,
    after_commit: AfterCommit,
    rollup_feed: Arc<Feed>,
    stats: Arc<WriterStats>,
}

impl WriterTask {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut rows = first.uplink.values.len();
            let mut batch = vec![first];
            while rows < MAX_BATCH_ROWS && batch.len() < MAX_BATCH_REQUESTS {
                match rx.try_recv() {
                    Ok(job) => {
                        rows += job.uplink.values.len();
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

    /// `plan::check_types` against the type cache: a rejected request is
    /// answered here and leaves the batch.
    fn check_types(&self, jobs: Vec<Job>) -> (Vec<Checked>, Vec<(TypeKey, DataType)>) {
        let check = plan::check_types(jobs.iter().map(|j| &j.uplink), |key| self.types.get(key));
        let mut checked = Vec::with_capacity(jobs.len());
        for (job, result) in jobs.into_iter().zip(check.requests) {
            match result {
                Ok(types) => checked.push(Checked { job, types }),
                Err(error) => {
                    let _ = job.reply.send(Err(error));
                }
            }
        }
        (checked, check.discover)
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

    /// Gathers what the plan needs, plans, and executes the plan.
    async fn write(
        &self,
        conn: &mut Conn<'_>,
        checked: &[Checked],
        discover: &[(TypeKey, DataType)],
    ) -> Result<Committed, CommitError> {
        let mut steps = Steps::start();
        let requests: Vec<Request<'_>> = checked.iter().map(Checked::request).collect();
        let Opened {
            mut ids,
            endpoint_ids,
        } = self.open(conn, &requests).await?;
        steps.mark("open");
        let discovered = self.discover(conn, discover).await?;
        let updates = self.active_updates(conn, &requests, &endpoint_ids).await?;
        // Ids are allocated up front so events can link to them.
        let total = plan::value_count(&requests);
        let resource_ids = ids.take(conn, IdTable::Resource, total).await?;
        let mut plan = plan::plan(
            &requests,
            plan::Inputs {
                endpoint_ids: &endpoint_ids,
                discovered: &discovered,
                resource_ids: &resource_ids,
                updates,
            },
        )?;
        if plan.clock_refused > 0 {
            // A device clock that is unset or far ahead: its values are
            // kept, under the time they arrived.
            tracing::warn!(
                values = plan.clock_refused,
                "device time before 2000 or more than 5 minutes ahead; stored with the receive time"
            );
            self.stats
                .device_times_refused
                .fetch_add(plan.clock_refused as u64, Ordering::Relaxed);
        }
        let events = self.execute(conn, &mut plan, ids).await?;
        steps.mark("close");
        self.rollup_feed
            .record(plan.rows.iter().zip(plan.numeric.iter().copied()));
        steps.warn_if_slow(checked.len(), total);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        Ok(Committed {
            events_per_request: plan.events_per_request,
            domain: plan.domain,
            discovered,
            events,
            endpoint_ids,
        })
    }

    /// Opens the transaction as one script: begin, (SQLite) the highest ids
    /// in use, and the endpoints' upsert, which returns their ids.
    async fn open(
        &self,
        conn: &mut Conn<'_>,
        requests: &[Request<'_>],
    ) -> Result<Opened, CommitError> {
        let backend = self.db.backend;
        let seen = plan::seen_endpoints(requests);
        let mut open = Script::new(backend);
        store::push_begin_write(&mut open);
        IdSource::push_query(&mut open);
        db::endpoint::upsert_seen_many(&mut open, &seen);
        db::endpoint::select_ids_many(&mut open, &seen);
        let mut opened = open.fetch_all(conn).await?.into_iter();
        let ids = IdSource::read(backend, &mut opened)?;
        let endpoint_ids: HashMap<String, i64> = opened
            .map(|row| db::endpoint::seen_id(&row))
            .collect::<Result<_, _>>()?;
        Ok(Opened { ids, endpoint_ids })
    }

    /// Registers the batch's new types, before the values that reference
    /// them.
    async fn discover(
        &self,
        conn: &mut Conn<'_>,
        discover: &[(TypeKey, DataType)],
    ) -> Result<Vec<(TypeKey, KnownType)>, CommitError> {
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
        Ok(discovered)
    }

    /// The active firmware updates of the endpoints that reported progress
    /// (rare: a statement of its own, only then).
    async fn active_updates(
        &self,
        conn: &mut Conn<'_>,
        requests: &[Request<'_>],
        endpoint_ids: &HashMap<String, i64>,
    ) -> Result<HashMap<i64, ActiveUpdate>, CommitError> {
        let firmware_ids = plan::firmware_endpoints(requests, endpoint_ids)?;
        let mut updates = HashMap::new();
        if !firmware_ids.is_empty() {
            let active =
                db::firmware_update::active_for_endpoints(conn, self.db.backend, &firmware_ids)
                    .await?;
            for u in active {
                updates.insert(u.endpoint_id, u);
            }
        }
        Ok(updates)
    }

    /// Writes the plan and commits: the firmware steps (rare: statements of
    /// their own), then values, new series, registrations, events and
    /// their links, and COMMIT as one script. Returns the stored events.
    async fn execute(
        &self,
        conn: &mut Conn<'_>,
        plan: &mut Plan,
        mut ids: IdSource,
    ) -> Result<Vec<NewEvent>, CommitError> {
        let now = store::now_ms();
        for i in 0..plan.firmware.len() {
            if plan.firmware[i].queue_execute {
                let endpoint_id = plan.firmware[i].update.endpoint_id;
                let op = NewOperation {
                    endpoint_id,
                    resource_type_id: self.types.get((5, 2)).map(|t| t.0),
                    path: FW_UPDATE_PATH,
                    operation_type: OperationType::Execute,
                    value: Columns::default(),
                    created_by: None,
                    now,
                };
                let op_id = db::endpoint_operation::enqueue(&mut *conn, &op).await?;
                plan.execute_queued(endpoint_id, op_id);
            }
            db::firmware_update::save_progress(&mut *conn, &plan.firmware[i].update, now).await?;
        }
        let planned = std::mem::take(&mut plan.events);
        let event_ids = ids.take(conn, IdTable::Event, planned.len()).await?;
        let (events, links) = plan::number_events(planned, event_ids);
        let series = plan.series();
        let mut close = Script::new(self.db.backend);
        db::resource::insert_many(&mut close, &plan.rows);
        db::resource::add_series_many(&mut close, &series);
        for (eid, change, at) in &plan.registrations {
            db::endpoint::apply_registration(&mut close, *eid, *change, *at);
        }
        db::event::insert_many(&mut close, &events);
        db::event::link_many(&mut close, &links);
        store::push_commit(&mut close);
        close.execute(conn).await?;
        Ok(events)
    }

    /// After commit: learn the new types, publish, answer every request.
    fn acknowledge(&self, checked: Vec<Checked>, committed: Committed) {
        for (key, t) in &committed.discovered {
            self.types.insert(*key, *t);
        }
        // Counted before the answers go out, so that a client that reads
        // the metrics after its answer sees its request counted.
        let requests = checked.len();
        let rows: usize = checked.iter().map(|c| c.job.uplink.values.len()).sum();
        self.stats
            .requests
            .fetch_add(requests as u64, Ordering::Relaxed);
        self.stats.rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.after_commit.count_ingested(rows);
        for (c, events) in checked.into_iter().zip(committed.events_per_request) {
            let Job {
                uplink,
                received_at,
                reply,
            } = c.job;
            self.after_commit
                .values(&uplink.endpoint, &uplink.values, received_at);
            // The client may have gone away; its data is stored regardless.
            let _ = reply.send(Ok(Stored {
                uplink,
                events,
                discovered: c.types.discovered,
            }));
        }
        self.after_commit
            .recorded_events(&committed.events, &committed.endpoint_ids);
        self.after_commit.domain_events(committed.domain);
    }
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

impl From<MissingInput> for CommitError {
    fn from(_: MissingInput) -> Self {
        CommitError::Db(sqlx::Error::RowNotFound)
    }
}
