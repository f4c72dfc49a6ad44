//! Globus Transfer for a user's linked Globus account: endpoint search, endpoint detail, transfer submission with
//! a reused `submission_id`, task list and task status. Shapes follow `tests/fixtures/globus/transfer.*.json`.

use std::sync::Arc;

use serde_json::{Value, json};
use url::Url;

use super::{
    ActionProblem, Cancellation, Endpoint, EndpointPage, EndpointScope, SEARCH_CAP, SEARCH_PAGE, Submission, SyncLevel,
    TRANSFER_RESOURCE_SERVER, Task, TaskEvent, TransferForm, field_rule, repo,
};
use crate::{
    accounts::repo as accounts,
    db::now_ms,
    delegation::{ApiRequest, ApiResponse, CallError, Unavailable},
    providers::ProviderKind,
    state::AppState,
};

/// Transfer, acting as one of the user's linked Globus accounts.
pub struct Transfer<'a> {
    state: &'a AppState,
    user_id: i64,
    account_id: String,
    base: Url,
}

impl<'a> Transfer<'a> {
    /// The user's account `account_id`, if it is a Globus account (the demo provider is one).
    pub async fn for_account(state: &'a AppState, user_id: i64, account_id: &str) -> Result<Self, ActionProblem> {
        let not_found = || ActionProblem::not_found("Globus account");
        let mut conn = state.db.pool.acquire().await.map_err(internal)?;
        let account = accounts::find_for_user(&mut conn, account_id, user_id)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let provider = state
            .catalog
            .get(&account.provider)
            .filter(|p| p.kind == ProviderKind::Globus)
            .ok_or_else(not_found)?;
        let base = provider
            .api_base(TRANSFER_RESOURCE_SERVER)
            .cloned()
            .ok_or_else(not_found)?;
        Ok(Self {
            state,
            user_id,
            account_id: account.id,
            base,
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        template: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<ApiResponse, ActionProblem> {
        let mut url = self.base.join(path).map_err(internal)?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let delegation: &Arc<_> = &self.state.delegation;
        delegation
            .call(ApiRequest {
                user_id: self.user_id,
                account_id: &self.account_id,
                resource_server: TRANSFER_RESOURCE_SERVER,
                method,
                url,
                path_template: template,
                json: body,
                request_id: None,
            })
            .await
            .map_err(problem)
    }

    /// `GET endpoint_search`: one page of `SEARCH_PAGE`, never past Globus' 1,000-result cap.
    pub async fn endpoint_search(
        &self,
        scope: EndpointScope,
        text: &str,
        offset: u32,
    ) -> Result<EndpointPage, ActionProblem> {
        let text = text.trim();
        if text.chars().count() > 200 {
            return Err(ActionProblem::invalid("q", "Search text is limited to 200 characters."));
        }
        if scope == EndpointScope::All && text.is_empty() {
            return Err(ActionProblem::invalid(
                "q",
                "Searching all endpoints needs search text.",
            ));
        }
        if offset >= SEARCH_CAP {
            return Err(ActionProblem::invalid(
                "offset",
                "Globus returns at most 1,000 results for one search: refine the search text.",
            ));
        }
        let limit = SEARCH_PAGE.min(SEARCH_CAP - offset);
        let mut query = vec![
            ("filter_scope", scope.as_str().to_owned()),
            ("offset", offset.to_string()),
            ("limit", limit.to_string()),
        ];
        if !text.is_empty() {
            query.push(("filter_fulltext", text.to_owned()));
        }
        let response = self
            .send(
                reqwest::Method::GET,
                "endpoint_search",
                "/endpoint_search",
                &query,
                None,
            )
            .await?;
        let body = ok_json(&response)?;
        let endpoints = body["DATA"]
            .as_array()
            .map(|d| d.iter().map(endpoint).collect())
            .unwrap_or_default();
        let has_next_page = body["has_next_page"].as_bool().unwrap_or(false);
        Ok(EndpointPage {
            endpoints,
            offset,
            limit,
            has_next_page: has_next_page && offset + limit < SEARCH_CAP,
            at_cap: has_next_page && offset + limit >= SEARCH_CAP,
        })
    }

    /// `GET endpoint/{id}`.
    pub async fn endpoint(&self, endpoint_id: &str) -> Result<Endpoint, ActionProblem> {
        let id = endpoint_uuid("endpoint_id", endpoint_id)?;
        let response = self
            .send(
                reqwest::Method::GET,
                &format!("endpoint/{id}"),
                "/endpoint/{endpoint_id}",
                &[],
                None,
            )
            .await?;
        if response.status == 404 {
            return Err(ActionProblem::not_found("endpoint"));
        }
        Ok(endpoint(&ok_json(&response)?))
    }

    /// Submits a transfer. A new submission gets a `submission_id` from Globus first and is recorded; `resume` names
    /// a recorded one to retry with its own `submission_id` (after consent, or when an answer was lost), so Globus
    /// starts at most one task for it. A problem after recording names the submission to resume
    /// ([`ActionProblem::pending_transfer`]).
    pub async fn submit(&self, form: &TransferForm, resume: Option<&str>) -> Result<Submission, ActionProblem> {
        let pool = &self.state.db.pool;
        let submission = match resume {
            Some(id) => match repo::find(pool, self.user_id, id).await.map_err(internal)? {
                Some(s) if s.account_id == self.account_id => s,
                _ => return Err(ActionProblem::not_found("transfer submission")),
            },
            None => {
                validate(form)?;
                let response = self
                    .send(reqwest::Method::GET, "submission_id", "/submission_id", &[], None)
                    .await?;
                let body = ok_json(&response)?;
                let submission_id = body["value"].as_str().ok_or_else(|| bad_answer("submission_id"))?;
                repo::insert(pool, self.user_id, &self.account_id, form, submission_id, now_ms())
                    .await
                    .map_err(internal)?
            }
        };
        if submission.status == "submitted" {
            return Ok(submission);
        }
        let document = document(&submission);
        let result = self
            .send(reqwest::Method::POST, "transfer", "/transfer", &[], Some(&document))
            .await
            .and_then(|response| {
                let body = ok_json(&response)?;
                body["task_id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad_answer("transfer"))
            });
        let now = now_ms();
        match result {
            Ok(task_id) => {
                repo::mark_submitted(pool, &submission.id, &task_id, now)
                    .await
                    .map_err(|e| internal(e).with_transfer(&submission.id))?;
                Ok(Submission {
                    status: "submitted".into(),
                    task_id: Some(task_id),
                    last_error: None,
                    ..submission
                })
            }
            Err(problem) => {
                let _ = repo::mark_failed(pool, &submission.id, &problem.message(), now).await;
                Err(problem.with_transfer(&submission.id))
            }
        }
    }

    /// `GET task_list`, newest first.
    pub async fn tasks(&self, limit: u32) -> Result<Vec<Task>, ActionProblem> {
        let query = [
            ("limit", limit.clamp(1, 100).to_string()),
            ("orderby", "request_time DESC".to_owned()),
        ];
        let response = self
            .send(reqwest::Method::GET, "task_list", "/task_list", &query, None)
            .await?;
        let body = ok_json(&response)?;
        Ok(body["DATA"]
            .as_array()
            .map(|d| d.iter().map(task).collect())
            .unwrap_or_default())
    }

    /// `GET task/{id}`.
    pub async fn task(&self, task_id: &str) -> Result<Task, ActionProblem> {
        let id = endpoint_uuid("task_id", task_id)?;
        let response = self
            .send(
                reqwest::Method::GET,
                &format!("task/{id}"),
                "/task/{task_id}",
                &[],
                None,
            )
            .await?;
        if response.status == 404 {
            return Err(ActionProblem::not_found("task"));
        }
        Ok(task(&ok_json(&response)?))
    }

    /// `GET task/{id}/event_list`: the task's `limit` newest events.
    pub async fn task_events(&self, task_id: &str, limit: u32) -> Result<Vec<TaskEvent>, ActionProblem> {
        let id = endpoint_uuid("task_id", task_id)?;
        let response = self
            .send(
                reqwest::Method::GET,
                &format!("task/{id}/event_list"),
                "/task/{task_id}/event_list",
                &[("limit", limit.to_string())],
                None,
            )
            .await?;
        if response.status == 404 {
            return Err(ActionProblem::not_found("task"));
        }
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().chars().take(1000).collect();
        Ok(ok_json(&response)?["DATA"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .map(|e| TaskEvent {
                        code: text(e, "code"),
                        description: text(e, "description"),
                        details: text(e, "details"),
                        is_error: e["is_error"].as_bool().unwrap_or(false),
                        time: text(e, "time"),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `POST task/{id}/cancel`. A task that finished first is not an error: Globus answers `TaskComplete`.
    pub async fn cancel(&self, task_id: &str) -> Result<Cancellation, ActionProblem> {
        let id = endpoint_uuid("task_id", task_id)?;
        let response = self
            .send(
                reqwest::Method::POST,
                &format!("task/{id}/cancel"),
                "/task/{task_id}/cancel",
                &[],
                None,
            )
            .await?;
        if response.status == 404 {
            return Err(ActionProblem::not_found("task"));
        }
        let body = ok_json(&response)?;
        let code = body["code"].as_str().ok_or_else(|| bad_answer("cancel"))?;
        Ok(Cancellation {
            task_id: id,
            cancelled: code == "Canceled",
            message: body["message"].as_str().unwrap_or(code).chars().take(300).collect(),
        })
    }
}

/// The transfer document globus-sdk's `TransferData` builds.
fn document(submission: &Submission) -> Value {
    let form = &submission.form;
    let mut document = json!({
        "DATA_TYPE": "transfer",
        "submission_id": submission.submission_id,
        "source_endpoint": form.source_endpoint.trim(),
        "destination_endpoint": form.destination_endpoint.trim(),
        "DATA": [{
            "DATA_TYPE": "transfer_item",
            "source_path": form.source_path.trim(),
            "destination_path": form.destination_path.trim(),
            "recursive": form.recursive.is_some(),
        }],
    });
    if !form.label.trim().is_empty() {
        document["label"] = json!(form.label.trim());
    }
    if let Some(level) = SyncLevel::parse(&form.sync_level) {
        document["sync_level"] = json!(level.as_str());
    }
    document
}

/// Checks a transfer form; the first problem names its field.
pub fn validate(form: &TransferForm) -> Result<(), ActionProblem> {
    endpoint_uuid("source_endpoint", &form.source_endpoint)?;
    endpoint_uuid("destination_endpoint", &form.destination_endpoint)?;
    for (field, path) in [
        ("source_path", &form.source_path),
        ("destination_path", &form.destination_path),
    ] {
        let path = path.trim();
        if !(path.starts_with('/') || path.starts_with("~/")) || path.len() > 4096 || path.chars().any(char::is_control)
        {
            return Err(broken(field));
        }
    }
    let label = form.label.trim();
    if label.chars().count() > 128
        || !label
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ',' | '(' | ')'))
    {
        return Err(broken("label"));
    }
    if !form.sync_level.is_empty() && SyncLevel::parse(&form.sync_level).is_none() {
        return Err(broken("sync_level"));
    }
    Ok(())
}

/// `field` broke its rule ([`field_rule`]).
fn broken(field: &str) -> ActionProblem {
    ActionProblem::invalid(field, field_rule(field).unwrap_or("This value is not valid."))
}

/// An endpoint or task id, as Transfer writes it.
fn endpoint_uuid(field: &str, value: &str) -> Result<String, ActionProblem> {
    uuid::Uuid::parse_str(value.trim())
        .map(|u| u.to_string())
        .map_err(|_| broken(field))
}

fn endpoint(v: &Value) -> Endpoint {
    let text = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    Endpoint {
        id: text("id").unwrap_or_default(),
        display_name: text("display_name")
            .or_else(|| text("canonical_name"))
            .unwrap_or_default(),
        owner: text("owner_string"),
        description: text("description"),
        entity_type: text("entity_type"),
        organization: text("organization"),
    }
}

fn task(v: &Value) -> Task {
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    let number = |k: &str| v[k].as_u64().unwrap_or(0);
    Task {
        task_id: text("task_id").unwrap_or_default(),
        label: text("label"),
        status: text("status").unwrap_or_else(|| "UNKNOWN".into()),
        source: text("source_endpoint_display_name")
            .or_else(|| text("source_endpoint_id"))
            .unwrap_or_default(),
        destination: text("destination_endpoint_display_name")
            .or_else(|| text("destination_endpoint_id"))
            .unwrap_or_default(),
        request_time: text("request_time").unwrap_or_default(),
        completion_time: text("completion_time"),
        files: number("files"),
        files_transferred: number("files_transferred"),
        bytes_transferred: number("bytes_transferred"),
    }
}

/// The JSON body of a 2xx answer, or the provider's refusal as a problem.
pub fn ok_json(response: &ApiResponse) -> Result<Value, ActionProblem> {
    let body: Option<Value> = response.json().ok();
    if response.is_success() {
        return body.ok_or_else(|| bad_answer("a call"));
    }
    let field = |k: &str| {
        body.as_ref()
            .and_then(|b| b[k].as_str())
            .map(|s| s.chars().take(300).collect::<String>())
    };
    Err(ActionProblem::Upstream {
        status: response.status,
        code: field("code").unwrap_or_else(|| format!("HTTP {}", response.status)),
        message: field("message").unwrap_or_else(|| "no explanation given".into()),
        transfer: None,
    })
}

fn bad_answer(what: &str) -> ActionProblem {
    ActionProblem::failed(format!("The provider's answer to {what} could not be read."))
}

pub fn internal(e: impl std::fmt::Display) -> ActionProblem {
    tracing::error!("action failed: {e}");
    ActionProblem::failed("Something went wrong on our side; it has been logged.")
}

/// A delegation failure as the action that fixes it.
pub fn problem(e: CallError) -> ActionProblem {
    match e {
        CallError::Unavailable(Unavailable::NeedsReconnect { reason }) => {
            ActionProblem::NeedsReconnect { reason, transfer: None }
        }
        CallError::Unavailable(Unavailable::NeedsConsent { scopes }) => {
            ActionProblem::NeedsConsent { scopes, transfer: None }
        }
        CallError::Unavailable(Unavailable::ProviderUnavailable { retry_at }) => ActionProblem::ProviderUnavailable {
            retry_at,
            transfer: None,
        },
        CallError::Unavailable(Unavailable::NotFound) => {
            ActionProblem::not_found("linked account with a token for this service")
        }
        CallError::Unauthorized => ActionProblem::NeedsReconnect {
            reason: "The provider refused the account's token even after a refresh. Reconnect the account.".into(),
            transfer: None,
        },
        CallError::SessionRequired => ActionProblem::NeedsReconnect {
            reason: "The provider asks you to sign in again (for example with another identity or a second factor) \
                     before this can be done."
                .into(),
            transfer: None,
        },
        other => ActionProblem::failed(other.to_string()),
    }
}
