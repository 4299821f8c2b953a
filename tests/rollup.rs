//! Rollups (`server::rollup`, `db::rollup`): the downsampled series read
//! from the minute and hour tiers equal the answer from the raw values, with
//! values before and after the watermark, on both databases.
mod common;

use axum::http::StatusCode;
use common::{payload, Backend, TestApp, TestDb};
use flownexus::model::Bucket;
use flownexus::server::db::resource::{self, series_buckets_raw, Columns, NewResource, SeriesKey};
use flownexus::server::db::{self, rollup, rollup::series_buckets};
use flownexus::server::rollup::{run_batch, run_once, Feed, RunValues, BATCH_IDS};
use flownexus::server::store::script::Script;
use flownexus::server::store::{self, Db, IdTable};
use sqlx::Row as _;
use std::collections::BTreeMap;

both_databases!(
    tiered_buckets_equal_raw_buckets_before_and_after_the_watermark,
    only_numeric_series_are_rolled_up_and_ingest_minute_counts_every_value,
    ids_stay_above_the_watermark_after_the_newest_values_are_deleted,
    tier_queries_read_by_key_and_find_new_values_by_id,
    the_writer_feeds_the_groups_the_database_would_give,
    fed_values_read_back_values_and_gaps_are_each_rolled_up_once,
    a_feed_the_watermark_already_passed_is_not_counted_again,
    a_run_cut_short_keeps_charts_exact_and_the_next_run_finishes_it,
);

/// Not on an hour, minute or second boundary, so ranges and buckets cut
/// tier buckets in two.
const T0: i64 = 1_764_001_234_567;
const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

/// A small deterministic generator (64-bit LCG), so a failure repeats.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }
}

