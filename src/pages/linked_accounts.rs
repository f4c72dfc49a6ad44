use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_query_map};

use crate::{
    accounts::{
        AccountStatus, LinkError, LinkedAccountView, LinkedAccounts, PendingRevocationView, ProviderView, Reader,
        ResourceServerView,
        api::{DisconnectAccount, RetryRevocations, list_linked_accounts},
        plural, retry_message,
    },
    components::{countdown::Countdown, link_form::LinkForm},
    datetime::{ago, format_time, iso_time},
    error::AppError,
    notice::Notice,
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
    let own = |n: &Notice| matches!(n, Notice::Disconnected { .. } | Notice::RevocationsRetried { .. });
    if let Some(notice) = Notice::from_query(|name| query.get(name)).filter(own) {
        return Some(notice.message(Reader::Owner, |id| provider_name(Some(id.to_owned()))));
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
    let notice =
        notice(&data).map(|(ok, message)| view! { <div class=alert_class(ok) role=alert_role(ok)>{message}</div> });
    let pending = (!data.pending_revocations.is_empty())
        .then(|| view! { <PendingRevocations pending=data.pending_revocations now=data.now /> });
    let empty = data.providers.is_empty().then(|| {
        view! { <p class="muted">"No providers are configured on this server. An administrator adds them in the configuration."</p> }
    });
    let now = data.now;
    let mut accounts = data.accounts;
    let sections = data
        .providers
        .into_iter()
        .map(|provider| {
            let (mine, others): (Vec<_>, Vec<_>) = accounts.drain(..).partition(|a| a.provider_id == provider.id);
            accounts = others;
            view! { <ProviderSection provider=provider accounts=mine now=now /> }
        })
        .collect_view();
    view! {
        <div class="page-wide">
            <h1>"Linked accounts"</h1>
            <p class="lead">"Accounts at other services that this site may use on your behalf."</p>
            {notice}
            {pending}
            {empty}
            {sections}
        </div>
    }
}

#[component]
fn ProviderSection(provider: ProviderView, accounts: Vec<LinkedAccountView>, now: i64) -> impl IntoView {
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
                {accounts
                    .into_iter()
                    .map(|a| {
                        view! {
                            <li>
                                <DisconnectableCard account=a.id.clone()>
                                    <AccountCard account=a now=now />
                                </DisconnectableCard>
                            </li>
                        }
                        .into_any()
                    })
                    .collect_view()}
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
fn AccountCard(mut account: LinkedAccountView, now: i64) -> impl IntoView {
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
        .map(|r| view! { <p class="status-reason">{r}</p> });
    let grant_needed = account.missing_scopes() || account.status == AccountStatus::NeedsConsent;
    // A token that expires and cannot be renewed (the provider gave no refresh token, e.g. an OpenID provider that
    // did not grant `offline_access`): the link dies then, and only a reconnect helps.
    let ends = account
        .resource_servers
        .iter()
        .filter(|rs| rs.has_token && !rs.has_refresh_token)
        .filter_map(|rs| rs.expires_at)
        .min()
        .filter(|_| account.status == AccountStatus::Active)
        .map(|at| {
            view! {
                <p class="status-reason">
                    "No refresh token was issued for this link: it stops working at "
                    <time datetime=iso_time(at)>{format_time(at)}</time>
                    ". Reconnect to keep access."
                </p>
            }
        });
    let servers = std::mem::take(&mut account.resource_servers)
        .into_iter()
        .map(|rs| view! { <ResourceServerRow rs=rs now=now /> })
        .collect_view();
    let when = |at: Option<i64>| match at {
        Some(t) => view! { <time datetime=iso_time(t) title=format_time(t)>{ago(t, now)}</time> }.into_any(),
        None => "never".into_any(),
    };
    let grant = grant_needed.then(|| {
        view! {
            <LinkForm
                provider=account.provider_id.clone()
                account=account.id.clone()
                intent="grant"
                label="Grant access"
                aria_label=format!("Grant access for {title}")
            />
        }
    });
    let reconnect_class = if account.status == AccountStatus::NeedsReconnect {
        "button button-primary"
    } else {
        "button button-ghost"
    };
    view! {
        <article class="card account-card" aria-label=format!("{} account {}", account.provider_name, title)>
            <header class="account-head">
                <span class="provider-icon" aria-hidden="true">{initial(&account.provider_name)}</span>
                <div class="account-id">
                    <h3>{title.clone()}</h3>
                    <p class="muted">{details}</p>
                </div>
                <span class=account.status.badge_class()>{account.status.label()}</span>
            </header>
            {reason}
            {ends}
            <table class="scopes">
                <caption class="visually-hidden">{format!("Consent status of {title}")}</caption>
                <thead>
                    <tr><th scope="col">"Service"</th><th scope="col">"Access"</th><th scope="col">"Token expires"</th></tr>
                </thead>
                <tbody>{servers}</tbody>
            </table>
            <dl class="account-times">
                <div><dt>"Last refreshed"</dt><dd>{when(account.last_refreshed_at)}</dd></div>
                <div><dt>"Last used"</dt><dd>{when(account.last_used_at)}</dd></div>
                <div><dt>"Linked"</dt><dd>{format_time(account.created_at)}</dd></div>
            </dl>
            <div class="card-actions">
                {grant}
                <LinkForm
                    provider=account.provider_id.clone()
                    account=account.id.clone()
                    intent="reconnect"
                    label="Reconnect"
                    aria_label=format!("Reconnect {title}")
                    class=reconnect_class
                />
                <a class="button button-danger-ghost" href=format!("/linked-accounts/disconnect?account={}", account.id)
                    aria-label=format!("Disconnect {title}") data-disconnect="">"Disconnect"</a>
            </div>
        </article>
    }
    // Type erasure at the card: the nested view type otherwise overflows the compiler's depth limit.
    .into_any()
}

#[component]
fn ResourceServerRow(rs: ResourceServerView, now: i64) -> impl IntoView {
    let expires = match (rs.has_token, rs.expires_at) {
        (false, _) => view! { <span class="muted">"no token yet"</span> }.into_any(),
        (true, None) => view! { <span class="muted">"does not expire"</span> }.into_any(),
        (true, Some(at)) => view! { <Countdown at=at now=now /> }.into_any(),
    };
    let renews = (rs.has_token && rs.has_refresh_token)
        .then(|| view! { <span class="muted small">" (renewed automatically)"</span> });
    view! {
        <tr>
            <th scope="row"><code>{rs.resource_server}</code></th>
            <td>
                <ul class="scope-list" role="list">
                    {rs.scopes.into_iter().map(|s| {
                        let (class, state) = if s.granted { ("scope granted", "Granted") } else { ("scope missing", "Missing") };
                        view! {
                            <li class=class>
                                <span class="scope-state">{state}</span>
                                " "
                                <span class="scope-description">{s.description.clone()}</span>
                                <code class="scope-name">{s.scope}</code>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </td>
            <td>{expires}{renews}</td>
        </tr>
    }
}

fn initial(name: &str) -> String {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default()
}

/// Disconnected accounts whose tokens the provider has not confirmed revoked, with a retry.
#[component]
fn PendingRevocations(pending: Vec<PendingRevocationView>, now: i64) -> impl IntoView {
    let items = pending
        .into_iter()
        .map(|p| {
            let error = p.last_error.clone().unwrap_or_else(|| "not tried yet".to_owned());
            let why = if p.replaced {
                "replaced by a reconnect"
            } else {
                "disconnected"
            };
            view! {
                <li>
                    <strong>{format!("{} account {}", p.provider_name, p.account_label)}</strong>
                    {format!(
                        ": {} token{} not yet revoked ({why} {}, {} attempt{}). Last error: {error}",
                        p.tokens,
                        plural(p.tokens),
                        ago(p.since, now),
                        p.attempts,
                        plural(p.attempts),
                    )}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="panel panel-warn" aria-labelledby="pending-revocations">
            <div class="panel-head">
                <h2 id="pending-revocations">"Revocation pending"</h2>
                <RetryRevocationsForm />
            </div>
            <p>"These tokens are no longer used here (their account was disconnected, or a reconnect replaced \
                them), but the provider did not confirm that it revoked them."</p>
            <ul>{items}</ul>
        </section>
    }
}

/// "Retry revocation": a plain form without JavaScript (the server redirects back with the counts); with it, the
/// answer is shown in place, with a pending state.
#[island]
fn RetryRevocationsForm() -> impl IntoView {
    let action = ServerAction::<RetryRevocations>::new();
    let pending = action.pending();
    let outcome = move || {
        action.value().get().map(|result| match result {
            Ok(outcomes) => {
                let failed = outcomes.iter().map(|o| o.failed).sum();
                let revoked = outcomes.iter().map(|o| o.revoked).sum();
                let (ok, message) = retry_message(revoked, failed);
                view! { <p class=alert_class(ok) role=alert_role(ok)>{message}</p> }.into_any()
            }
            Err(err) => view! { <p class="alert alert-error" role="alert">{err.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <ActionForm action=action>
            <button type="submit" class="button button-primary" disabled=move || pending.get()>
                {move || if pending.get() { "Retrying…" } else { "Retry revocation" }}
            </button>
        </ActionForm>
        {outcome}
    }
}

fn alert_class(ok: bool) -> &'static str {
    if ok { "alert alert-success" } else { "alert alert-error" }
}

/// Good news is a polite status; bad news an alert.
fn alert_role(ok: bool) -> &'static str {
    if ok { "status" } else { "alert" }
}

/// A card that, with JavaScript on, disconnects in place: its "Disconnect" link (`data-disconnect`, a plain link to
/// the confirmation page otherwise) opens a confirmation inside the card; confirming calls `disconnect_account`
/// with a pending state, then the card gives way to the outcome. No page load.
#[island]
fn DisconnectableCard(account: String, children: Children) -> impl IntoView {
    let action = ServerAction::<DisconnectAccount>::new();
    let confirming = RwSignal::new(false);
    let confirm_button = NodeRef::<leptos::html::Button>::new();
    Effect::new(move || {
        if confirming.get()
            && let Some(button) = confirm_button.get()
        {
            let _ = button.focus();
        }
    });
    let open = move |ev: leptos::ev::MouseEvent| {
        use leptos::wasm_bindgen::JsCast;
        let on_link = ev
            .target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
            .and_then(|el| el.closest("[data-disconnect]").ok().flatten())
            .is_some();
        if on_link {
            ev.prevent_default();
            confirming.set(true);
        }
    };
    let outcome = action.value();
    let gone = move || matches!(outcome.get(), Some(Ok(_)));
    let outcome_ref = NodeRef::<leptos::html::Div>::new();
    Effect::new(move || {
        if gone()
            && let Some(el) = outcome_ref.get()
        {
            let _ = el.focus();
        }
    });
    let pending = action.pending();
    let account_id = account.clone();
    let message = move || match outcome.get() {
        Some(Ok(o)) => Some(o.message(Reader::OwnerInPlace)),
        _ => None,
    };
    let error = move || match outcome.get() {
        Some(Err(err)) => Some(view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }),
        _ => None,
    };
    view! {
        <div class="card-shell" on:click=open>
            <div hidden=gone>{children()}</div>
            // Always in the page, so screen readers announce the text when it arrives; focused then, because the
            // button that had the focus is gone.
            <div
                aria-live="polite"
                aria-atomic="true"
                tabindex="-1"
                node_ref=outcome_ref
                // Gone either way, but the colour tells whether the provider confirmed the revocation.
                class=move || message().map_or("visually-hidden", |(ok, _)| alert_class(ok))
            >
                {move || message().map(|(_, text)| text)}
            </div>
            {error}
            <Show when=move || confirming.get() && !gone()>
                <div class="confirm-panel" role="group" aria-label="Confirm disconnect">
                    <p>"This site stops acting for you with this account, asks the provider to revoke its tokens and \
                        deletes its copies."</p>
                    <div class="card-actions">
                        <button
                            type="button"
                            class="button button-danger"
                            node_ref=confirm_button
                            disabled=move || pending.get()
                            on:click={
                                let account = account_id.clone();
                                move |_| {
                                    action.dispatch(DisconnectAccount { account: account.clone() });
                                }
                            }
                        >
                            {move || if pending.get() { "Disconnecting…" } else { "Confirm disconnect" }}
                        </button>
                        <button type="button" class="button button-ghost" disabled=move || pending.get()
                            on:click=move |_| confirming.set(false)>"Cancel"</button>
                    </div>
                </div>
            </Show>
        </div>
    }
    .into_any()
}
