//! The form that sends the browser through a provider again for an existing account: Reconnect or Grant access
//! (`POST /oauth/{provider}/start`, see `accounts::routes`). A plain form: it works without JavaScript.

use leptos::prelude::*;

#[component]
pub fn LinkForm(
    provider: String,
    account: String,
    /// `reconnect` or `grant`.
    intent: &'static str,
    /// The button's text.
    label: &'static str,
    /// Its accessible name when the text alone is ambiguous on the page ("Reconnect ada@…").
    #[prop(optional)]
    aria_label: Option<String>,
    /// Where to come back to (a local path); the linked-accounts page by default.
    #[prop(optional)]
    return_to: Option<String>,
    #[prop(default = "button button-primary")] class: &'static str,
) -> impl IntoView {
    view! {
        <form method="post" action=format!("/oauth/{provider}/start")>
            <input type="hidden" name="intent" value=intent />
            <input type="hidden" name="account" value=account />
            {return_to.map(|path| view! { <input type="hidden" name="return_to" value=path /> })}
            <button type="submit" class=class aria-label=aria_label>{label}</button>
        </form>
    }
}
