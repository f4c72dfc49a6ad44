//! Site header (navigation, who is signed in, sign-out) and footer.

use leptos::prelude::*;

use crate::{
    app::use_current_user,
    auth::{Role, api::SignOut},
    components::form::reload_on_success,
};

#[component]
pub fn SiteHeader() -> impl IntoView {
    let user = use_current_user().0;

    view! {
        <header class="site-header">
            <a class="skip-link" href="#main">"Skip to content"</a>
            <nav class="nav" aria-label="Main">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"⇄"</span>
                    "onbehalf"
                </a>
                <Transition fallback=|| view! { <span class="nav-placeholder"></span> }>
                    {move || Suspend::new(async move {
                        match user.await {
                            // A session opened from a platform's connect link: its user's linked accounts, and the
                            // way back to the platform (a plain form: it ends the session).
                            Ok(Some(me)) if me.connect.is_some() => {
                                let platform = me.connect.map(|c| c.platform_name).unwrap_or_default();
                                view! {
                                    <ul class="nav-links">
                                        <li><a href="/linked-accounts">"Linked accounts"</a></li>
                                        <li><a href="/activity">"Activity"</a></li>
                                        <li><span class="nav-user">
                                            <span class="avatar" aria-hidden="true">{initial(&me.display_name)}</span>
                                            <span>{me.display_name.clone()}</span>
                                        </span></li>
                                        <li><form method="post" action="/connect/end">
                                            <button type="submit" class="button button-primary">
                                                {format!("Back to {platform}")}
                                            </button>
                                        </form></li>
                                    </ul>
                                }
                                .into_any()
                            }
                            Ok(Some(me)) => view! {
                                <ul class="nav-links">
                                    {(me.role == Role::Admin).then(|| view! { <li><a href="/admin">"Admin"</a></li> })}
                                    <li><a href="/linked-accounts">"Linked accounts"</a></li>
                                    <li><a href="/transfer">"Transfer"</a></li>
                                    <li><a href="/actions">"Actions"</a></li>
                                    <li><a href="/activity">"Activity"</a></li>
                                    <li><a href="/account" class="nav-user">
                                        <span class="avatar" aria-hidden="true">{initial(&me.display_name)}</span>
                                        <span>{me.display_name.clone()}</span>
                                        <span class="visually-hidden">" (your account)"</span>
                                    </a></li>
                                    <li><SignOutButton /></li>
                                </ul>
                            }
                            .into_any(),
                            _ => view! {
                                <ul class="nav-links">
                                    <li><a href="/sign-in" class="button button-ghost">"Sign in"</a></li>
                                    <li><a href="/sign-up" class="button button-primary">"Sign up"</a></li>
                                </ul>
                            }
                            .into_any(),
                        }
                    })}
                </Transition>
            </nav>
        </header>
    }
}

#[island]
fn SignOutButton() -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    reload_on_success(sign_out);
    view! {
        <ActionForm action=sign_out>
            <button type="submit" class="button button-ghost">"Sign out"</button>
        </ActionForm>
    }
}

fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default()
}

#[component]
pub fn SiteFooter() -> impl IntoView {
    view! {
        <footer class="site-footer">
            <p>"onbehalf — acts for your users at the services they link, and shows every step."</p>
        </footer>
    }
}
