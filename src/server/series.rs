//! Reading one series for a chart or the data API: raw values when they fit,
//! min/max/avg buckets when a numeric range holds more, the newest values
//! when a non-numeric one does. One function serves `/api/v1/.../series`
//! and the dashboard's charts, so both show the same data.
use super::db;
use super::db::resource::SeriesKey;
use super::store::Pool;
use crate::model::{DataType, SeriesData};

/// Fills `data`'s `total`, `downsampled`, `bucket_ms`, `truncated`, `points`
/// and `buckets` for [data.from, data.to] and `data.max_points`.
pub async fn read(
    pool: &Pool,
    key: &SeriesKey,
    data_type: DataType,
    data: &mut SeriesData,
) -> Result<(), sqlx::Error> {
    let (from, to, max_points) = (data.from, data.to, data.max_points);
    // One more than fits tells whether the range must be reduced, without
    // counting the range first.
    let points =
        db::resource::series_values(pool, key, data_type, from, to, max_points + 1, false).await?;
    if points.len() as i64 <= max_points {
        data.total = points.len() as i64;
        data.points = points;
    } else if data_type.is_numeric() {
        let width = bucket_width(from, to, max_points);
        let mut conn = pool.acquire().await?;
        data.buckets = db::rollup::series_buckets(&mut conn, key, from, to, width).await?;
        data.total = data.buckets.iter().map(|b| b.count).sum();
        data.downsampled = true;
        data.bucket_ms = Some(width);
    } else {
        data.points =
            db::resource::series_values(pool, key, data_type, from, to, max_points, true).await?;
        data.total = db::resource::series_count(pool, key, from, to).await?;
        data.truncated = true;
    }
    Ok(())
}

/// The width of the buckets that split [from, to] into at most
/// `max_points` buckets aligned from the epoch: the smallest such width in
/// whole milliseconds, but in whole minutes from a minute on and in whole
/// hours from an hour on, so that long ranges are answered from the
/// rollups (`db::rollup::Tier::for_width`).
pub fn bucket_width(from: i64, to: i64, max_points: i64) -> i64 {
    use super::db::rollup::{HOUR_MS, MINUTE_MS};
    let span = (to - from + 1).max(1);
    let max_points = max_points.max(1);
    let step = |w: i64| match w {
        w if w >= HOUR_MS => HOUR_MS,
        w if w >= MINUTE_MS => MINUTE_MS,
        _ => 1,
    };
    // Both operands are positive here.
    let div_ceil = |a: i64, b: i64| (a + b - 1) / b;
    let round_up = |w: i64| div_ceil(w, step(w)) * step(w);
    let buckets = |w: i64| to.div_euclid(w) - from.div_euclid(w) + 1;
    // Equal widths from `from` would need span/max_points; aligned from the
    // epoch the range can straddle one more bucket, so widen step by step.
    // With two or more points a width of span/(max_points-1) always fits,
    // a few steps on; one bucket may not fit at all (a range across the
    // epoch), so give up there at a width beyond the range's reach.
    let mut w = round_up(div_ceil(span, max_points).max(1));
    let limit = from.abs().max(to.abs()).saturating_add(span);
    while buckets(w) > max_points && w <= limit {
        w = round_up(w + step(w));
    }
    w
}

/// Whether a read series' value changed within its range: two raw values
/// that differ, or buckets whose values spread or differ.
pub fn changed(data: &SeriesData) -> bool {
    if data.downsampled {
        let mut buckets = data.buckets.iter();
        let Some(first) = buckets.next() else {
            return false;
        };
        first.min != first.max || buckets.any(|b| b.min != first.min || b.max != first.max)
    } else {
        let mut values = data.points.iter().map(|p| &p.value);
        let Some(first) = values.next() else {
            return false;
        };
        values.any(|v| v != first)
    }
}

/// Whether `path` is observed under one of `observed` (paths such as
/// `/3303/0/5700`, `/3303/0` or `/3303`, or a composite's comma-separated
/// list): an observation of an object or instance covers its resources.
pub fn covered_by(observed: &[String], path: &str) -> bool {
    observed.iter().flat_map(|o| o.split(',')).any(|o| {
        let o = o.trim().trim_end_matches('/');
        !o.is_empty() && (path == o || (path.starts_with(o) && path[o.len()..].starts_with('/')))
    })
}

#[cfg(test)]
mod tests {
    use super::{bucket_width, changed, covered_by};
    use crate::model::{Bucket, SeriesData, SeriesPoint};

