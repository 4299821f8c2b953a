//! SQL for the rollup tables (migration 20261125000001): per-minute and
//! per-hour min/max/sum/count of every numeric series
//! (`resource_rollup_minute`, `resource_rollup_hour`), the number of stored
//! values of every type per minute (`ingest_minute`) and the watermark
//! (`rollup_state`), the last resource id rolled up, with the progress of
//! the run that is writing (`RollupState`).
//!
//! Why a watermark on ids works: `resource` rows are inserted only by the
//! ingest writer, one task committing one transaction at a time, with ids
//! from `store::allocate_ids` taken inside that transaction (on SQLite under its
//! write lock, on PostgreSQL from the identity sequence). So ids grow in
//! commit order: once id N is committed, every smaller id that will ever
//! exist is committed too, and the rows up to the largest committed id can
//! be rolled up once and for all. (On SQLite `allocate_ids` never hands out
//! an id at or below the watermark, even after deletes emptied the top of
//! the table.)
use super::resource::{series_buckets_raw, SeriesKey};
use crate::model::{Bucket, DataType};
use crate::server::store;
use crate::server::store::Backend;
use sqlx::{Any, AnyConnection, Executor, Row};

/// A rollup table: the width of its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Minute,
    Hour,
}

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;

impl Tier {
    pub const ALL: [Tier; 2] = [Tier::Minute, Tier::Hour];

    pub fn width_ms(self) -> i64 {
        match self {
            Tier::Minute => MINUTE_MS,
            Tier::Hour => HOUR_MS,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Tier::Minute => "resource_rollup_minute",
            Tier::Hour => "resource_rollup_hour",
        }
    }

    /// The coarsest tier whose buckets tile buckets of `width` ms aligned
    /// from the epoch, if any.
    pub fn for_width(width: i64) -> Option<Tier> {
        [Tier::Hour, Tier::Minute]
            .into_iter()
            .find(|t| width > 0 && width % t.width_ms() == 0)
    }

    /// The whole tier buckets inside [from, to], as the half-open range
    /// [first bucket start, end of the last one); empty (start >= end) when
    /// no whole bucket fits.
    pub fn whole_buckets(self, from: i64, to: i64) -> (i64, i64) {
        let w = self.width_ms();
        let start = from.div_euclid(w) * w + if from.rem_euclid(w) == 0 { 0 } else { w };
        let end = (to + 1).div_euclid(w) * w;
        (start, end)
    }
}

/// `'INTEGER', 'FLOAT', ...`: the data types whose series are downsampled
/// (`DataType::is_numeric`), so the rollups hold exactly what charts bucket.
fn numeric_types() -> String {
    DataType::ALL
        .iter()
        .filter(|t| t.is_numeric())
        .map(|t| format!("'{}'", t.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The value of a numeric row as the charts read it.
const VALUE: &str = "CAST(COALESCE(float_value, int_value) AS DOUBLE PRECISION)";

/// The last resource id rolled up.
pub async fn watermark<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT last_resource_id FROM rollup_state WHERE id = 1")
        .fetch_one(executor)
        .await
}

/// Where the rollups stand (migration 20261201000001). A run writes its
/// range (watermark, pending_upto] endpoint by endpoint, in short
/// transactions, and then moves the watermark; meanwhile the endpoints up
/// to `done_endpoint_id` have their values up to `pending_upto` rolled up.
/// Every change makes a state not seen before (the watermark only grows,
/// `done_endpoint_id` only grows within a run), so a reader that finds the
/// same state before and after a query knew the state during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupState {
    pub watermark: i64,
    pub pending_upto: Option<i64>,
    pub done_endpoint_id: i64,
}

impl RollupState {
    /// The last resource id in the rollups for the series of `endpoint_id`.
    pub fn mark_for(&self, endpoint_id: i64) -> i64 {
        match self.pending_upto {
            Some(upto) if endpoint_id <= self.done_endpoint_id => upto,
            _ => self.watermark,
        }
    }
}

pub async fn state<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<RollupState, sqlx::Error> {
    let row = sqlx::query(
        "SELECT last_resource_id, pending_upto, done_endpoint_id FROM rollup_state WHERE id = 1",
    )
    .fetch_one(executor)
    .await?;
    Ok(RollupState {
        watermark: row.try_get(0)?,
        pending_upto: row.try_get(1)?,
        done_endpoint_id: row.try_get(2)?,
    })
}

/// Starts a run over (after, upto]; false when the watermark is no longer
/// at `after` or a run is pending (another worker got there first). The
/// statement takes the write lock (SQLite) or the row lock (PostgreSQL),
/// so concurrent workers cannot claim one range twice.
pub async fn claim<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    after: i64,
    upto: i64,
) -> Result<bool, sqlx::Error> {
    swap_state(
        executor,
        "UPDATE rollup_state SET pending_upto = $2, done_endpoint_id = -1 \
         WHERE id = 1 AND last_resource_id = $1 AND pending_upto IS NULL",
        &[after, upto],
    )
    .await
}

