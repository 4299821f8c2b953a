use crate::server_fns::auth::whoami;
use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

/// The frame of every signed-in page: top navigation and the page body.
#[component]
pub fn Layout() -> impl IntoView {
    let user = Resource::new(|| (), |_| whoami());
    view! {
        <div class="min-h-screen flex flex-col">
            <header class="bg-slate-900 text-slate-100">
                <nav
                    class="mx-auto max-w-6xl px-4 h-14 flex items-center gap-6"
                    aria-label="Main"
                >
                    <A href="/" attr:class="font-semibold tracking-tight text-lg text-white">
                        "flownexus"
                    </A>
                    <A href="/" attr:class="text-sm text-slate-300 hover:text-white">
                        "Endpoints"
                    </A>
                    <div class="ml-auto flex items-center gap-4 text-sm">
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                user.await
                                    .ok()
                                    .flatten()
                                    .map(|u| {
                                        view! {
                                            <span class="text-slate-300" data-testid="current-user">
                                                {u.username}
                                            </span>
                                        }
                                    })
                            })}
                        </Suspense>
                        <A href="/logout" attr:class="text-slate-300 hover:text-white">
                            "Sign out"
                        </A>
                    </div>
                </nav>
            </header>
            <main class="mx-auto w-full max-w-6xl px-4 py-6 flex-1">
                <Outlet />
            </main>
        </div>
    }
}
