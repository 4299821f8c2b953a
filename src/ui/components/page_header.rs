use leptos::prelude::*;

/// The heading block every page starts with: a title, an optional line under
/// it and, on the right, the page's actions.
#[component]
pub fn PageHeader(
    #[prop(into)] title: String,
    #[prop(optional, into)] subtitle: Option<String>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <header class="mb-6 flex flex-wrap items-end justify-between gap-3">
            <div class="min-w-0">
                <h1 class="truncate text-2xl font-semibold tracking-tight text-slate-900 dark:text-slate-100">
                    {title}
                </h1>
                {subtitle
                    .map(|s| {
                        view! { <p class="mt-1 text-sm text-slate-500 dark:text-slate-400">{s}</p> }
                    })}
            </div>
            <div class="flex flex-wrap items-end gap-3">{children.map(|c| c())}</div>
        </header>
    }
}
