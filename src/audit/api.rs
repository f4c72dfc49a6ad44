//! Server functions of the audit trail that users see: their own activity.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ActivityList;
use crate::error::AppError;

/// The activity page's query: kind, provider and the keyset cursor, all in the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityQuery {
    pub kind: Option<String>,
    pub provider: Option<String>,
    /// Show events older than this id.
    pub before: Option<i64>,
}

/// The caller's own history, newest first, filtered and paged.
#[server(endpoint = "user_activity")]
pub async fn user_activity(query: ActivityQuery) -> Result<ActivityList, AppError> {
    use crate::state::{app_state, require_user, session};
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    // A session opened from a platform's link sees the history at the platform key's providers.
    super::activity::page(&state, user.id, &query, user.provider_scope())
        .await
        .map_err(AppError::internal)
}
