//! Server functions of the admin area. Each begins with `require_admin`, before it reads anything the caller
//! sent, then calls one function of `service.rs` with the part of the state it uses. The forms posting here are
//! plain HTML forms (no WASM): without JavaScript, and with it, the browser posts and follows the redirect to the
//! page that shows the result.

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
    Ok(super::service::dashboard(&state.db, &state.catalog).await?)
}

#[server(endpoint = "admin_accounts")]
pub async fn admin_accounts(query: AccountQuery) -> Result<AccountList, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    Ok(super::service::list_accounts(&state.db, &state.catalog, query).await?)
}

#[server(endpoint = "admin_account")]
pub async fn admin_account(account: String) -> Result<AccountDetail, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    Ok(super::service::account_detail(&state.db, &state.catalog, &account).await?)
}

/// Disconnects any user's account, with the admin's reason. A plain form lands on the user's remaining accounts
/// with the outcome, or back on the account with the problem.
#[server(endpoint = "admin_disconnect")]
pub async fn admin_disconnect(account: String, reason: String) -> Result<crate::accounts::DisconnectOutcome, AppError> {
    use crate::state::{app_state, redirect_plain_form, request_id, session};
    let state = app_state()?;
    let admin = super::require_admin(&state, &session().await?).await?;
    let disconnected =
        super::service::force_disconnect(state.revoker(), admin.id, &account, &reason, request_id().as_deref()).await;
    match disconnected.map_err(AppError::from) {
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
    Ok(super::service::list_users(&state.db, admin.id, query).await?)
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
    let changed = super::service::set_user_disabled(&state.db, admin.id, user, disabled, request_id().as_deref()).await;
    match changed.map_err(AppError::from) {
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
    Ok(super::service::list_audit_events(&state.db, &state.catalog, query).await?)
}

#[server(endpoint = "admin_webhooks")]
pub async fn admin_webhooks() -> Result<WebhookList, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    Ok(super::service::list_webhooks(&state.db).await?)
}

#[server(endpoint = "admin_webhook")]
pub async fn admin_webhook(endpoint: String, delivery: Option<i64>) -> Result<WebhookDetail, AppError> {
    use crate::state::{app_state, session};
    let state = app_state()?;
    super::require_admin(&state, &session().await?).await?;
    Ok(super::service::webhook_detail(&state.db, &endpoint, delivery).await?)
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
    use super::service::WebhookAction as Action;
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
    let done =
        super::service::run_webhook_action(&state.db, admin.id, &endpoint, action, request_id().as_deref()).await;
    match done.map_err(AppError::from) {
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