async fn endpoint(db: &Db, name: &str) -> i64 {
    sqlx::query_scalar("INSERT INTO endpoint (name, created_at) VALUES ($1, 0) RETURNING id")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn type_id(db: &Db, object: i64, resource: i64) -> i64 {
    db::resource_type::find(&db.pool, object, resource)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// A value to store, before its id is allocated.
struct Row {
    key: SeriesKey,
    columns: Columns,
    received_at: i64,
}

/// Stores rows the way the ingest writer does: ids allocated inside the
/// writing transaction, multi-row inserts. Returns the ids.
async fn store(db: &Db, rows: &[Row]) -> Vec<i64> {
    let mut tx = db.pool.begin().await.unwrap();
    let ids = store::allocate_ids(&mut *tx, db.backend, IdTable::Resource, rows.len())
        .await
        .unwrap();
    let new: Vec<NewResource> = rows
        .iter()
        .zip(&ids)
        .map(|(r, &id)| NewResource {
            id,
            endpoint_id: r.key.endpoint_id,
            resource_type_id: r.key.resource_type_id,
            object_instance_id: r.key.instance_id,
            resource_instance_id: r.key.resource_instance_id,
            columns: r.columns.clone(),
            received_at: r.received_at,
            measured_at: r.received_at,
        })
        .collect();
    let mut insert = Script::new(db.backend);
    resource::insert_many(&mut insert, &new);
    insert.execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    ids
}

/// The numeric series the tests fill: a float series on two endpoints and
/// two object instances, an integer multi-instance resource (instances 1
/// and 2) and a TIME series (numeric for charts).
async fn numeric_series(db: &Db) -> Vec<(SeriesKey, &'static str)> {
    let (a, b) = (endpoint(db, "a").await, endpoint(db, "b").await);
    let temp = type_id(db, 3303, 5700).await;
    let volts = type_id(db, 3, 7).await;
    let time = type_id(db, 3, 13).await;
    let key = |endpoint_id, resource_type_id, instance_id, resource_instance_id| SeriesKey {
        endpoint_id,
        resource_type_id,
        instance_id,
        resource_instance_id,
    };
    vec![
        (key(a, temp, 0, None), "float"),
        (key(a, temp, 1, None), "float"),
        (key(b, temp, 0, None), "float"),
        (key(a, volts, 0, Some(1)), "int"),
        (key(a, volts, 0, Some(2)), "int"),
        (key(b, time, 0, None), "int"),
    ]
}

/// `n` values spread at random over the series and over [T0, T0 + span).
fn random_rows(rng: &mut Lcg, series: &[(SeriesKey, &str)], n: usize, span: i64) -> Vec<Row> {
    (0..n)
        .map(|_| {
            let (key, kind) = series[rng.below(series.len() as i64) as usize];
            let mut columns = Columns::default();
            match kind {
                "float" => columns.float_value = Some(rng.below(20_000) as f64 / 8.0 - 1000.0),
                _ => columns.int_value = Some(rng.below(1_000_000) - 500_000),
            }
            Row {
                key,
                columns,
                received_at: T0 + rng.below(span),
            }
        })
        .collect()
}

fn assert_same(tiered: &[Bucket], raw: &[Bucket], what: &str) {
    assert_eq!(tiered.len(), raw.len(), "{what}: bucket count");
    for (t, r) in tiered.iter().zip(raw) {
        assert_eq!(
            (t.t, t.count, t.min, t.max),
            (r.t, r.count, r.min, r.max),
            "{what}"
        );
        // Sums in another order differ in the last bits.
        assert!(
            (t.avg - r.avg).abs() <= 1e-9 * r.avg.abs().max(1.0),
            "{what}: avg {} vs {}",
            t.avg,
            r.avg
        );
    }
}

/// Compares the tiered and raw answers over ranges and widths that use the
/// hour tier, the minute tier and raw rows, with unaligned ends; returns
/// how many values the compared answers held, so callers see they were
/// not empty.
async fn compare_all(db: &Db, series: &[(SeriesKey, &str)], span: i64) -> i64 {
    let mut conn = db.pool.acquire().await.unwrap();
    let mut seen = 0;
    let ranges = [
        (T0, T0 + span),
        (T0 + 17 * MINUTE + 4_321, T0 + span - 3 * HOUR - 999),
        (T0 + 5 * HOUR + 1, T0 + 9 * HOUR + 59 * MINUTE),
        (T0 - HOUR, T0 + 2 * HOUR + 7),
    ];
    for (key, _) in series {
        for (from, to) in ranges {
            for width in [HOUR, 3 * HOUR, MINUTE, 7 * MINUTE, 10_000] {
                let what = format!("{key:?} [{from}, {to}] by {width}");
                let tiered = series_buckets(&mut conn, key, from, to, width)
                    .await
                    .unwrap();
                let raw = series_buckets_raw(&db.pool, key, from, to, width)
                    .await
                    .unwrap();
                assert_same(&tiered, &raw, &what);
                for b in &tiered {
                    assert_eq!(b.t % width, 0, "{what}: aligned from the epoch");
                    assert!(b.t + width > from && b.t <= to, "{what}: {b:?}");
                }
                seen += tiered.iter().map(|b| b.count).sum::<i64>();
            }
        }
    }
    seen
}

async fn tiered_buckets_equal_raw_buckets_before_and_after_the_watermark(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let series = numeric_series(db).await;
    let mut rng = Lcg(7);
    let span = 30 * HOUR;

    // Nothing rolled up yet: the tiers answer from raw rows alone.
    let first = random_rows(&mut rng, &series, 3_000, span);
    let ids = store(db, &first).await;
    assert_eq!(rollup::watermark(&db.pool).await.unwrap(), 0);
    assert!(compare_all(db, &series, span).await > 0);

    assert_eq!(run_once(db, &Feed::default()).await.unwrap(), 3_000);
    let mark = rollup::watermark(&db.pool).await.unwrap();
    assert_eq!(mark, *ids.iter().max().unwrap());
    assert_eq!(
        run_once(db, &Feed::default()).await.unwrap(),
        0,
        "a second run has nothing to do"
    );
    assert_eq!(rollup::watermark(&db.pool).await.unwrap(), mark);
    let hour_rows: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(value_count) AS BIGINT) FROM resource_rollup_hour")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(hour_rows, 3_000);
    assert!(compare_all(db, &series, span).await > 0);

    // Newer rows after the watermark, many of them in buckets that are
    // already rolled up: rollups and raw rows are merged.
    let second = random_rows(&mut rng, &series, 2_000, span);
    store(db, &second).await;
    assert!(compare_all(db, &series, span).await > 0);
    assert_eq!(run_once(db, &Feed::default()).await.unwrap(), 2_000);
    assert!(compare_all(db, &series, span).await > 0);

    // The tiers are really read: change a rolled-up value behind the
    // rollups' back and the tiered answer keeps the value rolled up.
    let (key, _) = series[0];
    let (from, to) = (T0, T0 + span);
    let mut conn = db.pool.acquire().await.unwrap();
    let before = series_buckets(&mut conn, &key, from, to, HOUR)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE resource SET float_value = 1e9 WHERE id = (SELECT MIN(id) FROM resource \
         WHERE endpoint_id = $1 AND resource_type_id = $2 AND object_instance_id = $3 \
         AND received_at >= $4 AND received_at < $5)",
    )
    .bind(key.endpoint_id)
    .bind(key.resource_type_id)
    .bind(key.instance_id)
    // Inside the whole hours of the range, which the tier answers.
    .bind(T0 / HOUR * HOUR + HOUR)
    .bind((T0 + span + 1) / HOUR * HOUR)
    .execute(&db.pool)
    .await
    .unwrap();
    let after = series_buckets(&mut conn, &key, from, to, HOUR)
        .await
        .unwrap();
    assert_eq!(before, after, "hour buckets come from the rollups");
    let raw = series_buckets_raw(&db.pool, &key, from, to, HOUR)
        .await
        .unwrap();
    assert!(raw.iter().any(|b| b.max == 1e9), "the raw rows did change");
}

