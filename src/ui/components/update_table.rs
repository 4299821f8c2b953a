use crate::model::{update_result_text, UpdateView};
use crate::server_fns::commands::{CancelUpdate, RetryUpdate};
use crate::ui::components::relative_time::RelativeTime;
use crate::ui::components::update_state_badge::UpdateStateBadge;
use crate::ui::style;
use leptos::prelude::*;

/// Cancel and retry of firmware updates; the page owns them so that it can
/// refetch when one completes.
#[derive(Clone, Copy)]
pub struct UpdateActions {
    pub cancel: ServerAction<CancelUpdate>,
    pub retry: ServerAction<RetryUpdate>,
}

impl UpdateActions {
    pub fn new() -> Self {
        UpdateActions {
            cancel: ServerAction::new(),
            retry: ServerAction::new(),
        }
    }
}

impl Default for UpdateActions {
    fn default() -> Self {
        Self::new()
    }
}

/// The device's last result code in words, e.g. "integrity check failed".
pub fn result_text(u: &UpdateView) -> String {
    u.result.map(update_result_text).unwrap_or("–").to_string()
}

/// Cancel for an active update, Retry for a failed, timed-out or cancelled
/// one; plain forms, so they work without JavaScript.
pub fn update_action(u: &UpdateView, a: UpdateActions) -> Option<AnyView> {
    let id = u.id;
    if u.can_cancel() {
        Some(
            view! {
                <ActionForm action=a.cancel>
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class=style::BUTTON_SECONDARY aria-label=format!("Cancel update {id}")>
                        "Cancel"
                    </button>
                </ActionForm>
            }
            .into_any(),
        )
    } else if u.can_retry() {
        Some(
            view! {
                <ActionForm action=a.retry>
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class=style::BUTTON_SECONDARY aria-label=format!("Retry update {id}")>
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

/// One endpoint's firmware updates, newest first (the endpoint page).
#[component]
pub fn UpdateTable(
    updates: Vec<UpdateView>,
    /// Row actions, for operators; None hides them.
    actions: Option<UpdateActions>,
) -> impl IntoView {
    if updates.is_empty() {
        return view! { <p class=format!("p-6 text-center text-sm {}", style::MUTED)>"No firmware updates yet."</p> }
            .into_any();
    }
    let rows = updates
        .into_iter()
        .map(|u| {
            let action = actions.and_then(|a| update_action(&u, a));
            view! {
                <tr class=style::TR data-update-id=u.id>
                    <td class=format!("{} font-mono", style::TD)>{u.version.clone()}</td>
                    <td class=style::TD><UpdateStateBadge state=u.state /></td>
                    <td class=format!("{} text-xs", style::TD)>{result_text(&u)}</td>
                    <td class="px-4 py-2 text-xs text-red-700 dark:text-red-300">{u.error.clone()}</td>
                    <td class=format!("{} text-xs {}", style::TD, style::MUTED)>
                        {u.created_by.clone().unwrap_or_else(|| "server".into())}
                    </td>
                    <td class=format!("{} whitespace-nowrap text-slate-600 dark:text-slate-300", style::TD)>
                        <RelativeTime ms=Some(u.updated_at) />
                    </td>
                    {actions.map(|_| view! { <td class=format!("{} text-right", style::TD)>{action}</td> })}
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class=style::TABLE>
            <caption class="sr-only">"Firmware updates"</caption>
            <thead class=style::THEAD>
                <tr>
                    <th scope="col" class=style::TH>"Version"</th>
                    <th scope="col" class=style::TH>"State"</th>
                    <th scope="col" class=style::TH>"Result"</th>
                    <th scope="col" class=style::TH>"Error"</th>
                    <th scope="col" class=style::TH>"Started by"</th>
                    <th scope="col" class=style::TH>"Updated"</th>
                    {actions.map(|_| view! { <th scope="col" class=style::TH><span class="sr-only">"Actions"</span></th> })}
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
