//! The server function of the Activity page.

use leptos::prelude::*;

use super::{ActivityList, ActivityQuery};
use crate::error::AppError;

/// The caller's own history, newest first, filtered and paged.
#[server(endpoint = "user_activity")]
pub async fn user_activity(query: ActivityQuery) -> Result<ActivityList, AppError> {
    use crate::state::{app_state, require_user, session};
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    // A session opened from a platform's link sees the history at the platform key's providers.
    super::service::page(&state.db, &state.catalog, user.id, &query, user.provider_scope())
        .await
        .map_err(AppError::internal)
}
