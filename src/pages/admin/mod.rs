//! The admin area's pages (`/admin/...`). Each renders its server function's answer, or what stands in the way:
//! the sign-in page for visitors, "administrators only" (403) for other users, the problem with a filter (400).

mod account;
mod accounts;
mod audit;
mod dashboard;
mod users;
mod webhooks;

pub use account::AdminAccountPage;
pub use accounts::AdminAccountsPage;
pub use audit::AdminAuditPage;
pub use dashboard::AdminDashboardPage;
pub use users::AdminUsersPage;
pub use webhooks::{AdminWebhookPage, AdminWebhooksPage};

use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::{accounts::ProviderView, error::AppError};

/// The page for `result`: `render` its data, or the error. `here` is the page's own path (for sign-in's `next`).
fn gate<T>(result: Result<T, AppError>, here: &str, render: impl FnOnce(T) -> AnyView) -> AnyView {
    let err = match result {
        Ok(data) => return render(data),
        Err(err) => err,
    };
    // A visitor is redirected to sign in (the redirect sets its own status); every other problem keeps its status.
    #[cfg(feature = "ssr")]
    if err != AppError::NotSignedIn
        && let Some(res) = use_context::<leptos_axum::ResponseOptions>()
    {
        res.set_status(axum::http::StatusCode::from_u16(err.status()).unwrap_or_default());
    }
    match err {
        AppError::NotSignedIn => {
            view! { <Redirect path=format!("/sign-in?next={}", crate::query::encode(here)) /> }.into_any()
        }
        AppError::Forbidden => view! {
            <section class="panel narrow">
                <h1>"Administrators only"</h1>
                <p>"This page is for the administrators of this site. " <a href="/account">"Go to your account"</a>"."</p>
            </section>
        }
        .into_any(),
        err => view! {
            <div class="page-wide">
                <AdminNav />
                <div class="alert alert-error" role="alert">{err.to_string()}</div>
                <p><a href=here.split('?').next().unwrap_or("/admin").to_owned()>"Start over"</a></p>
            </div>
        }
        .into_any(),
    }
}

#[component]
fn AdminNav() -> impl IntoView {
    view! {
        <nav class="admin-nav" aria-label="Admin">
            <a href="/admin">"Dashboard"</a>
            <a href="/admin/accounts">"Linked accounts"</a>
            <a href="/admin/users">"Users"</a>
            <a href="/admin/audit">"Audit log"</a>
            <a href="/admin/webhooks">"Webhooks"</a>
        </nav>
    }
}

/// `<option>`s of the providers, `selected` the chosen one, after an "any" option.
fn provider_options(providers: Vec<ProviderView>, selected: Option<String>) -> impl IntoView {
    let any = selected.as_deref().is_none_or(str::is_empty);
    view! {
        <option value="" selected=any>"Any provider"</option>
        {providers
            .into_iter()
            .map(|p| {
                let is = selected.as_deref() == Some(p.id.as_str());
                view! { <option value=p.id selected=is>{p.display_name}</option> }
            })
            .collect_view()}
    }
}

/// A time cell: relative words, the exact time on hover, machine-readable in `datetime`.
fn time_cell(at: Option<i64>, now: i64, never: &'static str) -> AnyView {
    use crate::datetime::{ago, format_time, iso_time};
    match at {
        Some(at) if at > now => {
            view! { <time datetime=iso_time(at) title=format_time(at)>{crate::datetime::until(at - now)}</time> }
                .into_any()
        }
        Some(at) => view! { <time datetime=iso_time(at) title=format_time(at)>{ago(at, now)}</time> }.into_any(),
        None => view! { <span class="muted">{never}</span> }.into_any(),
    }
}

/// An audit outcome as a badge.
fn outcome_badge(outcome: crate::audit::Outcome) -> impl IntoView {
    use crate::audit::Outcome;
    let (class, text) = match outcome {
        Outcome::Success => ("badge badge-ok", "Done"),
        Outcome::Failure => ("badge badge-error", "Failed"),
        Outcome::Rejected => ("badge badge-warn", "Refused"),
    };
    view! { <span class=class>{text}</span> }
}
