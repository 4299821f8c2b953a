//! The rollup worker: keeps the per-minute and per-hour rollups and
//! `ingest_minute` (`db::rollup`) up to date with the stored values. It runs
//! beside the ingest writer, never in its path. A run claims the ids after
//! the watermark (the last resource id rolled up), writes their groups a
//! few endpoints per transaction, so that ingest commits in between, and
//! then moves the watermark (`write_pending`, `db::rollup::RollupState`).
//!
//! The values come from the [`Feed`]: after each commit the ingest writer
//! adds its values to per-series, per-minute groups in memory, which is
//! what `db::rollup::aggregate` would read back from the database. Reading
//! them back costs a large share of a core at high ingest rates and slows
//! the ingest commits several times over while it runs; the feed costs the
//! writer a hash-map update per value (`docs/benchmarks.md`). Whatever the feed does not cover is read back: the values stored
//! before this process started or before the feed was restarted, ids the
//! writer did not commit itself, and everything after a failed run.
use super::db;
use super::db::resource::NewResource;
use super::db::rollup::{GroupKey, MinuteGroup, MINUTE_MS};
use super::store::Db;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often the worker looks for new values. Charts stay exact whatever
/// the lag (values after the watermark are read raw); this bounds how many
/// there are and how stale `ingest_minute` is. Each run writes a row per
/// series and minute whether it covers one second or ten, and ingest
/// commits wait while it writes (on SQLite, milliseconds with a thousand
/// series), so it runs every 10 s rather than every second.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Resource ids per batch (and transaction) read back from the database.
/// A batch's write costs about one upsert per series and minute, however
/// many values it covers, and ingest waits for it on SQLite (tens of
/// milliseconds with ten thousand series). So a batch holds a whole 10 s
/// run at 40,000 values/s, the highest ingest rate measured: smaller
/// batches make several such stops where one would do. The cap bounds the
/// aggregate read, which is one query: cut into smaller queries with pauses
/// between them, it takes several times as long and slows ingest for that
/// long.
pub const BATCH_IDS: i64 = 500_000;
/// Groups the feed holds at most (about 100 bytes each). Past it the feed
/// gives up until the worker next reads back from the database, so memory
/// stays bounded if the worker cannot write. A 10 s run at 40,000 values/s
/// over 11,000 series is 11,000-22,000 groups.
pub const FEED_MAX_GROUPS: usize = 250_000;
/// Groups at which the feed wakes the worker before its interval is up, so
/// that a burst (a fleet registering at once, each device's first values a
/// new series) is written from memory instead of read back after the feed
/// gave up.
pub const FEED_WAKE_GROUPS: usize = FEED_MAX_GROUPS / 2;

/// A group's values: min, max and sum of the numeric ones, and how many
/// values there are of any type.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GroupSums {
    numeric: Option<(f64, f64, f64)>,
    count: i64,
}

impl GroupSums {
    fn add(&mut self, numeric: Option<(f64, f64, f64)>, count: i64) {
        self.numeric = match (self.numeric, numeric) {
            (Some((mn, mx, s)), Some((mn2, mx2, s2))) => Some((mn.min(mn2), mx.max(mx2), s + s2)),
            (a, b) => a.or(b),
        };
        self.count += count;
    }
}

/// A run's values as the worker writes them: the groups of the numeric
/// series, which go to the tiers, and the count of every value per minute,
/// which goes to `ingest_minute`.
#[derive(Debug, Default, PartialEq)]
pub struct RunValues {
    pub groups: Vec<MinuteGroup>,
    pub minutes: Vec<(i64, i64)>,
}

impl RunValues {
    /// What `db::rollup::aggregate` read: a group without numeric values is
    /// only counted.
    pub fn from_groups(mut groups: Vec<MinuteGroup>) -> Self {
        let minutes = db::rollup::minute_counts(&groups);
        groups.retain(|g| g.numeric.is_some());
        Self { groups, minutes }
    }
}

