use crate::model::{EndpointListPage, EndpointListQuery, EndpointRow, EndpointSort, Presence};
use crate::server_fns::endpoints::list_endpoints;
use crate::server_fns::update_forms::StartUpdatesForm;
use crate::ui::components::current_user::{may_operate, use_current_user};
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::firmware_select::FirmwareSelect;
use crate::ui::components::page_header::PageHeader;
use crate::ui::components::presence_badge::PresenceBadge;
use crate::ui::components::relative_time::RelativeTime;
use crate::ui::components::update_start_results::UpdateStartResults;
use crate::ui::style;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Every endpoint in a table that is searched, filtered, sorted and paged on
/// the server; its whole state is in the URL, so a link shows the same page
/// to anyone, with or without JavaScript.
#[component]
pub fn EndpointsPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| EndpointListQuery::from_params(|k| p.get(k).map(|v| v.to_string())))
    });
    let page = Resource::new(move || query.get(), list_endpoints);
    let user = use_current_user();
    // Lives with the page, not the table, so that its results outlast the
    // table's re-render.
    let start = ServerAction::<StartUpdatesForm>::new();
    view! {
        <Title text="Endpoints" />
        <PageHeader title="Endpoints" subtitle="Every device that has reported, with its presence." />
        <Suspense fallback=|| view! { <p class=style::MUTED>"Loading endpoints…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    let operate = may_operate(&user.await);
                    let data = page.await?;
                    let q = query.get_untracked();
                    let start = operate.then_some(start);
                    Ok::<_, crate::error::AppError>(view! { <EndpointTable query=q data start /> })
                })}
            </ErrorBoundary>
        </Suspense>
    }
}

