//! Server functions of linked accounts. Connecting, reconnecting and granting are browser navigations through
//! `routes` (POST forms), not server functions. Disconnecting is a server function that a plain form can post to
//! (JavaScript off: it redirects back to the page with the outcome in the query).

use leptos::prelude::*;

use super::{DisconnectOutcome, LinkedAccounts};
use crate::error::AppError;

/// The caller's linked accounts (metadata only: never a token) and the providers they can connect.
#[server(endpoint = "list_linked_accounts")]
pub async fn list_linked_accounts() -> Result<LinkedAccounts, AppError> {
    use crate::state::{app_state, require_user, session};
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    let mut page = crate::accounts::service::linked_accounts(&state.db, &state.catalog, user.id)
        .await
        .map_err(AppError::internal)?;
    // A session opened from a platform's connect link shows what the platform's key may use, nothing else.
    page.providers.retain(|p| user.may_use_provider(&p.id));
    page.accounts.retain(|a| user.may_use_provider(&a.provider_id));
    page.pending_revocations
        .retain(|p| user.may_use_provider(&p.provider_id));
    Ok(page)
}

/// Disconnects one of the caller's accounts: deletes it and its tokens, revokes them at the provider.
#[server(endpoint = "disconnect_account")]
pub async fn disconnect_account(account: String) -> Result<DisconnectOutcome, AppError> {
    use crate::{
        accounts::disconnect::{self, DisconnectError},
        state::{app_state, redirect_plain_form, request_id, require_user, session},
    };
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    if user.connect.is_some() {
        // A connect session acts within the platform key's providers only.
        let found = crate::accounts::repo::find(&state.db.pool, &account)
            .await
            .map_err(AppError::internal)?;
        if found.is_none_or(|a| a.user_id != user.id || !user.may_use_provider(&a.provider)) {
            redirect_plain_form("/linked-accounts?error=account_gone");
            return Err(AppError::NotFound {
                what: "linked account".into(),
            });
        }
    }
    let by = disconnect::DisconnectedBy::Owner;
    match disconnect::disconnect(state.revoker(), user.id, &account, by, request_id().as_deref()).await {
        Ok(outcome) => {
            redirect_plain_form(&outcome_query(&outcome));
            Ok(outcome)
        }
        Err(DisconnectError::NotFound) => {
            redirect_plain_form("/linked-accounts?error=account_gone");
            Err(AppError::NotFound {
                what: "linked account".into(),
            })
        }
        Err(DisconnectError::Database(err)) => Err(AppError::internal(err)),
    }
}

/// Retries the caller's failed revocations.
#[server(endpoint = "retry_revocations")]
pub async fn retry_revocations() -> Result<Vec<DisconnectOutcome>, AppError> {
    use crate::state::{app_state, redirect_plain_form, request_id, require_user, session};
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    // A session opened from a platform's link retries at the platform key's providers only.
    let outcomes =
        crate::accounts::disconnect::retry(state.revoker(), user.id, user.provider_scope(), request_id().as_deref())
            .await
            .map_err(AppError::internal)?;
    let failed: u32 = outcomes.iter().map(|o| o.failed).sum();
    let revoked: u32 = outcomes.iter().map(|o| o.revoked).sum();
    let notice = crate::notice::Notice::RevocationsRetried { revoked, failed };
    redirect_plain_form(&format!("/linked-accounts?{}", notice.to_query()));
    Ok(outcomes)
}

/// The linked-accounts URL a plain-form disconnect lands on.
#[cfg(feature = "ssr")]
fn outcome_query(outcome: &DisconnectOutcome) -> String {
    format!("/linked-accounts?{}", crate::notice::Notice::from(outcome).to_query())
}
