use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::{AdminNav, gate, outcome_badge, time_cell};
use crate::{
    admin::{AccountDetail, AuditEntry, REASON_MAX_LEN, api::admin_account},
    datetime::{format_time, iso_time},
};

/// `/admin/accounts/:id`: one linked account — its user, identity, token sets (metadata only) and history — and
/// the form that disconnects it.
#[component]
pub fn AdminAccountPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new_blocking(id, admin_account);
    let error = use_query_map().read_untracked().get("error");
    view! {
        <Title text="Linked account · Admin · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let error = error.clone();
                Suspend::new(async move {
                    let here = format!("/admin/accounts/{}", crate::query::encode(&id()));
                    gate(data.await, &here, |d| view! { <DetailView d=d error=error /> }.into_any())
                })
            }}
        </Suspense>
    }
}

#[component]
fn DetailView(d: AccountDetail, error: Option<String>) -> impl IntoView {
    let now = d.now;
    let a = d.account;
    // Fixed sentences by code: nothing from the URL is shown.
    let problem = error.map(|code| {
        let text = match code.as_str() {
            "reason" => format!(
                "Give a reason on one line, at most {} characters: the user reads it.",
                REASON_MAX_LEN
            ),
            "gone" => "That account is not linked any more.".to_owned(),
            _ => "The account could not be disconnected. Try again; the server log has the cause.".to_owned(),
        };
        view! { <div class="alert alert-error" role="alert">{text}</div> }
    });
    let sets = if d.token_sets.is_empty() {
        view! { <p class="muted">"No token is stored for this account."</p> }.into_any()
    } else {
        let rows = d
            .token_sets
            .into_iter()
            .map(|t| {
                let health = match (&t.last_error, t.cooldown_until) {
                    (_, Some(until)) if until > now => format!(
                        "cooling down until {} after {} failure(s)",
                        format_time(until),
                        t.failures
                    ),
                    (Some(e), _) if t.failures > 0 => format!("{} failure(s): {e}", t.failures),
                    _ => "ok".to_owned(),
                };
                view! {
                    <tr>
                        <th scope="row">{t.resource_server}</th>
                        <td>{t.scopes.join(" ")}</td>
                        <td>{t.token_type}{if t.has_refresh_token { " + refresh token" } else { "" }}</td>
                        <td>{time_cell(Some(t.issued_at), now, "")}</td>
                        <td>{time_cell(t.expires_at, now, "no expiry")}</td>
                        <td class="number">{t.version}</td>
                        <td>{health}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data-table">
                <caption>"Token sets (metadata only: token values are never shown)"</caption>
                <thead><tr>
                    <th scope="col">"Resource server"</th><th scope="col">"Scopes"</th><th scope="col">"Type"</th>
                    <th scope="col">"Issued"</th><th scope="col">"Expires"</th><th scope="col">"Version"</th>
                    <th scope="col">"Refresh health"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let consent = (!d.consent_scopes.is_empty()).then(|| {
        view! { <p>"Missing consent: "<code>{d.consent_scopes.join(" ")}</code></p> }
    });
    let disabled = d
        .user_disabled
        .then(|| view! { " " <span class="badge badge-warn">"disabled"</span> });
    let title = format!("{} · {}", a.provider_name, a.label);
    let audit_link = format!("/admin/audit?subject={}", a.user_id);
    view! {
        <div class="page-wide">
            <AdminNav />
            <h1>{title}</h1>
            {problem}
            <dl class="facts">
                <div><dt>"User"</dt><dd><a href=format!("/admin/accounts?user={}", a.user_id)>{a.user_label()}</a>" ("{d.user_display_name}")"{disabled}</dd></div>
                <div><dt>"Status"</dt><dd><span class=a.status.badge_class()>{a.status.label()}</span>" "{a.status_reason.unwrap_or_default()}</dd></div>
                <div><dt>"Subject"</dt><dd><code>{a.subject}</code></dd></div>
                <div><dt>"Username"</dt><dd>{d.username.unwrap_or_else(|| "—".into())}</dd></div>
                <div><dt>"Email at the provider"</dt><dd>{d.email.unwrap_or_else(|| "—".into())}</dd></div>
                <div><dt>"Linked"</dt><dd><time datetime=iso_time(a.created_at)>{format_time(a.created_at)}</time></dd></div>
                <div><dt>"Last used"</dt><dd>{time_cell(a.last_used_at, now, "never")}</dd></div>
                <div><dt>"Last refreshed"</dt><dd>{time_cell(d.last_refreshed_at, now, "never")}</dd></div>
            </dl>
            {consent}
            {sets}
            <h2>"History"</h2>
            <History entries=d.history now=now />
            <p><a href=audit_link>"All of this user's events in the audit log"</a></p>
            <section class="panel panel-warn" aria-labelledby="force-disconnect">
                <h2 id="force-disconnect">"Disconnect this account"</h2>
                <p>"Deletes the link and its tokens here and asks the provider to revoke them. The user sees your reason in their activity and can link the account again."</p>
                <form method="post" action="/api/admin_disconnect" class="stack-form">
                    <input type="hidden" name="account" value=a.id />
                    <div class="field">
                        <label for="reason">"Reason (shown to the user)"</label>
                        <input id="reason" name="reason" type="text" required maxlength=REASON_MAX_LEN />
                    </div>
                    <button type="submit" class="button button-danger">"Disconnect"</button>
                </form>
            </section>
        </div>
    }
}

#[component]
pub(super) fn History(entries: Vec<AuditEntry>, now: i64) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="muted empty-state">"No events."</p> }.into_any();
    }
    let rows = entries
        .into_iter()
        .map(|e| {
            let actor = e.actor.clone().unwrap_or_else(|| "system".into());
            view! {
                <tr>
                    <td>{time_cell(Some(e.at), now, "")}</td>
                    <td><code>{e.action}</code></td>
                    <td>{e.summary}{e.call.map(|call| view! { <br /><code class="small">{call}</code> })}</td>
                    <td>{actor}</td>
                    <td>{outcome_badge(e.outcome)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="data-table activity">
            <thead><tr>
                <th scope="col">"When"</th><th scope="col">"Action"</th><th scope="col">"What happened"</th>
                <th scope="col">"By"</th><th scope="col">"Result"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
