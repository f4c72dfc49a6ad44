//! Server functions of actions. Each authorizes from the session and acts only on the caller's own accounts; the
//! outer `Result` is for the request (signed out, internal), the inner one for the action (an [`ActionProblem`]).

// A plain HTML form posts flat fields, so the transfer's fields are the server function's arguments; the macro
// repeats them in the browser's stub, where an attribute on the function does not reach.
#![allow(clippy::too_many_arguments)]

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{ActionProblem, ActionResult, ActionView, EndpointPage, Submission, Task};
use crate::error::AppError;

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
    pub params: BTreeMap<String, String>,
}

#[server(endpoint = "actions_page")]
pub async fn actions_page(query: ActionsQuery) -> Result<ActionsOverview, AppError> {
    use crate::state::{app_state, require_user, session};
    let state = app_state()?;
    let user = require_user(&state, &session().await?).await?;
    server::page(&state, user.id, query).await
}

#[server(endpoint = "globus_endpoints")]
pub async fn globus_endpoints(
    account: String,
    scope: String,
    q: String,
    offset: u32,
) -> Result<Result<EndpointPage, ActionProblem>, AppError> {
    let (state, user) = server::caller().await?;
    let Some(scope) = super::EndpointScope::parse(&scope) else {
        return Ok(Err(ActionProblem::invalid("scope", "Unknown endpoint filter.")));
    };
    Ok(
        match super::globus::Transfer::for_account(&state, user, &account).await {
            Ok(transfer) => transfer.endpoint_search(scope, &q, offset).await,
            Err(problem) => Err(problem),
        },
    )
}

#[server(endpoint = "globus_endpoint")]
pub async fn globus_endpoint(
    account: String,
    endpoint_id: String,
) -> Result<Result<super::Endpoint, ActionProblem>, AppError> {
    let (state, user) = server::caller().await?;
    Ok(
        match super::globus::Transfer::for_account(&state, user, &account).await {
            Ok(transfer) => transfer.endpoint(&endpoint_id).await,
            Err(problem) => Err(problem),
        },
    )
}

#[server(endpoint = "globus_tasks")]
pub async fn globus_tasks(account: String) -> Result<Result<Vec<Task>, ActionProblem>, AppError> {
    let (state, user) = server::caller().await?;
    Ok(
        match super::globus::Transfer::for_account(&state, user, &account).await {
            Ok(transfer) => transfer.tasks(20).await,
            Err(problem) => Err(problem),
        },
    )
}

#[server(endpoint = "globus_task")]
pub async fn globus_task(account: String, task_id: String) -> Result<Result<Task, ActionProblem>, AppError> {
    let (state, user) = server::caller().await?;
    Ok(
        match super::globus::Transfer::for_account(&state, user, &account).await {
            Ok(transfer) => transfer.task(&task_id).await,
            Err(problem) => Err(problem),
        },
    )
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
) -> Result<Result<Submission, ActionProblem>, AppError> {
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
    };
    let resume = resume.filter(|r| !r.is_empty());
    let result = match super::globus::Transfer::for_account(&state, user, &account).await {
        Ok(transfer) => transfer.submit(&form, resume.as_deref()).await,
        Err(problem) => Err((problem, None)),
    };
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let back = match &result {
        Ok(submission) => format!(
            "/actions?account={}&transfer={}",
            encode(&account),
            encode(&submission.id)
        ),
        Err((_, Some(row))) => format!("/actions?account={}&transfer={}", encode(&account), encode(row)),
        // Nothing was recorded (bad input): the field's name, never its text, goes back in the URL.
        Err((ActionProblem::Invalid { field, .. }, None)) => {
            format!(
                "/actions?account={}&invalid={}#transfer",
                encode(&account),
                encode(field)
            )
        }
        Err(_) => format!("/actions?account={}&failed=1#transfer", encode(&account)),
    };
    crate::state::redirect_plain_form(&back);
    Ok(result.map_err(|(problem, _)| problem))
}

#[server(endpoint = "run_action")]
pub async fn run_action(
    account: String,
    name: String,
    #[server(default)] params: BTreeMap<String, String>,
) -> Result<Result<ActionResult, ActionProblem>, AppError> {
    let (state, user) = server::caller().await?;
    Ok(super::configured::run(&state, user, &account, &name, &params).await)
}

#[cfg(feature = "ssr")]
mod server {
    use super::*;
    use crate::{
        accounts::repo as accounts,
        actions::{EndpointScope, configured, globus::Transfer, repo},
        providers::ProviderKind,
        state::{AppState, app_state, require_user, session},
    };

    pub async fn caller() -> Result<(AppState, i64), AppError> {
        let state = app_state()?;
        let user = require_user(&state, &session().await?).await?;
        Ok((state, user.id))
    }

    pub async fn page(state: &AppState, user_id: i64, query: ActionsQuery) -> Result<ActionsOverview, AppError> {
        let rows = accounts::list_for_user(&state.db.pool, user_id)
            .await
            .map_err(AppError::internal)?;
        let accounts: Vec<ActionAccount> = rows
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
            .collect();
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
            let transfer = match Transfer::for_account(state, user_id, &account.id).await {
                Ok(transfer) => transfer,
                Err(problem) => {
                    page.endpoints = Some(Err(problem));
                    return Ok(page);
                }
            };
            let scope = query
                .scope
                .as_deref()
                .and_then(EndpointScope::parse)
                .unwrap_or_default();
            let transfer_account = account.id.clone();
            // The three reads run at once: one page load waits for the slowest, not their sum.
            let submission = async {
                let id = query.transfer.as_deref()?;
                let found = repo::find(&state.db.pool, user_id, id).await.ok()??;
                if found.account_id != transfer_account {
                    return None;
                }
                let task = match &found.task_id {
                    Some(task_id) => Some(transfer.task(task_id).await),
                    None => None,
                };
                Some((found, task))
            };
            let (endpoints, tasks, submission) = tokio::join!(
                transfer.endpoint_search(scope, query.q.as_deref().unwrap_or(""), query.offset.unwrap_or(0)),
                transfer.tasks(10),
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
                let result = configured::run(state, user_id, &account.id, name, &query.params).await;
                page.result = Some((name.clone(), result));
            } else {
                page.not_run = Some((name.clone(), query.params.clone()));
            }
        }
        Ok(page)
    }
}
