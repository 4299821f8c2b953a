use crate::server_fns::auth::{Login, LOGIN_ERROR_PARAM, LOGIN_THROTTLED};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The sign-in form. A plain HTML form post, so it works before (or
/// without) hydration.
#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let error = move || {
        // After a hydrated submit the action holds the error; after a plain
        // form post the server redirected here with a marker.
        let from_action =
            login
                .value()
                .get()
                .and_then(|r| r.err())
                .map(|e| match e.details().first() {
                    Some(d) => d.reason.clone(),
                    None => e.to_string(),
                });
        let from_redirect =
            query
                .read()
                .get(LOGIN_ERROR_PARAM)
                .map(|marker| match marker.as_str() {
                    LOGIN_THROTTLED => {
                        "too many failed sign-ins; try again in a minute".to_string()
                    }
                    _ => "wrong username or password".to_string(),
                });
        from_action.or(from_redirect).map(|text| {
            view! {
                <p role="alert" class="rounded-md bg-red-50 px-3 py-2 text-sm text-red-700">
                    {text}
                </p>
            }
        })
    };
    view! {
        <Title text="Sign in" />
        <main class="flex min-h-screen items-center justify-center px-4">
            <div class="w-full max-w-sm rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
                <h1 class="mb-1 text-2xl font-semibold tracking-tight">"flownexus"</h1>
                <p class="mb-6 text-sm text-slate-500">"Sign in to the operator dashboard"</p>
                <ActionForm action=login attr:class="flex flex-col gap-4">
                    <label class="flex flex-col gap-1 text-sm font-medium text-slate-700">
                        "Username"
                        <input
                            name="username"
                            autocomplete="username"
                            required
                            class="rounded-md border border-slate-300 px-3 py-2 font-normal shadow-sm focus:border-blue-500 focus:outline-none"
                        />
                    </label>
                    <label class="flex flex-col gap-1 text-sm font-medium text-slate-700">
                        "Password"
                        <input
                            name="password"
                            type="password"
                            autocomplete="current-password"
                            required
                            class="rounded-md border border-slate-300 px-3 py-2 font-normal shadow-sm focus:border-blue-500 focus:outline-none"
                        />
                    </label>
                    {error}
                    <button
                        type="submit"
                        class="rounded-md bg-blue-600 px-4 py-2 font-medium text-white shadow-sm hover:bg-blue-700 disabled:opacity-60"
                        disabled=move || login.pending().get()
                    >
                        "Sign in"
                    </button>
                </ActionForm>
            </div>
        </main>
    }
}
