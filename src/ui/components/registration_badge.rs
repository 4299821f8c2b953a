use leptos::prelude::*;

/// Whether the LwM2M server reports the endpoint as registered.
#[component]
pub fn RegistrationBadge(registered: bool) -> impl IntoView {
    let (class, text) = if registered {
        ("bg-emerald-100 text-emerald-800", "registered")
    } else {
        ("bg-slate-100 text-slate-600", "not registered")
    };
    view! {
        <span class=format!("rounded-full px-2 py-0.5 text-xs font-medium {class}")>{text}</span>
    }
}
