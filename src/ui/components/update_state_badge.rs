use crate::model::FirmwareUpdateState;
use leptos::prelude::*;

/// Colours of a firmware update's state, matching the command badges:
/// waiting sky, in progress amber, done emerald, failed red, stopped slate.
fn state_class(state: FirmwareUpdateState) -> &'static str {
    use FirmwareUpdateState as S;
    match state {
        S::Pending => "bg-sky-100 text-sky-800 dark:bg-sky-900/50 dark:text-sky-200",
        S::Downloading | S::Downloaded | S::Updating => {
            "bg-amber-100 text-amber-800 dark:bg-amber-900/50 dark:text-amber-200"
        }
        S::Succeeded => {
            "bg-emerald-100 text-emerald-800 dark:bg-emerald-900/50 dark:text-emerald-200"
        }
        S::Failed | S::TimedOut => "bg-red-100 text-red-800 dark:bg-red-900/50 dark:text-red-200",
        S::Cancelled => "bg-slate-200 text-slate-700 dark:bg-slate-700 dark:text-slate-200",
    }
}

/// The state in words ("timed out", not `timed_out`).
#[component]
pub fn UpdateStateBadge(state: FirmwareUpdateState) -> impl IntoView {
    view! {
        <span
            class=format!("rounded-full px-2 py-0.5 text-xs font-medium whitespace-nowrap {}", state_class(state))
            data-state=state.as_str()
        >
            {state.as_str().replace('_', " ")}
        </span>
    }
}
