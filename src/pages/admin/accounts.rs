use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{AdminNav, gate, provider_options, time_cell};
use crate::{
    accounts::AccountStatus,
    admin::{AccountList, AccountQuery, AccountSort, api::admin_accounts},
};

/// `/admin/accounts`: every linked account across users, filtered, sorted and paged, all in the URL.
#[component]
pub fn AdminAccountsPage() -> impl IntoView {
    let query = use_query_map();
    let request = move || {
        let q = query.read();
        AccountQuery {
            provider: q.get("provider"),
            status: q.get("status"),
            user: q.get("user"),
            identity: q.get("identity"),
            sort: q.get("sort"),
            after: q.get("after"),
        }
    };
    let data = Resource::new_blocking(request, admin_accounts);
    let banner = move || {
        let q = query.read_untracked();
        q.get("disconnected").map(|provider| {
            let number = |k: &str| q.get(k).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
            let (revoked, failed) = (number("revoked"), number("failed"));
            // Built from numbers and the provider's id only, never from other text in the URL.
            let provider = provider.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>();
            let (class, text) = if failed > 0 {
                ("alert alert-error", format!("Disconnected the {provider} account. The provider did not confirm revoking {failed} token(s); they wait on the user's page for a retry."))
            } else if q.get("not_offered").is_some() {
                ("alert alert-success", format!("Disconnected the {provider} account. The provider offers no revocation: its grant must be removed there."))
            } else {
                ("alert alert-success", format!("Disconnected the {provider} account; the provider revoked {revoked} token(s)."))
            };
            view! { <div class=class role="status">{text}</div> }
        })
    };
    view! {
        <Title text="Linked accounts · Admin · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let here = format!("/admin/accounts?{}", request().to_query_string(None));
                gate(data.await, &here, |list| view! { {banner()} <ListView list=list /> }.into_any())
            })}
        </Suspense>
    }
}

#[component]
fn ListView(list: AccountList) -> impl IntoView {
    let AccountList {
        query,
        sort,
        rows,
        next,
        providers,
        now,
    } = list;
    let statuses = AccountStatus::ALL
        .into_iter()
        .map(|s| {
            let selected = query.status.as_deref() == Some(s.as_str());
            view! { <option value=s.as_str() selected=selected>{s.label()}</option> }
        })
        .collect_view();
    let sorts = AccountSort::ALL
        .into_iter()
        .map(|s| view! { <option value=s.as_str() selected=s == sort>{s.label()}</option> })
        .collect_view();
    let table = if rows.is_empty() {
        let message = if query.after.is_some() {
            "No more accounts."
        } else {
            "No linked account matches these filters."
        };
        view! { <p class="muted empty-state">{message}</p> }.into_any()
    } else {
        let rows = rows
            .into_iter()
            .map(|a| {
                let user = a.user_label();
                view! {
                    <tr>
                        <td><a href=format!("/admin/accounts/{}", a.id)>{a.label}</a><div class="muted small">{a.subject}</div></td>
                        <td>{a.provider_name}</td>
                        <td><a href=format!("/admin/accounts?user={}", a.user_id)>{user}</a></td>
                        <td><span class=a.status.badge_class()>{a.status.label()}</span></td>
                        <td>{time_cell(a.last_used_at, now, "never")}</td>
                        <td>{time_cell(a.expires_at, now, "no expiry")}</td>
                        <td>{time_cell(Some(a.created_at), now, "")}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data-table">
                <caption>{format!("Linked accounts — {}", sort.label().to_lowercase())}</caption>
                <thead><tr>
                    <th scope="col">"Identity"</th><th scope="col">"Provider"</th><th scope="col">"User"</th>
                    <th scope="col">"Status"</th><th scope="col">"Last used"</th><th scope="col">"Token expiry"</th>
                    <th scope="col">"Linked"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let first = query
        .after
        .is_some()
        .then(|| view! { <a href=format!("/admin/accounts?{}", query.to_query_string(None))>"First page"</a> });
    let more = next.map(
        |c| view! { <a href=format!("/admin/accounts?{}", query.to_query_string(Some(&c))) rel="next">"Next page"</a> },
    );
    view! {
        <div class="page-wide">
            <AdminNav />
            <h1>"Linked accounts"</h1>
            <form method="get" action="/admin/accounts" class="inline-form" role="search" aria-label="Filter linked accounts">
                <div class="field">
                    <label for="f-provider">"Provider"</label>
                    <select id="f-provider" name="provider">{provider_options(providers, query.provider.clone())}</select>
                </div>
                <div class="field">
                    <label for="f-status">"Status"</label>
                    <select id="f-status" name="status">
                        <option value="" selected=query.status.is_none()>"Any status"</option>
                        {statuses}
                    </select>
                </div>
                <div class="field">
                    <label for="f-user">"User (email, id or external id)"</label>
                    <input id="f-user" name="user" type="text" value=query.user.clone().unwrap_or_default() />
                </div>
                <div class="field">
                    <label for="f-identity">"Identity (subject, username or email)"</label>
                    <input id="f-identity" name="identity" type="text" value=query.identity.clone().unwrap_or_default() />
                </div>
                <div class="field">
                    <label for="f-sort">"Order"</label>
                    <select id="f-sort" name="sort">{sorts}</select>
                </div>
                <button type="submit" class="button button-ghost">"Filter"</button>
            </form>
            {table}
            <nav class="pager" aria-label="Account pages">{first}{more}</nav>
        </div>
    }
}
