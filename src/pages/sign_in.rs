use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    auth::{EMAIL_MAX_LEN, PASSWORD_MAX_LEN, api::SignIn},
    components::form::{Field, FormError, Submit, form_error, reload_on_success, returned_error},
    error::AppError,
};

/// Sign in with email and password; `?next=/path` says where to go afterwards (local paths only, checked on the
/// server).
#[component]
pub fn SignInPage() -> impl IntoView {
    let next = use_query_map().read_untracked().get("next").unwrap_or_default();
    let initial_error = returned_error::<SignIn, _>();
    view! {
        <Title text="Sign in · onbehalf" />
        <section class="panel narrow">
            <h1>"Sign in"</h1>
            <SignInForm next=next initial_error=initial_error />
            <p class="muted">"No account yet? " <a href="/sign-up">"Create one"</a>"."</p>
        </section>
    }
}

#[island]
fn SignInForm(next: String, initial_error: Option<AppError>) -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    reload_on_success(action);
    let error = form_error(action, initial_error);
    view! {
        <FormError error=error />
        <ActionForm action=action>
            <input type="hidden" name="next" value=next />
            <Field label="Email" name="email" kind="email" autocomplete="username" maxlength=EMAIL_MAX_LEN error=error />
            <Field
                label="Password"
                name="password"
                kind="password"
                autocomplete="current-password"
                maxlength=PASSWORD_MAX_LEN
                error=error
            />
            <Submit label="Sign in" pending_label="Signing in…" pending=action.pending() />
        </ActionForm>
    }
}
