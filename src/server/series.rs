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

#[cfg(test)]
mod tests {
    use super::bucket_width;

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