async fn only_numeric_series_are_rolled_up_and_ingest_minute_counts_every_value(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let series = numeric_series(db).await;
    let ep = series[0].0.endpoint_id;
    let mut rng = Lcg(11);
    let span = 3 * HOUR;
    let mut rows = random_rows(&mut rng, &series, 500, span);
    // Text, boolean and opaque values beside them.
    for (object, res, columns) in [
        (
            3,
            0,
            Columns {
                text_value: Some("ACME".into()),
                ..Columns::default()
            },
        ),
        (
            5,
            4,
            Columns {
                int_value: Some(1),
                ..Columns::default()
            },
        ),
        (
            5,
            0,
            Columns {
                bytes_value: Some(vec![1, 2, 3]),
                ..Columns::default()
            },
        ),
    ] {
        let key = SeriesKey {
            endpoint_id: ep,
            resource_type_id: type_id(db, object, res).await,
            instance_id: 0,
            resource_instance_id: None,
        };
        for _ in 0..100 {
            rows.push(Row {
                key,
                columns: columns.clone(),
                received_at: T0 + rng.below(span),
            });
        }
    }
    store(db, &rows).await;
    assert_eq!(run_once(db, &Feed::default()).await.unwrap(), 800);

    for table in ["resource_rollup_minute", "resource_rollup_hour"] {
        let types: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT t.data_type FROM {table} r \
             JOIN resource_type t ON t.id = r.resource_type_id ORDER BY 1"
        ))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(types, ["FLOAT", "INTEGER", "TIME"], "{table}");
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT CAST(SUM(value_count) AS BIGINT) FROM {table}"
        ))
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(n, 500, "{table}");
    }

    // Every value counts in ingest_minute, whatever its type.
    let mut expected = BTreeMap::<i64, i64>::new();
    for r in &rows {
        *expected.entry(r.received_at / MINUTE * MINUTE).or_default() += 1;
    }
    let all = rollup::points_per_minute(&db.pool, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(all, expected.clone().into_iter().collect::<Vec<_>>());
    // A range: minutes starting in it.
    let (from, to) = (T0 + HOUR, T0 + 2 * HOUR);
    let part = rollup::points_per_minute(&db.pool, from, to).await.unwrap();
    let want: Vec<(i64, i64)> = expected.range(from..=to).map(|(&k, &v)| (k, v)).collect();
    assert!(!want.is_empty());
    assert_eq!(part, want);
}