    fn data(values: &[f64], buckets: &[(f64, f64)]) -> SeriesData {
        SeriesData {
            endpoint: "e".into(),
            path: "/3/0/9".into(),
            object_id: 3,
            instance_id: 0,
            resource_id: 9,
            resource_instance_id: None,
            name: "battery".into(),
            unit: None,
            data_type: crate::model::DataType::Integer,
            from: 0,
            to: 1,
            max_points: 10,
            total: 0,
            downsampled: !buckets.is_empty(),
            bucket_ms: None,
            truncated: false,
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| SeriesPoint {
                    t: i as i64,
                    received_at: i as i64,
                    value: (*v).into(),
                })
                .collect(),
            buckets: buckets
                .iter()
                .enumerate()
                .map(|(i, (min, max))| Bucket {
                    t: i as i64,
                    min: *min,
                    max: *max,
                    avg: (min + max) / 2.0,
                    count: 2,
                })
                .collect(),
        }
    }

    #[test]
    fn a_series_changed_when_its_values_differ() {
        assert!(!changed(&data(&[], &[])));
        assert!(!changed(&data(&[100.0], &[])));
        assert!(!changed(&data(&[100.0, 100.0, 100.0], &[])));
        assert!(changed(&data(&[100.0, 100.0, 99.0], &[])));
        assert!(!changed(&data(&[], &[(5.0, 5.0), (5.0, 5.0)])));
        assert!(changed(&data(&[], &[(5.0, 5.0), (5.0, 6.0)])));
        assert!(changed(&data(&[], &[(5.0, 6.0)])));
        assert!(changed(&data(&[], &[(5.0, 5.0), (6.0, 6.0)])));
    }

    #[test]
    fn an_observation_covers_its_resources() {
        let observed = vec![
            "/3303/0/5700".to_string(),
            "/5".to_string(),
            "/10300/".to_string(),
            "/3304/0/5700,/3304/0/5701".to_string(),
        ];
        assert!(covered_by(&observed, "/3303/0/5700"));
        assert!(!covered_by(&observed, "/3303/0/5701"));
        assert!(!covered_by(&observed, "/3303/0/57"));
        assert!(covered_by(&observed, "/5/0/3"));
        assert!(!covered_by(&observed, "/50/0/3"));
        assert!(covered_by(&observed, "/10300/1/5"));
        assert!(covered_by(&observed, "/3304/0/5701"));
        assert!(!covered_by(&["/".to_string()], "/3/0/9"));
        assert!(!covered_by(&[], "/3/0/9"));
    }

    /// The number of epoch-aligned buckets of `w` that [from, to] touches.
    fn touched(from: i64, to: i64, w: i64) -> i64 {
        to.div_euclid(w) - from.div_euclid(w) + 1
    }

    #[test]
    fn bucket_width_fits_and_is_the_smallest_in_its_unit() {
        let t0 = 1_700_000_000_123;
        for (span, max_points) in [
            (9_001, 5),
            (50_000, 10),
            (99_999_001, 1000),
            (30 * 86_400_000, 1440),
            (30 * 86_400_000, 720),
            (365 * 86_400_000, 1000),
            (120_000, 2),
            (59_999, 1),
            (1, 1),
        ] {
            for from in [t0, t0 - t0 % 3_600_000, 0] {
                let to = from + span - 1;
                let w = bucket_width(from, to, max_points);
                assert!(
                    touched(from, to, w) <= max_points,
                    "{from} {span} {max_points}: {w}"
                );
                let unit = if w >= 3_600_000 {
                    3_600_000
                } else if w >= 60_000 {
                    60_000
                } else {
                    1
                };
                assert_eq!(w % unit, 0, "{w}");
                // One unit narrower either splits the range into too many
                // buckets or drops below the unit's threshold.
                let narrower = w - unit;
                assert!(
                    narrower < unit || narrower < 1 || touched(from, to, narrower) > max_points,
                    "{from} {span} {max_points}: {w} is not the smallest"
                );
            }
        }
    }

    #[test]
    fn long_ranges_get_rollup_widths() {
        let (from, to) = (1_764_000_000_000, 1_764_000_000_000 + 30 * 86_400_000 - 1);
        // 30 days in 1440 buckets: 30 minutes, one more when unaligned.
        assert_eq!(bucket_width(from, to, 1440) % 60_000, 0);
        assert_eq!(bucket_width(0, 30 * 86_400_000 - 1, 1440), 30 * 60_000);
        assert_eq!(bucket_width(0, 30 * 86_400_000 - 1, 720), 3_600_000);
        // Sub-minute widths stay in milliseconds.
        assert_eq!(bucket_width(0, 9_999, 10), 1_000);
        assert_eq!(bucket_width(0, 9_999, 3), 3_334);
    }
}