/// Committed values, with the ids they cover: those of numeric types as
/// groups, the others as counts per minute.
#[derive(Debug, Default)]
pub struct Fed {
    /// Inclusive id ranges, ascending and disjoint; adjacent ones merged.
    ranges: Vec<(i64, i64)>,
    groups: HashMap<GroupKey, GroupSums>,
    /// Values of the other types per minute. They are only counted, so
    /// they are not kept per series: a device's onboarding is a dozen
    /// text resources, and ten thousand devices registering at once would
    /// otherwise fill the feed past its bound with groups no tier takes.
    counted: BTreeMap<i64, i64>,
}

impl Fed {
    /// Adds a batch's values; false if an id is not above every id already
    /// here (the writer commits in id order, so that is never expected).
    fn add_batch<'a>(&mut self, values: impl IntoIterator<Item = (&'a NewResource, bool)>) -> bool {
        let mut ids = Vec::new();
        for (row, numeric) in values {
            ids.push(row.id);
            // Integer division, as the SQL of `db::rollup::aggregate`.
            let minute = row.measured_at / MINUTE_MS * MINUTE_MS;
            if !numeric {
                *self.counted.entry(minute).or_default() += 1;
                continue;
            }
            let value = (row.columns.float_value).or(row.columns.int_value.map(|i| i as f64));
            let key = (
                row.endpoint_id,
                row.resource_type_id,
                row.object_instance_id,
                row.resource_instance_id.unwrap_or(-1),
                minute,
            );
            self.groups
                .entry(key)
                .or_insert(GroupSums {
                    numeric: None,
                    count: 0,
                })
                .add(value.map(|v| (v, v, v)), 1);
        }
        // One writer commits ascending ids, so this is usually sorted already.
        if !ids.is_sorted() {
            ids.sort_unstable();
        }
        for id in ids {
            match self.ranges.last_mut() {
                Some(last) if id == last.1 + 1 => last.1 = id,
                Some(last) if id <= last.1 => return false,
                _ => self.ranges.push((id, id)),
            }
        }
        true
    }

    pub fn first_id(&self) -> i64 {
        self.ranges.first().map_or(0, |r| r.0)
    }

    pub fn last_id(&self) -> i64 {
        self.ranges.last().map_or(0, |r| r.1)
    }

    /// The id ranges between the first and the last id that the feed does
    /// not cover, as (after, upto) for `db::rollup::aggregate`.
    pub fn gaps(&self) -> Vec<(i64, i64)> {
        self.ranges
            .windows(2)
            .map(|w| (w[0].1, w[1].0 - 1))
            .collect()
    }

    /// Adds groups read back from the database (for the gaps).
    pub fn add_groups(&mut self, groups: Vec<MinuteGroup>) {
        for g in groups {
            self.groups
                .entry(g.key())
                .or_insert(GroupSums {
                    numeric: None,
                    count: 0,
                })
                .add(g.numeric, g.value_count);
        }
    }

    /// The groups of numeric values and every value's count per minute,
    /// as [`RunValues::from_groups`] makes them of what the database holds.
    pub fn into_run_values(self) -> RunValues {
        let mut counted = self.counted;
        let mut groups = Vec::with_capacity(self.groups.len());
        for ((e, t, i, rik, minute), sums) in self.groups {
            *counted.entry(minute).or_default() += sums.count;
            // A numeric series whose values in the minute are all empty.
            if sums.numeric.is_none() {
                continue;
            }
            groups.push(MinuteGroup {
                endpoint_id: e,
                resource_type_id: t,
                object_instance_id: i,
                resource_instance_key: rik,
                bucket_start: minute,
                numeric: sums.numeric,
                value_count: sums.count,
            });
        }
        RunValues {
            groups,
            minutes: counted.into_iter().collect(),
        }
    }
}

