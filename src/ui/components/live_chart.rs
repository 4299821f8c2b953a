use crate::chart::render_svg;
use crate::model::{format_time, Chart, EpochMs, Point};
use crate::ui::style;
use leptos::prelude::*;

pub const CHART_WIDTH: u32 = 720;
pub const CHART_HEIGHT: u32 = 260;

/// A chart of every instance of one resource, redrawn whenever the chart
/// signal changes; the server renders the same SVG into the first paint.
/// Hovering shows the nearest point; the CSV link downloads the range.
#[component]
pub fn LiveChart(
    #[prop(into)] chart: Signal<Chart>,
    endpoint: String,
    from: EpochMs,
    to: EpochMs,
) -> impl IntoView {
    let hover: RwSignal<Option<(usize, Point)>> = RwSignal::new(None);
    let label = move || {
        chart.with(|c| {
            let unit = c
                .unit
                .clone()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            let points: usize = c.series.iter().map(|s| s.points.len()).sum();
            let first = c
                .series
                .first()
                .map(|s| s.path.to_string())
                .unwrap_or_default();
            format!("{} {first}{unit} chart, {points} points", c.name)
        })
    };
    let svg = move || chart.with(|c| render_svg(&c.series, CHART_WIDTH, CHART_HEIGHT));
    let on_move = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(el) = ev
                .current_target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            else {
                return;
            };
            let shown = f64::from(el.client_width().max(1));
            let x = f64::from(ev.offset_x()) * f64::from(CHART_WIDTH) / shown;
            hover.set(chart.with(|c| crate::chart::nearest_point(&c.series, CHART_WIDTH, x)));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let readout = move || {
        let (i, p) = hover.get()?;
        let (path, unit) = chart.with(|c| {
            (
                c.series
                    .get(i)
                    .map(|s| s.path.to_string())
                    .unwrap_or_default(),
                c.unit.clone().map(|u| format!(" {u}")).unwrap_or_default(),
            )
        });
        Some(format!("{path}: {}{unit} at {}", p.v, format_time(p.t)))
    };
    let csv_links = move || {
        chart.with(|c| {
            c.series
                .iter()
                .map(|s| {
                    let href = c.csv_href(&endpoint, s, from, to);
                    let text = if c.series.len() > 1 {
                        format!("CSV {}", s.path)
                    } else {
                        "CSV".to_string()
                    };
                    view! {
                        <a href=href download class=format!("{} text-xs", style::LINK)>
                            {text}
                        </a>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <figure class=format!("{} p-3", style::CARD)>
            <figcaption class="mb-2 flex flex-wrap items-baseline gap-2 text-sm font-medium text-slate-700 dark:text-slate-200">
                {move || chart.with(|c| c.name.clone())}
                <span class="font-mono text-xs text-slate-400">
                    {move || chart.with(|c| format!("/{}/*/{}", c.object_id, c.resource_id))}
                </span>
                <span class="ml-auto flex gap-3">{csv_links}</span>
            </figcaption>
            <div
                role="img"
                aria-label=label
                class="w-full overflow-x-auto rounded-md bg-white [&>svg]:h-auto [&>svg]:max-w-full"
                inner_html=svg
                on:mousemove=on_move
                on:mouseleave=move |_| hover.set(None)
            ></div>
            <p class="mt-1 h-4 font-mono text-xs text-slate-500 dark:text-slate-400" data-testid="chart-readout" aria-live="polite">
                {readout}
            </p>
        </figure>
    }
}
