use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_query_map};

use crate::{
    app::use_current_user,
    auth::{PASSWORD_MAX_LEN, Role, UserDto, api::ChangePassword},
    components::form::{Field, FormError, FormSuccess, NewPasswordFields, Submit, form_error, returned_error},
    error::AppError,
};

/// "Your account": who you are, and changing your password. Visitors are sent to sign in first.
#[component]
pub fn AccountPage() -> impl IntoView {
    let user = use_current_user().0;
    view! {
        <Title text="Your account · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(me)) => view! { <AccountDetails me=me /> }.into_any(),
                    Ok(None) => view! { <Redirect path="/sign-in?next=/account" /> }.into_any(),
                    Err(err) => view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AccountDetails(me: UserDto) -> impl IntoView {
    let role = match me.role {
        Role::Admin => "Administrator",
        Role::User => "User",
    };
    let changed = use_query_map().read_untracked().get("password_changed").is_some();
    let initial_error = returned_error::<ChangePassword, _>();
    view! {
        <section class="panel">
            <h1>"Your account"</h1>
            <dl class="facts">
                <div><dt>"Name"</dt><dd>{me.display_name}</dd></div>
                <div><dt>"Email"</dt><dd>{me.email}</dd></div>
                <div><dt>"Role"</dt><dd>{role}</dd></div>
                <div><dt>"Member since"</dt><dd>{me.member_since}</dd></div>
            </dl>
        </section>
        <section class="panel">
            <h2>"Change password"</h2>
            <p class="muted">"Changing your password signs you out everywhere else."</p>
            <ChangePasswordForm changed=changed initial_error=initial_error />
        </section>
    }
}

/// `changed`: a plain form post just succeeded (the server redirected here with `?password_changed=1`).
#[island]
fn ChangePasswordForm(changed: bool, initial_error: Option<AppError>) -> impl IntoView {
    let action = ServerAction::<ChangePassword>::new();
    let error = form_error(action, initial_error);
    let changed = Signal::derive(move || match action.value().get() {
        Some(result) => result.is_ok(),
        None => changed,
    });
    view! {
        <FormSuccess show=changed message="Your password was changed. Other sessions were signed out." />
        <FormError error=error />
        <ActionForm action=action>
            <Field
                label="Current password"
                name="current_password"
                kind="password"
                autocomplete="current-password"
                maxlength=PASSWORD_MAX_LEN
                error=error
            />
            <NewPasswordFields
                name="new_password"
                label="New password"
                confirm_name="new_password_confirm"
                confirm_label="Confirm new password"
                hint="At least 8 characters."
                error=error
            />
            <Submit label="Change password" pending_label="Changing password…" pending=action.pending() />
        </ActionForm>
    }
}