/// What the ingest writer committed since the worker last took it (see the
/// module comment). One `Arc` of it is made where the server starts and
/// handed to both the writer and the worker.
#[derive(Default)]
pub struct Feed {
    state: Mutex<FeedState>,
    /// Notified when the feed reaches [`FEED_WAKE_GROUPS`] (a permit is
    /// kept if the worker is busy, so it runs again when done).
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct FeedState {
    /// Ids at or below this were counted by the worker's last read back
    /// from the database: values the writer committed before it read the
    /// highest id, and handed over after, are left out.
    floor: i64,
    /// Set when the feed cannot be trusted (too many groups, ids out of
    /// order): it stays empty until the worker restarts it.
    given_up: bool,
    fed: Fed,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Feed")
            .field("floor", &state.floor)
            .field("given_up", &state.given_up)
            .field("ranges", &state.fed.ranges.len())
            .field("groups", &state.fed.groups.len())
            .finish()
    }
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        // The state is whole after every method: a panic elsewhere while
        // the lock was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the ingest writer after each commit with the committed
    /// values and whether each one's type is numeric (charted).
    pub fn record<'a>(&self, values: impl IntoIterator<Item = (&'a NewResource, bool)>) {
        let mut state = self.lock();
        if state.given_up {
            return;
        }
        let floor = state.floor;
        let fresh = values.into_iter().filter(|(row, _)| row.id > floor);
        let before = state.fed.groups.len();
        let in_order = state.fed.add_batch(fresh);
        let groups = state.fed.groups.len();
        if before < FEED_WAKE_GROUPS && groups >= FEED_WAKE_GROUPS {
            self.wake.notify_one();
        }
        if !in_order || groups > FEED_MAX_GROUPS {
            state.given_up = true;
            state.fed = Fed::default();
            // Not an error: the worker reads these values back instead, a
            // long read that the write-ahead log cannot start over during.
            tracing::info!(
                groups,
                in_order,
                "the rollup feed gave up until the worker next reads back from the database"
            );
        }
    }

    /// Waits until the feed has [`FEED_WAKE_GROUPS`] groups (at once if it
    /// reached them since the last wait ended).
    pub async fn filling(&self) {
        self.wake.notified().await;
    }

    /// Everything recorded since the last take, if the feed is usable.
    pub fn take(&self) -> Option<Fed> {
        let mut state = self.lock();
        if state.given_up || state.fed.ranges.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut state.fed))
    }

    /// Empties the feed and has it record only ids above `floor`: the
    /// worker calls it before it reads every id up to `floor` back.
    pub fn restart_above(&self, floor: i64) {
        let mut state = self.lock();
        state.floor = floor;
        state.given_up = false;
        state.fed = Fed::default();
    }
}

/// Rolls up one batch of at most `batch` ids after the watermark, none
/// above `until`, read back from the database. Returns None when there is
/// nothing to do or another worker holds the range, else the number of
/// values rolled up (0 when the batch held only deleted ids).
pub async fn run_batch(db: &Db, batch: i64, until: i64) -> Result<Option<u64>, sqlx::Error> {
    let after = db::rollup::watermark(&db.pool).await?;
    if until <= after {
        return Ok(None);
    }
    let upto = until.min(after + batch.max(1));
    // Aggregate first, outside the write transactions: rows up to `upto`
    // are committed and never change (ids grow in commit order, see
    // `db::rollup`), so the groups are still right when they are written.
    let started = Instant::now();
    let groups = db::rollup::aggregate(&db.pool, after, upto).await?;
    let values = RunValues::from_groups(groups);
    write(db, after, upto, values, started, "database").await
}

