use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    connect::{ConnectChoices, api::get_connect_choices},
    error::AppError,
};

/// "Connect an account for <platform>": what a platform's `connect` link that named no provider opens. One plain
/// form per provider of the platform's key; each starts the same flow as the linked-accounts page's Connect.
#[component]
pub fn ConnectChooserPage() -> impl IntoView {
    let data = Resource::new_blocking(|| (), |_| get_connect_choices());
    view! {
        <Title text="Connect an account · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(choices) => view! { <Chooser choices=choices /> }.into_any(),
                    Err(AppError::NotSignedIn | AppError::Forbidden) => view! {
                        <div class="alert alert-error" role="alert">
                            "This page belongs to a link from a platform, and that link has ended. Go back to the \
                             platform and try again."
                        </div>
                    }
                    .into_any(),
                    Err(err) => view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Chooser(choices: ConnectChoices) -> impl IntoView {
    let ConnectChoices {
        platform_name,
        providers,
    } = choices;
    view! {
        <section class="page-head">
            <h1>"Connect an account"</h1>
            <p class="muted">{format!("{platform_name} asks you to link an account. Choose where it is:")}</p>
        </section>
        <ul class="account-list" role="list">
            {providers
                .into_iter()
                .map(|p| {
                    let action = format!("/oauth/{}/start", p.id);
                    view! {
                        <li class="panel">
                            <form method="post" action=action>
                                <input type="hidden" name="intent" value="link" />
                                <button type="submit" class="button button-primary">
                                    {format!("Connect {}", p.display_name)}
                                </button>
                            </form>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
