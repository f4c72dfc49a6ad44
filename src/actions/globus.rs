//! Globus Transfer for a user's linked Globus account: endpoint search, endpoint detail, folder listings, transfer
//! submission with a reused `submission_id`, task list, task status and events, cancelling. Shapes follow
//! `tests/fixtures/globus/transfer.*.json`.
//!
//! Every path, name and filter is checked here before anything is sent: a bad one is the field's message, never
//! a call upstream.

use std::sync::Arc;

use serde_json::{Value, json};
use url::Url;

use super::{
    ActionProblem, Cancellation, Endpoint, EndpointPage, EndpointScope, FileEntry, FileKind, LS_MAX, Listing,
    ListingQuery, SEARCH_CAP, SEARCH_PAGE, SortKey, Submission, SyncLevel, TRANSFER_RESOURCE_SERVER, Task, TaskDetail,
    TaskEvent, TransferForm, field_rule, folder_path, repo,
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
        self.send_about(method, path, template, query, body, Vec::new(), &[])
            .await
    }

    /// [`Self::send`], with what the audit says the call was about ([`ApiRequest::about`], [`ApiRequest::keep`]).
    #[allow(clippy::too_many_arguments)]
    async fn send_about(
        &self,
        method: reqwest::Method,
        path: &str,
        template: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        about: Vec<(&'static str, String)>,
        keep: &'static [&'static str],
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
                about,
                keep,
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
            .send_about(
                reqwest::Method::GET,
                &format!("endpoint/{id}"),
                "/endpoint/{endpoint_id}",
                &[],
                None,
                Vec::new(),
                &["display_name"],
            )
            .await?;
        if response.status == 404 {
            return Err(ActionProblem::not_found("endpoint"));
        }
        Ok(endpoint(&ok_json(&response)?))
    }

    /// `GET operation/endpoint/{id}/ls`: one page of a folder, folders first. A missing collection or folder is
    /// [`ActionProblem::NotFound`]; the collection's other refusals (permission denied, a personal collection
    /// that is off) keep Transfer's code in [`ActionProblem::Upstream`].
    pub async fn ls(&self, query: &ListingQuery) -> Result<Listing, ActionProblem> {
        let id = endpoint_uuid("endpoint_id", &query.endpoint_id)?;
        let path = check_path("path", &query.path)?;
        let filter = check_filter(&query.filter)?;
        if !(1..=LS_MAX).contains(&query.limit) {
            return Err(ActionProblem::invalid(
                "limit",
                format!("“limit” is a whole number from 1 to {LS_MAX}."),
            ));
        }
        let key = match query.sort {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Modified => "last_modified",
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let mut params = vec![
            ("path", path.to_owned()),
            ("orderby", format!("type ASC,{key} {direction},name ASC")),
            ("offset", query.offset.to_string()),
            ("limit", query.limit.to_string()),
        ];
        if !filter.is_empty() {
            params.push(("filter", format!("name:~*{}*", filter.to_lowercase())));
        }
        let response = self
            .send(
                reqwest::Method::GET,
                &format!("operation/endpoint/{id}/ls"),
                "/operation/endpoint/{endpoint_id}/ls",
                &params,
                None,
            )
            .await?;
        let body = match ok_json(&response) {
            Err(ActionProblem::Upstream { code, .. }) if code == "EndpointNotFound" => {
                return Err(ActionProblem::not_found("collection"));
            }
            Err(ActionProblem::Upstream { code, .. }) if code == "ClientError.NotFound" => {
                return Err(ActionProblem::not_found("folder"));
            }
            other => other?,
        };
        let entries: Vec<FileEntry> = body["DATA"]
            .as_array()
            .map(|data| data.iter().filter_map(file_entry).collect())
            .unwrap_or_default();
        let count = |k: &str| body[k].as_u64().map(|n| n.min(u64::from(u32::MAX)) as u32);
        Ok(Listing {
            endpoint_id: id,
            path: body["path"]
                .as_str()
                .filter(|p| !p.is_empty())
                .unwrap_or(path)
                .chars()
                .take(4096)
                .collect(),
            offset: query.offset,
            limit: query.limit,
            total: count("total").unwrap_or(query.offset.saturating_add(entries.len() as u32)),
            entries,
        })
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
                match self.started_from(form).await? {
                    Some(earlier) => earlier,
                    None => {
                        let response = self
                            .send(reqwest::Method::GET, "submission_id", "/submission_id", &[], None)
                            .await?;
                        let body = ok_json(&response)?;
                        let submission_id = body["value"].as_str().ok_or_else(|| bad_answer("submission_id"))?;
                        match repo::insert(pool, self.user_id, &self.account_id, form, submission_id, now_ms()).await {
                            Ok(submission) => submission,
                            // The same form, posted at the same moment, recorded first: carry on with that one.
                            Err(e) => self.started_from(form).await?.ok_or_else(|| internal(e))?,
                        }
                    }
                }
            }
        };
        if submission.status == "submitted" {
            return Ok(submission);
        }
        let document = document(&submission);
        let result = self
            .send_about(
                reqwest::Method::POST,
                "transfer",
                "/transfer",
                &[],
                Some(&document),
                Some(submission.form.label.trim())
                    .filter(|l| !l.is_empty())
                    .map(|l| ("label", l.to_owned()))
                    .into_iter()
                    .collect(),
                &["task_id"],
            )
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

    /// The submission already started from `form`'s key, if any (another account's is no submission of this one).
    async fn started_from(&self, form: &TransferForm) -> Result<Option<Submission>, ActionProblem> {
        let Some(key) = form.form_key.as_deref() else {
            return Ok(None);
        };
        match repo::find_by_form_key(&self.state.db.pool, self.user_id, key)
            .await
            .map_err(internal)?
        {
            // The same form again: its submission. The key with other details (a review left with Back and
            // changed, an API key reused): refused, never silently the old transfer.
            Some(earlier) if earlier.account_id == self.account_id && earlier.form == *form => Ok(Some(earlier)),
            Some(_) => Err(broken("idempotency_key")),
            None => Ok(None),
        }
    }

    /// `GET task_list`, newest first.
    pub async fn tasks(&self, limit: u32) -> Result<Vec<TaskDetail>, ActionProblem> {
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
    pub async fn task(&self, task_id: &str) -> Result<TaskDetail, ActionProblem> {
        let id = endpoint_uuid("task_id", task_id)?;
        let response = self
            .send_about(
                reqwest::Method::GET,
                &format!("task/{id}"),
                "/task/{task_id}",
                &[],
                None,
                vec![("task_id", id.clone())],
                &["label"],
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
            .send_about(
                reqwest::Method::GET,
                &format!("task/{id}/event_list"),
                "/task/{task_id}/event_list",
                &[("limit", limit.to_string())],
                None,
                vec![("task_id", id.clone())],
                &[],
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
            .send_about(
                reqwest::Method::POST,
                &format!("task/{id}/cancel"),
                "/task/{task_id}/cancel",
                &[],
                None,
                vec![("task_id", id.clone())],
                &["code"],
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
    let item = |source: String, destination: String, recursive: bool| {
        json!({
            "DATA_TYPE": "transfer_item",
            "source_path": source,
            "destination_path": destination,
            "recursive": recursive,
        })
    };
    let (source, destination) = (form.source_path.trim(), form.destination_path.trim());
    let items: Vec<Value> = if form.items.is_empty() {
        vec![item(
            source.to_owned(),
            destination.to_owned(),
            form.recursive.is_some(),
        )]
    } else {
        form.items
            .iter()
            .map(|name| {
                let (name, folder) = match name.strip_suffix('/') {
                    Some(folder) => (folder, true),
                    None => (name.as_str(), false),
                };
                let suffix = if folder { "/" } else { "" };
                item(
                    format!("{}{name}{suffix}", folder_path(source)),
                    format!("{}{name}{suffix}", folder_path(destination)),
                    folder,
                )
            })
            .collect()
    };
    let options = &form.options;
    let mut document = json!({
        "DATA_TYPE": "transfer",
        "submission_id": submission.submission_id,
        "source_endpoint": form.source_endpoint.trim(),
        "destination_endpoint": form.destination_endpoint.trim(),
        "DATA": items,
        "verify_checksum": options.verify_checksum,
        "preserve_timestamp": options.preserve_timestamp,
        "encrypt_data": options.encrypt_data,
        "delete_destination_extra": options.delete_destination_extra,
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
    let source = check_path("source_path", &form.source_path)?;
    let destination = check_path("destination_path", &form.destination_path)?;
    if form.items.len() > 1000 {
        return Err(broken("items"));
    }
    for name in &form.items {
        let bare = name.strip_suffix('/').unwrap_or(name);
        let longest = folder_path(source).len().max(folder_path(destination).len()) + name.len();
        if bare.is_empty()
            || bare == "."
            || bare == ".."
            || bare.contains('/')
            || bare.chars().any(char::is_control)
            || longest > 4096
        {
            return Err(ActionProblem::invalid(
                "items",
                format!(
                    "“{}” is not a name in the source folder.",
                    bare.chars().filter(|c| !c.is_control()).take(100).collect::<String>()
                ),
            ));
        }
    }
    if form.form_key.as_deref().is_some_and(|key| {
        key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }) {
        return Err(ActionProblem::invalid(
            "idempotency_key",
            "An idempotency key has 1 to 64 letters, digits and dashes.",
        ));
    }
    if form.options.delete_destination_extra && SyncLevel::parse(&form.sync_level).is_none() {
        return Err(broken("delete_destination_extra"));
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

/// A path the user may ask Transfer about, trimmed: it starts with `/` or `~/` (or is `~`), has no `..` segment and no
/// control characters, and has at most 4,096 bytes.
pub fn check_path<'p>(field: &str, path: &'p str) -> Result<&'p str, ActionProblem> {
    let path = path.trim();
    let rooted = path.starts_with('/') || path.starts_with("~/") || path == "~";
    if !rooted || path.len() > 4096 || path.chars().any(char::is_control) || path.split('/').any(|s| s == "..") {
        return Err(broken(field));
    }
    Ok(path)
}

/// A listing's filter text, trimmed.
fn check_filter(filter: &str) -> Result<&str, ActionProblem> {
    let filter = filter.trim();
    if filter.chars().count() > 100 || filter.contains('/') || filter.chars().any(char::is_control) {
        return Err(broken("filter"));
    }
    Ok(filter)
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

fn file_entry(v: &Value) -> Option<FileEntry> {
    let text = |k: &str, most: usize| v[k].as_str().map(|s| s.chars().take(most).collect::<String>());
    let name = text("name", 1000).filter(|n| !n.is_empty())?;
    Some(FileEntry {
        kind: match v["type"].as_str() {
            Some("dir") => FileKind::Dir,
            Some("link") => FileKind::Link,
            _ => FileKind::File,
        },
        name,
        size: v["size"].as_u64().unwrap_or(0),
        last_modified: text("last_modified", 40).unwrap_or_default(),
        permissions: text("permissions", 10),
        link_target: text("link_target", 4096),
    })
}

fn task(v: &Value) -> TaskDetail {
    let number = |k: &str| v[k].as_u64().unwrap_or(0);
    let fatal = &v["fatal_error"];
    TaskDetail {
        bytes_per_second: number("effective_bytes_per_second"),
        files_skipped: number("files_skipped"),
        faults: number("faults"),
        fatal_error: fatal["description"]
            .as_str()
            .or(fatal["code"].as_str())
            .map(|s| s.chars().take(300).collect()),
        task: task_summary(v),
    }
}

fn task_summary(v: &Value) -> Task {
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

/// A call to Transfer in words, for the user's activity and the admin's audit: what was done, for whom it is
/// obvious (the page is theirs), and at which provider. `about` is what the call recorded ([`ApiRequest::about`]).
/// `None` for a route this module does not call.
pub fn call_words(method: &str, template: &str, about: &Value, provider: &str, failed: Option<&str>) -> Option<String> {
    let text = |k: &str| about[k].as_str().filter(|s| !s.is_empty());
    let transfer = match (text("label"), text("task_id")) {
        (Some(label), _) => format!("transfer “{label}”"),
        (None, Some(task)) => format!("transfer {}", short_id(task)),
        (None, None) => "a transfer".to_owned(),
    };
    let done = match (method, template) {
        ("GET", "/endpoint_search") => "listed your collections".to_owned(),
        ("GET", "/endpoint/{endpoint_id}") => match text("display_name") {
            Some(name) => format!("looked up collection “{name}”"),
            None => "looked up a collection".to_owned(),
        },
        ("GET", "/operation/endpoint/{endpoint_id}/ls") => "listed a folder".to_owned(),
        ("GET", "/submission_id") => "prepared a transfer".to_owned(),
        ("POST", "/transfer") => match text("task_id") {
            Some(task) => format!("started {transfer} (task {})", short_id(task)),
            None => format!("started {transfer}"),
        },
        ("GET", "/task_list") => "listed your transfers".to_owned(),
        ("GET", "/task/{task_id}") => format!("checked {transfer}"),
        ("GET", "/task/{task_id}/event_list") => format!("read what happened to {transfer}"),
        ("POST", "/task/{task_id}/cancel") if text("code") == Some("TaskComplete") => {
            return Some(format!(
                "Asked to cancel {transfer} at {provider}: it had already finished."
            ));
        }
        ("POST", "/task/{task_id}/cancel") => format!("cancelled {transfer}"),
        _ => return None,
    };
    Some(match failed {
        None => format!("{} at {provider}.", capitalized(&done)),
        Some(why) => format!("Could not {} at {provider}: {why}.", uncapitalized_verb(&done)),
    })
}

/// The first 8 characters of a task id: enough to tell tasks apart on a page.
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// "listed your collections" → "list your collections", for "Could not …".
fn uncapitalized_verb(done: &str) -> String {
    let (verb, rest) = done.split_once(' ').unwrap_or((done, ""));
    let base = match verb {
        "listed" => "list",
        "looked" => "look",
        "prepared" => "prepare",
        "started" => "start",
        "checked" => "check",
        "read" => "read",
        "asked" => "ask",
        "cancelled" => "cancel",
        other => other,
    };
    format!("{base} {rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_entries_read_from_transfers_shape() {
        let fixture: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/globus/transfer.operation_ls.json")).unwrap();
        let entries: Vec<FileEntry> = fixture["DATA"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(file_entry)
            .collect();
        assert_eq!(entries.len(), 4);
        assert_eq!((entries[0].name.as_str(), entries[0].kind), ("foo", FileKind::Dir));
        assert_eq!(
            (entries[2].name.as_str(), entries[2].kind, entries[2].size),
            (".bashrc", FileKind::File, 3771)
        );
        assert_eq!(entries[3].last_modified, "2018-04-04 18:30:26+00:00");
        assert_eq!(entries[3].permissions.as_deref(), Some("0644"));
        assert!(
            file_entry(&json!({"type": "file"})).is_none(),
            "an entry without a name is skipped"
        );
    }

    #[test]
    fn paths_with_dot_dot_control_characters_or_too_long_are_refused() {
        for good in ["/~/", "~/data", "~", "/data/run..1/", "/a/.../b"] {
            assert_eq!(
                check_path("path", good).map(str::to_owned),
                Ok(good.to_owned()),
                "{good}"
            );
        }
        let long = format!("/{}", "a".repeat(4096));
        for bad in ["data", "", "/~/../x", "/a/..", "~/a\u{7}b", "/a\nb", long.as_str()] {
            assert!(
                matches!(check_path("path", bad), Err(ActionProblem::Invalid { ref field, .. }) if field == "path"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn calls_read_as_sentences() {
        let about = json!({"label": "newcomer copy", "task_id": "8f2c1d4e-aaaa"});
        assert_eq!(
            call_words("POST", "/transfer", &about, "Demo Globus", None).as_deref(),
            Some("Started transfer “newcomer copy” (task 8f2c1d4e) at Demo Globus.")
        );
        assert_eq!(
            call_words(
                "GET",
                "/task/{task_id}/event_list",
                &json!({"task_id": "8f2c1d4e-aaaa"}),
                "G",
                None
            )
            .as_deref(),
            Some("Read what happened to transfer 8f2c1d4e at G.")
        );
        assert_eq!(
            call_words(
                "POST",
                "/task/{task_id}/cancel",
                &json!({"code": "TaskComplete"}),
                "G",
                None
            )
            .as_deref(),
            Some("Asked to cancel a transfer at G: it had already finished.")
        );
        assert_eq!(
            call_words("GET", "/endpoint_search", &Value::Null, "G", Some("HTTP 502")).as_deref(),
            Some("Could not list your collections at G: HTTP 502.")
        );
        assert_eq!(call_words("GET", "/something/else", &Value::Null, "G", None), None);
    }
}
