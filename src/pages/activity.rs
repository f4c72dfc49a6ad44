use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_query_map};

use crate::{
    activity::{ActivityEntry, ActivityKind, ActivityList, ActivityQuery, api::user_activity},
    audit::Outcome,
    datetime::{ago, format_time, iso_time},
    error::AppError,
};

/// "Activity": the user's own history — links, renewals, failures, actions taken for them, disconnects —
/// newest first, filtered by kind and provider, paged by a cursor; all of it in the URL, so it works without
/// JavaScript and every view can be bookmarked.
#[component]
pub fn ActivityPage() -> impl IntoView {
    let query = use_query_map();
    let request = move || {
        let q = query.read();
        ActivityQuery {
            kind: q.get("kind"),
            provider: q.get("provider").filter(|p| !p.is_empty()),
            before: q.get("before").and_then(|b| b.parse().ok()),
        }
    };
    let data = Resource::new_blocking(request, user_activity);
    view! {
        <Title text="Activity · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <ActivityView page=page /> }.into_any(),
                    Err(AppError::NotSignedIn) => view! { <Redirect path="/sign-in?next=/activity" /> }.into_any(),
                    Err(err) => view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ActivityView(page: ActivityList) -> impl IntoView {
    let ActivityList {
        kind,
        provider,
        entries,
        older,
        paged,
        providers,
        now,
    } = page;
    let filter = provider.clone();
    let link = move |before: Option<i64>| {
        let mut params = vec![format!("kind={}", kind.as_str())];
        if let Some(p) = &filter {
            params.push(format!("provider={p}"));
        }
        if let Some(b) = before {
            params.push(format!("before={b}"));
        }
        format!("/activity?{}", params.join("&"))
    };
    let kinds = ActivityKind::ALL
        .into_iter()
        .map(|k| view! { <option value=k.as_str() selected=k == kind>{k.label()}</option> })
        .collect_view();
    let provider_options = providers
        .into_iter()
        .map(|p| {
            let selected = provider.as_deref() == Some(p.id.as_str());
            view! { <option value=p.id selected=selected>{p.display_name}</option> }
        })
        .collect_view();
    let list = if entries.is_empty() {
        let message = if paged {
            "No older events."
        } else if kind == ActivityKind::All && provider.is_none() {
            "Nothing has happened yet. Link an account and its history shows up here."
        } else {
            "No events match these filters."
        };
        view! { <p class="muted empty-state">{message}</p> }.into_any()
    } else {
        view! {
            <table class="data-table activity">
                <caption>{format!("{} — newest first", kind.label())}</caption>
                <thead>
                    <tr><th scope="col">"When"</th><th scope="col">"What happened"</th><th scope="col">"Result"</th></tr>
                </thead>
                <tbody>
                    {entries.into_iter().map(|e| view! { <Row entry=e now=now /> }).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    let newer = paged.then(|| view! { <a href=link(None)>"Newest"</a> });
    let older = older.map(|id| view! { <a href=link(Some(id)) rel="next">"Older"</a> });
    view! {
        <div class="page-wide">
            <h1>"Activity"</h1>
            <p class="lead">"Everything this site did with your linked accounts, and what happened to them."</p>
            <form method="get" action="/activity" class="inline-form" role="search" aria-label="Filter activity">
                <div class="field">
                    <label for="activity-kind">"Show"</label>
                    <select id="activity-kind" name="kind">{kinds}</select>
                </div>
                <div class="field">
                    <label for="activity-provider">"Provider"</label>
                    <select id="activity-provider" name="provider">
                        <option value="" selected=provider.is_none()>"Any provider"</option>
                        {provider_options}
                    </select>
                </div>
                <button type="submit" class="button button-ghost">"Filter"</button>
            </form>
            {list}
            <nav class="pager" aria-label="Activity pages">{newer}{older}</nav>
        </div>
    }
    .into_any()
}

#[component]
fn Row(entry: ActivityEntry, now: i64) -> impl IntoView {
    let (class, result) = match entry.outcome {
        Outcome::Success => ("badge badge-ok", "Done"),
        Outcome::Failure => ("badge badge-error", "Failed"),
        Outcome::Rejected => ("badge badge-warn", "Refused"),
    };
    view! {
        <tr>
            <td><time datetime=iso_time(entry.at) title=format_time(entry.at)>{ago(entry.at, now)}</time></td>
            <td>{entry.summary}</td>
            <td><span class=class>{result}</span></td>
        </tr>
    }
}
