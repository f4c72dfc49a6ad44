use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{AdminNav, gate, time_cell};
use crate::{
    admin::{UserList, UserQuery, api::admin_users},
    auth::Role,
    query::query_string,
};

/// `/admin/users`: users by id, searched by email or name; each can be disabled (signed out everywhere, nothing
/// done for them) or enabled again.
#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let query = use_query_map();
    let request = move || {
        let q = query.read();
        UserQuery {
            q: q.get("q"),
            after: q.get("after").and_then(|a| a.parse().ok()),
        }
    };
    let data = Resource::new_blocking(request, admin_users);
    let notice = move || {
        let q = query.read_untracked();
        match (q.get("error").as_deref(), q.get("changed")) {
            (Some("self"), _) => Some(view! { <div class="alert alert-error" role="alert">"You cannot disable your own account: another admin (or the onbehalf user disable command) can."</div> }.into_any()),
            (Some("gone"), _) => Some(view! { <div class="alert alert-error" role="alert">"That user does not exist (any more)."</div> }.into_any()),
            (Some(_), _) => Some(view! { <div class="alert alert-error" role="alert">"That could not be saved. Try again; the server log has the cause."</div> }.into_any()),
            (None, Some(_)) => Some(view! { <div class="alert alert-success" role="status">"Saved."</div> }.into_any()),
            _ => None,
        }
    };
    view! {
        <Title text="Users · Admin · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                gate(data.await, "/admin/users", |list| view! { {notice()} <UsersView list=list /> }.into_any())
            })}
        </Suspense>
    }
}

#[component]
fn UsersView(list: UserList) -> impl IntoView {
    let UserList {
        query,
        users,
        next,
        me,
        now,
    } = list;
    let search = query.q.clone().unwrap_or_default();
    let here = {
        let after = query.after.map(|a| a.to_string());
        let qs = query_string(&[("q", query.q.as_deref()), ("after", after.as_deref())]);
        if qs.is_empty() {
            "/admin/users".to_owned()
        } else {
            format!("/admin/users?{qs}")
        }
    };
    let table = if users.is_empty() {
        view! { <p class="muted empty-state">"No user matches."</p> }.into_any()
    } else {
        let rows = users
            .into_iter()
            .map(|u| {
                let status = if u.disabled {
                    view! { <span class="badge badge-warn">"Disabled"</span> }.into_any()
                } else {
                    view! { <span class="badge badge-ok">"Active"</span> }.into_any()
                };
                let name = match (&u.external_id, u.email.is_empty()) {
                    (Some(external), true) => external.clone(),
                    _ => u.email.clone(),
                };
                let toggle = (u.id != me).then(|| {
                    let (value, label, class) = if u.disabled {
                        ("false", format!("Enable {name}"), "button button-ghost")
                    } else {
                        ("true", format!("Disable {name}"), "button button-danger-ghost")
                    };
                    view! {
                        <form method="post" action="/api/admin_set_user_disabled">
                            <input type="hidden" name="user" value=u.id />
                            <input type="hidden" name="disabled" value=value />
                            <input type="hidden" name="next" value=here.clone() />
                            <button type="submit" class=class aria-label=label.clone()>{if u.disabled { "Enable" } else { "Disable" }}</button>
                        </form>
                    }
                });
                let role = match u.role {
                    Role::Admin => "Admin",
                    Role::User => "User",
                };
                view! {
                    <tr>
                        <td class="number">{u.id}</td>
                        <td>
                            {u.email.clone()}
                            {u.external_id.clone().map(|x| view! { <div class="small">"Platform id: " <code>{x}</code></div> })}
                            <div class="muted small">{u.display_name}</div>
                        </td>
                        <td>{role}</td>
                        <td>{status}</td>
                        <td class="number"><a href=format!("/admin/accounts?user={}", u.id)>{u.accounts}</a></td>
                        <td>{time_cell(Some(u.created_at), now, "")}</td>
                        <td>{toggle}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data-table">
                <thead><tr>
                    <th scope="col">"Id"</th><th scope="col">"User"</th><th scope="col">"Role"</th>
                    <th scope="col">"Status"</th><th scope="col">"Links"</th><th scope="col">"Joined"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let more = next.map(|n| {
        let qs = query_string(&[("q", query.q.as_deref()), ("after", Some(&n.to_string()))]);
        view! { <a href=format!("/admin/users?{qs}") rel="next">"Next page"</a> }
    });
    view! {
        <div class="page-wide">
            <AdminNav />
            <h1>"Users"</h1>
            <form method="get" action="/admin/users" class="inline-form" role="search" aria-label="Find users">
                <div class="field">
                    <label for="f-q">"Email, name or external id starts with"</label>
                    <input id="f-q" name="q" type="search" value=search />
                </div>
                <button type="submit" class="button button-ghost">"Find"</button>
            </form>
            {table}
            <nav class="pager" aria-label="User pages">{more}</nav>
        </div>
    }
}
