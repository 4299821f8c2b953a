//! Reading one series for a chart or the data API: raw values when they fit,
//! min/max/avg buckets when a numeric range holds more, the newest values
//! when a non-numeric one does. One function serves `/api/v1/.../series`
//! and the dashboard's charts, so both show the same data.
use super::db::resource::SeriesKey;
use super::db::{self, Pool};
use crate::model::{DataType, SeriesData};

/// The smallest whole-millisecond width that splits [from, to] into at
/// most `max_points` buckets.
pub fn bucket_width(from: i64, to: i64, max_points: i64) -> i64 {
    let span = to - from + 1;
    ((span + max_points - 1) / max_points).max(1)
}

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
        data.buckets = db::resource::series_buckets(pool, key, from, to, width).await?;
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
