//! Charts as SVG text, drawn by plotters. One pure function: the server
//! renders it into the first paint and the browser calls the same function
//! to redraw when live values arrive.
use crate::model::{Point, Series};
use plotters::prelude::*;

/// Line colours for series sharing a chart.
const PALETTE: [RGBColor; 6] = [
    RGBColor(37, 99, 235),
    RGBColor(220, 38, 38),
    RGBColor(22, 163, 74),
    RGBColor(217, 119, 6),
    RGBColor(147, 51, 234),
    RGBColor(8, 145, 178),
];

/// The SVG stroke attribute of the n-th series' line, as plotters writes it.
pub fn series_stroke(n: usize) -> String {
    let RGBColor(r, g, b) = PALETTE[n % PALETTE.len()];
    format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"")
}

/// How many points a live chart keeps in memory per series.
pub const MAX_LIVE_POINTS: usize = 2_000;

/// Appends a live point, keeping the series time-ordered and bounded.
pub fn push_point(points: &mut Vec<Point>, point: Point) {
    if points.last().is_some_and(|last| last.t > point.t) {
        let at = points.partition_point(|p| p.t <= point.t);
        points.insert(at, point);
    } else {
        points.push(point);
    }
    if points.len() > MAX_LIVE_POINTS {
        let excess = points.len() - MAX_LIVE_POINTS;
        points.drain(..excess);
    }
}

/// Margins of the plot inside the SVG (plotters' margin plus label areas),
/// shared by the drawing and the hover read-out.
const MARGIN: u32 = 12;
const X_LABEL_AREA: u32 = 28;
const Y_LABEL_AREA: u32 = 56;

/// The time and value ranges covering all series, padded so that a single
/// point or a flat line still has a visible extent.
fn bounds(series: &[Series]) -> Option<((i64, i64), (f64, f64))> {
    let mut points = series.iter().flat_map(|s| {
        s.points.iter().copied().chain(
            s.bands
                .iter()
                .flat_map(|b| [Point { t: b.t, v: b.min }, Point { t: b.t, v: b.max }]),
        )
    });
    let first = points.next()?;
    let (mut t0, mut t1, mut v0, mut v1) = (first.t, first.t, first.v, first.v);
    for p in points {
        t0 = t0.min(p.t);
        t1 = t1.max(p.t);
        v0 = v0.min(p.v);
        v1 = v1.max(p.v);
    }
    if t1 - t0 < 60_000 {
        t0 -= 30_000;
        t1 += 30_000;
    }
    let pad = if (v1 - v0).abs() < f64::EPSILON {
        v0.abs().max(1.0) * 0.05
    } else {
        (v1 - v0) * 0.08
    };
    Some(((t0, t1), (v0 - pad, v1 + pad)))
}

fn time_label(ms: i64, span_ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    if span_ms > 2 * 86_400_000 {
        t.format("%m-%d %H:%M").to_string()
    } else if span_ms > 600_000 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

/// The series' point nearest to horizontal position `x` (in SVG units) of
/// a chart `width` wide drawn by `render_svg`: (series index, point). For
/// the hover read-out, which runs in the browser on the same layout.
pub fn nearest_point(series: &[Series], width: u32, x: f64) -> Option<(usize, Point)> {
    let ((t0, t1), _) = bounds(series)?;
    let left = f64::from(MARGIN + Y_LABEL_AREA);
    let right = f64::from(width.saturating_sub(MARGIN));
    if right <= left {
        return None;
    }
    let frac = ((x - left) / (right - left)).clamp(0.0, 1.0);
    let t = t0 as f64 + frac * (t1 - t0) as f64;
    series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            // Points are time-ordered: the neighbours of t are the candidates.
            let at = s.points.partition_point(|p| (p.t as f64) < t);
            [at.checked_sub(1), Some(at)]
                .into_iter()
                .flatten()
                .filter_map(move |k| s.points.get(k).map(|p| (i, *p)))
        })
        .min_by(|a, b| {
            let da = (a.1.t as f64 - t).abs();
            let db = (b.1.t as f64 - t).abs();
            da.total_cmp(&db)
        })
}

/// Renders the series as an SVG document of the given size (UTC time axis).
pub fn render_svg(series: &[Series], width: u32, height: u32) -> String {
    let mut svg = String::new();
    if let Err(e) = draw(&mut svg, series, width, height) {
        tracing::warn!(error = %e, "chart drawing failed");
        return empty_svg(width, height, "Chart unavailable");
    }
    svg
}

fn empty_svg(width: u32, height: u32, text: &str) -> String {
    format!(
        r##"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><text x="50%" y="50%" text-anchor="middle" fill="#6b7280" font-family="sans-serif" font-size="14">{text}</text></svg>"##
    )
}

fn draw(
    svg: &mut String,
    series: &[Series],
    width: u32,
    height: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let Some(((t0, t1), (v0, v1))) = bounds(series) else {
        *svg = empty_svg(width, height, "No data yet");
        return Ok(());
    };
    let unit = series
        .iter()
        .find_map(|s| s.unit.clone())
        .unwrap_or_default();
    {
        let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(t0..t1, v0..v1)?;
        let span = t1 - t0;
        let x_fmt = |t: &i64| time_label(*t, span);
        let y_fmt = |v: &f64| format!("{v:.2}");
        chart
            .configure_mesh()
            .light_line_style(RGBColor(241, 245, 249))
            .bold_line_style(RGBColor(226, 232, 240))
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .y_desc(unit)
            .label_style(("sans-serif", 12).into_font().color(&RGBColor(71, 85, 105)))
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            // Downsampled: the min-max spread of each bucket behind its average.
            if s.bands.len() > 1 {
                let outline: Vec<(i64, f64)> = s
                    .bands
                    .iter()
                    .map(|b| (b.t, b.max))
                    .chain(s.bands.iter().rev().map(|b| (b.t, b.min)))
                    .collect();
                chart.draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.15).filled(),
                )))?;
            }
            let line = s.points.iter().map(|p| (p.t, p.v));
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(if series.len() > 1 {
                    s.path.to_string()
                } else {
                    s.name.clone()
                })
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            if s.points.len() <= 60 {
                chart.draw_series(
                    s.points
                        .iter()
                        .map(|p| Circle::new((p.t, p.v), 3, color.filled())),
                )?;
            }
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(203, 213, 225))
                .draw()?;
        }
        root.present()?;
    }
    Ok(())
}

