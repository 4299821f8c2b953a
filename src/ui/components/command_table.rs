use crate::model::{CommandStatus, CommandView};
use crate::server_fns::commands::{CancelCommand, RetryCommand};
use crate::ui::components::command_status_badge::CommandStatusBadge;
use crate::ui::components::relative_time::RelativeTime;
use crate::ui::style;
use leptos::prelude::*;

/// The cancel and retry actions of command rows; the page owns them so that
/// it can refetch when one completes.
#[derive(Clone, Copy)]
pub struct CommandActions {
    pub cancel: ServerAction<CancelCommand>,
    pub retry: ServerAction<RetryCommand>,
}

impl CommandActions {
    pub fn new() -> Self {
        CommandActions {
            cancel: ServerAction::new(),
            retry: ServerAction::new(),
        }
    }
}

impl Default for CommandActions {
    fn default() -> Self {
        Self::new()
    }
}

/// Commands newest first: what, where, how it went, who asked. Operators get
/// Cancel on queued and Retry on failed rows (plain forms: they work without
/// JavaScript).
#[component]
pub fn CommandTable(
    commands: Vec<CommandView>,
    /// Link each command's endpoint (the Commands page).
    #[prop(optional)]
    show_endpoint: bool,
    /// Row actions, for operators; None hides them.
    actions: Option<CommandActions>,
    #[prop(into)] empty_text: String,
) -> impl IntoView {
    if commands.is_empty() {
        return view! { <p class=format!("p-6 text-center text-sm {}", style::MUTED)>{empty_text}</p> }
            .into_any();
    }
    let rows = commands
        .into_iter()
        .map(|c| command_row(c, show_endpoint, actions))
        .collect_view();
    view! {
        <table class=style::TABLE>
            <caption class="sr-only">"Commands"</caption>
            <thead class=style::THEAD>
                <tr>
                    <th scope="col" class=style::TH>"When"</th>
                    {show_endpoint.then(|| view! { <th scope="col" class=style::TH>"Endpoint"</th> })}
                    <th scope="col" class=style::TH>"Operation"</th>
                    <th scope="col" class=style::TH>"Resource"</th>
                    <th scope="col" class=style::TH>"Value"</th>
                    <th scope="col" class=style::TH>"Status"</th>
                    <th scope="col" class=format!("{} text-right", style::TH)>"Attempts"</th>
                    <th scope="col" class=style::TH>"Answer"</th>
                    <th scope="col" class=style::TH>"By"</th>
                    {actions.map(|_| view! { <th scope="col" class=style::TH><span class="sr-only">"Actions"</span></th> })}
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

fn command_row(
    c: CommandView,
    show_endpoint: bool,
    actions: Option<CommandActions>,
) -> impl IntoView {
    let endpoint = show_endpoint.then(|| {
        view! {
            <td class=format!("{} font-mono text-xs", style::TD)>
                <a href=format!("/endpoints/{}", c.endpoint_id) class=style::LINK>{c.endpoint.clone()}</a>
            </td>
        }
    });
    // The device's own answer (NOT_FOUND, ...) and our words for a failure.
    let answer = match (&c.last_error, &c.device_status) {
        (Some(e), Some(s)) => format!("{s}: {e}"),
        (Some(e), None) => e.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => String::new(),
    };
    let failed = c.status == CommandStatus::Failed;
    let waits = c.status == CommandStatus::Queued && c.waits_for_wake;
    let action = actions.and_then(|a| row_action(&c, a));
    view! {
        <tr class=style::TR data-command-id=c.id>
            <td class=format!("{} whitespace-nowrap text-slate-600 dark:text-slate-300", style::TD)>
                <RelativeTime ms=Some(c.created_at) />
            </td>
            {endpoint}
            <td class=style::TD>{c.kind.as_str()}</td>
            <td class=style::TD>
                <span class="font-mono text-xs">{c.path.clone()}</span>
                {c.name.clone().map(|n| view! { <span class=format!("ml-2 {}", style::MUTED)>{n}</span> })}
            </td>
            <td class=format!("{} max-w-48 truncate font-mono text-xs", style::TD) title=c.value.clone().unwrap_or_default()>
                {c.value.clone().unwrap_or_else(|| "–".into())}
            </td>
            <td class=style::TD>
                <CommandStatusBadge status=c.status />
                {waits
                    .then(|| {
                        view! {
                            <span class=format!("mt-1 block text-xs {}", style::MUTED)>
                                "waits for the device to wake"
                            </span>
                        }
                    })}
            </td>
            <td class=format!("{} text-right tabular-nums", style::TD)>{c.attempts}</td>
            <td class=format!(
                "{} max-w-64 text-xs {}",
                style::TD,
                if failed { "text-red-700 dark:text-red-300" } else { "text-slate-600 dark:text-slate-300" },
            )>{answer}</td>
            <td class=format!("{} text-xs {}", style::TD, style::MUTED)>
                {c.created_by.clone().unwrap_or_else(|| "server".into())}
            </td>
            {actions.map(|_| view! { <td class=format!("{} text-right", style::TD)>{action}</td> })}
        </tr>
    }
}

/// Cancel for a queued command, Retry for a failed one.
fn row_action(c: &CommandView, a: CommandActions) -> Option<AnyView> {
    let id = c.id;
    if c.status.can_cancel() {
        Some(
            view! {
                <ActionForm action=a.cancel>
                    <input type="hidden" name="id" value=id />
                    <button
                        type="submit"
                        class=style::BUTTON_SECONDARY
                        aria-label=format!("Cancel command {id}")
                    >
                        "Cancel"
                    </button>
                </ActionForm>
            }
            .into_any(),
        )
    } else if c.status.can_retry() {
        Some(
            view! {
                <ActionForm action=a.retry>
                    <input type="hidden" name="id" value=id />
                    <button
                        type="submit"
                        class=style::BUTTON_SECONDARY
                        aria-label=format!("Retry command {id}")
                    >
                        "Retry"
                    </button>
                </ActionForm>
            }
            .into_any(),
        )
    } else {
        None
    }
}
