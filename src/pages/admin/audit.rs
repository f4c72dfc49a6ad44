use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{AdminNav, gate, outcome_badge, provider_options, time_cell};
use crate::{
    admin::{AuditList, AuditQuery, api::admin_audit},
    audit::{AuditAction, Outcome},
};

/// `/admin/audit`: every event, newest first, filtered by actor, subject, action, provider, result and time;
/// paged by a cursor; the filtered set can be downloaded as CSV or JSON Lines.
#[component]
pub fn AdminAuditPage() -> impl IntoView {
    let query = use_query_map();
    let request = move || {
        let q = query.read();
        AuditQuery {
            actor: q.get("actor"),
            subject: q.get("subject"),
            action: q.get("action"),
            provider: q.get("provider"),
            outcome: q.get("outcome"),
            from: q.get("from"),
            to: q.get("to"),
            before: q.get("before"),
        }
    };
    let data = Resource::new_blocking(request, admin_audit);
    view! {
        <Title text="Audit log · Admin · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let here = format!("/admin/audit?{}", request().to_query_string(None));
                gate(data.await, &here, |list| view! { <AuditView list=list /> }.into_any())
            })}
        </Suspense>
    }
}

#[component]
fn AuditView(list: AuditList) -> impl IntoView {
    let AuditList {
        query,
        entries,
        older,
        providers,
        now,
    } = list;
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let actions = AuditAction::ALL
        .into_iter()
        .map(|a| {
            let selected = query.action.as_deref() == Some(a.as_str());
            view! { <option value=a.as_str() selected=selected>{a.as_str()}</option> }
        })
        .collect_view();
    let outcomes = [Outcome::Success, Outcome::Failure, Outcome::Rejected]
        .into_iter()
        .map(|o| {
            let selected = query.outcome.as_deref() == Some(o.as_str());
            view! { <option value=o.as_str() selected=selected>{o.as_str()}</option> }
        })
        .collect_view();
    let filters = query.to_query_string(None);
    let export = |format: &str| {
        if filters.is_empty() {
            format!("/admin/audit/export?format={format}")
        } else {
            format!("/admin/audit/export?format={format}&{filters}")
        }
    };
    let table = if entries.is_empty() {
        let message = if query.before.is_some() {
            "No older events."
        } else {
            "No event matches these filters."
        };
        view! { <p class="muted empty-state">{message}</p> }.into_any()
    } else {
        let rows = entries
            .into_iter()
            .map(|e| {
                let actor = match (e.actor, e.actor_user_id) {
                    (Some(email), Some(id)) => {
                        view! { <a href=format!("/admin/audit?actor={id}")>{email}</a> }.into_any()
                    }
                    _ => view! { <span class="muted">"system"</span> }.into_any(),
                };
                let subject = match (e.subject, e.subject_user_id) {
                    (Some(email), Some(id)) => {
                        view! { <a href=format!("/admin/audit?subject={id}")>{email}</a> }.into_any()
                    }
                    _ => view! { <span class="muted">"—"</span> }.into_any(),
                };
                let account = e
                    .account_id
                    .map(|id| view! { <a href=format!("/admin/accounts/{id}") class="small">"account"</a> });
                view! {
                    <tr>
                        <td class="number">{e.id}</td>
                        <td>{time_cell(Some(e.at), now, "")}</td>
                        <td>{actor}</td>
                        <td>{subject}</td>
                        <td><code>{e.action}</code></td>
                        <td>{e.summary}{e.call.map(|call| view! { <br /><code class="small">{call}</code> })}" "{account}</td>
                        <td>{outcome_badge(e.outcome)}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data-table activity">
                <caption>"Events, newest first"</caption>
                <thead><tr>
                    <th scope="col">"#"</th><th scope="col">"When"</th><th scope="col">"By"</th>
                    <th scope="col">"About"</th><th scope="col">"Action"</th><th scope="col">"What happened"</th>
                    <th scope="col">"Result"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let newest = query
        .before
        .is_some()
        .then(|| view! { <a href=format!("/admin/audit?{}", query.to_query_string(None))>"Newest"</a> });
    let more = older.map(
        |id| view! { <a href=format!("/admin/audit?{}", query.to_query_string(Some(&id))) rel="next">"Older"</a> },
    );
    view! {
        <div class="page-wide">
            <AdminNav />
            <h1>"Audit log"</h1>
            <form method="get" action="/admin/audit" class="inline-form" role="search" aria-label="Filter the audit log">
                <div class="field">
                    <label for="f-actor">"By (email or id)"</label>
                    <input id="f-actor" name="actor" type="text" value=value(&query.actor) />
                </div>
                <div class="field">
                    <label for="f-subject">"About user (email or id)"</label>
                    <input id="f-subject" name="subject" type="text" value=value(&query.subject) />
                </div>
                <div class="field">
                    <label for="f-action">"Action"</label>
                    <select id="f-action" name="action">
                        <option value="" selected=query.action.is_none()>"Any action"</option>
                        {actions}
                    </select>
                </div>
                <div class="field">
                    <label for="f-provider">"Provider"</label>
                    <select id="f-provider" name="provider">{provider_options(providers, query.provider.clone())}</select>
                </div>
                <div class="field">
                    <label for="f-outcome">"Result"</label>
                    <select id="f-outcome" name="outcome">
                        <option value="" selected=query.outcome.is_none()>"Any result"</option>
                        {outcomes}
                    </select>
                </div>
                <div class="field">
                    <label for="f-from">"From (UTC)"</label>
                    <input id="f-from" name="from" type="text" placeholder="2026-11-22" value=value(&query.from) />
                </div>
                <div class="field">
                    <label for="f-to">"To (UTC)"</label>
                    <input id="f-to" name="to" type="text" placeholder="2026-11-22T18:00" value=value(&query.to) />
                </div>
                <button type="submit" class="button button-ghost">"Filter"</button>
            </form>
            <p class="small">"Download these events: "<a href=export("csv") download>"CSV"</a>" · "<a href=export("jsonl") download>"JSON Lines"</a></p>
            {table}
            <nav class="pager" aria-label="Audit log pages">{newest}{more}</nav>
        </div>
    }
}