/// Rolls up what the writer fed, and before it anything stored that the
/// feed does not start with. None when the watermark is already past the
/// feed's first id (another worker rolled those values up): the caller
/// reads back from the database instead.
async fn run_fed(db: &Db, mut fed: Fed) -> Result<Option<u64>, sqlx::Error> {
    let first = fed.first_id();
    let mut total = 0;
    while let Some(rows) = run_batch(db, BATCH_IDS, first - 1).await? {
        total += rows;
    }
    let after = db::rollup::watermark(&db.pool).await?;
    if after != first - 1 {
        return Ok(None);
    }
    let started = Instant::now();
    for (gap_after, gap_upto) in fed.gaps() {
        fed.add_groups(db::rollup::aggregate(&db.pool, gap_after, gap_upto).await?);
    }
    let upto = fed.last_id();
    let values = fed.into_run_values();
    Ok(write(db, after, upto, values, started, "feed")
        .await?
        .map(|rows| total + rows))
}

/// Finishes a run that was cut short (the server stopped, or a write
/// failed, between its transactions), reading its values back.
async fn resume(db: &Db) -> Result<u64, sqlx::Error> {
    let state = db::rollup::state(&db.pool).await?;
    let Some(upto) = state.pending_upto else {
        return Ok(0);
    };
    let started = Instant::now();
    let groups = db::rollup::aggregate(&db.pool, state.watermark, upto).await?;
    let values = RunValues::from_groups(groups);
    let (after, done) = (state.watermark, state.done_endpoint_id);
    let written = write_pending(db, after, upto, done, values, started, "resumed").await?;
    Ok(written.unwrap_or(0))
}

/// Rolls up `values`, those in (after, upto]: claims the range, then
/// writes it (`write_pending`). The values rolled up, or None when the
/// watermark was no longer at `after` or another run was pending.
async fn write(
    db: &Db,
    after: i64,
    upto: i64,
    values: RunValues,
    started: Instant,
    source: &'static str,
) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = db.begin_gated().await?;
    if !db::rollup::claim(&mut tx.conn(), after, upto).await? {
        tracing::debug!(after, upto, "rollup range taken by another worker");
        return Ok(None);
    }
    tx.commit().await?;
    write_pending(db, after, upto, -1, values, started, source).await
}

/// Groups per write transaction of a run, in whole endpoints (so one may
/// hold more). Each group is an upsert in each tier, and ingest waits for
/// the transaction on SQLite: one transaction of all of a run's groups
/// stalls ingest for tens of milliseconds, and even at 500 groups the
/// ingest commits between them take several times their usual time, since
/// each holds the requests that came in while a transaction wrote.
pub const CHUNK_GROUPS: usize = 100;

/// Writes the pending run over (after, upto] whose endpoints up to `done`
/// are written: the rest of the groups a few endpoints per transaction
/// (`db::rollup::advance`), then `ingest_minute` with the watermark's move
/// (`db::rollup::finish`). None when another worker moved the state.
async fn write_pending(
    db: &Db,
    after: i64,
    upto: i64,
    mut done: i64,
    values: RunValues,
    started: Instant,
    source: &'static str,
) -> Result<Option<u64>, sqlx::Error> {
    // The minute counts go in with the watermark, for all of the range.
    let RunValues {
        mut groups,
        minutes,
    } = values;
    groups.retain(|g| g.endpoint_id > done);
    groups.sort_unstable_by_key(MinuteGroup::key);
    let aggregated = started.elapsed();
    // Time inside the transactions, without waiting for the gate.
    let mut longest = Duration::ZERO;
    let mut writing = Duration::ZERO;
    let mut transactions = 0;
    for chunk in endpoint_chunks(&groups, CHUNK_GROUPS) {
        let to = chunk[chunk.len() - 1].endpoint_id;
        let mut tx = db.begin_gated().await?;
        let began = Instant::now();
        if !db::rollup::advance(&mut tx.conn(), upto, done, to).await? {
            tracing::debug!(upto, done, "rollup run taken over by another worker");
            return Ok(None);
        }
        db::rollup::apply_tiers(&mut tx.conn(), db.backend, chunk).await?;
        tx.commit().await?;
        longest = longest.max(began.elapsed());
        writing += began.elapsed();
        transactions += 1;
        done = to;
    }
    let mut tx = db.begin_gated().await?;
    if !db::rollup::finish(&mut tx.conn(), after, upto).await? {
        return Ok(None);
    }
    let rows = db::rollup::apply_minutes(&mut tx.conn(), db.backend, &minutes).await?;
    tx.commit().await?;
    tracing::debug!(
        source,
        groups = groups.len(),
        transactions,
        aggregate_ms = aggregated.as_secs_f64() * 1e3,
        longest_transaction_ms = longest.as_secs_f64() * 1e3,
        in_transactions_ms = writing.as_secs_f64() * 1e3,
        write_ms = (started.elapsed() - aggregated).as_secs_f64() * 1e3,
        "rollup batch"
    );
    Ok(Some(rows))
}