/// SQLite hands out MAX(id) + 1 unless told otherwise: after the newest
/// values are deleted, new values must still get ids above the watermark,
/// or the rollups would never see them and charts would skip them.
async fn ids_stay_above_the_watermark_after_the_newest_values_are_deleted(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let series = numeric_series(db).await;
    let mut rng = Lcg(3);
    store(db, &random_rows(&mut rng, &series, 100, HOUR)).await;
    assert_eq!(run_once(db, &Feed::default()).await.unwrap(), 100);
    let mark = rollup::watermark(&db.pool).await.unwrap();
    sqlx::query("DELETE FROM resource")
        .execute(&db.pool)
        .await
        .unwrap();
    let ids = store(db, &random_rows(&mut rng, &series, 10, HOUR)).await;
    assert!(ids.iter().all(|&id| id > mark), "{ids:?} after {mark}");
    assert_eq!(run_once(db, &Feed::default()).await.unwrap(), 10);
    let n: i64 = sqlx::query_scalar("SELECT CAST(SUM(value_count) AS BIGINT) FROM ingest_minute")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 110);
}

/// The tiered query reads each tier by its primary key, the ends of the
/// range from resource_series_idx and the values after the watermark by
/// id; none of its parts scans `resource`.
async fn tier_queries_read_by_key_and_find_new_values_by_id(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let series = numeric_series(db).await;
    let mut rng = Lcg(5);
    store(db, &random_rows(&mut rng, &series, 20_000, 30 * HOUR)).await;
    run_once(db, &Feed::default()).await.unwrap();
    store(db, &random_rows(&mut rng, &series, 100, 30 * HOUR)).await;
    if backend == Backend::Postgres {
        sqlx::query("ANALYZE resource")
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let mark = rollup::watermark(&db.pool).await.unwrap();
    for tier in rollup::Tier::ALL {
        for (key, _) in &series[2..4] {
            let with_ri = key.resource_instance_id.is_some();
            let sql = rollup::tier_sql(tier, with_ri, mark);
            let explain = common::explain(backend, &sql);
            let (start, end) = tier.whole_buckets(T0, T0 + 30 * HOUR);
            let mut q = sqlx::query(&explain)
                .bind(key.endpoint_id)
                .bind(key.resource_type_id)
                .bind(key.instance_id)
                .bind(key.resource_instance_id.unwrap_or(-1))
                .bind(T0)
                .bind(T0 + 30 * HOUR)
                .bind(start)
                .bind(end)
                .bind(HOUR);
            if let Some(ri) = key.resource_instance_id {
                q = q.bind(ri);
            }
            let rows = q.fetch_all(&db.pool).await.unwrap();
            let plan = common::plan_lines(backend, &rows);
            let text = plan.join("\n");
            match backend {
                Backend::Sqlite => {
                    assert!(
                        text.contains("USING PRIMARY KEY (endpoint_id=?"),
                        "{tier:?}:\n{text}"
                    );
                    assert_eq!(
                        plan.iter()
                            .filter(|l| l.contains("USING INDEX resource_series_idx"))
                            .count(),
                        2,
                        "{tier:?}:\n{text}"
                    );
                    assert!(
                        text.contains("USING INTEGER PRIMARY KEY (rowid>?)"),
                        "{tier:?}:\n{text}"
                    );
                }
                Backend::Postgres => {
                    assert!(!text.contains("Seq Scan on resource "), "{tier:?}:\n{text}");
                    assert!(text.contains("resource_pkey"), "{tier:?}:\n{text}");
                }
            }
        }
    }
}

/// Posts, through the router and so through the ingest writer, the
/// contract's object 3 composite (strings, integers, a multi-instance
/// resource, a time) and a temperature for `devices` devices.
async fn ingest_devices(app: &TestApp, prefix: &str, devices: usize) {
    let composite: serde_json::Value =
        serde_json::from_str(&payload("composite__onboarding_read_object3.json")).unwrap();
    let single: serde_json::Value =
        serde_json::from_str(&payload("single__test_temperature_3303_0_5700.json")).unwrap();
    for d in 0..devices {
        let ep = format!("{prefix}-{d}");
        let mut body = composite.clone();
        body["ep"] = ep.clone().into();
        let (status, answer) = app
            .ingest("/leshan_api/resource/composite", body.to_string())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        for value in [d as f64 + 0.25, -(d as f64) - 0.5] {
            let mut body = single.clone();
            body["ep"] = ep.clone().into();
            body["val"]["value"] = value.to_string().into();
            let (status, answer) = app
                .ingest("/leshan_api/resource/single", body.to_string())
                .await;
            assert_eq!(status, StatusCode::CREATED, "{answer}");
        }
    }
}

type GroupRow = (rollup::GroupKey, Option<(f64, f64, f64)>, i64);

fn group_rows(groups: Vec<rollup::MinuteGroup>) -> Vec<GroupRow> {
    let mut rows: Vec<GroupRow> = groups
        .into_iter()
        .map(|g| (g.key(), g.numeric, g.value_count))
        .collect();
    rows.sort_by_key(|r| r.0);
    rows
}

/// Equal keys, counts, minima and maxima; sums equal but for the order in
/// which floats were added.
fn assert_same_groups(got: &[GroupRow], expected: &[GroupRow]) {
    assert_eq!(got.len(), expected.len(), "{got:?}\n{expected:?}");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!((g.0, g.2), (e.0, e.2), "{g:?} vs {e:?}");
        match (g.1, e.1) {
            (Some((gmin, gmax, gsum)), Some((emin, emax, esum))) => {
                assert_eq!((gmin, gmax), (emin, emax), "{g:?} vs {e:?}");
                assert!(
                    (gsum - esum).abs() <= 1e-9 * esum.abs().max(1.0),
                    "{g:?} vs {e:?}"
                );
            }
            (None, None) => {}
            _ => panic!("{g:?} vs {e:?}"),
        }
    }
}

