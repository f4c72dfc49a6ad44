use leptos::prelude::*;
use leptos_meta::Title;

use super::{AdminNav, gate, time_cell};
use crate::admin::{Dashboard, api::admin_dashboard};

/// `/admin`: the state of every link at a glance, the last day's work, and what needs attention.
#[component]
pub fn AdminDashboardPage() -> impl IntoView {
    let data = Resource::new_blocking(|| (), |_| admin_dashboard());
    view! {
        <Title text="Admin · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                gate(data.await, "/admin", |d| view! { <DashboardView d=d /> }.into_any())
            })}
        </Suspense>
    }
}

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let total: i64 = d.links.iter().map(|l| l.count).sum();
    let links = d
        .links
        .into_iter()
        .map(|l| {
            let href = format!(
                "/admin/accounts?provider={}&status={}",
                l.provider_id,
                l.status.as_str()
            );
            view! {
                <tr>
                    <td>{l.provider_name}</td>
                    <td><span class=l.status.badge_class()>{l.status.label()}</span></td>
                    <td class="number"><a href=href>{l.count}</a></td>
                </tr>
            }
        })
        .collect_view();
    let now = d.now;
    let attention = if d.attention.is_empty() {
        view! { <p class="muted empty-state">"Every link is active."</p> }.into_any()
    } else {
        let rows = d
            .attention
            .into_iter()
            .map(|a| {
                view! {
                    <tr>
                        <td><a href=format!("/admin/accounts/{}", a.id)>{format!("{} · {}", a.provider_name, a.label)}</a></td>
                        <td>{a.user_label()}</td>
                        <td><span class=a.status.badge_class()>{a.status.label()}</span></td>
                        <td>{a.status_reason.unwrap_or_default()}</td>
                        <td>{time_cell(a.last_used_at, now, "never")}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data-table">
                <caption>{format!("{} of {} links needing attention", rows.len(), d.attention_total)}</caption>
                <thead><tr>
                    <th scope="col">"Link"</th><th scope="col">"User"</th><th scope="col">"Status"</th>
                    <th scope="col">"Why"</th><th scope="col">"Last used"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <div class="page-wide">
            <AdminNav />
            <h1>"Admin"</h1>
            <dl class="facts stats">
                <div><dt>"Linked accounts"</dt><dd>{total}</dd></div>
                <div><dt>"Users"</dt><dd>{d.users}" "<span class="muted small">{format!("({} disabled)", d.disabled_users)}</span></dd></div>
                <div><dt>"Refreshes, last 24 h"</dt><dd>{d.refreshes}</dd></div>
                <div><dt>"Refresh failures, last 24 h"</dt><dd>{d.refresh_failures}</dd></div>
                <div><dt>"Calls for users, last 24 h"</dt><dd>{d.calls}</dd></div>
                <div><dt>"Failed calls, last 24 h"</dt><dd>{d.call_failures}</dd></div>
            </dl>
            <h2>"Needs attention"</h2>
            {attention}
            <h2>"Links by provider and status"</h2>
            <table class="data-table">
                <thead><tr><th scope="col">"Provider"</th><th scope="col">"Status"</th><th scope="col">"Links"</th></tr></thead>
                <tbody>{links}</tbody>
            </table>
        </div>
    }
}