/// A sparkline: the shape of a count over time, without axes (for the
/// overview's cards). Same pure function on the server and in the browser.
pub fn render_sparkline(points: &[(i64, i64)], width: u32, height: u32) -> String {
    let mut svg = String::new();
    if let Err(e) = draw_sparkline(&mut svg, points, width, height) {
        tracing::warn!(error = %e, "sparkline drawing failed");
        return empty_svg(width, height, "");
    }
    svg
}

fn draw_sparkline(
    svg: &mut String,
    points: &[(i64, i64)],
    width: u32,
    height: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        *svg = empty_svg(width, height, "");
        return Ok(());
    };
    let t0 = first.0;
    let t1 = last.0.max(t0 + 1);
    let top = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64 * 1.1;
    {
        let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(2)
            .build_cartesian_2d(t0..t1, 0f64..top)?;
        let color = PALETTE[0];
        chart.draw_series(
            AreaSeries::new(
                points.iter().map(|(t, n)| (*t, *n as f64)),
                0.0,
                color.mix(0.15),
            )
            .border_style(color.stroke_width(2)),
        )?;
        root.present()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourcePath;

    fn series(points: Vec<Point>) -> Series {
        Series {
            path: ResourcePath {
                object_id: 3303,
                instance_id: 0,
                resource_id: 5700,
                resource_instance_id: None,
            },
            name: "temperature".into(),
            unit: Some("Cel".into()),
            points,
            bands: Vec::new(),
        }
    }

    #[test]
    fn renders_an_svg_with_one_line_per_series() {
        let s = series(vec![
            Point {
                t: 1_717_171_717_000,
                v: 20.0,
            },
            Point {
                t: 1_717_171_777_000,
                v: 21.5,
            },
        ]);
        let svg = render_svg(&[s], 640, 240);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<polyline"), "no line drawn");
        assert!(
            svg.contains(&series_stroke(0)),
            "series line missing: {svg}"
        );
        assert!(svg.contains("Cel"), "unit missing from the axis");
        assert_eq!(
            svg,
            render_svg(
                &[series(vec![
                    Point {
                        t: 1_717_171_717_000,
                        v: 20.0
                    },
                    Point {
                        t: 1_717_171_777_000,
                        v: 21.5
                    },
                ])],
                640,
                240
            ),
            "rendering must be deterministic"
        );
    }

    #[test]
    fn sparklines_draw_an_area() {
        let svg = render_sparkline(&[(0, 1), (60_000, 4), (120_000, 0)], 200, 40);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<polygon") || svg.contains("<path"), "{svg}");
        assert!(!render_sparkline(&[], 200, 40).contains("<polygon"));
    }

    #[test]
    fn downsampled_series_draw_their_spread() {
        let mut s = series(vec![Point { t: 0, v: 1.0 }, Point { t: 60_000, v: 2.0 }]);
        s.bands = vec![
            crate::model::Band {
                t: 0,
                min: 0.0,
                max: 3.0,
            },
            crate::model::Band {
                t: 60_000,
                min: 1.0,
                max: 5.0,
            },
        ];
        let svg = render_svg(&[s], 400, 200);
        assert!(svg.contains("<polygon"), "no band drawn: {svg}");
    }

    #[test]
    fn the_nearest_point_follows_the_pointer() {
        let s = series(vec![
            Point { t: 0, v: 1.0 },
            Point { t: 50_000, v: 2.0 },
            Point { t: 100_000, v: 3.0 },
        ]);
        let width = 400;
        let left = f64::from(MARGIN + Y_LABEL_AREA);
        let right = f64::from(width - MARGIN);
        let x_of = |frac: f64| left + frac * (right - left);
        assert_eq!(
            nearest_point(std::slice::from_ref(&s), width, x_of(0.0))
                .unwrap()
                .1
                .t,
            0
        );
        assert_eq!(
            nearest_point(std::slice::from_ref(&s), width, x_of(0.45))
                .unwrap()
                .1
                .t,
            50_000
        );
        assert_eq!(
            nearest_point(std::slice::from_ref(&s), width, x_of(0.9))
                .unwrap()
                .1
                .t,
            100_000
        );
        assert_eq!(nearest_point(&[], width, 10.0), None);
    }

    #[test]
    fn empty_and_single_point_series_render() {
        assert!(render_svg(&[], 300, 100).contains("No data yet"));
        let svg = render_svg(&[series(vec![Point { t: 0, v: 5.0 }])], 300, 150);
        assert!(svg.contains("<circle"), "{svg}");
    }

    #[test]
    fn live_points_stay_ordered_and_bounded() {
        let mut points = Vec::new();
        for t in 0..(MAX_LIVE_POINTS as i64 + 10) {
            push_point(&mut points, Point { t, v: 0.0 });
        }
        assert_eq!(points.len(), MAX_LIVE_POINTS);
        assert_eq!(points[0].t, 10);
        push_point(&mut points, Point { t: 15, v: 1.0 });
        assert!(points.windows(2).all(|w| w[0].t <= w[1].t));
    }
}