/// Records that the pending run's values of the endpoints after `from` up
/// to `to` are in the rollups; false when the state is no longer at
/// `from` for `upto`. Run first in the transaction that adds them.
pub async fn advance<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    upto: i64,
    from: i64,
    to: i64,
) -> Result<bool, sqlx::Error> {
    swap_state(
        executor,
        "UPDATE rollup_state SET done_endpoint_id = $3 \
         WHERE id = 1 AND pending_upto = $1 AND done_endpoint_id = $2",
        &[upto, from, to],
    )
    .await
}

/// Ends the pending run: the watermark moves to `upto`. False when that
/// run is not pending. Run first in the transaction that counts the run's
/// values in `ingest_minute`.
pub async fn finish<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    after: i64,
    upto: i64,
) -> Result<bool, sqlx::Error> {
    swap_state(
        executor,
        "UPDATE rollup_state SET last_resource_id = $2, pending_upto = NULL, \
         done_endpoint_id = -1 WHERE id = 1 AND last_resource_id = $1 AND pending_upto = $2",
        &[after, upto],
    )
    .await
}

/// Runs one compare-and-swap UPDATE of the state row: true when the row
/// was in the expected state (and is now changed), false when another run
/// changed it first.
async fn swap_state<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    sql: &'static str,
    binds: &[i64],
) -> Result<bool, sqlx::Error> {
    let mut query = sqlx::query(sql);
    for value in binds {
        query = query.bind(*value);
    }
    Ok(query.execute(executor).await?.rows_affected() == 1)
}

/// The values of one series in one minute, or (`numeric` false) the count
/// of the values of a series that is not rolled up.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteGroup {
    pub endpoint_id: i64,
    pub resource_type_id: i64,
    pub object_instance_id: i64,
    pub resource_instance_key: i64,
    pub bucket_start: i64,
    /// min, max and sum of the numeric values; None for other types.
    pub numeric: Option<(f64, f64, f64)>,
    pub value_count: i64,
}

/// A group's series and minute: endpoint, resource type, object instance,
/// resource instance key and the minute's start.
pub type GroupKey = (i64, i64, i64, i64, i64);

impl MinuteGroup {
    pub fn key(&self) -> GroupKey {
        (
            self.endpoint_id,
            self.resource_type_id,
            self.object_instance_id,
            self.resource_instance_key,
            self.bucket_start,
        )
    }
}

/// Reads the resource rows with id in (after, upto] as per-series,
/// per-minute groups. A plain read: on SQLite it does not take the write
/// lock, so ingest commits while it runs (inside the write transaction,
/// every ingest commit would wait for it in SQLite's busy handler, which
/// sleeps in steps of milliseconds).
pub async fn aggregate<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    after: i64,
    upto: i64,
) -> Result<Vec<MinuteGroup>, sqlx::Error> {
    let numeric = numeric_types();
    let v = format!(
        "CASE WHEN resource_type_id IN (SELECT id FROM resource_type WHERE data_type IN ({numeric})) \
         THEN {VALUE} END"
    );
    let sql = format!(
        "SELECT endpoint_id, resource_type_id, object_instance_id, \
         COALESCE(resource_instance_id, -1) AS rik, measured_at / {MINUTE_MS} * {MINUTE_MS} AS minute, \
         MIN({v}) AS mn, MAX({v}) AS mx, SUM({v}) AS s, COUNT({v}) AS nv, COUNT(*) AS n \
         FROM resource WHERE id > $1 AND id <= $2 GROUP BY 1, 2, 3, 4, 5"
    );
    sqlx::query(&sql)
        .bind(after)
        .bind(upto)
        .fetch_all(executor)
        .await?
        .iter()
        .map(|row| {
            let numeric_values: i64 = row.try_get("nv")?;
            let numeric = if numeric_values > 0 {
                Some((
                    row.try_get::<f64, _>("mn")?,
                    row.try_get::<f64, _>("mx")?,
                    row.try_get::<f64, _>("s")?,
                ))
            } else {
                None
            };
            Ok(MinuteGroup {
                endpoint_id: row.try_get(0)?,
                resource_type_id: row.try_get(1)?,
                object_instance_id: row.try_get(2)?,
                resource_instance_key: row.try_get(3)?,
                bucket_start: row.try_get(4)?,
                numeric,
                value_count: row.try_get("n")?,
            })
        })
        .collect()
}

