use crate::model::Presence;
use leptos::prelude::*;

/// Online, sleeping (queue mode, between wake-ups) or offline.
#[component]
pub fn PresenceBadge(presence: Presence) -> impl IntoView {
    let (class, title) = match presence {
        Presence::Online => (
            "bg-emerald-100 text-emerald-800",
            "Registered and reachable",
        ),
        Presence::Sleeping => (
            "bg-sky-100 text-sky-800",
            "Queue mode: asleep until its next wake-up; commands wait for it",
        ),
        Presence::Offline => (
            "bg-slate-200 text-slate-700",
            "Deregistered or lifetime expired",
        ),
    };
    view! {
        <span
            class=format!("rounded-full px-2 py-0.5 text-xs font-medium {class}")
            title=title
            data-presence=presence.as_str()
        >
            {presence.as_str()}
        </span>
    }
}