/// Every stored value is rolled up, and only once: the watermark is at the
/// last id, the minute tier holds what `aggregate` makes of all the values,
/// and `ingest_minute` counts each of them.
async fn assert_every_value_rolled_up_once(db: &Db) {
    let max = resource::max_id(&db.pool).await.unwrap();
    assert_eq!(rollup::watermark(&db.pool).await.unwrap(), max);
    let numeric: Vec<_> = rollup::aggregate(&db.pool, 0, max)
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.numeric.is_some())
        .collect();
    let expected = group_rows(numeric);
    let stored: Vec<GroupRow> = sqlx::query(
        "SELECT endpoint_id, resource_type_id, object_instance_id, resource_instance_key, \
         bucket_start, min_value, max_value, sum_value, value_count FROM resource_rollup_minute \
         ORDER BY endpoint_id, resource_type_id, object_instance_id, resource_instance_key, \
         bucket_start",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let key = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        (key, Some((r.get(5), r.get(6), r.get(7))), r.get(8))
    })
    .collect();
    assert!(!stored.is_empty());
    assert_same_groups(&stored, &expected);
    let counted: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(value_count), 0) AS BIGINT) FROM ingest_minute",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let values: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM resource")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(counted, values);
}

/// What the ingest writer hands the rollup worker after each commit is what
/// the worker would read back from the database for those ids.
async fn the_writer_feeds_the_groups_the_database_would_give(backend: Backend) {
    let app = TestApp::new(backend).await;
    let db = &app.state.db;
    ingest_devices(&app, "fed", 5).await;
    let fed = app
        .state
        .rollup_feed
        .take()
        .expect("the writer fed the worker");
    let max = resource::max_id(&db.pool).await.unwrap();
    let first: i64 = sqlx::query_scalar("SELECT MIN(id) FROM resource")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!((fed.first_id(), fed.last_id()), (first, max));
    assert!(fed.gaps().is_empty(), "{:?}", fed.gaps());
    let read_back = rollup::aggregate(&db.pool, 0, max).await.unwrap();
    let values: i64 = read_back.iter().map(|g| g.value_count).sum();
    assert!(values > 5 * 20, "{values}");
    let expected = RunValues::from_groups(read_back);
    assert!(!expected.groups.is_empty());
    let fed = fed.into_run_values();
    assert_eq!(fed.minutes, expected.minutes);
    assert_same_groups(&group_rows(fed.groups), &group_rows(expected.groups));
}

