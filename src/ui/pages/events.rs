use crate::model::{to_datetime_local, EventListQuery, Topic};
use crate::server_fns::events::list_events;
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::event_list::EventList;
use crate::ui::components::page_header::PageHeader;
use crate::ui::live_socket::{self};
use crate::ui::style;
use crate::ui::throttle::Throttle;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Event types the ingest path records (composite reports add one per
/// object, named after it), offered as suggestions in the type filter.
const KNOWN_TYPES: &[&str] = &[
    "registered",
    "registration_update",
    "deregistered",
    "device",
    "firmware_update",
    "temperature",
    "humidity",
];

/// All events, filtered by endpoint, type and time, newest first, paged by
/// keyset. New events matching the filter appear while the first page is
/// open.
#[component]
pub fn EventsPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| EventListQuery::from_params(|k| p.get(k).map(|v| v.to_string())))
    });
    let page = Resource::new(move || query.get(), list_events);
    let refetch = Throttle::new(1_000, move || page.refetch());
    live_socket::subscribe(
        vec![Topic::Events],
        move |message| {
            if let crate::model::LiveMessage::Event(e) = message {
                if query.with_untracked(|q| q.shows_new(&e.endpoint, &e.event_type, e.created_at)) {
                    refetch.request();
                }
            }
        },
        move || page.refetch(),
    );
    view! {
        <Title text="Events" />
        <PageHeader title="Events" subtitle="Registrations, reports and firmware steps, newest first." />
        {move || view! { <EventFilterForm query=query.get() /> }}
        <div class=style::CARD>
            <Transition fallback=|| view! { <p class=format!("p-6 {}", style::MUTED)>"Loading events…"</p> }>
                <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                    {move || Suspend::new(async move {
                        let data = page.await?;
                        let q = query.get_untracked();
                        let older = data
                            .next_before
                            .map(|b| {
                                format!("/events{}", EventListQuery { before: Some(b), ..q.clone() }.to_query())
                            });
                        let newest = q
                            .before
                            .map(|_| format!("/events{}", EventListQuery { before: None, ..q.clone() }.to_query()));
                        Ok::<_, crate::error::AppError>(
                            view! {
                                <EventList events=data.events show_endpoint=true />
                                <nav
                                    class="flex items-center justify-between gap-3 border-t border-slate-100 px-4 py-3 text-sm dark:border-slate-800"
                                    aria-label="Pagination"
                                >
                                    {newest
                                        .map(|href| {
                                            view! {
                                                <a href=href class=style::BUTTON_SECONDARY>
                                                    "Newest"
                                                </a>
                                            }
                                        })}
                                    <span class="flex-1"></span>
                                    {older
                                        .map(|href| {
                                            view! {
                                                <a href=href class=style::BUTTON_SECONDARY rel="next">
                                                    "Older events"
                                                </a>
                                            }
                                        })}
                                </nav>
                            },
                        )
                    })}
                </ErrorBoundary>
            </Transition>
        </div>
    }
}

#[component]
fn EventFilterForm(query: EventListQuery) -> impl IntoView {
    view! {
        // A plain GET form: the router's <Form> reads a memo in its action
        // attribute, which under load was sometimes disposed while the page
        // rendered on the server; the render task panicked and the page never
        // finished. Submitting loads the filtered page, JavaScript or not.
        <form method="get" action="/events" class="mb-4 flex flex-wrap items-end gap-3" role="search">
            <label class=style::LABEL>
                "Endpoint"
                <input type="search" name="endpoint" value=query.endpoint.clone() class=style::INPUT />
            </label>
            <label class=style::LABEL>
                "Type"
                <input
                    type="search"
                    name="type"
                    list="event-types"
                    value=query.event_type.clone()
                    class=style::INPUT
                />
                <datalist id="event-types">
                    {KNOWN_TYPES.iter().map(|t| view! { <option value=*t></option> }).collect_view()}
                </datalist>
            </label>
            <label class=style::LABEL>
                "From (UTC)"
                <input
                    type="datetime-local"
                    name="from"
                    value=query.from.map(to_datetime_local).unwrap_or_default()
                    class=style::INPUT
                />
            </label>
            <label class=style::LABEL>
                "To (UTC)"
                <input
                    type="datetime-local"
                    name="to"
                    value=query.to.map(to_datetime_local).unwrap_or_default()
                    class=style::INPUT
                />
            </label>
            <button type="submit" class=style::BUTTON_PRIMARY>
                "Apply"
            </button>
            {query
                .is_filtered()
                .then(|| {
                    view! {
                        <a href="/events" class=format!("{} self-center text-sm", style::LINK)>
                            "Clear"
                        </a>
                    }
                })}
        </form>
    }
}
