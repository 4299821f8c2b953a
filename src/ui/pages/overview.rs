use crate::chart::render_sparkline;
use crate::model::{LiveMessage, Overview, Presence, Topic, UpdateQuery};
use crate::server_fns::overview::get_overview;
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::event_list::EventList;
use crate::ui::components::page_header::PageHeader;
use crate::ui::live_socket;
use crate::ui::style;
use crate::ui::throttle::Throttle;
use leptos::prelude::*;
use leptos_meta::Title;

/// The fleet at a glance. Refreshes itself when devices register or
/// deregister, events are recorded or telemetry arrives (at most every two
/// seconds), and after a reconnect.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_overview());
    let refetch = Throttle::new(2_000, move || overview.refetch());
    live_socket::subscribe(
        vec![Topic::Fleet, Topic::Events],
        move |message| {
            if matches!(message, LiveMessage::Fleet(_) | LiveMessage::Event(_)) {
                refetch.request();
            }
        },
        move || overview.refetch(),
    );
    view! {
        <Title text="Overview" />
        <PageHeader title="Overview" subtitle="Your fleet right now." />
        <Transition fallback=|| view! { <p class=style::MUTED>"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    overview.await.map(|o| view! { <OverviewView overview=o /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// One figure in a card, linking to where it comes from.
#[component]
fn StatCard(
    label: &'static str,
    value: i64,
    href: String,
    #[prop(optional)] accent: &'static str,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <a
            href=href
            class=format!("{} block p-4 transition hover:border-blue-300 dark:hover:border-blue-700", style::CARD)
        >
            <p class=format!("text-xs font-medium uppercase tracking-wide {}", style::MUTED)>{label}</p>
            <p class=format!("mt-1 text-3xl font-semibold tabular-nums {accent}") data-testid=label>
                {value}
            </p>
            {children.map(|c| c())}
        </a>
    }
}

#[component]
fn OverviewView(overview: Overview) -> impl IntoView {
    let p = overview.presence;
    let points = overview.points_last_hour();
    let sparkline = render_sparkline(&overview.points_per_minute, 240, 48);
    let presence_href = |presence: Presence| format!("/endpoints?presence={}", presence.as_str());
    view! {
        <section aria-label="Fleet" class="grid grid-cols-2 gap-4 lg:grid-cols-4">
            <StatCard label="Online" value=p.online href=presence_href(Presence::Online) accent="text-emerald-600 dark:text-emerald-400" />
            <StatCard label="Sleeping" value=p.sleeping href=presence_href(Presence::Sleeping) accent="text-sky-600 dark:text-sky-400" />
            <StatCard label="Offline" value=p.offline href=presence_href(Presence::Offline) accent="text-slate-500 dark:text-slate-400" />
            <StatCard label="Endpoints" value=p.total() href="/endpoints".to_string() />
        </section>
        <section aria-label="Activity" class="mt-4 grid grid-cols-1 gap-4 md:grid-cols-3">
            <StatCard label="Data points, last hour" value=points href="/endpoints".to_string()>
                <div
                    class="mt-2 [&>svg]:h-12 [&>svg]:w-full"
                    role="img"
                    aria-label=format!("Data points per minute over the last hour, {points} in all")
                    inner_html=sparkline
                ></div>
            </StatCard>
            <StatCard label="Pending commands" value=overview.pending_commands href="/commands?status=queued".to_string() />
            <StatCard label="Active firmware updates" value=overview.active_updates href=format!("/updates{}", UpdateQuery { active: true, ..Default::default() }.to_query()) />
        </section>
        <section aria-labelledby="latest-events" class="mt-8">
            <div class="mb-3 flex items-center justify-between">
                <h2 id="latest-events" class=style::H2>"Latest events"</h2>
                <a href="/events" class=format!("{} text-sm", style::LINK)>"All events"</a>
            </div>
            <div class=style::CARD>
                <EventList events=overview.latest_events show_endpoint=true />
            </div>
        </section>
    }
}
