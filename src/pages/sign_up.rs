use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    auth::{DISPLAY_NAME_MAX_LEN, EMAIL_MAX_LEN, api::SignUp},
    components::form::{Field, FormError, NewPasswordFields, Submit, form_error, reload_on_success, returned_error},
    error::AppError,
};

/// Create a local account (when the server allows sign-up) and sign in.
#[component]
pub fn SignUpPage() -> impl IntoView {
    let initial_error = returned_error::<SignUp, _>();
    view! {
        <Title text="Create an account · onbehalf" />
        <section class="panel narrow">
            <h1>"Create an account"</h1>
            <SignUpForm initial_error=initial_error />
            <p class="muted">"Already have an account? " <a href="/sign-in">"Sign in"</a>"."</p>
        </section>
    }
}

#[island]
fn SignUpForm(initial_error: Option<AppError>) -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    reload_on_success(action);
    let error = form_error(action, initial_error);
    view! {
        <FormError error=error />
        <ActionForm action=action>
            <Field label="Email" name="email" kind="email" autocomplete="email" maxlength=EMAIL_MAX_LEN error=error />
            <Field
                label="Name"
                name="display_name"
                autocomplete="name"
                required=false
                maxlength=DISPLAY_NAME_MAX_LEN
                hint="Optional. Shown in the header; defaults to the start of your email."
                error=error
            />
            <NewPasswordFields
                name="password"
                label="Password"
                confirm_name="password_confirm"
                confirm_label="Confirm password"
                hint="At least 8 characters. A few words you will remember make a strong password."
                error=error
            />
            <Submit label="Create account" pending_label="Creating account…" pending=action.pending() />
        </ActionForm>
    }
}
