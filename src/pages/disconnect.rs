use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_query_map};

use crate::{
    accounts::{LinkedAccountView, api::list_linked_accounts},
    error::AppError,
};

/// `/linked-accounts/disconnect?account=<id>`: what disconnecting does, and the POST that does it. A page of its
/// own rather than a script dialog, so the confirmation works with JavaScript off too.
#[component]
pub fn DisconnectPage() -> impl IntoView {
    let data = Resource::new_blocking(|| (), |_| list_linked_accounts());
    let account_id = use_query_map().read_untracked().get("account").unwrap_or_default();
    view! {
        <Title text="Disconnect an account · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let account_id = account_id.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(data) => match data.accounts.into_iter().find(|a| a.id == account_id) {
                            Some(account) => view! { <Confirm account=account /> }.into_any(),
                            None => view! {
                                <div class="page-narrow">
                                    <h1>"Disconnect an account"</h1>
                                    <div class="alert alert-error" role="alert">
                                        "That account is not linked (any more)."
                                    </div>
                                    <p><a href="/linked-accounts">"Back to linked accounts"</a></p>
                                </div>
                            }
                            .into_any(),
                        },
                        Err(AppError::NotSignedIn) => {
                            view! { <Redirect path="/sign-in?next=/linked-accounts" /> }.into_any()
                        }
                        Err(err) => {
                            view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn Confirm(account: LinkedAccountView) -> impl IntoView {
    let label = account.label().to_owned();
    let provider = account.provider_name.clone();
    view! {
        <div class="page-narrow">
            <h1>{format!("Disconnect {provider} account {label}?")}</h1>
            <ul class="consequences">
                <li>{format!("This site stops acting for you at {provider} with this account.")}</li>
                <li>{format!("We ask {provider} to revoke every token it gave us for it, and delete our copies.")}</li>
                <li>"Transfers and other work already started at the provider go on there."</li>
                <li>"You can connect the account again at any time."</li>
            </ul>
            <form method="post" action="/api/disconnect_account" class="card-actions">
                <input type="hidden" name="account" value=account.id.clone() />
                <button type="submit" class="button button-danger">{format!("Disconnect {label}")}</button>
                <a class="button button-ghost" href="/linked-accounts">"Cancel"</a>
            </form>
        </div>
    }
}