/// The rollup rows of one tier for `groups`: (series key, bucket start) ->
/// (min, max, sum, count), in key order (the order rows are locked in).
type TierRows = std::collections::BTreeMap<(i64, i64, i64, i64, i64), (f64, f64, f64, i64)>;

fn tier_rows(groups: &[MinuteGroup], tier: Tier) -> TierRows {
    let w = tier.width_ms();
    let mut rows = TierRows::new();
    for g in groups {
        let Some((mn, mx, sum)) = g.numeric else {
            continue;
        };
        let key = (
            g.endpoint_id,
            g.resource_type_id,
            g.object_instance_id,
            g.resource_instance_key,
            g.bucket_start.div_euclid(w) * w,
        );
        let e = rows.entry(key).or_insert((mn, mx, 0.0, 0));
        e.0 = e.0.min(mn);
        e.1 = e.1.max(mx);
        e.2 += sum;
        e.3 += g.value_count;
    }
    rows
}

/// Adds `groups` (from [`aggregate`]) to both tiers. Run in the
/// transaction that [`advance`]s past their endpoints: only upserts of the
/// aggregated rows, so the write lock is held briefly.
pub async fn apply_tiers<C>(
    conn: &mut C,
    backend: Backend,
    groups: &[MinuteGroup],
) -> Result<(), sqlx::Error>
where
    for<'e> &'e mut C: Executor<'e, Database = Any>,
{
    let (least, greatest) = match backend {
        Backend::Sqlite => ("min", "max"),
        Backend::Postgres => ("LEAST", "GREATEST"),
    };
    for tier in Tier::ALL {
        let t = tier.table();
        let rows: Vec<_> = tier_rows(groups, tier).into_iter().collect();
        for range in store::chunks(rows.len()) {
            let sql = format!(
                "INSERT INTO {t} (endpoint_id, resource_type_id, object_instance_id, \
                 resource_instance_key, bucket_start, min_value, max_value, sum_value, value_count) \
                 VALUES {} ON CONFLICT (endpoint_id, resource_type_id, object_instance_id, \
                 resource_instance_key, bucket_start) DO UPDATE SET \
                 min_value = {least}({t}.min_value, excluded.min_value), \
                 max_value = {greatest}({t}.max_value, excluded.max_value), \
                 sum_value = {t}.sum_value + excluded.sum_value, \
                 value_count = {t}.value_count + excluded.value_count",
                store::values_list(backend, 9, range.len())
            );
            let mut query = sqlx::query(&sql).persistent(store::keep_prepared(range.len()));
            for ((e, ty, i, rik, b), (mn, mx, sum, n)) in &rows[range] {
                query = query
                    .bind(e)
                    .bind(ty)
                    .bind(i)
                    .bind(rik)
                    .bind(b)
                    .bind(mn)
                    .bind(mx)
                    .bind(sum)
                    .bind(n);
            }
            query.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// The values of `groups` per minute, as `apply_minutes` takes them.
pub fn minute_counts(groups: &[MinuteGroup]) -> Vec<(i64, i64)> {
    let mut per_minute = std::collections::BTreeMap::<i64, i64>::new();
    for g in groups {
        *per_minute.entry(g.bucket_start).or_default() += g.value_count;
    }
    per_minute.into_iter().collect()
}

/// Adds a run's values per minute (`minute_counts`) to `ingest_minute`;
/// returns how many values that was. Run in the transaction that
/// [`finish`]es the run, so the counts go with the watermark.
pub async fn apply_minutes<C>(
    conn: &mut C,
    backend: Backend,
    minutes: &[(i64, i64)],
) -> Result<u64, sqlx::Error>
where
    for<'e> &'e mut C: Executor<'e, Database = Any>,
{
    for range in store::chunks(minutes.len()) {
        let sql = format!(
            "INSERT INTO ingest_minute (bucket_start, value_count) VALUES {} \
             ON CONFLICT (bucket_start) DO UPDATE SET \
             value_count = ingest_minute.value_count + excluded.value_count",
            store::values_list(backend, 2, range.len())
        );
        let mut query = sqlx::query(&sql).persistent(store::keep_prepared(range.len()));
        for (minute, n) in &minutes[range] {
            query = query.bind(minute).bind(n);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(minutes.iter().map(|(_, n)| *n as u64).sum())
}

/// Deletes the rollup and ingest_minute buckets that ended before `cutoff`
/// (a bucket holding values on both sides of it stays until the next run);
/// returns how many rows went.
pub async fn delete_older_than(pool: &store::Pool, cutoff: i64) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    let tables = Tier::ALL
        .iter()
        .map(|t| (t.table(), t.width_ms()))
        .chain([("ingest_minute", MINUTE_MS)]);
    for (table, width) in tables {
        let done = sqlx::query(&format!("DELETE FROM {table} WHERE bucket_start <= $1"))
            .bind(cutoff - width)
            .execute(pool)
            .await?;
        deleted += done.rows_affected();
    }
    Ok(deleted)
}

/// Stored values of every type per minute in [from_ms, to_ms], as
/// (minute start, count), oldest first; minutes without values are left
/// out. Counts values up to the rollup watermark, which trails ingest by
/// up to ten seconds (`server::rollup::INTERVAL`).
pub async fn points_per_minute<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query(
        "SELECT bucket_start, value_count FROM ingest_minute \
         WHERE bucket_start BETWEEN $1 AND $2 ORDER BY bucket_start",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(executor)
    .await?
    .iter()
    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
    .collect()
}

/// The SQL of [`tier_buckets`]: `$1..$3` the series, `$4` its
/// resource_instance_key, `$5`/`$6` the range, `$7`/`$8` the whole tier
/// buckets, `$9` the width, then the resource instance id if set, then the
/// watermark.
pub fn tier_sql(tier: Tier, resource_instance: bool, mark: i64) -> String {
    let table = tier.table();
    let ri = if resource_instance {
        "= $10"
    } else {
        "IS NULL"
    };
    // The values not yet rolled up are found by id (the primary key) and
    // then filtered: the unary `+` keeps both databases from answering that
    // part from resource_series_idx, which would read the series' whole
    // range instead of the few rows after the watermark.
    let raw = |range: &str| {
        format!(
            "SELECT measured_at / $9 AS k, {VALUE} AS mn, {VALUE} AS mx, {VALUE} AS s, 1 AS c \
             FROM resource WHERE endpoint_id = $1 AND resource_type_id = $2 \
             AND object_instance_id = $3 AND resource_instance_id {ri} AND {range}"
        )
    };
    let sql = format!(
        "SELECT k, MIN(mn) AS min_v, MAX(mx) AS max_v, SUM(s) AS sum_v, \
         CAST(SUM(c) AS BIGINT) AS n FROM ( \
         SELECT bucket_start / $9 AS k, min_value AS mn, max_value AS mx, sum_value AS s, \
         value_count AS c FROM {table} WHERE endpoint_id = $1 AND resource_type_id = $2 \
         AND object_instance_id = $3 AND resource_instance_key = $4 \
         AND bucket_start >= $7 AND bucket_start < $8 \
         UNION ALL {} UNION ALL {} UNION ALL \
         SELECT measured_at / $9, {VALUE}, {VALUE}, {VALUE}, 1 FROM resource \
         WHERE id > $11 AND +endpoint_id = $1 AND +resource_type_id = $2 \
         AND +object_instance_id = $3 AND +resource_instance_id {ri} \
         AND +measured_at >= $7 AND +measured_at < $8 \
         ) AS u GROUP BY k ORDER BY k",
        raw("measured_at >= $5 AND measured_at < $7"),
        raw("measured_at >= $8 AND measured_at <= $6"),
    );
    // The watermark is written into the SQL rather than bound: PostgreSQL's
    // generic plan for a cached statement estimates `id > $n` as a third of
    // the table and scans all of it (2-3 s on 10 million values); with the
    // number in the text it sees how few rows lie past it. It is an integer
    // we read ourselves, never client input.
    sql.replace("$11", &mark.to_string())
}

/// The numeric series in [from, to] as min/max/avg/count per bucket of
/// `width` ms aligned from the epoch (bucket k covers
/// [k*width, (k+1)*width)); empty buckets are left out. Widths of whole
/// hours read the hour rollups, of whole minutes the minute rollups,
/// with the values the rollups cannot answer (partial
/// tier buckets at the ends of the range, values after the watermark)
/// read from `resource`: the answer equals [`series_buckets_raw`]'s.
/// Several statements, hence a connection rather than any executor.
pub async fn series_buckets(
    conn: &mut AnyConnection,
    key: &SeriesKey,
    from: i64,
    to: i64,
    width: i64,
) -> Result<Vec<Bucket>, sqlx::Error> {
    let Some(tier) = Tier::for_width(width) else {
        return series_buckets_raw(&mut *conn, key, from, to, width).await;
    };
    let (start, end) = tier.whole_buckets(from, to);
    if start >= end {
        return series_buckets_raw(&mut *conn, key, from, to, width).await;
    }
    // The rollups and their state must be read as of one moment, or a
    // part committed in between would count twice or not at all. The
    // state never comes back to an earlier one, so if it is the same
    // before and after the query, it was that during the query too. A
    // run moves it every few milliseconds while it writes; after a few
    // tries the raw rows answer.
    for _ in 0..3 {
        let before = state(&mut *conn).await?;
        let mark = before.mark_for(key.endpoint_id);
        let buckets = tier_buckets(&mut *conn, tier, key, from, to, width, mark).await?;
        if state(&mut *conn).await? == before {
            return Ok(buckets);
        }
    }
    tracing::debug!("rollup watermark kept moving; series buckets from raw values");
    series_buckets_raw(&mut *conn, key, from, to, width).await
}

/// Buckets of `width` ms (a multiple of the tier's width), aligned from the
/// epoch, of one numeric series in [from, to], given the watermark `mark`:
/// the tier's rows for the whole tier buckets inside the range, plus from
/// `resource` the values in the partial tier buckets at both ends and the
/// values not yet rolled up (id > mark). Together every value in the range
/// counts exactly once. The caller checks that the watermark did not move
/// while this ran (`series_buckets`).
#[allow(clippy::too_many_arguments)]
pub async fn tier_buckets<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    tier: Tier,
    key: &SeriesKey,
    from: i64,
    to: i64,
    width: i64,
    mark: i64,
) -> Result<Vec<Bucket>, sqlx::Error> {
    let (start, end) = tier.whole_buckets(from, to);
    let sql = tier_sql(tier, key.resource_instance_id.is_some(), mark);
    // The text changes with every watermark: do not fill the statement cache.
    let mut q = sqlx::query(&sql)
        .persistent(false)
        .bind(key.endpoint_id)
        .bind(key.resource_type_id)
        .bind(key.instance_id)
        .bind(key.resource_instance_id.unwrap_or(-1))
        .bind(from)
        .bind(to)
        .bind(start)
        .bind(end)
        .bind(width);
    if let Some(ri) = key.resource_instance_id {
        q = q.bind(ri);
    }
    q.fetch_all(executor)
        .await?
        .iter()
        .map(|row| {
            let k: i64 = row.try_get("k")?;
            let sum: f64 = row.try_get("sum_v")?;
            let count: i64 = row.try_get("n")?;
            Ok(Bucket {
                t: k * width,
                min: row.try_get("min_v")?,
                max: row.try_get("max_v")?,
                avg: sum / count as f64,
                count,
            })
        })
        .collect()
}
