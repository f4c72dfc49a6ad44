use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{AdminNav, gate, provider_options, time_cell};
use crate::{
    accounts::{AccountStatus, ProviderView, Reader},
    admin::{AccountList, AccountQuery, AccountSort, api::admin_accounts},
    notice::Notice,
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
    // The outcome of a disconnect this page was sent back with, in the words the user's own page uses.
    let banner = move |providers: &[ProviderView]| {
        let q = query.read_untracked();
        let notice = Notice::from_query(|name| q.get(name)).filter(|n| matches!(n, Notice::Disconnected { .. }))?;
        let (ok, text) = notice.message(Reader::Admin, |id| {
            providers
                .iter()
                .find(|p| p.id == id)
                .map_or_else(|| "The provider".to_owned(), |p| p.display_name.clone())
        });
        Some(
            view! { <div class=if ok { "alert alert-success" } else { "alert alert-error" } role="status">{text}</div> },
        )
    };
    view! {
        <Title text="Linked accounts · Admin · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let here = format!("/admin/accounts?{}", request().to_query_string(None));
                gate(data.await, &here, |list| view! { {banner(&list.providers)} <ListView list=list /> }.into_any())
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
