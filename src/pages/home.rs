use leptos::prelude::*;
use leptos_meta::Title;

use crate::app::use_current_user;

/// What onbehalf is, and where to go next.
#[component]
pub fn HomePage() -> impl IntoView {
    let user = use_current_user().0;
    view! {
        <Title text="onbehalf — act for your users at the services they link" />
        <section class="hero">
            <h1>"Act on behalf of your users, safely."</h1>
            <p class="lead">
                "onbehalf links your users' accounts at OAuth 2.0 providers — Globus, GitHub, ORCID and any OpenID \
                 Connect service — keeps their tokens encrypted and fresh, and calls those APIs for them, with every \
                 step visible and audited."
            </p>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match user.await {
                        Ok(Some(me)) => view! {
                            <p class="hero-actions">
                                <a class="button button-primary" href="/account">"Go to your account"</a>
                                <span class="muted">"Signed in as " {me.email}</span>
                            </p>
                        }
                        .into_any(),
                        _ => view! {
                            <p class="hero-actions">
                                <a class="button button-primary" href="/sign-up">"Create an account"</a>
                                <a class="button button-ghost" href="/sign-in">"Sign in"</a>
                            </p>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="features" aria-label="What onbehalf does">
            <article class="card">
                <h2>"Linked accounts"</h2>
                <p>"Link several accounts per provider and see each link's health, granted scopes and expiry."</p>
            </article>
            <article class="card">
                <h2>"Tokens done right"</h2>
                <p>"Encrypted at rest, refreshed exactly once even under load, revoked at the provider on disconnect."</p>
            </article>
            <article class="card">
                <h2>"Nothing hidden"</h2>
                <p>"Every action taken with a user's token is recorded, for the user and for admins."</p>
            </article>
        </section>
    }
}
