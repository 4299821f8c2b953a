use crate::model::{LiveMessage, Topic, UpdateQuery, UpdateView};
use crate::server_fns::commands::list_updates;
use crate::ui::components::current_user::{may_operate, use_current_user};
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::page_header::PageHeader;
use crate::ui::components::relative_time::RelativeTime;
use crate::ui::components::update_state_badge::UpdateStateBadge;
use crate::ui::components::update_table::{result_text, update_action, UpdateActions};
use crate::ui::components::update_timeline::UpdateTimeline;
use crate::ui::live_socket;
use crate::ui::style;
use crate::ui::throttle::Throttle;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Every firmware update newest first, each with its step-by-step timeline;
/// filtered by endpoint and "active only" in the URL. Follows command
/// notices and firmware events live; operators may cancel or retry.
#[component]
pub fn UpdatesPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| UpdateQuery::from_params(|k| p.get(k).map(|v| v.to_string())))
    });
    let actions = UpdateActions::new();
    let list = Resource::new(
        move || {
            (
                query.get(),
                actions.cancel.version().get(),
                actions.retry.version().get(),
            )
        },
        |(q, _, _)| list_updates(q),
    );
    let user = use_current_user();
    let refetch = Throttle::new(1_000, move || list.refetch());
    live_socket::subscribe(
        vec![Topic::Commands, Topic::Events],
        move |message| {
            let endpoint = match &message {
                LiveMessage::Command(n) => n.endpoint.clone(),
                // Firmware steps the device reports arrive as events.
                LiveMessage::Event(e) if e.event_type.starts_with("firmware") => e.endpoint.clone(),
                _ => return,
            };
            if query.with_untracked(|q| q.endpoint.is_empty() || q.endpoint == endpoint) {
                refetch.request();
            }
        },
        move || list.refetch(),
    );
    let row_error = Signal::derive(move || {
        action_error(actions.cancel.value().get())
            .or_else(|| action_error(actions.retry.value().get()))
    });
    view! {
        <Title text="Updates" />
        <PageHeader title="Firmware updates" subtitle="Every over-the-air update, newest first, step by step.">
            <a href="/firmware" class=style::BUTTON_SECONDARY>"Firmware images"</a>
        </PageHeader>
        {move || view! { <UpdateFilterForm query=query.get() /> }}
        <div class="mb-3">
            <FormStatus error=row_error />
        </div>
        <Transition fallback=|| view! { <p class=style::MUTED>"Loading updates…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    let operate = may_operate(&user.await);
                    let updates = list.await?;
                    let q = query.get_untracked();
                    let filtered = q != UpdateQuery::default();
                    Ok::<_, crate::error::AppError>(
                        if updates.is_empty() {
                            let text = if filtered {
                                "No update matches this filter."
                            } else {
                                "No firmware updates yet. Operators start them from an endpoint's page or the endpoint table."
                            };
                            view! { <p class=format!("{} p-6 text-center text-sm {}", style::CARD, style::MUTED)>{text}</p> }
                                .into_any()
                        } else {
                            view! {
                                <ol class="flex flex-col gap-4" aria-label="Updates">
                                    {updates
                                        .into_iter()
                                        .map(|u| view! { <UpdateCard update=u actions=operate.then_some(actions) /> })
                                        .collect_view()}
                                </ol>
                            }
                                .into_any()
                        },
                    )
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// One update: who, what, where it stands, and its timeline.
#[component]
fn UpdateCard(update: UpdateView, actions: Option<UpdateActions>) -> impl IntoView {
    let u = update;
    let action = actions.and_then(|a| update_action(&u, a));
    let result = result_text(&u);
    view! {
        <li class=format!("{} p-4", style::CARD) data-update-id=u.id aria-label=format!("Update {} of {}", u.id, u.endpoint)>
            <div class="flex flex-wrap items-center gap-x-4 gap-y-2">
                <a href=format!("/endpoints/{}", u.endpoint_id) class=format!("{} font-mono", style::LINK)>
                    {u.endpoint.clone()}
                </a>
                <span class="font-mono text-sm">{u.version.clone()}</span>
                <UpdateStateBadge state=u.state />
                <span class=format!("text-xs {}", style::MUTED)>
                    "started by " {u.created_by.clone().unwrap_or_else(|| "server".into())} " · "
                    <RelativeTime ms=Some(u.created_at) />
                </span>
                <span class="ml-auto">{action}</span>
            </div>
            <dl class="mt-2 flex flex-wrap gap-x-6 gap-y-1 text-xs">
                <div class="flex gap-1">
                    <dt class=style::MUTED>"Result"</dt>
                    <dd>{result}</dd>
                </div>
                <div class="flex gap-1">
                    <dt class=style::MUTED>"Updated"</dt>
                    <dd><RelativeTime ms=Some(u.updated_at) /></dd>
                </div>
                {u.error
                    .clone()
                    .map(|e| {
                        view! {
                            <div class="flex gap-1 text-red-700 dark:text-red-300">
                                <dt>"Error"</dt>
                                <dd>{e}</dd>
                            </div>
                        }
                    })}
            </dl>
            <div class="mt-3">
                <UpdateTimeline steps=u.steps.clone() />
            </div>
        </li>
    }
}

#[component]
fn UpdateFilterForm(query: UpdateQuery) -> impl IntoView {
    let filtered = query != UpdateQuery::default();
    view! {
        <form method="get" action="/updates" class="mb-4 flex flex-wrap items-end gap-3" role="search">
            <label class=style::LABEL>
                "Endpoint"
                <input type="search" name="endpoint" value=query.endpoint.clone() class=style::INPUT />
            </label>
            <label class="flex items-center gap-2 self-center text-sm font-medium text-slate-700 dark:text-slate-300">
                <input type="checkbox" name="active" value="1" checked=query.active class="h-4 w-4 rounded border-slate-300" />
                "Active only"
            </label>
            <button type="submit" class=style::BUTTON_PRIMARY>"Apply"</button>
            {filtered
                .then(|| view! { <a href="/updates" class=format!("{} self-center text-sm", style::LINK)>"Clear"</a> })}
        </form>
    }
}