#[component]
fn FilterForm(query: EndpointListQuery, data: EndpointListPage) -> impl IntoView {
    let counts = data.counts;
    let selected = query.presence;
    view! {
        // A plain GET form: the router's <Form> reads a memo in its action
        // attribute, which under load was sometimes disposed while the page
        // rendered on the server; the render task panicked and the page never
        // finished. Submitting loads the filtered page, JavaScript or not.
        <form method="get" action="/endpoints" class="mb-4 flex flex-wrap items-end gap-3" role="search">
            <label class=style::LABEL>
                "Search by name"
                <input
                    type="search"
                    name="q"
                    value=query.search.clone()
                    placeholder="e.g. urn:imei"
                    class=format!("{} w-64", style::INPUT)
                />
            </label>
            <label class=style::LABEL>
                "Presence"
                <select name="presence" class=style::INPUT>
                    <option value="" selected=selected.is_none()>
                        {format!("All ({})", counts.total())}
                    </option>
                    {Presence::ALL
                        .into_iter()
                        .map(|p| {
                            view! {
                                <option value=p.as_str() selected=selected == Some(p)>
                                    {format!("{} ({})", capitalized(p.as_str()), counts.get(p))}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            // Keep the sort order across a new search.
            {(query.sort != EndpointSort::default())
                .then(|| view! { <input type="hidden" name="sort" value=query.sort.as_str() /> })}
            {(query.descending != query.sort.default_descending())
                .then(|| {
                    view! {
                        <input
                            type="hidden"
                            name="dir"
                            value=if query.descending { "desc" } else { "asc" }
                        />
                    }
                })}
            <button type="submit" class=style::BUTTON_PRIMARY>
                "Apply"
            </button>
            {(!query.search.is_empty() || query.presence.is_some())
                .then(|| {
                    view! {
                        <a href="/endpoints" class=format!("{} self-center text-sm", style::LINK)>
                            "Clear"
                        </a>
                    }
                })}
        </form>
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A column header that sorts by its column; `aria-sort` tells which one does.
#[component]
fn SortHeader(
    query: EndpointListQuery,
    sort: EndpointSort,
    label: &'static str,
    #[prop(optional)] right: bool,
) -> impl IntoView {
    let current = query.sort == sort;
    let aria = if !current {
        "none"
    } else if query.descending {
        "descending"
    } else {
        "ascending"
    };
    let arrow = match (current, query.descending) {
        (false, _) => "",
        (true, true) => " ↓",
        (true, false) => " ↑",
    };
    let href = format!("/endpoints{}", query.sorted_by(sort).to_query());
    let class = if right {
        format!("{} text-right", style::TH)
    } else {
        style::TH.to_string()
    };
    view! {
        <th scope="col" class=class aria-sort=aria>
            <a href=href class="hover:text-slate-900 dark:hover:text-white">
                {label}
                {arrow}
            </a>
        </th>
    }
}

#[component]
fn BatteryLevel(level: Option<i64>) -> impl IntoView {
    match level {
        Some(level) => {
            let pct = level.clamp(0, 100);
            let bar = if pct < 20 {
                "fill-red-500"
            } else if pct < 50 {
                "fill-amber-500"
            } else {
                "fill-emerald-500"
            };
            // An SVG rather than a `style="width: …"`: the pages' CSP allows
            // no inline style attributes.
            view! {
                <span class="inline-flex items-center gap-2" title=format!("Battery {level} %")>
                    <span class="inline-block h-2 w-10 overflow-hidden rounded-full bg-slate-200 dark:bg-slate-700">
                        <svg
                            class="block h-full w-full"
                            viewBox="0 0 100 1"
                            preserveAspectRatio="none"
                            aria-hidden="true"
                        >
                            <rect class=bar width=pct.to_string() height="1"></rect>
                        </svg>
                    </span>
                    <span class="tabular-nums">{format!("{level} %")}</span>
                </span>
            }
            .into_any()
        }
        None => view! { <span class=style::MUTED>"–"</span> }.into_any(),
    }
}

/// One row; with `select` (operators), a checkbox first that puts the
/// endpoint's name in the bulk update form as `endpoints[i]` (the indexed
/// names serde_qs reads as a list; unchecked boxes are simply left out).
fn endpoint_row(i: usize, row: EndpointRow, select: bool) -> impl IntoView {
    let e = row.summary;
    let href = format!("/endpoints/{}", e.id);
    // In the name cell, not a column of its own: the columns stay the same
    // for every role.
    let checkbox = select.then(|| {
        view! {
            <input
                type="checkbox"
                name=format!("endpoints[{i}]")
                value=e.name.clone()
                aria-label=format!("Select {}", e.name)
                class="mr-3 h-4 w-4 rounded border-slate-300 align-middle dark:border-slate-600"
            />
        }
    });
    view! {
        <tr class=style::TR>
            <td class=format!("{} font-mono", style::TD)>
                {checkbox}
                <a href=href class=style::LINK>
                    {e.name.clone()}
                </a>
            </td>
            <td class=style::TD>
                <PresenceBadge presence=e.presence />
            </td>
            <td class=format!("{} whitespace-nowrap text-slate-600 dark:text-slate-300", style::TD)>
                <RelativeTime ms=e.last_seen_at />
            </td>
            <td class=format!("{} font-mono text-xs", style::TD)>
                {row.firmware_version.unwrap_or_else(|| "–".into())}
            </td>
            <td class=style::TD>
                <BatteryLevel level=row.battery_level />
            </td>
            <td class=format!("{} text-right tabular-nums", style::TD)>{e.resource_count}</td>
        </tr>
    }
}

#[component]
fn EndpointTable(
    query: EndpointListQuery,
    data: EndpointListPage,
    /// The bulk update action, for operators.
    start: Option<ServerAction<StartUpdatesForm>>,
) -> impl IntoView {
    let select = start.is_some();
    let pages = data.page_count(query.per_page);
    let first = query.offset() + 1;
    let last = query.offset() + data.rows.len() as u64;
    let total = data.total;
    let empty = data.rows.is_empty();
    let filtered = !query.search.is_empty() || query.presence.is_some();
    let prev =
        (query.page > 1).then(|| format!("/endpoints{}", query.at_page(query.page - 1).to_query()));
    let next = (query.page < pages)
        .then(|| format!("/endpoints{}", query.at_page(query.page + 1).to_query()));
    let rows = data.rows.clone();
    let table = view! {
        <div class=format!("{} overflow-x-auto", style::CARD)>
            <table class=style::TABLE>
                <caption class="sr-only">"Endpoints"</caption>
                <thead class=style::THEAD>
                    <tr>
                        <SortHeader query=query.clone() sort=EndpointSort::Name label="Name" />
                        <SortHeader query=query.clone() sort=EndpointSort::Presence label="Presence" />
                        <SortHeader query=query.clone() sort=EndpointSort::LastSeen label="Last seen" />
                        <th scope="col" class=style::TH>"Firmware"</th>
                        <th scope="col" class=style::TH>"Battery"</th>
                        <th scope="col" class=format!("{} text-right", style::TH)>"Resources"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().enumerate().map(|(i, r)| endpoint_row(i, r, select)).collect_view()}
                </tbody>
            </table>
            {empty
                .then(|| {
                    let text = if filtered {
                        "No endpoint matches this search."
                    } else {
                        "No endpoints yet. Devices appear here when they first post telemetry."
                    };
                    view! { <p class=format!("p-6 text-center {}", style::MUTED)>{text}</p> }
                })}
        </div>
    };
    let table = match start {
        // One form around the table: the checked rows and the firmware go
        // to `start_updates` together, with or without JavaScript.
        Some(start) if !empty => view! {
            <ActionForm action=start attr:aria-label="Update the selected endpoints">
                {table}
                <div class=format!("{} mt-3 flex flex-wrap items-end gap-3 p-3", style::CARD)>
                    <p class="self-center text-sm font-medium">"Update the selected endpoints"</p>
                    <FirmwareSelect button="Start update" />
                </div>
            </ActionForm>
            <div class="mt-3">
                <UpdateStartResults action=start />
            </div>
        }
        .into_any(),
        _ => table.into_any(),
    };
    view! {
        <FilterForm query=query.clone() data=data.clone() />
        {table}
        <nav
            class="mt-4 flex flex-wrap items-center justify-between gap-3 text-sm"
            aria-label="Pagination"
        >
            <p class=style::MUTED data-testid="endpoint-count">
                {if empty {
                    format!("0 of {total}")
                } else {
                    format!("{first}–{last} of {total}")
                }}
            </p>
            <div class="flex items-center gap-2">
                {match prev {
                    Some(href) => {
                        view! {
                            <a href=href class=style::BUTTON_SECONDARY rel="prev">
                                "Previous"
                            </a>
                        }
                            .into_any()
                    }
                    None => view! { <span class=format!("{} opacity-50", style::BUTTON_SECONDARY)>"Previous"</span> }.into_any(),
                }}
                <span class=style::MUTED>{format!("Page {} of {pages}", query.page)}</span>
                {match next {
                    Some(href) => {
                        view! {
                            <a href=href class=style::BUTTON_SECONDARY rel="next">
                                "Next"
                            </a>
                        }
                            .into_any()
                    }
                    None => view! { <span class=format!("{} opacity-50", style::BUTTON_SECONDARY)>"Next"</span> }.into_any(),
                }}
            </div>
        </nav>
    }
}
