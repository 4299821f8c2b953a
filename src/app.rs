//! The shell, the router and the route table.
use crate::ui::components::layout::Layout;
use crate::ui::pages::{
    account::AccountPage, commands::CommandsPage, endpoint::EndpointPage, endpoints::EndpointsPage,
    events::EventsPage, firmware::FirmwarePage, login::LoginPage, logout::LogoutPage,
    not_found::NotFound, overview::OverviewPage, resource_types::ResourceTypesPage,
    tokens::TokensPage, updates::UpdatesPage, users::UsersPage,
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::server::security_headers::set_page_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.ico" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 antialiased dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/flownexus.css" />
        <Title formatter=|text| format!("{text} · flownexus") />
        <Router>
            // Async SSR: pages arrive complete, data included, so they work
            // before hydration and without JavaScript.
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=OverviewPage ssr=SsrMode::Async />
                    <Route path=path!("/endpoints") view=EndpointsPage ssr=SsrMode::Async />
                    <Route path=path!("/events") view=EventsPage ssr=SsrMode::Async />
                    <Route path=path!("/endpoints/:id") view=EndpointPage ssr=SsrMode::Async />
                    <Route path=path!("/commands") view=CommandsPage ssr=SsrMode::Async />
                    <Route path=path!("/updates") view=UpdatesPage ssr=SsrMode::Async />
                    <Route path=path!("/resource-types") view=ResourceTypesPage ssr=SsrMode::Async />
                    <Route path=path!("/firmware") view=FirmwarePage ssr=SsrMode::Async />
                    <Route path=path!("/users") view=UsersPage ssr=SsrMode::Async />
                    <Route path=path!("/tokens") view=TokensPage ssr=SsrMode::Async />
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                    <Route path=path!("/logout") view=LogoutPage ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
