use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found" />
        <main class="mx-auto mt-24 max-w-md text-center">
            <h1 class="text-3xl font-semibold">"Page not found"</h1>
            <p class="mt-2 text-slate-500">
                <a class="text-blue-700 underline" href="/">
                    "Back to the endpoints"
                </a>
            </p>
        </main>
    }
}
