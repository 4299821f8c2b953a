use crate::model::{EventView, ResourceValue};
use crate::ui::components::relative_time::RelativeTime;
use crate::ui::style;
use leptos::prelude::*;

/// A value as text, with its unit.
fn value_text(r: &ResourceValue) -> String {
    let text = match &r.value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match &r.unit {
        Some(unit) if !unit.is_empty() => format!("{text} {unit}"),
        _ => text,
    }
}

/// Colours per kind of event, so registrations stand out.
fn type_class(event_type: &str) -> &'static str {
    match event_type {
        "registered" => {
            "bg-emerald-100 text-emerald-800 dark:bg-emerald-900/50 dark:text-emerald-200"
        }
        "registration_update" => "bg-sky-100 text-sky-800 dark:bg-sky-900/50 dark:text-sky-200",
        "deregistered" => "bg-slate-200 text-slate-700 dark:bg-slate-700 dark:text-slate-200",
        t if t.starts_with("firmware") => {
            "bg-violet-100 text-violet-800 dark:bg-violet-900/50 dark:text-violet-200"
        }
        _ => "bg-amber-100 text-amber-800 dark:bg-amber-900/50 dark:text-amber-200",
    }
}

/// Events as a timeline, each with its linked values expanded inline.
#[component]
pub fn EventList(
    events: Vec<EventView>,
    /// Link each event's endpoint (off on the endpoint's own page).
    #[prop(optional)]
    show_endpoint: bool,
) -> impl IntoView {
    if events.is_empty() {
        return view! { <p class=format!("p-6 text-center {}", style::MUTED)>"No events."</p> }
            .into_any();
    }
    view! {
        <ol class="divide-y divide-slate-100 dark:divide-slate-800" aria-label="Events">
            {events
                .into_iter()
                .map(|e| {
                    let endpoint_link = show_endpoint
                        .then(|| {
                            let href = format!(
                                "/events?endpoint={}",
                                crate::model::query::encode_component(&e.endpoint),
                            );
                            view! {
                                <a href=href class=format!("{} font-mono text-sm", style::LINK)>
                                    {e.endpoint.clone()}
                                </a>
                            }
                        });
                    view! {
                        <li class="px-4 py-3" data-event-id=e.id>
                            <div class="flex flex-wrap items-center gap-x-3 gap-y-1">
                                <span class=format!(
                                    "rounded-full px-2 py-0.5 text-xs font-medium {}",
                                    type_class(&e.event_type),
                                )>{e.event_type.clone()}</span>
                                {endpoint_link}
                                <span class=format!("ml-auto text-xs {}", style::MUTED)>
                                    <RelativeTime ms=Some(e.created_at) />
                                </span>
                            </div>
                            {(!e.resources.is_empty())
                                .then(|| {
                                    view! {
                                        <dl class="mt-2 grid grid-cols-1 gap-x-6 gap-y-1 text-xs sm:grid-cols-2 lg:grid-cols-3">
                                            {e
                                                .resources
                                                .iter()
                                                .map(|r| {
                                                    view! {
                                                        <div class="flex min-w-0 gap-2">
                                                            <dt class=format!("shrink-0 font-mono {}", style::MUTED)>
                                                                {r.path.clone()}
                                                            </dt>
                                                            <dd class="truncate" title=r.name.clone()>
                                                                <span class=style::MUTED>{r.name.clone()} ": "</span>
                                                                <span class="font-mono">{value_text(r)}</span>
                                                            </dd>
                                                        </div>
                                                    }
                                                })
                                                .collect_view()}
                                        </dl>
                                    }
                                })}
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
    .into_any()
}
