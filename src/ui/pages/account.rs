use crate::server_fns::account::{ChangePassword, CHANGED_PARAM};
use crate::server_fns::auth::whoami;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::page_header::PageHeader;
use crate::ui::style::{BUTTON_PRIMARY, CARD, H2, INPUT, LABEL, MUTED};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The signed-in user's own account: change the password (the current one
/// is required; other sessions end).
#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let query = use_query_map();
    let user = Resource::new(|| (), |_| whoami());
    let error = Signal::derive(move || action_error(change.value().get()));
    let ok = Signal::derive(move || {
        let hydrated = change.value().get().is_some_and(|r| r.is_ok());
        let plain = query.read().get(CHANGED_PARAM).is_some() && change.value().get().is_none();
        (hydrated || plain)
            .then(|| "Password changed. Your other sessions were signed out.".to_string())
    });
    let who = move || {
        Suspend::new(async move {
            user.await
                .ok()
                .flatten()
                .map(|u| format!("Signed in as {} ({})", u.username, u.role.as_str()))
        })
    };
    view! {
        <Title text="My account" />
        <PageHeader title="My account">
            <p class=MUTED>
                <Suspense fallback=|| ()>{who}</Suspense>
            </p>
        </PageHeader>
        <section class=format!("{CARD} max-w-md p-4")>
            <h2 class=H2>"Change password"</h2>
            <ActionForm action=change attr:class="flex flex-col gap-3">
                <label class=LABEL>
                    "Current password"
                    <input
                        name="current_password"
                        type="password"
                        autocomplete="current-password"
                        required
                        class=INPUT
                    />
                </label>
                <label class=LABEL>
                    "New password"
                    <input
                        name="new_password"
                        type="password"
                        autocomplete="new-password"
                        required
                        minlength="10"
                        class=INPUT
                    />
                </label>
                <p class=format!("{MUTED} text-xs")>"At least 10 characters."</p>
                <FormStatus error ok />
                <div>
                    <button type="submit" class=BUTTON_PRIMARY disabled=move || change.pending().get()>
                        "Change password"
                    </button>
                </div>
            </ActionForm>
        </section>
    }
}
