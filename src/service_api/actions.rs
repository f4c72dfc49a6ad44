//! `POST /api/v1/accounts/{account}/actions/{action}`: any action of `actions::service` (Globus Transfer, or a
//! configured action of the provider), run with the user's linked account through the same code as the Actions
//! page, and audited with the key's name. This file is only the HTTP side: the body, the audit, the error codes.

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiError, ApiPath, Audit, Caller, ErrorBody, seconds_until};
use crate::{
    accounts::repo::AccountRow,
    actions::{
        ActionProblem,
        service::{self, Action, Done},
    },
    audit::{AuditAction, Outcome, repo::NewEvent},
    providers::ProviderKind,
    state::AppState,
};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(description = service::PARAMETERS_DOC)]
pub struct ActionRequest {
    /// The parameters by name.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActionResponse {
    pub action: String,
    /// The action's result: Globus actions answer with onbehalf's typed documents (an endpoint page, an
    /// endpoint, tasks, a task, a transfer submission, a cancellation); configured actions with the provider's JSON.
    #[schema(value_type = Object)]
    pub result: Value,
}

/// Run an action with a user's account.
///
/// The action runs as the account's user, through the same delegation path as the Actions page (refresh when
/// due, consent and reconnect detected). A transfer is submitted at most once per submission: when an error names
/// a `transfer`, retry that submission with `resume`.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/actions/{action}",
    tag = "actions",
    params(
        ("account" = String, Path, description = "The linked account's id"),
        ("action" = String, Path, description = service::NAMES_DOC),
    ),
    request_body(content = Option<ActionRequest>, description = "Optional: `{}` or no body when there are no parameters"),
    responses(
        (status = 200, description = "The action's result", body = ActionResponse),
        (status = 400, description = "A parameter is missing or wrong (`field`), or the body is not JSON", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The key may not use this provider, or the user is disabled", body = ErrorBody),
        (status = 404, description = "No such account, action, endpoint or task", body = ErrorBody),
        (status = 409, description = "The user must reconnect the account or grant consent", body = ErrorBody),
        (status = 502, description = "The provider refused or failed", body = ErrorBody),
        (status = 503, description = "The provider is unavailable; retry after `Retry-After`", body = ErrorBody),
    )
)]
pub(crate) async fn run_action(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    ApiPath((account_id, action)): ApiPath<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // No body at all is as good as `{}`: most actions take no parameters.
    let request: ActionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ActionRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("The body is not an action request: {e}"),
            )
        })?
    };
    let audit = Audit::new(&state, &key, &headers);
    let audited = AuditAction::ServiceActionRun;
    let account = audit.usable_account(audited, &account_id, None).await?;
    let result = run(&state, &account, &action, &request.params).await;
    let mut event = NewEvent::by_user(audited, Outcome::Success, account.user_id);
    event.provider = Some(&account.provider);
    event.account_id = Some(&account.id);
    event.details = json!({ "action": action });
    let result = result.map_err(problem);
    if let Err(error) = &result {
        event.outcome = Outcome::Failure;
        event.details["error"] = error.code().into();
    }
    audit.record(event).await?;
    Ok(Json(ActionResponse {
        action,
        result: result?,
    })
    .into_response())
}

async fn run(
    state: &AppState,
    account: &AccountRow,
    action: &str,
    params: &BTreeMap<String, String>,
) -> Result<Value, ActionProblem> {
    let globus = state
        .catalog
        .get(&account.provider)
        .is_some_and(|p| p.kind == ProviderKind::Globus);
    let action = Action::parse(action, params, globus)?;
    service::run::<Done>(state, account.user_id, &account.id, action)
        .await?
        .into_json()
}

/// An action's problem as an API error.
fn problem(p: ActionProblem) -> ApiError {
    let message = p.message();
    let transfer = p.pending_transfer().map(str::to_owned);
    let mut error = match p {
        ActionProblem::NeedsReconnect { .. } => ApiError::new(StatusCode::CONFLICT, "needs_reconnect", message),
        ActionProblem::NeedsConsent { scopes, .. } => {
            let mut e = ApiError::new(StatusCode::CONFLICT, "needs_consent", message);
            e.body.scopes = Some(scopes);
            e
        }
        ActionProblem::ProviderUnavailable { retry_at, .. } => {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", message);
            e.body.retry_after_seconds = Some(seconds_until(retry_at));
            e
        }
        ActionProblem::Invalid { field, .. } => ApiError::invalid(field, message),
        ActionProblem::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
        ActionProblem::Upstream { status, .. } => {
            let mut e = ApiError::new(StatusCode::BAD_GATEWAY, "upstream", message);
            e.body.upstream_status = Some(status);
            e
        }
        ActionProblem::Failed { .. } => ApiError::new(StatusCode::BAD_GATEWAY, "failed", message),
    };
    error.body.transfer = transfer;
    error
}
