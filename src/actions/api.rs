//! Server functions of actions. Each authorizes from the session and acts only on the caller's own accounts; the
//! outer `Result` is for the request (signed out, internal), the inner one for the action (an [`ActionProblem`]).

// A plain HTML form posts flat fields, so the transfer's fields are the server function's arguments; the macro
// repeats them in the browser's stub, where an attribute on the function does not reach.
#![allow(clippy::too_many_arguments)]

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::service::{self, GlobusAction};
use super::{ActionProblem, ActionResult, ActionView, Cancellation, EndpointPage, Submission, Submitted, Task};
use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::notice::{CancelOutcome, Notice};

/// One of the user's accounts that actions can run with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionAccount {
    pub id: String,
    pub provider: String,
    pub provider_name: String,
    pub label: String,
    pub status: crate::accounts::AccountStatus,
    pub is_globus: bool,
}

/// Everything the actions page shows, in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsOverview {
    pub accounts: Vec<ActionAccount>,
    /// The account the page is about (the query's, else the first).
    pub account: Option<ActionAccount>,
    pub endpoints: Option<Result<EndpointPage, ActionProblem>>,
    pub tasks: Option<Result<Vec<Task>, ActionProblem>>,
    /// The submission named in the query, with the status of its task.
    pub submission: Option<(Submission, Option<Result<Task, ActionProblem>>)>,
    pub actions: Vec<ActionView>,
    /// The configured action run by this page load, if any.
    pub result: Option<(String, Result<ActionResult, ActionProblem>)>,
    /// An action the URL asked to run that was not run, because the page was not opened from one of ours (another
    /// site's link, a typed URL): its name and parameters, for the form to show ready to run.
    pub not_run: Option<(String, BTreeMap<String, String>)>,
}

/// What the actions page's URL asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsQuery {
    pub account: Option<String>,
    pub scope: Option<String>,
    pub q: Option<String>,
    pub offset: Option<u32>,
    pub transfer: Option<String>,
    pub run: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

#[server(endpoint = "actions_page")]
pub async fn actions_page(query: ActionsQuery) -> Result<ActionsOverview, AppError> {
    use crate::state::{app_state, require_user, session};
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    server::page(&state, user.id, query).await
}

/// One task's status, for [`TaskStatus`](crate::components::task_status::TaskStatus) to follow it.
#[server(endpoint = "globus_task")]
pub async fn globus_task(account: String, task_id: String) -> Result<Result<Task, ActionProblem>, AppError> {
    let (state, user) = server::caller().await?;
    Ok(service::run(&state, user, &account, GlobusAction::Task { task_id }.into()).await)
}

/// Submits a transfer (a plain form works: it redirects to the actions page showing the submission), or retries
/// the recorded submission `resume` with its own `submission_id`.
#[server(endpoint = "globus_submit_transfer")]
pub async fn submit_transfer(
    account: String,
    #[server(default)] source_endpoint: String,
    #[server(default)] source_path: String,
    #[server(default)] destination_endpoint: String,
    #[server(default)] destination_path: String,
    #[server(default)] label: String,
    #[server(default)] sync_level: String,
    #[server(default)] recursive: Option<String>,
    #[server(default)] resume: Option<String>,
) -> Result<Result<Submitted, ActionProblem>, AppError> {
    let (state, user) = server::caller().await?;
    let form = super::TransferForm {
        account: account.clone(),
        source_endpoint,
        source_path,
        destination_endpoint,
        destination_path,
        label,
        sync_level,
        recursive,
        ..Default::default()
    };
    let resume = resume.filter(|r| !r.is_empty());
    let result: Result<Submission, _> =
        service::run(&state, user, &account, GlobusAction::Transfer { form, resume }.into()).await;
    let back = match &result {
        Ok(submission) => format!(
            "/actions?account={}&transfer={}",
            crate::query::encode(&account),
            crate::query::encode(&submission.id)
        ),
        Err(problem) => crate::notice::transfer_page(problem, &account),
    };
    crate::state::redirect_plain_form(&back);
    Ok(result.map(|submission| Submitted::from(&submission)))
}

