//! `GET /api/v1/users/{external_id}/events`: a platform user's recent history, the same sentences the user reads on
//! their Activity page.

use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, Audit, Caller, ErrorBody};
use crate::auth::UserRef;
use crate::{
    activity::{ActivityKind, service as activity},
    audit::{AuditAction, Outcome, repo::NewEvent},
    state::AppState,
};

const DEFAULT_LIMIT: i64 = 25;
const MAX_LIMIT: i64 = 100;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events older than this event id (the previous page's `next_before`).
    before: Option<i64>,
    /// 1 to 100; 25 when absent.
    limit: Option<i64>,
}

/// One event of the user's history.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Event {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// The audit action: `account_linked`, `account_relinked`, `link_rejected`, `token_refreshed`,
    /// `account_status_changed`, `account_disconnected`, `tokens_revoked`, `delegated_call`, `service_*`,
    /// `connect_session_*`, …
    pub action: String,
    /// `success`, `failure` or `rejected`.
    pub outcome: String,
    pub provider: Option<String>,
    pub account_id: Option<String>,
    /// What happened, in a sentence for the user.
    pub summary: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventsResponse {
    pub user: UserRef,
    /// Newest first.
    pub events: Vec<Event>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<i64>,
}

/// A platform user's recent activity.
///
/// Their history at the providers the key may use (and events at no provider, such as the user being disabled),
/// newest first, paged by `before`.
#[utoipa::path(
    get,
    path = "/api/v1/users/{external_id}/events",
    tag = "users",
    params(("external_id" = String, Path, description = "The platform's id of the user"), EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventsResponse),
        (status = 400, description = "`limit` or `before` is not valid", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(external_id) = path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let Query(EventsQuery { before, limit }) = query.map_err(|e| {
        let field = if e.body_text().contains("before") {
            "before"
        } else {
            "limit"
        };
        ApiError::invalid(
            field,
            "`limit` is a whole number from 1 to 100 and `before` an event id.",
        )
    })?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit", "`limit` is a whole number from 1 to 100."));
    }
    let user = super::accounts::named_user(&state, Some(&external_id), None).await?;
    let providers = key.provider_list();
    let (entries, next_before) = activity::history(
        &state.db,
        &state.catalog,
        user.id,
        ActivityKind::All,
        providers.as_deref(),
        before,
        limit,
    )
    .await
    .map_err(ApiError::internal)?;
    let audit = Audit::new(&state, &key, &headers);
    let mut event = NewEvent::by_user(AuditAction::ServiceEventsRead, Outcome::Success, user.id);
    event.details = json!({ "events": entries.len() });
    audit.record(event).await?;
    let events = entries
        .into_iter()
        .map(|e| Event {
            id: e.id,
            at: e.at,
            action: e.action,
            outcome: e.outcome.as_str().to_owned(),
            provider: e.provider_id,
            account_id: e.account_id,
            summary: e.summary,
        })
        .collect();
    let body = EventsResponse {
        user: UserRef::from(&user),
        events,
        next_before,
    };
    Ok(Json(body).into_response())
}
