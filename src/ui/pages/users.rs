use crate::model::{Role, UserInfo};
use crate::server_fns::users::{
    list_users, CreateUser, ResetUserPassword, SetUserActive, SetUserRole,
};
use crate::ui::components::access_denied::or_access_denied;
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::page_header::PageHeader;
use crate::ui::components::timestamp::Timestamp;
use crate::ui::style::{
    BUTTON_DANGER, BUTTON_PRIMARY, BUTTON_SECONDARY, CARD, H2, INPUT, LABEL, LINK, MUTED, TABLE,
    TD, TH, THEAD, TR,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

/// The row actions, all posting plain forms.
#[derive(Clone, Copy)]
struct RowActions {
    reset: ServerAction<ResetUserPassword>,
    set_role: ServerAction<SetUserRole>,
    set_active: ServerAction<SetUserActive>,
}

/// User administration (admin only; the server refuses everyone else).
#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let actions = RowActions {
        reset: ServerAction::new(),
        set_role: ServerAction::new(),
        set_active: ServerAction::new(),
    };
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                actions.reset.version().get(),
                actions.set_role.version().get(),
                actions.set_active.version().get(),
            )
        },
        |_| list_users(),
    );
    let create_error = Signal::derive(move || action_error(create.value().get()));
    let create_ok = Signal::derive(move || {
        create
            .value()
            .get()
            .and_then(|r| r.ok())
            .map(|_| "User created.".to_string())
    });
    let row_error = Signal::derive(move || {
        action_error(actions.reset.value().get())
            .or_else(|| action_error(actions.set_role.value().get()))
            .or_else(|| action_error(actions.set_active.value().get()))
    });
    let row_ok = Signal::derive(move || {
        actions
            .reset
            .value()
            .get()
            .and_then(|r| r.ok())
            .map(|_| "Password reset; the user's sessions ended.".to_string())
    });
    view! {
        <Title text="Users" />
        <PageHeader title="Users" subtitle="Who may sign in, and with which role." />
        <Suspense fallback=|| view! { <p class=MUTED>"Loading users…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    or_access_denied(
                        users.await,
                        Role::Admin,
                        |list| {
                            let me = list.me;
                            let rows = list
                                .users
                                .into_iter()
                                .map(|u| user_row(u, me, actions))
                                .collect_view();
                            view! {
                                <div class="mb-3">
                                    <FormStatus error=row_error ok=row_ok />
                                </div>
                                <div class=format!("{CARD} overflow-x-auto")>
                                    <table class=TABLE>
                                        <caption class="sr-only">"Users"</caption>
                                        <thead class=THEAD>
                                            <tr>
                                                <th scope="col" class=TH>"Username"</th>
                                                <th scope="col" class=TH>"Role"</th>
                                                <th scope="col" class=TH>"Status"</th>
                                                <th scope="col" class=TH>"Created"</th>
                                                <th scope="col" class=TH>"Password"</th>
                                                <th scope="col" class=TH>
                                                    <span class="sr-only">"Access"</span>
                                                </th>
                                            </tr>
                                        </thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                                {create_form(create, create_error, create_ok)}
                            }
                                .into_any()
                        },
                    )
                })}
            </ErrorBoundary>
        </Suspense>
    }
}

fn role_options(selected: Role) -> impl IntoView {
    ROLES
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected=r == selected>{r.as_str()}</option> })
        .collect_view()
}

fn user_row(u: UserInfo, me: i64, actions: RowActions) -> impl IntoView {
    let is_me = u.id == me;
    let role_label = format!("Role of {}", u.username);
    let password_label = format!("New password for {}", u.username);
    let role_cell = if is_me {
        view! { <span>{u.role.as_str()} <span class=MUTED>" (you)"</span></span> }.into_any()
    } else {
        view! {
            <ActionForm action=actions.set_role attr:class="flex items-center gap-2">
                <input type="hidden" name="id" value=u.id />
                <select name="role" class=INPUT aria-label=role_label>
                    {role_options(u.role)}
                </select>
                <button type="submit" class=BUTTON_SECONDARY>"Change role"</button>
            </ActionForm>
        }
        .into_any()
    };
    let password_cell = if is_me {
        view! {
            <A href="/account" attr:class=LINK>"Change under My account"</A>
        }
        .into_any()
    } else {
        view! {
            <ActionForm action=actions.reset attr:class="flex items-center gap-2">
                <input type="hidden" name="id" value=u.id />
                <input
                    type="password"
                    name="password"
                    autocomplete="new-password"
                    required
                    minlength="10"
                    class=format!("{INPUT} w-40")
                    aria-label=password_label
                />
                <button type="submit" class=BUTTON_SECONDARY>"Reset password"</button>
            </ActionForm>
        }
        .into_any()
    };
    let access_cell = (!is_me).then(|| {
        let (label, class) = if u.active {
            ("Deactivate", BUTTON_DANGER)
        } else {
            ("Reactivate", BUTTON_SECONDARY)
        };
        view! {
            <ActionForm action=actions.set_active>
                <input type="hidden" name="id" value=u.id />
                <input type="hidden" name="active" value=(!u.active).to_string() />
                <button type="submit" class=class>{label}</button>
            </ActionForm>
        }
    });
    let status = if u.active {
        view! { <span class="text-emerald-700 dark:text-emerald-400">"active"</span> }.into_any()
    } else {
        view! { <span class=MUTED>"deactivated"</span> }.into_any()
    };
    view! {
        <tr class=TR>
            <td class=format!("{TD} font-medium")>{u.username}</td>
            <td class=TD>{role_cell}</td>
            <td class=TD>{status}</td>
            <td class=format!("{TD} {MUTED}")>
                <Timestamp ms=u.created_at />
            </td>
            <td class=TD>{password_cell}</td>
            <td class=TD>{access_cell}</td>
        </tr>
    }
}

fn create_form(
    create: ServerAction<CreateUser>,
    error: Signal<Option<String>>,
    ok: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <section class=format!("{CARD} mt-6 p-4")>
            <h2 class=H2>"Create a user"</h2>
            <ActionForm action=create attr:class="flex flex-wrap items-end gap-3">
                <label class=LABEL>
                    "Username"
                    <input name="username" autocomplete="off" required class=INPUT />
                </label>
                <label class=LABEL>
                    "Initial password"
                    <input
                        name="password"
                        type="password"
                        autocomplete="new-password"
                        required
                        minlength="10"
                        class=INPUT
                    />
                </label>
                <label class=LABEL>
                    "Role"
                    <select name="role" class=INPUT>
                        {role_options(Role::Viewer)}
                    </select>
                </label>
                <button type="submit" class=BUTTON_PRIMARY disabled=move || create.pending().get()>
                    "Create user"
                </button>
            </ActionForm>
            <p class=format!("{MUTED} mt-2 text-xs")>
                "Admin: everything, including users and tokens. Operator: may send commands and start updates. Viewer: read only. Passwords need at least 10 characters."
            </p>
            <div class="mt-3">
                <FormStatus error ok />
            </div>
        </section>
    }
}
