use crate::chart::push_point;
use crate::model::{format_time, EndpointDetail, LatestValue, LiveValue, Point, Series};
use crate::server_fns::endpoints::get_endpoint;
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::live_chart::LiveChart;
use crate::ui::components::presence_badge::PresenceBadge;
use crate::ui::components::timestamp::Timestamp;
use crate::ui::live_socket::{self, LiveStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// One endpoint: identity, latest values and live charts.
#[component]
pub fn EndpointPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let detail = Resource::new(id, |id| async move {
        match id {
            Some(id) => get_endpoint(id).await,
            None => Err(crate::error::AppError::NotFound("endpoint".into())),
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading endpoint…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    detail.await.map(|d| view! { <EndpointView detail=d /> })
                })}
            </ErrorBoundary>
        </Suspense>
    }
}

/// Applies one live value to the page's state.
fn apply_live(value: &LiveValue, latest: &mut [LatestValue], series: &mut [Series]) {
    if let Some(row) = latest.iter_mut().find(|l| l.path == value.path) {
        row.value = value.value.clone();
        row.received_at = value.received_at;
    }
    if let (Some(v), Some(s)) = (
        value.numeric,
        series.iter_mut().find(|s| s.path == value.path),
    ) {
        push_point(
            &mut s.points,
            Point {
                t: value.received_at,
                v,
            },
        );
    }
}