/// Cancels one of the account's tasks. A plain form: back with what happened on the actions page, or on `back`
/// when it is a transfer's own page (`/transfer/tasks/…`).
#[server(endpoint = "globus_cancel_task")]
pub async fn cancel_task(
    account: String,
    task_id: String,
    #[server(default)] back: Option<String>,
) -> Result<Result<Cancellation, ActionProblem>, AppError> {
    let (state, user) = server::caller().await?;
    let result: Result<Cancellation, _> =
        service::run(&state, user, &account, GlobusAction::Cancel { task_id }.into()).await;
    let outcome = match &result {
        Ok(c) if c.cancelled => CancelOutcome::Cancelled,
        Ok(_) => CancelOutcome::AlreadyEnded,
        Err(ActionProblem::NotFound { .. }) => CancelOutcome::NotFound,
        Err(ActionProblem::NeedsReconnect { .. } | ActionProblem::NeedsConsent { .. }) => CancelOutcome::NeedsAccess,
        Err(_) => CancelOutcome::Failed,
    };
    let notice = Notice::Cancel(outcome).to_query();
    let back = match back.as_deref() {
        Some(page)
            // A transfer's page of ours, in characters a Location header carries as they are.
            if page.starts_with("/transfer/tasks/")
                && page.contains('?')
                && !page.contains('#')
                && page.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            format!("{page}&{notice}")
        }
        _ => format!("/actions?account={}&{notice}#tasks", crate::query::encode(&account)),
    };
    crate::state::redirect_plain_form(&back);
    Ok(result)
}

#[cfg(feature = "ssr")]
pub(crate) mod server {
    use super::*;
    use crate::{
        accounts::repo as accounts,
        actions::{EndpointScope, configured, repo, service::Action},
        providers::ProviderKind,
        state::{AppState, app_state, require_user, session},
    };

    pub async fn caller() -> Result<(AppState, i64), AppError> {
        let state = app_state()?;
        let user = require_user(&state, &session().await?).await?;
        Ok((state, user.id))
    }

    /// The user's accounts that actions can run with: Globus accounts, and those whose provider has configured
    /// actions.
    pub async fn accounts(state: &AppState, user_id: i64) -> Result<Vec<ActionAccount>, AppError> {
        let rows = accounts::list_for_user(&state.db.pool, user_id)
            .await
            .map_err(AppError::internal)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let provider = state.catalog.get(&row.provider)?;
                let is_globus = provider.kind == ProviderKind::Globus;
                if !is_globus && provider.actions.is_empty() {
                    return None;
                }
                Some(ActionAccount {
                    label: row.label().to_owned(),
                    id: row.id,
                    provider: provider.id.clone(),
                    provider_name: provider.display_name.clone(),
                    status: row.status,
                    is_globus,
                })
            })
            .collect())
    }

    pub async fn page(state: &AppState, user_id: i64, query: ActionsQuery) -> Result<ActionsOverview, AppError> {
        let accounts = accounts(state, user_id).await?;
        let account = query
            .account
            .as_ref()
            .and_then(|id| accounts.iter().find(|a| &a.id == id))
            .or(accounts.first())
            .cloned();
        let mut page = ActionsOverview {
            accounts: accounts.clone(),
            account: account.clone(),
            endpoints: None,
            tasks: None,
            submission: None,
            actions: configured::views(&state.catalog)
                .into_iter()
                .filter(|a| account.as_ref().is_some_and(|acc| acc.provider == a.provider))
                .collect(),
            result: None,
            not_run: None,
        };
        let Some(account) = account else {
            return Ok(page);
        };
        if account.is_globus {
            let scope = query
                .scope
                .as_deref()
                .and_then(EndpointScope::parse)
                .unwrap_or_default();
            let search = GlobusAction::EndpointSearch {
                scope,
                text: query.q.clone().unwrap_or_default(),
                offset: query.offset.unwrap_or(0),
            };
            let tasks = GlobusAction::Tasks {
                limit: service::RECENT_TASKS,
            };
            // The three reads run at once: one page load waits for the slowest, not their sum.
            let submission = async {
                let id = query.transfer.as_deref()?;
                let found = repo::find(&state.db.pool, user_id, id).await.ok()??;
                if found.account_id != account.id {
                    return None;
                }
                let task = match found.task_id.clone() {
                    Some(task_id) => {
                        Some(service::run(state, user_id, &account.id, GlobusAction::Task { task_id }.into()).await)
                    }
                    None => None,
                };
                Some((found, task))
            };
            let (endpoints, tasks, submission) = tokio::join!(
                service::run(state, user_id, &account.id, search.into()),
                service::run(state, user_id, &account.id, tasks.into()),
                submission,
            );
            page.endpoints = Some(endpoints);
            page.tasks = Some(tasks);
            page.submission = submission;
        }
        if let Some(name) = &query.run {
            let headers = leptos::prelude::use_context::<axum::http::request::Parts>().map(|parts| parts.headers);
            let ours = state.settings.server.public_origin();
            if headers.is_some_and(|h| crate::http::origin::is_same_origin_navigation(&h, &ours)) {
                let action = Action::Configured {
                    name: name.clone(),
                    params: query.params.clone(),
                };
                let result = service::run(state, user_id, &account.id, action).await;
                page.result = Some((name.clone(), result.map(configured::readable)));
            } else {
                page.not_run = Some((name.clone(), query.params.clone()));
            }
        }
        Ok(page)
    }
}
