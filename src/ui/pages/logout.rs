use crate::server_fns::auth::Logout;
use leptos::prelude::*;
use leptos_meta::Title;

/// Confirms signing out. A form post, so it works without JavaScript.
#[component]
pub fn LogoutPage() -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    view! {
        <Title text="Sign out" />
        <div class="mx-auto mt-16 max-w-sm rounded-xl border border-slate-200 bg-white p-8 text-center shadow-sm">
            <h1 class="mb-4 text-xl font-semibold">"Sign out of flownexus?"</h1>
            <ActionForm action=logout>
                <button
                    type="submit"
                    class="rounded-md bg-slate-900 px-4 py-2 font-medium text-white hover:bg-slate-700"
                >
                    "Sign out"
                </button>
            </ActionForm>
        </div>
    }
}