/// Cuts groups sorted by endpoint into runs of whole endpoints, each of at
/// least `size` groups but the last.
fn endpoint_chunks(groups: &[MinuteGroup], size: usize) -> Vec<&[MinuteGroup]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for end in 1..=groups.len() {
        let last = end == groups.len();
        if last || (end - start >= size && groups[end].endpoint_id != groups[end - 1].endpoint_id) {
            chunks.push(&groups[start..end]);
            start = end;
        }
    }
    chunks
}

/// Rolls up everything stored when it starts; returns how many values that
/// was. For the worker, tests and benchmarks. Values stored meanwhile wait
/// for the next run: chasing them, the worker ran small batches back to
/// back under heavy ingest, each a write transaction ingest waited for.
pub async fn run_once(db: &Db, feed: &Feed) -> Result<u64, sqlx::Error> {
    let mut total = resume(db).await?;
    if let Some(fed) = feed.take() {
        if let Some(rows) = run_fed(db, fed).await? {
            return Ok(total + rows);
        }
    }
    // Read back from the database, batch by batch. The feed restarts above
    // what this covers, so no value is counted twice.
    let until = db::resource::max_id(&db.pool).await?;
    feed.restart_above(until);
    while let Some(rows) = run_batch(db, BATCH_IDS, until).await? {
        total += rows;
    }
    Ok(total)
}

