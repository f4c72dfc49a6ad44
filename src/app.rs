//! The HTML shell, the router, and the signed-in user shared by every page.
//!
//! Rendering is "islands": pages are rendered on the server only, and just the interactive parts (`#[island]`
//! components: forms, the sign-out button) are compiled to WASM and hydrated. This keeps the WASM small however many
//! pages we add (BENCHMARKS.md), and navigation between pages is an ordinary page load.

use leptos::prelude::*;
use leptos_meta::{Link, MetaTags, Stylesheet, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::{
    auth::UserDto,
    components::nav::{SiteFooter, SiteHeader},
    error::AppError,
    pages::{
        AccountPage, ActionsPage, ActivityPage, AdminAccountPage, AdminAccountsPage, AdminAuditPage,
        AdminDashboardPage, AdminUsersPage, AdminWebhookPage, AdminWebhooksPage, ConnectChooserPage, DisconnectPage,
        FileManagerPage, HomePage, LinkedAccountsPage, NotFoundPage, SignInPage, SignUpPage, TransferTaskPage,
        TransferTasksPage,
    },
};

/// The document around the app. Rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The signed-in user (or `None`), fetched once per page load and shared through context.
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Resource<Result<Option<UserDto>, AppError>>);

pub fn use_current_user() -> CurrentUser {
    expect_context::<CurrentUser>()
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Server-side only (pages are not hydrated). A change of identity (sign-in, sign-up, sign-out) loads the next
    // page in full, so nothing of the previous user's state can survive in the browser.
    provide_context(CurrentUser(Resource::new(
        || (),
        |_| crate::auth::api::get_current_user(),
    )));

    view! {
        <Stylesheet id="leptos" href="/pkg/onbehalf.css" />
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml" />
        <Router>
            <SiteHeader />
            <main id="main" class="main" tabindex="-1">
                // Async everywhere: a page is sent once its data is there. Out-of-order streaming would need
                // JavaScript to put late parts in place, and every page must work without it; a redirect or a
                // status code must also be decided before the first byte.
                <Routes fallback=NotFoundPage>
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async />
                    <Route path=path!("/sign-in") view=SignInPage ssr=SsrMode::Async />
                    <Route path=path!("/sign-up") view=SignUpPage ssr=SsrMode::Async />
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                    <Route path=path!("/linked-accounts") view=LinkedAccountsPage ssr=SsrMode::Async />
                    <Route path=path!("/linked-accounts/disconnect") view=DisconnectPage ssr=SsrMode::Async />
                    <Route path=path!("/activity") view=ActivityPage ssr=SsrMode::Async />
                    <Route path=path!("/connect") view=ConnectChooserPage ssr=SsrMode::Async />
                    <Route path=path!("/actions") view=ActionsPage ssr=SsrMode::Async />
                    <Route path=path!("/transfer") view=FileManagerPage ssr=SsrMode::Async />
                    <Route path=path!("/transfer/tasks") view=TransferTasksPage ssr=SsrMode::Async />
                    <Route path=path!("/transfer/tasks/:id") view=TransferTaskPage ssr=SsrMode::Async />
                    <Route path=path!("/admin") view=AdminDashboardPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/accounts") view=AdminAccountsPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/accounts/:id") view=AdminAccountPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/users") view=AdminUsersPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/audit") view=AdminAuditPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/webhooks") view=AdminWebhooksPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/webhooks/:id") view=AdminWebhookPage ssr=SsrMode::Async />
                </Routes>
            </main>
            <SiteFooter />
        </Router>
    }
}
