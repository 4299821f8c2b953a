use crate::model::CommandStatus;
use leptos::prelude::*;

/// The badge colours of a command's status, in the presence badges' palette:
/// waiting is sky (like sleeping), done is emerald (like online), over is
/// slate (like offline); in flight is amber and failed red.
pub fn status_class(status: CommandStatus) -> &'static str {
    match status {
        CommandStatus::Queued => "bg-sky-100 text-sky-800 dark:bg-sky-900/50 dark:text-sky-200",
        CommandStatus::Sending => {
            "bg-amber-100 text-amber-800 dark:bg-amber-900/50 dark:text-amber-200"
        }
        CommandStatus::Confirmed => {
            "bg-emerald-100 text-emerald-800 dark:bg-emerald-900/50 dark:text-emerald-200"
        }
        CommandStatus::Failed => "bg-red-100 text-red-800 dark:bg-red-900/50 dark:text-red-200",
        CommandStatus::Cancelled => {
            "bg-slate-200 text-slate-700 dark:bg-slate-700 dark:text-slate-200"
        }
    }
}

/// Queued, sending, confirmed, failed or cancelled.
#[component]
pub fn CommandStatusBadge(status: CommandStatus) -> impl IntoView {
    view! {
        <span
            class=format!("rounded-full px-2 py-0.5 text-xs font-medium whitespace-nowrap {}", status_class(status))
            data-status=status.as_str()
        >
            {status.as_str()}
        </span>
    }
}