/// Runs [`run_once`] every [`INTERVAL`], and sooner when the feed fills
/// ([`Feed::filling`]), for as long as the server runs, on a thread of its
/// own: on SQLite its transactions run on the ingest
/// writer's connection, which does its work on the calling thread
/// (`store::sqlite::InlineSqlite`), a few milliseconds per transaction and longer if
/// it must wait for SQLite's lock. On one of the runtime's threads that
/// would hold up the HTTP tasks queued behind it.
pub fn spawn(db: Db, feed: Arc<Feed>) {
    let runtime = tokio::runtime::Handle::current();
    let started = std::thread::Builder::new()
        .name("rollup".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut tick = tokio::time::interval(INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = feed.filling() => tick.reset(),
                    }
                    match run_once(&db, &feed).await {
                        Ok(0) => {}
                        Ok(rows) => tracing::debug!(rows, "rolled up values"),
                        Err(e) => tracing::error!(error = %e, "rollup failed"),
                    }
                }
            })
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the rollup thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::resource::Columns;

    fn value(id: i64, endpoint_id: i64, measured_at: i64, columns: Columns) -> NewResource {
        NewResource {
            id,
            endpoint_id,
            resource_type_id: 7,
            object_instance_id: 0,
            resource_instance_id: None,
            columns,
            // Received later: the groups go by the time measured.
            received_at: measured_at + 3_600_000,
            measured_at,
        }
    }

    fn float(v: f64) -> Columns {
        Columns {
            float_value: Some(v),
            ..Columns::default()
        }
    }

    fn int(v: i64) -> Columns {
        Columns {
            int_value: Some(v),
            ..Columns::default()
        }
    }

    fn sorted(mut groups: Vec<MinuteGroup>) -> Vec<MinuteGroup> {
        groups.sort_by_key(|g| (g.endpoint_id, g.bucket_start));
        groups
    }

    fn group(
        endpoint_id: i64,
        minute: i64,
        numeric: Option<(f64, f64, f64)>,
        n: i64,
    ) -> MinuteGroup {
        MinuteGroup {
            endpoint_id,
            resource_type_id: 7,
            object_instance_id: 0,
            resource_instance_key: -1,
            bucket_start: minute * MINUTE_MS,
            numeric,
            value_count: n,
        }
    }

    #[test]
    fn chunks_hold_whole_endpoints_and_at_least_the_size_but_the_last() {
        let groups: Vec<MinuteGroup> = [1, 1, 1, 2, 3, 3, 4, 5, 5, 5, 5]
            .into_iter()
            .enumerate()
            .map(|(minute, endpoint)| group(endpoint, minute as i64, None, 1))
            .collect();
        let endpoints = |chunks: Vec<&[MinuteGroup]>| -> Vec<Vec<i64>> {
            chunks
                .iter()
                .map(|c| c.iter().map(|g| g.endpoint_id).collect())
                .collect()
        };
        assert_eq!(
            endpoints(endpoint_chunks(&groups, 2)),
            vec![vec![1, 1, 1], vec![2, 3, 3], vec![4, 5, 5, 5, 5]]
        );
        assert_eq!(
            endpoints(endpoint_chunks(&groups, 1)),
            vec![
                vec![1, 1, 1],
                vec![2],
                vec![3, 3],
                vec![4],
                vec![5, 5, 5, 5]
            ]
        );
        assert_eq!(endpoints(endpoint_chunks(&groups, 100)).len(), 1);
        assert!(endpoint_chunks(&[], 2).is_empty());
    }

    #[test]
    fn numeric_values_become_one_group_per_series_and_minute_the_others_counts() {
        let feed = Feed::default();
        let batch = [
            value(1, 1, 5, float(2.5)),
            value(2, 1, 59_999, int(4)),
            value(3, 1, MINUTE_MS, float(-1.0)),
            value(4, 2, 10, int(1)),
            value(5, 3, MINUTE_MS + 1, int(1)),
        ];
        // Endpoints 2 and 3 have values of a type that is not charted (a
        // boolean, say): counted per minute, not grouped.
        feed.record(batch.iter().map(|v| (v, v.endpoint_id == 1)));
        let fed = feed.take().expect("a usable feed");
        assert_eq!((fed.first_id(), fed.last_id()), (1, 5));
        assert!(fed.gaps().is_empty());
        let values = fed.into_run_values();
        assert_eq!(
            sorted(values.groups),
            vec![
                group(1, 0, Some((2.5, 4.0, 6.5)), 2),
                group(1, 1, Some((-1.0, -1.0, -1.0)), 1),
            ]
        );
        assert_eq!(values.minutes, vec![(0, 3), (MINUTE_MS, 2)]);
        assert!(feed.take().is_none(), "taking empties the feed");
    }

    #[test]
    fn batches_that_do_not_meet_leave_gaps_for_the_database() {
        let feed = Feed::default();
        let a = [value(10, 1, 0, int(1)), value(11, 1, 0, int(2))];
        let b = [value(12, 1, 0, int(3))];
        let c = [value(20, 1, 0, int(4)), value(15, 1, 0, int(5))];
        for batch in [&a[..], &b[..], &c[..]] {
            feed.record(batch.iter().map(|v| (v, true)));
        }
        let mut fed = feed.take().unwrap();
        assert_eq!(fed.ranges, vec![(10, 12), (15, 15), (20, 20)]);
        assert_eq!(fed.gaps(), vec![(12, 14), (15, 19)]);
        // What the database holds for a gap is merged in; a group without
        // numeric values only counts.
        fed.add_groups(vec![
            group(1, 0, Some((-3.0, 0.5, -2.5)), 2),
            group(3, 0, None, 4),
        ]);
        let values = fed.into_run_values();
        assert_eq!(values.groups, vec![group(1, 0, Some((-3.0, 5.0, 12.5)), 7)]);
        assert_eq!(values.minutes, vec![(0, 11)]);
    }

    #[test]
    fn ids_at_or_below_the_floor_are_left_to_the_database() {
        let feed = Feed::default();
        feed.record([value(1, 1, 0, int(1))].iter().map(|v| (v, true)));
        feed.restart_above(5);
        assert!(feed.take().is_none(), "a restart empties the feed");
        let batch = [value(5, 1, 0, int(1)), value(6, 1, 0, int(2))];
        feed.record(batch.iter().map(|v| (v, true)));
        let fed = feed.take().unwrap();
        assert_eq!(fed.ranges, vec![(6, 6)]);
        assert_eq!(
            fed.into_run_values(),
            RunValues {
                groups: vec![group(1, 0, Some((2.0, 2.0, 2.0)), 1)],
                minutes: vec![(0, 1)],
            }
        );
    }

    #[tokio::test]
    async fn a_feed_that_fills_wakes_the_worker_once_per_filling() {
        let feed = Feed::default();
        let waits = |feed: &Feed| {
            // The notification is stored synchronously: no waiting needed
            // when it was given.
            futures::FutureExt::now_or_never(feed.filling()).is_none()
        };
        let many: Vec<NewResource> = (1..=2 * FEED_WAKE_GROUPS as i64)
            .map(|id| value(id, id, 0, int(1)))
            .collect();
        let (below, rest) = many.split_at(FEED_WAKE_GROUPS - 1);
        feed.record(below.iter().map(|v| (v, true)));
        assert!(waits(&feed), "below {FEED_WAKE_GROUPS} groups");
        feed.record(rest[..1].iter().map(|v| (v, true)));
        assert!(!waits(&feed), "at {FEED_WAKE_GROUPS} groups");
        feed.record(rest[1..].iter().map(|v| (v, true)));
        assert!(waits(&feed), "once per filling");
        assert!(feed.take().is_some());
        let again: Vec<NewResource> = (1..=FEED_WAKE_GROUPS as i64)
            .map(|id| value(id + many.len() as i64, id, 0, int(1)))
            .collect();
        feed.record(again.iter().map(|v| (v, true)));
        assert!(!waits(&feed), "a feed taken and filled again");
    }

    #[test]
    fn ids_out_of_order_or_too_many_groups_give_up_until_a_restart() {
        let feed = Feed::default();
        feed.record([value(10, 1, 0, int(1))].iter().map(|v| (v, true)));
        feed.record([value(9, 1, 0, int(1))].iter().map(|v| (v, true)));
        assert!(feed.take().is_none());
        feed.record([value(11, 1, 0, int(1))].iter().map(|v| (v, true)));
        assert!(feed.take().is_none(), "given up until restarted");
        feed.restart_above(0);
        feed.record([value(12, 1, 0, int(1))].iter().map(|v| (v, true)));
        assert_eq!(feed.take().unwrap().ranges, vec![(12, 12)]);

        let many: Vec<NewResource> = (1..=FEED_MAX_GROUPS as i64 + 1)
            .map(|id| value(id, id, 0, int(1)))
            .collect();
        // Values that are only counted take no room.
        feed.record(many.iter().map(|v| (v, false)));
        let fed = feed.take().expect("counted values keep the feed");
        assert!(fed.groups.is_empty());
        assert_eq!(fed.counted.values().sum::<i64>(), many.len() as i64);
        feed.record(many[..FEED_MAX_GROUPS].iter().map(|v| (v, true)));
        feed.record(many[FEED_MAX_GROUPS..].iter().map(|v| (v, true)));
        assert!(feed.take().is_none(), "over {FEED_MAX_GROUPS} groups");
    }
}
