use crate::model::{CommandQuery, CommandStatus, LiveMessage, Topic};
use crate::server_fns::commands::list_commands;
use crate::ui::components::command_table::{CommandActions, CommandTable};
use crate::ui::components::current_user::{may_operate, use_current_user};
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::page_header::PageHeader;
use crate::ui::live_socket;
use crate::ui::style;
use crate::ui::throttle::Throttle;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Every command newest first, filtered by endpoint and status, paged by
/// keyset; statuses move live (on the first page) and operators may cancel
/// queued or retry failed commands.
#[component]
pub fn CommandsPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| CommandQuery::from_params(|k| p.get(k).map(|v| v.to_string())))
    });
    let actions = CommandActions::new();
    let page = Resource::new(
        move || {
            (
                query.get(),
                actions.cancel.version().get(),
                actions.retry.version().get(),
            )
        },
        |(q, _, _)| list_commands(q),
    );
    let user = use_current_user();
    let refetch = Throttle::new(1_000, move || page.refetch());
    live_socket::subscribe(
        vec![Topic::Commands],
        move |message| {
            if let LiveMessage::Command(n) = message {
                // An older page stays as it is; the first page follows every
                // change of the endpoint it shows (or of all).
                let shows = query.with_untracked(|q| {
                    q.before.is_none() && (q.endpoint.is_empty() || q.endpoint == n.endpoint)
                });
                if shows {
                    refetch.request();
                }
            }
        },
        move || page.refetch(),
    );
    let row_error = Signal::derive(move || {
        action_error(actions.cancel.value().get())
            .or_else(|| action_error(actions.retry.value().get()))
    });
    view! {
        <Title text="Commands" />
        <PageHeader title="Commands" subtitle="Writes, executes and reads sent to devices, newest first." />
        {move || view! { <CommandFilterForm query=query.get() /> }}
        <div class="mb-3">
            <FormStatus error=row_error />
        </div>
        <div class=format!("{} overflow-x-auto", style::CARD)>
            <Transition fallback=|| view! { <p class=format!("p-6 {}", style::MUTED)>"Loading commands…"</p> }>
                <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                    {move || Suspend::new(async move {
                        let operate = may_operate(&user.await);
                        let data = page.await?;
                        let q = query.get_untracked();
                        let older = data
                            .next_before
                            .map(|b| format!("/commands{}", CommandQuery { before: Some(b), ..q.clone() }.to_query()));
                        let newest = q
                            .before
                            .map(|_| format!("/commands{}", CommandQuery { before: None, ..q.clone() }.to_query()));
                        let filtered = !q.endpoint.is_empty() || q.status.is_some();
                        let empty_text = if filtered {
                            "No command matches this filter."
                        } else {
                            "No commands yet. Operators send them from an endpoint's page."
                        };
                        Ok::<_, crate::error::AppError>(
                            view! {
                                <CommandTable
                                    commands=data.commands
                                    show_endpoint=true
                                    actions=operate.then_some(actions)
                                    empty_text=empty_text
                                />
                                <nav
                                    class="flex items-center justify-between gap-3 border-t border-slate-100 px-4 py-3 text-sm dark:border-slate-800"
                                    aria-label="Pagination"
                                >
                                    {newest
                                        .map(|href| view! { <a href=href class=style::BUTTON_SECONDARY>"Newest"</a> })}
                                    <span class="flex-1"></span>
                                    {older
                                        .map(|href| {
                                            view! {
                                                <a href=href class=style::BUTTON_SECONDARY rel="next">
                                                    "Older"
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
fn CommandFilterForm(query: CommandQuery) -> impl IntoView {
    let selected = query.status;
    let filtered = !query.endpoint.is_empty() || query.status.is_some();
    view! {
        // A plain GET form, like the events page's: submitting loads the
        // filtered page, JavaScript or not.
        <form method="get" action="/commands" class="mb-4 flex flex-wrap items-end gap-3" role="search">
            <label class=style::LABEL>
                "Endpoint"
                <input type="search" name="endpoint" value=query.endpoint.clone() class=style::INPUT />
            </label>
            <label class=style::LABEL>
                "Status"
                <select name="status" class=style::INPUT>
                    <option value="" selected=selected.is_none()>"All"</option>
                    {CommandStatus::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str() selected=selected == Some(s)>{s.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <button type="submit" class=style::BUTTON_PRIMARY>"Apply"</button>
            {filtered
                .then(|| view! { <a href="/commands" class=format!("{} self-center text-sm", style::LINK)>"Clear"</a> })}
        </form>
    }
}
