//! `GET /api/v1/webhooks` and `POST /api/v1/webhooks/{endpoint}/replay`: the platform's backend sees its endpoints'
//! health and asks for events again (after an outage of its receiver, or to rebuild its state). Adding endpoints
//! and their secrets stays with the operator (`onbehalf webhook add`): a secret is shown once, to a person.
//!
//! Endpoints belong to no provider, so only a key for every provider (made without `--provider`) may use these: a
//! key limited to some providers must not read every endpoint's URL nor replay events of the others.

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiPath, Caller, ErrorBody};
use crate::{
    state::AppState,
    webhooks::{
        EndpointView,
        endpoints::{self, ChangedBy, EndpointError, Replay, ReplayError},
    },
};

/// The refusal of a key limited to some providers.
fn limited(key: &super::keys::ApiKey) -> Option<ApiError> {
    key.providers.as_ref().map(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This key is limited to some providers; webhooks concern them all. Use a key made without --provider.",
        )
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointsResponse {
    pub endpoints: Vec<EndpointView>,
}

/// The webhook endpoints and their health.
///
/// Each endpoint's URL, event types, whether it is enabled (and why not), the last successful delivery and the
/// failed attempts since. Never a secret.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints", body = EndpointsResponse),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The key is limited to some providers", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<AppState>, Caller(key): Caller) -> Result<Response, ApiError> {
    if let Some(refused) = limited(&key) {
        return Err(refused);
    }
    let endpoints = endpoints::list(&state.db).await.map_err(ApiError::internal)?;
    Ok(Json(EndpointsResponse { endpoints }).into_response())
}

/// What to send again: one event, or every event since a time.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// An event's id (`evt_…`, the `webhook-id` header of its deliveries).
    event_id: Option<String>,
    /// Unix milliseconds: every event since then, of the types the endpoint receives, in the order they occurred.
    since: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplayResponse {
    /// How many deliveries were queued.
    pub queued: u64,
}

/// Sends events to an endpoint again.
///
/// New deliveries with the events' own ids (receivers de-duplicate on `webhook-id`), after any still pending for
/// the same account: `event_id` resends an event this endpoint had; `since` sends every event since then (at most
/// 10,000 per call: call again from the last one's `occurred_at`), including ones it never had. An old event comes
/// after newer ones: order by `occurred_at`. Works on a disabled endpoint too: they go out once it is enabled.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{endpoint}/replay",
    tag = "webhooks",
    params(("endpoint" = String, Path, description = "The endpoint's id, `ep_…`")),
    request_body = ReplayRequest,
    responses(
        (status = 202, description = "Queued", body = ReplayResponse),
        (status = 400, description = "Neither or both of `event_id` and `since`", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The key is limited to some providers", body = ErrorBody),
        (status = 404, description = "No such endpoint, or no such event (kept for `webhooks.retention`)", body = ErrorBody),
    )
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    ApiPath(endpoint): ApiPath<String>,
    body: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    if let Some(refused) = limited(&key) {
        return Err(refused);
    }
    let Json(request) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let what = match (&request.event_id, request.since) {
        (Some(event), None) => Replay::Event(event),
        (None, Some(since)) if since >= 0 => Replay::Since(since),
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "since",
                "`since` is Unix milliseconds, not negative.",
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Send either `event_id` (one event) or `since` (Unix milliseconds: every event since then).",
            ));
        }
    };
    let by = ChangedBy {
        actor_user_id: None,
        key: Some(&key.name),
        request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()),
    };
    match endpoints::replay(&state.db, &endpoint, what, by).await {
        Ok(queued) => Ok((StatusCode::ACCEPTED, Json(ReplayResponse { queued })).into_response()),
        Err(ReplayError::Endpoint(EndpointError::NotFound(_))) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such webhook endpoint.",
        )),
        Err(e @ ReplayError::NoSuchEvent(_)) => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())),
        Err(e) => Err(ApiError::internal(e)),
    }
}