#[component]
fn EndpointView(detail: EndpointDetail) -> impl IntoView {
    let name = detail.summary.name.clone();
    let latest = RwSignal::new(detail.latest.clone());
    let series = RwSignal::new(detail.series.clone());
    let status = RwSignal::new(LiveStatus::Connecting);
    // A value of a resource the page did not know yet: show it after a reload.
    let unseen = RwSignal::new(0usize);
    live_socket::subscribe(name.clone(), status, move |value| {
        let known = latest.with_untracked(|l| l.iter().any(|x| x.path == value.path));
        if !known {
            unseen.update(|n| *n += 1);
            return;
        }
        latest.update(|l| {
            series.update(|s| apply_live(&value, l, s));
        });
    });

    let s = detail.summary.clone();
    let facts = vec![
        (
            "Last seen",
            s.last_seen_at
                .map(format_time)
                .unwrap_or_else(|| "never".into()),
        ),
        (
            "Last registration",
            detail
                .last_registration_at
                .map(format_time)
                .unwrap_or_else(|| "never".into()),
        ),
        (
            "Last update",
            detail
                .last_update_at
                .map(format_time)
                .unwrap_or_else(|| "never".into()),
        ),
        (
            "Lifetime",
            detail
                .lifetime_s
                .map(|l| format!("{l} s"))
                .unwrap_or_else(|| "unknown".into()),
        ),
        (
            "Binding",
            format!(
                "{}{}",
                detail.binding.clone().unwrap_or_else(|| "unknown".into()),
                if detail.queue_mode {
                    " (queue mode)"
                } else {
                    ""
                }
            ),
        ),
    ];
    let chart_count = detail.series.len();

    view! {
        <Title text=name.clone() />
        <div class="mb-6 flex flex-wrap items-center gap-3">
            <h1 class="font-mono text-2xl font-semibold tracking-tight">{name.clone()}</h1>
            <PresenceBadge presence=s.presence />
            <span
                class="ml-auto inline-flex items-center gap-1.5 text-xs text-slate-500"
                role="status"
                aria-label="Live updates"
                data-live=move || status.get().label()
            >
                <span class=move || {
                    match status.get() {
                        LiveStatus::Live => "h-2 w-2 rounded-full bg-emerald-500",
                        LiveStatus::Connecting => "h-2 w-2 rounded-full bg-slate-300",
                        LiveStatus::Reconnecting => "h-2 w-2 rounded-full bg-amber-500 animate-pulse",
                    }
                }></span>
                {move || status.get().label()}
            </span>
        </div>

        <dl class="mb-8 grid grid-cols-2 gap-4 sm:grid-cols-5">
            {facts
                .into_iter()
                .map(|(k, v)| {
                    view! {
                        <div class="rounded-lg border border-slate-200 bg-white p-3 shadow-sm">
                            <dt class="text-xs uppercase tracking-wide text-slate-500">{k}</dt>
                            <dd class="mt-1 text-sm">{v}</dd>
                        </div>
                    }
                })
                .collect_view()}
        </dl>

        <section aria-labelledby="charts-heading" class="mb-8">
            <h2 id="charts-heading" class="mb-3 text-lg font-semibold">"Charts (last 24 h)"</h2>
            {(chart_count == 0)
                .then(|| view! { <p class="text-slate-500">"No numeric resources yet."</p> })}
            <div class="grid gap-4 lg:grid-cols-2">
                {(0..chart_count)
                    .map(|i| {
                        let one = Signal::derive(move || series.with(|s| s[i].clone()));
                        view! { <LiveChart series=one /> }
                    })
                    .collect_view()}
            </div>
        </section>

        <section aria-labelledby="values-heading">
            <h2 id="values-heading" class="mb-3 text-lg font-semibold">"Latest values"</h2>
            {move || {
                (unseen.get() > 0)
                    .then(|| {
                        view! {
                            <p class="mb-2 text-sm text-amber-700">
                                "New resources reported; reload to show them."
                            </p>
                        }
                    })
            }}
            <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
                <table class="w-full text-left text-sm">
                    <caption class="sr-only">"Latest values"</caption>
                    <thead class="bg-slate-50 text-xs uppercase tracking-wide text-slate-500">
                        <tr>
                            <th scope="col" class="px-4 py-2">"Path"</th>
                            <th scope="col" class="px-4 py-2">"Resource"</th>
                            <th scope="col" class="px-4 py-2">"Value"</th>
                            <th scope="col" class="px-4 py-2">"Received"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || 0..latest.with(|l| l.len())
                            key=|i| *i
                            let(i)
                        >
                            <tr class="border-t border-slate-100">
                                <td class="px-4 py-2 font-mono text-slate-500">
                                    {move || latest.with(|l| l[i].path.to_string())}
                                </td>
                                <td class="px-4 py-2">{move || latest.with(|l| l[i].name.clone())}</td>
                                <td class="px-4 py-2 font-mono" data-testid="latest-value">
                                    {move || {
                                        latest
                                            .with(|l| {
                                                let unit = l[i]
                                                    .unit
                                                    .clone()
                                                    .map(|u| format!(" {u}"))
                                                    .unwrap_or_default();
                                                format!("{}{unit}", l[i].value)
                                            })
                                    }}
                                </td>
                                <td class="px-4 py-2 text-slate-600">
                                    {move || {
                                        let ms = latest.with(|l| l[i].received_at);
                                        view! { <Timestamp ms=Some(ms) /> }
                                    }}
                                </td>
                            </tr>
                        </For>
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DataType, ResourcePath};

    #[test]
    fn live_values_update_the_row_and_the_series() {
        let path = ResourcePath {
            object_id: 3303,
            instance_id: 0,
            resource_id: 5700,
            resource_instance_id: None,
        };
        let mut latest = vec![LatestValue {
            path,
            name: "temperature".into(),
            unit: None,
            data_type: DataType::Float,
            value: "1".into(),
            received_at: 1,
        }];
        let mut series = vec![Series {
            path,
            name: "temperature".into(),
            unit: None,
            points: vec![],
        }];
        apply_live(
            &LiveValue {
                endpoint: "e".into(),
                path,
                value: "2.5".into(),
                numeric: Some(2.5),
                received_at: 5,
            },
            &mut latest,
            &mut series,
        );
        assert_eq!(latest[0].value, "2.5");
        assert_eq!(series[0].points, vec![Point { t: 5, v: 2.5 }]);
    }
}
