use crate::server_fns::endpoints::list_endpoints;
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::presence_badge::PresenceBadge;
use crate::ui::components::timestamp::Timestamp;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// The endpoint list, with a name filter that works in the browser.
#[component]
pub fn HomePage() -> impl IntoView {
    let endpoints = Resource::new(|| (), |_| list_endpoints());
    let filter = RwSignal::new(String::new());
    view! {
        <Title text="Endpoints" />
        <div class="mb-4 flex flex-wrap items-end justify-between gap-3">
            <h1 class="text-2xl font-semibold tracking-tight">"Endpoints"</h1>
            <label class="flex flex-col text-sm text-slate-600">
                "Filter by name"
                <input
                    type="search"
                    class="mt-1 w-64 rounded-md border border-slate-300 bg-white px-3 py-1.5 text-slate-900 shadow-sm focus:border-blue-500 focus:outline-none"
                    placeholder="e.g. urn:imei"
                    prop:value=move || filter.get()
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
            </label>
        </div>
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading endpoints…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    let list = endpoints.await?;
                    let total = list.len();
                    let rows = move || {
                        let needle = filter.get().to_lowercase();
                        list.iter()
                            .filter(|e| needle.is_empty() || e.name.to_lowercase().contains(&needle))
                            .cloned()
                            .map(|e| {
                                let href = format!("/endpoints/{}", e.id);
                                view! {
                                    <tr class="border-t border-slate-100 hover:bg-slate-50">
                                        <td class="px-4 py-2 font-mono text-sm">
                                            <A href=href attr:class="text-blue-700 hover:underline">
                                                {e.name.clone()}
                                            </A>
                                        </td>
                                        <td class="px-4 py-2">
                                            <PresenceBadge presence=e.presence />
                                        </td>
                                        <td class="px-4 py-2 text-sm text-slate-600">
                                            <Timestamp ms=e.last_seen_at />
                                        </td>
                                        <td class="px-4 py-2 text-right text-sm tabular-nums">
                                            {e.resource_count}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    };
                    Ok::<_, crate::error::AppError>(
                        view! {
                            <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                                <table class="w-full text-left">
                                    <caption class="sr-only">"Endpoints"</caption>
                                    <thead class="bg-slate-50 text-xs uppercase tracking-wide text-slate-500">
                                        <tr>
                                            <th scope="col" class="px-4 py-2">"Name"</th>
                                            <th scope="col" class="px-4 py-2">"Presence"</th>
                                            <th scope="col" class="px-4 py-2">"Last seen"</th>
                                            <th scope="col" class="px-4 py-2 text-right">"Resources"</th>
                                        </tr>
                                    </thead>
                                    <tbody>{rows}</tbody>
                                </table>
                                {(total == 0)
                                    .then(|| {
                                        view! {
                                            <p class="p-6 text-center text-slate-500">
                                                "No endpoints yet. Devices appear here when they first post telemetry."
                                            </p>
                                        }
                                    })}
                            </div>
                        },
                    )
                })}
            </ErrorBoundary>
        </Suspense>
    }
}
