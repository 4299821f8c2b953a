use leptos::prelude::*;

/// Where a resource type came from: seeded with the release, discovered
/// from a device's data, or added by an admin for a custom object.
#[component]
pub fn OriginBadge(origin: String) -> impl IntoView {
    let class = match origin.as_str() {
        "seeded" => "rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-700 dark:bg-slate-800 dark:text-slate-300",
        "discovered" => "rounded-full bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-800 dark:bg-amber-950 dark:text-amber-300",
        _ => "rounded-full bg-violet-100 px-2 py-0.5 text-xs font-medium text-violet-800 dark:bg-violet-950 dark:text-violet-300",
    };
    view! { <span class=class>{origin}</span> }
}
