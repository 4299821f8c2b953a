use crate::model::{CurrentUser, Role};
use crate::ui::components::current_user::provide_current_user;
use crate::ui::components::relative_time::provide_clock;
use crate::ui::live_socket::{provide_live, LiveStatus};
use leptos::prelude::*;
use leptos_router::components::Outlet;
use leptos_router::hooks::use_location;

/// One entry of the navigation: its path, label and the least role that may
/// open it (the server checks the role again; hiding the link is courtesy).
struct NavItem {
    href: &'static str,
    label: &'static str,
    least: Role,
}

const NAV: &[NavItem] = &[
    NavItem {
        href: "/",
        label: "Overview",
        least: Role::Viewer,
    },
    NavItem {
        href: "/endpoints",
        label: "Endpoints",
        least: Role::Viewer,
    },
    NavItem {
        href: "/events",
        label: "Events",
        least: Role::Viewer,
    },
    NavItem {
        href: "/commands",
        label: "Commands",
        least: Role::Viewer,
    },
    NavItem {
        href: "/updates",
        label: "Updates",
        least: Role::Viewer,
    },
    NavItem {
        href: "/resource-types",
        label: "Resource types",
        least: Role::Viewer,
    },
    NavItem {
        href: "/firmware",
        label: "Firmware",
        least: Role::Viewer,
    },
    NavItem {
        href: "/users",
        label: "Users",
        least: Role::Admin,
    },
    NavItem {
        href: "/tokens",
        label: "API tokens",
        least: Role::Admin,
    },
    NavItem {
        href: "/account",
        label: "My account",
        least: Role::Viewer,
    },
];

/// Whether `path` belongs to the section `href` heads.
fn is_current(href: &str, path: &str) -> bool {
    if href == "/" {
        path == "/"
    } else {
        path == href || path.starts_with(&format!("{href}/"))
    }
}

/// The navigation links the user may open; `path` is the current page's.
#[component]
fn NavLinks(user: Option<CurrentUser>, path: Signal<String>) -> impl IntoView {
    let role = user.map(|u| u.role).unwrap_or(Role::Viewer);
    NAV.iter()
        .filter(|item| role.allows(item.least))
        .map(|item| {
            let href = item.href;
            let current = move || path.with(|path| is_current(href, path));
            view! {
                <a
                    href=href
                    class=move || {
                        if current() {
                            "block rounded-md bg-slate-800 px-3 py-2 text-sm font-medium text-white"
                        } else {
                            "block rounded-md px-3 py-2 text-sm text-slate-300 hover:bg-slate-800/60 hover:text-white"
                        }
                    }
                    aria-current=move || current().then_some("page")
                >
                    {item.label}
                </a>
            }
        })
        .collect_view()
}

/// The current page's path, for the navigation's highlight. In the browser
/// it follows the router. On the server it is read once, here, and the
/// navigation gets a plain value: both menus render in `Suspense` tasks
/// that the server's worker threads run at the same time, and reading the
/// router's `pathname` memo from both at once sometimes panicked in
/// reactive_graph 0.2.16 ("already been disposed", or an `unwrap` on the
/// memo's empty value). The panic ended the render task, so the page's
/// response never finished and its request hung.
fn current_path() -> Signal<String> {
    let pathname = use_location().pathname;
    if cfg!(feature = "ssr") {
        Signal::stored(pathname.get_untracked())
    } else {
        pathname.into()
    }
}

/// The frame of every signed-in page: a sidebar on wide screens, a
/// collapsible menu on narrow ones (a `<details>`, so it opens without
/// JavaScript), and the page body.
#[component]
pub fn Layout() -> impl IntoView {
    provide_clock();
    let live = provide_live();
    // Pages read the same resource to learn the user's role.
    let user = provide_current_user();
    let path = current_path();
    let nav = move || {
        Suspend::new(async move {
            let user = user.await.ok().flatten();
            view! { <NavLinks user=user.clone() path=path /> }
        })
    };
    let who = move || {
        Suspend::new(async move {
            user.await.ok().flatten().map(|u| {
                view! {
                    <span class="truncate text-slate-300" data-testid="current-user">
                        {u.username}
                    </span>
                    <span class="rounded bg-slate-800 px-1.5 py-0.5 text-xs text-slate-400">
                        {u.role.as_str()}
                    </span>
                }
            })
        })
    };
    view! {
        <div class="min-h-screen lg:flex">
            <aside class="bg-slate-900 text-slate-100 lg:fixed lg:inset-y-0 lg:flex lg:w-60 lg:flex-col">
                <div class="flex h-14 items-center gap-2 px-4">
                    <a href="/" class="flex items-center gap-2 text-lg font-semibold tracking-tight text-white">
                        <span class="inline-block h-6 w-6 rounded-md bg-gradient-to-br from-blue-500 to-emerald-400"></span>
                        "flownexus"
                    </a>
                </div>
                // Wide screens: always open.
                <nav class="hidden flex-1 flex-col gap-1 px-3 py-2 lg:flex" aria-label="Main">
                    <Suspense fallback=|| ()>{nav}</Suspense>
                </nav>
                // Narrow screens: a menu that opens without JavaScript.
                <details class="border-t border-slate-800 px-3 py-2 lg:hidden">
                    <summary class="cursor-pointer py-1 text-sm text-slate-300">"Menu"</summary>
                    <nav class="flex flex-col gap-1 pb-2" aria-label="Main (compact)">
                        <Suspense fallback=|| ()>{nav}</Suspense>
                    </nav>
                </details>
                <div class="hidden items-center gap-2 border-t border-slate-800 px-4 py-3 text-sm lg:flex">
                    <Suspense fallback=|| ()>{who}</Suspense>
                    <a href="/logout" class="ml-auto text-slate-400 hover:text-white">
                        "Sign out"
                    </a>
                </div>
            </aside>
            <div class="flex min-h-screen flex-1 flex-col lg:pl-60">
                <div class="flex items-center justify-end gap-4 px-4 pt-3 text-sm sm:px-6 lg:px-8">
                    <LiveIndicator status=live.status />
                    <a href="/logout" class="text-slate-500 hover:text-slate-900 lg:hidden dark:text-slate-400 dark:hover:text-white">
                        "Sign out"
                    </a>
                </div>
                <main class="mx-auto w-full max-w-7xl flex-1 px-4 py-6 sm:px-6 lg:px-8">
                    <Outlet />
                </main>
            </div>
        </div>
    }
}

/// The live connection's state: a dot and a word, pulsing while it
/// reconnects. Without JavaScript the page is a snapshot and says so.
#[component]
fn LiveIndicator(status: RwSignal<LiveStatus>) -> impl IntoView {
    view! {
        <span
            class="inline-flex items-center gap-1.5 text-xs text-slate-500 dark:text-slate-400"
            role="status"
            aria-label="Live updates"
            data-live=move || status.get().label()
        >
            <span class=move || {
                match status.get() {
                    LiveStatus::Live => "h-2 w-2 rounded-full bg-emerald-500",
                    LiveStatus::Connecting => "h-2 w-2 rounded-full bg-slate-300",
                    LiveStatus::Reconnecting => "h-2 w-2 rounded-full bg-amber-500 animate-pulse",
                }
            }></span>
            {move || status.get().label()}
        </span>
    }
}

#[cfg(test)]
mod tests {
    use super::is_current;

    #[test]
    fn sections_own_their_sub_pages() {
        assert!(is_current("/", "/"));
        assert!(!is_current("/", "/endpoints"));
        assert!(is_current("/endpoints", "/endpoints/7"));
        assert!(!is_current("/endpoints", "/endpointsx"));
    }
}
