//! Server functions of linked accounts. Connecting, reconnecting and granting are browser navigations through
//! `routes` (POST forms), not server functions.

use leptos::prelude::*;

use super::LinkedAccounts;
use crate::error::AppError;

/// The caller's linked accounts (metadata only: never a token) and the providers they can connect.
#[server(endpoint = "list_linked_accounts")]
pub async fn list_linked_accounts() -> Result<LinkedAccounts, AppError> {
    use crate::state::{app_state, require_user, session};
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    crate::accounts::service::linked_accounts(&state, user.id)
        .await
        .map_err(AppError::internal)
}
