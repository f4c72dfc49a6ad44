//! `POST /api/v1/accounts/{account}/actions/{action}`: a Globus action (search endpoints, read one, list tasks,
//! read one, submit a transfer) or a configured action (`[[providers.<id>.actions]]`), run with the user's linked
//! account through the same code as the Actions page, and audited with the key's name.

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
    actions::{ActionProblem, EndpointScope, TransferForm, configured, globus::Transfer},
    audit::{AuditAction, Outcome, repo::NewEvent},
    providers::ProviderKind,
    state::AppState,
};

/// The actions every Globus account has (the demo provider is one); other names are configured actions.
pub const GLOBUS_ACTIONS: [&str; 5] = ["endpoint_search", "endpoint", "tasks", "task", "transfer"];

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The action's parameters. `endpoint_search`: `scope` (`my-endpoints`, `shared-with-me`,
    /// `administered-by-me`, `recently-used`, `all`), `q`, `offset`. `endpoint`: `endpoint_id`. `task`: `task_id`.
    /// `transfer`: `source_endpoint`, `source_path`, `destination_endpoint`, `destination_path`, `label`,
    /// `sync_level`, `recursive` (`true`), or `resume` (a submission's id, to retry it). Configured actions: their
    /// declared parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActionResponse {
    pub action: String,
    /// The action's result: Globus actions answer with onbehalf's typed documents (an endpoint page, an
    /// endpoint, tasks, a task, a transfer submission); configured actions with the provider's JSON.
    #[schema(value_type = Object)]
    pub result: Value,
}

/// Run an action with a user's account.
///
/// The action runs as the account's user, through the same delegation path as the Actions page (refresh when
/// due, consent and reconnect detected). A transfer is submitted at most once per submission: retry one with
/// `resume`.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/actions/{action}",
    tag = "actions",
    params(
        ("account" = String, Path, description = "The linked account's id"),
        ("action" = String, Path, description = "`endpoint_search`, `endpoint`, `tasks`, `task`, `transfer` \
                                                  (Globus accounts), or a configured action's name"),
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
    let is_globus = state
        .catalog
        .get(&account.provider)
        .is_some_and(|p| p.kind == ProviderKind::Globus);
    if !(is_globus && GLOBUS_ACTIONS.contains(&action)) {
        let response = configured::fetch(state, account.user_id, &account.id, action, params).await?;
        // The provider's JSON as it is; anything else as text.
        return Ok(serde_json::from_slice(&response.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&response.body).into_owned())));
    }
    let text = |name: &str| params.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    let transfer = Transfer::for_account(state, account.user_id, &account.id).await?;
    let value = match action {
        "endpoint_search" => {
            let scope = match params.get("scope").map(|s| s.trim()).filter(|s| !s.is_empty()) {
                None => EndpointScope::default(),
                Some(s) => EndpointScope::parse(s)
                    .ok_or_else(|| ActionProblem::invalid("scope", "Unknown endpoint filter."))?,
            };
            let offset = match text("offset") {
                o if o.is_empty() => 0,
                o => o
                    .parse()
                    .map_err(|_| ActionProblem::invalid("offset", "An offset is a whole number from 0."))?,
            };
            serde_json::to_value(transfer.endpoint_search(scope, &text("q"), offset).await?)
        }
        "endpoint" => serde_json::to_value(transfer.endpoint(&text("endpoint_id")).await?),
        "tasks" => serde_json::to_value(transfer.tasks(20).await?),
        "task" => serde_json::to_value(transfer.task(&text("task_id")).await?),
        _ => {
            let form = TransferForm {
                account: account.id.clone(),
                source_endpoint: text("source_endpoint"),
                source_path: text("source_path"),
                destination_endpoint: text("destination_endpoint"),
                destination_path: text("destination_path"),
                label: text("label"),
                sync_level: text("sync_level"),
                recursive: matches!(text("recursive").as_str(), "true" | "on").then(|| "on".to_owned()),
            };
            let resume = params.get("resume").map(|r| r.trim()).filter(|r| !r.is_empty());
            let submission = transfer
                .submit(&form, resume)
                .await
                .map_err(|(problem, pending)| match problem {
                    // The submission waits for the user's fix: say which one, to resume it afterwards.
                    ActionProblem::NeedsReconnect { reason, .. } => ActionProblem::NeedsReconnect {
                        reason,
                        transfer: pending,
                    },
                    ActionProblem::NeedsConsent { scopes, .. } => ActionProblem::NeedsConsent {
                        scopes,
                        transfer: pending,
                    },
                    other => other,
                })?;
            serde_json::to_value(submission)
        }
    };
    value.map_err(crate::actions::globus::internal)
}

/// An action's problem as an API error.
fn problem(p: ActionProblem) -> ApiError {
    let message = p.message();
    match p {
        ActionProblem::NeedsReconnect { transfer, .. } => {
            let mut e = ApiError::new(StatusCode::CONFLICT, "needs_reconnect", message);
            e.body.transfer = transfer;
            e
        }
        ActionProblem::NeedsConsent { scopes, transfer } => {
            let mut e = ApiError::new(StatusCode::CONFLICT, "needs_consent", message);
            e.body.scopes = Some(scopes);
            e.body.transfer = transfer;
            e
        }
        ActionProblem::ProviderUnavailable { retry_at } => {
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
    }
}
