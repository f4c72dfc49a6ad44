//! Form building blocks with accessible markup: every input has a label, errors are announced (`role="alert"`)
//! and tied to their field (`aria-invalid`), and submit buttons show that work is under way. They are used
//! inside islands (see `app.rs`), so they run in the browser too.

use leptos::prelude::*;

use crate::error::AppError;

/// A labelled input. `error` marks it invalid when the current error names this field.
#[component]
pub fn Field(
    /// Visible label, also the accessible name.
    label: &'static str,
    /// Form field name (the server function argument).
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "off")] autocomplete: &'static str,
    #[prop(default = true)] required: bool,
    #[prop(optional)] minlength: Option<usize>,
    #[prop(optional)] maxlength: Option<usize>,
    /// Help shown under the input.
    #[prop(optional)]
    hint: Option<&'static str>,
    #[prop(into)] error: Signal<Option<AppError>>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let hint_id = format!("{id}-hint");
    let invalid = move || error.with(|e| e.as_ref().and_then(AppError::field) == Some(name));
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                required=required
                minlength=minlength
                maxlength=maxlength
                aria-invalid=move || if invalid() { "true" } else { "false" }
                aria-describedby=hint.map(|_| hint_id.clone())
            />
            {hint.map(|h| view! { <p class="hint" id=hint_id.clone()>{h}</p> })}
        </div>
    }
}

/// A new password and its confirmation, named `{name}` and `{name}_confirm` (the server checks them with
/// `auth::validate_new_password`, which reports a mismatch on the confirmation field).
#[component]
pub fn NewPasswordFields(
    name: &'static str,
    label: &'static str,
    confirm_name: &'static str,
    confirm_label: &'static str,
    hint: &'static str,
    #[prop(into)] error: Signal<Option<AppError>>,
) -> impl IntoView {
    use crate::auth::{PASSWORD_MAX_LEN, PASSWORD_MIN_LEN};
    view! {
        <Field
            label=label
            name=name
            kind="password"
            autocomplete="new-password"
            minlength=PASSWORD_MIN_LEN
            maxlength=PASSWORD_MAX_LEN
            hint=hint
            error=error
        />
        <Field
            label=confirm_label
            name=confirm_name
            kind="password"
            autocomplete="new-password"
            minlength=PASSWORD_MIN_LEN
            maxlength=PASSWORD_MAX_LEN
            error=error
        />
    }
}

/// The error of the last submission, announced to screen readers.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <div class="alert alert-error" role="alert">
                    {e.to_string()}
                </div>
            }
        })
    }
}

/// A notice that something worked.
#[component]
pub fn FormSuccess(#[prop(into)] show: Signal<bool>, message: &'static str) -> impl IntoView {
    move || {
        show.get()
            .then(|| view! { <div class="alert alert-success" role="status">{message}</div> })
    }
}

/// Submit button that turns into a disabled "…ing" while the request is in flight (when JavaScript is on).
#[component]
pub fn Submit(label: &'static str, pending_label: &'static str, #[prop(into)] pending: Signal<bool>) -> impl IntoView {
    view! {
        <button
            type="submit"
            class="button button-primary"
            disabled=move || pending.get()
            aria-busy=move || pending.get().to_string()
        >
            {move || if pending.get() { pending_label } else { label }}
        </button>
    }
}

/// The error to show for a form: the result of the last submission in this page, or else `initial`, the error a
/// plain (JavaScript-off) submission brought back in the URL. Pages decode `initial` on the server and hand it to
/// their island, because the browser side of an island has no router to read it from.
pub fn form_error<I, O>(action: ServerAction<I>, initial: Option<AppError>) -> Signal<Option<AppError>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || match action.value().get() {
        Some(result) => result.err(),
        None => initial.clone(),
    })
}

/// The error a plain form post of server function `I` brought back to this page (`?__err=…`), on the server.
pub fn returned_error<I, O>() -> Option<AppError>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    ServerAction::<I>::new().value().get_untracked().and_then(Result::err)
}

/// After a change of identity the whole page is loaded again (see `app::App`), from the server's answer.
pub fn reload_on_success<I>(action: ServerAction<I>)
where
    I: leptos::server_fn::ServerFn<Output = String, Error = AppError> + Clone + Send + Sync + 'static,
{
    Effect::new(move || {
        if let Some(Ok(target)) = action.value().get() {
            #[cfg(feature = "hydrate")]
            let _ = window().location().set_href(&target);
            #[cfg(not(feature = "hydrate"))]
            let _ = target;
        }
    });
}