/// One run rolls up the values stored before the feed started (read back),
/// the fed values, and values between them that another writer stored (a
/// gap in the feed, read back): each once.
async fn fed_values_read_back_values_and_gaps_are_each_rolled_up_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let db = &app.state.db;
    ingest_devices(&app, "before", 3).await;
    // As if the server had restarted: the feed has none of those values.
    app.state.rollup_feed.restart_above(0);
    ingest_devices(&app, "fed", 3).await;
    // Stored by another writer than this server's: not in the feed.
    let other = endpoint(db, "other-writer").await;
    let key = SeriesKey {
        endpoint_id: other,
        resource_type_id: type_id(db, 3303, 5700).await,
        instance_id: 0,
        resource_instance_id: None,
    };
    let now = store::now_ms();
    let rows: Vec<Row> = [1.5, -2.25]
        .into_iter()
        .map(|v| Row {
            key,
            columns: Columns {
                float_value: Some(v),
                ..Columns::default()
            },
            received_at: now,
        })
        .collect();
    store(db, &rows).await;
    ingest_devices(&app, "fed-again", 1).await;
    let stored = app.count("resource").await;
    assert_eq!(
        run_once(db, &app.state.rollup_feed).await.unwrap() as i64,
        stored
    );
    assert_every_value_rolled_up_once(db).await;
    // The next run rolls up only what came since.
    ingest_devices(&app, "later", 2).await;
    let later = app.count("resource").await - stored;
    assert_eq!(
        run_once(db, &app.state.rollup_feed).await.unwrap() as i64,
        later
    );
    assert_every_value_rolled_up_once(db).await;
}

/// Values another worker (a second server on the same database) rolled up
/// from the database are still in this server's feed: they are not added
/// again, and the feed goes on above them.
async fn a_feed_the_watermark_already_passed_is_not_counted_again(backend: Backend) {
    let app = TestApp::new(backend).await;
    let db = &app.state.db;
    ingest_devices(&app, "fed", 2).await;
    let max = resource::max_id(&db.pool).await.unwrap();
    while run_batch(db, BATCH_IDS, max).await.unwrap().is_some() {}
    assert_eq!(run_once(db, &app.state.rollup_feed).await.unwrap(), 0);
    assert_every_value_rolled_up_once(db).await;
    let before = app.count("resource").await;
    ingest_devices(&app, "after", 1).await;
    let after = app.count("resource").await;
    assert_eq!(
        run_once(db, &app.state.rollup_feed).await.unwrap() as i64,
        after - before
    );
    assert_every_value_rolled_up_once(db).await;
}

/// A run writes a few endpoints per transaction. Cut short between them
/// (the server stopped): charts stay exact, on both sides of where it
/// stopped; new values get ids above its range; and the next run finishes
/// it, each value counted once.
async fn a_run_cut_short_keeps_charts_exact_and_the_next_run_finishes_it(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let series = numeric_series(db).await;
    let mut rng = Lcg(11);
    let span = 30 * HOUR;
    store(db, &random_rows(&mut rng, &series, 2_000, span)).await;
    let upto = resource::max_id(&db.pool).await.unwrap();
    let groups = rollup::aggregate(&db.pool, 0, upto).await.unwrap();
    let first_endpoint = groups.iter().map(|g| g.endpoint_id).min().unwrap();
    let (part, rest): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .partition(|g| g.endpoint_id <= first_endpoint);
    assert!(!part.is_empty() && !rest.is_empty());
    assert!(rollup::claim(&db.pool, 0, upto).await.unwrap());
    assert!(
        !rollup::claim(&db.pool, 0, upto).await.unwrap(),
        "one run at a time"
    );
    let mut tx = db.pool.begin().await.unwrap();
    assert!(rollup::advance(&mut *tx, upto, -1, first_endpoint)
        .await
        .unwrap());
    rollup::apply_tiers(&mut *tx, db.backend, &part)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        !rollup::advance(&db.pool, upto, -1, first_endpoint)
            .await
            .unwrap(),
        "a part is written once"
    );
    let state = rollup::state(&db.pool).await.unwrap();
    assert_eq!(state.mark_for(first_endpoint), upto);
    assert_eq!(state.mark_for(first_endpoint + 1), 0);
    assert!(compare_all(db, &series, span).await > 0);

    let ids = store(db, &random_rows(&mut rng, &series, 10, span)).await;
    assert!(ids.iter().all(|&id| id > upto), "{ids:?} after {upto}");
    assert!(compare_all(db, &series, span).await > 0);

    assert_eq!(run_once(db, &Feed::default()).await.unwrap(), 2_010);
    assert_every_value_rolled_up_once(db).await;
    assert!(compare_all(db, &series, span).await > 0);
}
