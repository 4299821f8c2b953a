use crate::model::{Role, TokenInfo};
use crate::server_fns::tokens::{list_tokens, CreateToken, RevokeToken};
use crate::ui::components::access_denied::or_access_denied;
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::page_header::PageHeader;
use crate::ui::components::timestamp::Timestamp;
use crate::ui::style::{
    ALERT_OK, BUTTON_DANGER, BUTTON_PRIMARY, CARD, H2, INPUT, LABEL, MUTED, TABLE, TD, TH, THEAD,
    TR,
};
use leptos::prelude::*;
use leptos_meta::Title;

/// Device and API tokens (admin only). A new token's secret is shown once.
#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let create_error = Signal::derive(move || action_error(create.value().get()));
    let revoke_error = Signal::derive(move || action_error(revoke.value().get()));
    view! {
        <Title text="API tokens" />
        <PageHeader
            title="API tokens"
            subtitle="Device tokens may post telemetry; API tokens may use the whole REST API."
        />
        <Suspense fallback=|| view! { <p class=MUTED>"Loading tokens…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    or_access_denied(
                        tokens.await,
                        Role::Admin,
                        |list| {
                            // After a hydrated submit the action holds the
                            // secret; after a plain form post the page got it
                            // from the server, once.
                            let secret = create
                                .value()
                                .get_untracked()
                                .and_then(|r| r.ok())
                                .map(|t| t.secret)
                                .or(list.new_secret);
                            let total = list.tokens.len();
                            let rows = list
                                .tokens
                                .into_iter()
                                .map(|t| token_row(t, revoke))
                                .collect_view();
                            view! {
                                {secret.map(new_secret)}
                                <section class=format!("{CARD} mb-6 p-4")>
                                    <h2 class=H2>"Create a token"</h2>
                                    <ActionForm action=create attr:class="flex flex-wrap items-end gap-3">
                                        <label class=LABEL>
                                            "Token name"
                                            <input name="name" required maxlength="100" class=INPUT />
                                        </label>
                                        <label class=LABEL>
                                            "Scope"
                                            <select name="scope" class=INPUT>
                                                <option value="device">"device"</option>
                                                <option value="api">"api"</option>
                                            </select>
                                        </label>
                                        <button
                                            type="submit"
                                            class=BUTTON_PRIMARY
                                            disabled=move || create.pending().get()
                                        >
                                            "Create token"
                                        </button>
                                    </ActionForm>
                                    <div class="mt-3">
                                        <FormStatus error=create_error />
                                    </div>
                                </section>
                                <div class="mb-3">
                                    <FormStatus error=revoke_error />
                                </div>
                                <div class=format!("{CARD} overflow-x-auto")>
                                    <table class=TABLE>
                                        <caption class="sr-only">"Tokens"</caption>
                                        <thead class=THEAD>
                                            <tr>
                                                <th scope="col" class=TH>"Name"</th>
                                                <th scope="col" class=TH>"Scope"</th>
                                                <th scope="col" class=TH>"Prefix"</th>
                                                <th scope="col" class=TH>"Created"</th>
                                                <th scope="col" class=TH>"Last used"</th>
                                                <th scope="col" class=TH>"Status"</th>
                                            </tr>
                                        </thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                    {(total == 0)
                                        .then(|| {
                                            view! {
                                                <p class=format!("{MUTED} p-6 text-center")>"No tokens yet."</p>
                                            }
                                        })}
                                </div>
                            }
                                .into_any()
                        },
                    )
                })}
            </ErrorBoundary>
        </Suspense>
    }
}

fn new_secret(secret: String) -> impl IntoView {
    view! {
        <div role="status" class=format!("{ALERT_OK} mb-6")>
            <p class="font-medium">"Copy the new token now: it is shown only this once."</p>
            <code
                data-testid="new-token"
                class="mt-2 block select-all break-all rounded bg-white px-2 py-1 font-mono text-sm text-slate-900 dark:bg-slate-950 dark:text-slate-100"
            >
                {secret}
            </code>
        </div>
    }
}

fn token_row(t: TokenInfo, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let revoke_label = format!("Revoke {}", t.name);
    let status = match t.revoked_at {
        Some(at) => view! {
            <span class=MUTED>"revoked " <Timestamp ms=at /></span>
        }
        .into_any(),
        None => view! {
            <ActionForm action=revoke attr:class="flex items-center gap-2">
                <span class="text-emerald-700 dark:text-emerald-400">"active"</span>
                <input type="hidden" name="id" value=t.id />
                <button type="submit" class=BUTTON_DANGER aria-label=revoke_label>
                    "Revoke"
                </button>
            </ActionForm>
        }
        .into_any(),
    };
    view! {
        <tr class=TR>
            <td class=format!("{TD} font-medium")>{t.name.clone()}</td>
            <td class=TD>{t.scope}</td>
            <td class=format!("{TD} font-mono text-xs")>{format!("{}…", t.prefix)}</td>
            <td class=format!("{TD} {MUTED}")>
                <Timestamp ms=t.created_at />
            </td>
            <td class=format!("{TD} {MUTED}")>
                <Timestamp ms=t.last_used_at />
            </td>
            <td class=TD>{status}</td>
        </tr>
    }
}
