use crate::chart::render_svg;
use crate::model::Series;
use leptos::prelude::*;

pub const CHART_WIDTH: u32 = 720;
pub const CHART_HEIGHT: u32 = 260;

/// A chart of one series, redrawn whenever the series signal changes. The
/// server renders the same SVG into the first paint.
#[component]
pub fn LiveChart(#[prop(into)] series: Signal<Series>) -> impl IntoView {
    let label = move || {
        series.with(|s| {
            let unit = s
                .unit
                .clone()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            format!(
                "{} {}{unit} chart, {} points",
                s.name,
                s.path,
                s.points.len()
            )
        })
    };
    let svg =
        move || series.with(|s| render_svg(std::slice::from_ref(s), CHART_WIDTH, CHART_HEIGHT));
    view! {
        <figure class="rounded-lg border border-slate-200 bg-white p-3 shadow-sm">
            <figcaption class="mb-2 text-sm font-medium text-slate-700">
                {move || series.with(|s| s.name.clone())}
                <span class="ml-2 font-mono text-xs text-slate-400">
                    {move || series.with(|s| s.path.to_string())}
                </span>
            </figcaption>
            <div role="img" aria-label=label class="w-full overflow-x-auto [&>svg]:max-w-full [&>svg]:h-auto" inner_html=svg></div>
        </figure>
    }
}
