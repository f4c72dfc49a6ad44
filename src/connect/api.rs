//! Server functions of connect sessions.

use leptos::prelude::*;

use super::ConnectChoices;
use crate::error::AppError;

/// The providers a `connect` link that named none offers: the key's.
#[server(endpoint = "connect_choices")]
pub async fn get_connect_choices() -> Result<ConnectChoices, AppError> {
    use crate::state::{app_state, require_user, session};
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    let grant = user.connect.as_ref().ok_or(AppError::Forbidden)?;
    let providers = crate::accounts::view::provider_views(&state.catalog)
        .into_iter()
        .filter(|p| user.may_use_provider(&p.id))
        .collect();
    Ok(ConnectChoices {
        platform_name: grant.platform_name.clone(),
        providers,
    })
}
