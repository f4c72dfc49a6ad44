//! Server functions of the admin area. Each begins with `require_admin`, before it reads anything the caller
//! sent. The forms posting here are plain HTML forms (no WASM): without JavaScript, and with it, the browser posts
//! and follows the redirect to the page that shows the result.

use leptos::prelude::*;

use super::{
    AccountDetail, AccountList, AccountQuery, AuditList, AuditQuery, Dashboard, UserList, UserQuery, WebhookDetail,
    WebhookList,
};
use crate::error::AppError;

#[server(endpoint = "admin_dashboard")]
pub async fn admin_dashboard() -> Result<Dashboard, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    super::dashboard::dashboard(&state).await
}

#[server(endpoint = "admin_accounts")]
pub async fn admin_accounts(query: AccountQuery) -> Result<AccountList, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    super::accounts::list(&state, query).await
}

#[server(endpoint = "admin_account")]
pub async fn admin_account(account: String) -> Result<AccountDetail, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    super::accounts::detail(&state, &account).await
}

/// Disconnects any user's account, with the admin's reason. A plain form lands on the user's remaining accounts
/// with the outcome, or back on the account with the problem.
#[server(endpoint = "admin_disconnect")]
pub async fn admin_disconnect(account: String, reason: String) -> Result<crate::accounts::DisconnectOutcome, AppError> {
    use crate::state::{app_state, redirect_plain_form, request_id, session};
    let state = app_state()?;
    let admin = super::require_admin(&state, &session().await?).await?;
    match super::accounts::force_disconnect(&state, admin.id, &account, &reason, request_id().as_deref()).await {
        Ok((owner, outcome)) => {
            redirect_plain_form(&format!(
                "/admin/accounts?user={owner}&{}",
                crate::notice::Notice::from(&outcome).to_query()
            ));
            Ok(outcome)
        }
        Err(err) => {
            let code = match &err {
                AppError::Invalid { .. } => "reason",
                AppError::NotFound { .. } => "gone",
                _ => "failed",
            };
            redirect_plain_form(&format!(
                "/admin/accounts/{}?error={code}",
                crate::query::encode(&account)
            ));
            Err(err)
        }
    }
}

#[server(endpoint = "admin_users")]
pub async fn admin_users(query: UserQuery) -> Result<UserList, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    let admin = super::require_admin(&state, &session().await?).await?;
    super::users::list(&state, admin.id, query).await
}

/// Disables or enables a user; a plain form returns to `next` (the list it was posted from).
#[server(endpoint = "admin_set_user_disabled")]
pub async fn admin_set_user_disabled(user: i64, disabled: bool, next: Option<String>) -> Result<(), AppError> {
    use crate::{
        auth::local_path_or,
        state::{app_state, redirect_plain_form, request_id, session},
    };
    let state = app_state()?;
    let admin = super::require_admin(&state, &session().await?).await?;
    let back = local_path_or(next.as_deref(), "/admin/users");
    let separator = if back.contains('?') { '&' } else { '?' };
    match super::users::set_disabled(&state, admin.id, user, disabled, request_id().as_deref()).await {
        Ok(_) => {
            redirect_plain_form(&format!("{back}{separator}changed={user}"));
            Ok(())
        }
        Err(err) => {
            let code = match &err {
                AppError::Invalid { .. } => "self",
                AppError::NotFound { .. } => "gone",
                _ => "failed",
            };
            redirect_plain_form(&format!("{back}{separator}error={code}"));
            Err(err)
        }
    }
}

#[server(endpoint = "admin_audit")]
pub async fn admin_audit(query: AuditQuery) -> Result<AuditList, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    super::audit_log::list(&state, query).await
}

#[server(endpoint = "admin_webhooks")]
pub async fn admin_webhooks() -> Result<WebhookList, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    super::webhooks::list(&state).await
}

#[server(endpoint = "admin_webhook")]
pub async fn admin_webhook(endpoint: String, delivery: Option<i64>) -> Result<WebhookDetail, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    super::webhooks::detail(&state, &endpoint, delivery).await
}

/// A button of the webhook pages (`action`: test, disable, enable, redeliver with `event`, replay with `since`); a
/// plain form returns to the endpoint's page with the notice or the problem.
#[server(endpoint = "admin_webhook_action")]
pub async fn admin_webhook_action(
    endpoint: String,
    action: String,
    event: Option<String>,
    since: Option<String>,
) -> Result<String, AppError> {
    use super::webhooks::Action;
    use crate::state::{app_state, redirect_plain_form, request_id, session};
    let state = app_state()?;
    let admin = super::require_admin(&state, &session().await?).await?;
    let page = format!("/admin/webhooks/{}", crate::query::encode(&endpoint));
    let action = match (action.as_str(), event.as_deref(), since.as_deref()) {
        ("test", _, _) => Action::Test,
        ("disable", _, _) => Action::Disable,
        ("enable", _, _) => Action::Enable,
        ("redeliver", Some(event), _) => Action::Redeliver { event },
        ("replay", _, Some(since)) => Action::ReplaySince { since },
        _ => {
            redirect_plain_form(&format!("{page}?error=action"));
            return Err(AppError::invalid("action", "Unknown button."));
        }
    };
    match super::webhooks::act(&state, admin.id, &endpoint, action, request_id().as_deref()).await {
        Ok(notice) => {
            redirect_plain_form(&format!("{page}?done={notice}"));
            Ok(notice)
        }
        Err(err) => {
            let code = match &err {
                AppError::Invalid { field, .. } if field == "since" => "since",
                AppError::Invalid { field, .. } if field == "event" => "event",
                AppError::NotFound { .. } => "gone",
                _ => "failed",
            };
            redirect_plain_form(&format!("{page}?error={code}"));
            Err(err)
        }
    }
}
