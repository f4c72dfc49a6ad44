use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_query_map};

use crate::{
    accounts::{LinkError, LinkedAccountView, LinkedAccounts, ProviderView, TokenSetView, api::list_linked_accounts},
    components::{link_form::LinkForm, time::format_time},
    error::AppError,
};

/// "Linked accounts" (first version): Connect per provider; each account with its identity, status, and granted
/// scopes and expiry per resource server. Works without JavaScript: every button is a plain form.
#[component]
pub fn LinkedAccountsPage() -> impl IntoView {
    let data = Resource::new_blocking(|| (), |_| list_linked_accounts());
    view! {
        <Title text="Linked accounts · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <LinkedAccountsView data=data /> }.into_any(),
                    Err(AppError::NotSignedIn) => {
                        view! { <Redirect path="/sign-in?next=/linked-accounts" /> }.into_any()
                    }
                    Err(err) => view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The outcome the callback redirected with: `?linked=<id>`, `?relinked=<id>` or `?error=<code>&provider=<id>`.
fn notice(data: &LinkedAccounts) -> Option<(bool, String)> {
    let query = use_query_map().read_untracked();
    let provider_name = |id: Option<String>| {
        id.and_then(|id| {
            data.providers
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.display_name.clone())
        })
        .unwrap_or_else(|| "The provider".to_owned())
    };
    if let Some(code) = query.get("error") {
        let error = LinkError::from_code(&code).unwrap_or(LinkError::Internal);
        return Some((false, error.message(&provider_name(query.get("provider")))));
    }
    let account = |id: String| data.accounts.iter().find(|a| a.id == id);
    if let Some(account) = query.get("linked").and_then(account) {
        return Some((
            true,
            format!("Linked {} account {}.", account.provider_name, account.label()),
        ));
    }
    if let Some(account) = query.get("relinked").and_then(account) {
        return Some((
            true,
            format!(
                "Updated {} account {}: its access was renewed.",
                account.provider_name,
                account.label()
            ),
        ));
    }
    None
}

#[component]
fn LinkedAccountsView(data: LinkedAccounts) -> impl IntoView {
    let notice = notice(&data).map(|(ok, message)| {
        let class = if ok { "alert alert-success" } else { "alert alert-error" };
        view! { <div class=class role=if ok { "status" } else { "alert" }>{message}</div> }
    });
    let sections = data
        .providers
        .iter()
        .map(|provider| {
            let accounts: Vec<_> = data
                .accounts
                .iter()
                .filter(|a| a.provider_id == provider.id)
                .cloned()
                .collect();
            view! { <ProviderSection provider=provider.clone() accounts=accounts /> }
        })
        .collect_view();
    let empty = data.providers.is_empty().then(|| {
        view! { <p class="muted">"No providers are configured on this server. An administrator adds them in the configuration."</p> }
    });
    view! {
        <div class="page-wide">
            <h1>"Linked accounts"</h1>
            <p class="lead">"Accounts at other services that this site may use on your behalf."</p>
            {notice}
            {empty}
            {sections}
        </div>
    }
}

#[component]
fn ProviderSection(provider: ProviderView, accounts: Vec<LinkedAccountView>) -> impl IntoView {
    let heading_id = format!("provider-{}", provider.id);
    let connect_label = if accounts.is_empty() {
        format!("Connect {}", provider.display_name)
    } else {
        format!("Connect another {} account", provider.display_name)
    };
    let action = format!("/oauth/{}/start", provider.id);
    let list = if accounts.is_empty() {
        view! { <p class="muted">"No account linked yet."</p> }.into_any()
    } else {
        view! {
            <ul class="account-list" role="list">
                {accounts.into_iter().map(|a| view! { <li><AccountCard account=a /></li> }).collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby=heading_id.clone()>
            <div class="panel-head">
                <h2 id=heading_id.clone()>{provider.display_name.clone()}</h2>
                <form method="post" action=action>
                    <input type="hidden" name="intent" value="link" />
                    <button type="submit" class="button button-primary">{connect_label}</button>
                </form>
            </div>
            {list}
        </section>
    }
}

#[component]
fn AccountCard(account: LinkedAccountView) -> impl IntoView {
    let title = account.label().to_owned();
    let details = [account.display_name.clone(), account.email.clone()]
        .into_iter()
        .flatten()
        .filter(|d| *d != title)
        .collect::<Vec<_>>()
        .join(" · ");
    let reason = account
        .status_reason
        .clone()
        .map(|r| view! { <p class="muted">{r}</p> });
    let sets = account
        .token_sets
        .clone()
        .into_iter()
        .map(|set| view! { <TokenSetRow set=set /> })
        .collect_view();
    view! {
        <article class="card account-card" aria-label=format!("{} account {}", account.provider_name, title)>
            <header class="account-head">
                <div>
                    <h3>{title.clone()}</h3>
                    <p class="muted">{details}</p>
                </div>
                <span class=account.status.badge_class()>{account.status.label()}</span>
            </header>
            {reason}
            <table class="scopes">
                <caption class="visually-hidden">"Granted access"</caption>
                <thead>
                    <tr><th scope="col">"Resource server"</th><th scope="col">"Granted scopes"</th><th scope="col">"Access expires"</th></tr>
                </thead>
                <tbody>{sets}</tbody>
            </table>
            <LinkForm
                provider=account.provider_id.clone()
                account=account.id.clone()
                intent="reconnect"
                label="Reconnect"
                aria_label=format!("Reconnect {title}")
                class="button button-ghost"
            />
        </article>
    }
    // Type erasure at the card: the nested view type otherwise overflows the compiler's depth limit.
    .into_any()
}

#[component]
fn TokenSetRow(set: TokenSetView) -> impl IntoView {
    let expires = set
        .expires_at
        .map(format_time)
        .unwrap_or_else(|| "not stated".to_owned());
    view! {
        <tr>
            <th scope="row">{set.resource_server}</th>
            <td>
                <ul class="scope-list" role="list">
                    {set.scopes.into_iter().map(|s| view! { <li><code>{s}</code></li> }).collect_view()}
                </ul>
            </td>
            <td>{expires}</td>
        </tr>
    }
}
