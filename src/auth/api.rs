//! Server functions of sign-in. Each one: read the session, call one service function, map to a DTO or redirect.
//! Every form that posts here also works without JavaScript: Leptos answers a plain form post with a redirect to
//! the page (carrying the error when there is one). Sign-in, sign-up and sign-out answer with the path to load
//! next; hydrated pages load it in full (see `app::App`).

use leptos::prelude::*;

use super::UserDto;
use crate::error::AppError;

/// The signed-in user, or `None` for a visitor.
#[server(endpoint = "get_current_user")]
pub async fn get_current_user() -> Result<Option<UserDto>, AppError> {
    use crate::state::{app_state, current_user, session};
    let state = app_state()?;
    let session = session().await?;
    Ok(current_user(&state, &session).await?.map(|u| u.to_dto()))
}

#[server(endpoint = "sign_up")]
pub async fn sign_up(
    email: String,
    display_name: String,
    password: String,
    password_confirm: String,
) -> Result<String, AppError> {
    use crate::{
        auth::service,
        state::{app_state, client_ip, redirect_plain_form, session},
    };
    let state = app_state()?;
    let session = session().await?;
    let client = client_ip(&state).await;
    let form = service::SignUp {
        email: &email,
        display_name: &display_name,
        password: &password,
        password_confirm: &password_confirm,
    };
    service::sign_up(&state.db, &state.settings.auth, &session, form, &client).await?;
    redirect_plain_form("/account");
    Ok("/account".to_owned())
}

#[server(endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String, next: Option<String>) -> Result<String, AppError> {
    use crate::{
        auth::{local_path_or, service},
        state::{app_state, client_ip, redirect_plain_form, session},
    };
    let state = app_state()?;
    let session = session().await?;
    let client = client_ip(&state).await;
    service::sign_in(&state.db, &state.settings.auth, &session, &email, &password, &client).await?;
    let target = local_path_or(next.as_deref(), "/account");
    redirect_plain_form(target);
    Ok(target.to_owned())
}

#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<String, AppError> {
    use crate::{
        auth::session::end,
        state::{redirect_plain_form, session},
    };
    end(&session().await?).await.map_err(AppError::internal)?;
    redirect_plain_form("/");
    Ok("/".to_owned())
}

#[server(endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    new_password_confirm: String,
) -> Result<(), AppError> {
    use crate::{
        auth::service,
        state::{app_state, client_ip, redirect_plain_form, require_user, session},
    };
    let state = app_state()?;
    let session = session().await?;
    let user = require_user(&state, &session).await?;
    let client = client_ip(&state).await;
    service::change_password(
        &state.db,
        &state.settings.auth,
        &session,
        &user,
        &client,
        service::PasswordChange {
            current: &current_password,
            new: &new_password,
            new_confirm: &new_password_confirm,
        },
    )
    .await?;
    redirect_plain_form("/account?password_changed=1");
    Ok(())
}
