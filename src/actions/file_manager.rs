//! The file manager's server functions (`/transfer` and its task pages): pick a collection per side, browse its
//! folders, review the selection, start the transfer, follow and cancel its task. Every page is server-rendered
//! from its URL (the collection, folder, sort, filter and page of each side, and the selection when reviewing), so
//! everything works with JavaScript off and a URL can be shared or reloaded. Each function authorizes from the
//! session and acts only with the caller's own accounts; the calls are [`super::service`]'s.

// A plain HTML form posts flat fields, so the start form's fields are the server function's arguments; the macro
// repeats them in the browser's stub, where an attribute on the function does not reach.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    ActionProblem, Endpoint, EndpointPage, FileEntry, FileKind, Listing, TaskDetail, TaskEvent, api::ActionAccount,
};
use crate::error::AppError;

/// Which side of the file manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    /// The prefix of this side's query parameters (`src_path`, `dst_filter`, …).
    pub fn key(self) -> &'static str {
        match self {
            Side::Source => "src",
            Side::Destination => "dst",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Side::Source => "From",
            Side::Destination => "To",
        }
    }
}

/// What one side's part of the URL asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneQuery {
    /// The chosen collection's id.
    pub collection: Option<String>,
    pub path: Option<String>,
    /// Show the picker although a collection is chosen ("Change collection").
    #[serde(default)]
    pub pick: bool,
    /// The picker's search text and scope.
    #[serde(default)]
    pub q: String,
    pub scope: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub offset: u32,
}

/// What the file manager's URL asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileManagerQuery {
    pub account: Option<String>,
    pub source: PaneQuery,
    pub destination: PaneQuery,
    /// Show the start form for these names of the source folder (a folder's ending in `/`).
    #[serde(default)]
    pub review: bool,
    #[serde(default)]
    pub selected: Vec<String>,
}

/// One side as the page shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneView {
    /// The chosen collection.
    pub collection: Option<Result<Endpoint, ActionProblem>>,
    /// The picker, when no collection is chosen or the user is changing it.
    pub picker: Option<Picker>,
    pub listing: Option<Result<Listing, ActionProblem>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picker {
    /// The collections this account last transferred with, latest first.
    pub recent: Vec<Endpoint>,
    pub results: Result<EndpointPage, ActionProblem>,
}

/// The selection, as the start form summarizes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub items: Vec<FileEntry>,
    pub files: u32,
    pub folders: u32,
    /// The files' bytes (a folder's size is known only once Globus has looked inside).
    pub bytes: u64,
    /// This review's own key: its form posted twice starts one transfer.
    pub form_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileManagerView {
    pub accounts: Vec<ActionAccount>,
    pub account: Option<ActionAccount>,
    pub source: PaneView,
    pub destination: PaneView,
    /// The start form, when the URL asks to review a selection: what was selected, or why it cannot start.
    pub review: Option<Result<Review, String>>,
}

/// A task page: the task, its progress and events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    pub account: ActionAccount,
    pub task: Result<TaskDetail, ActionProblem>,
    pub events: Option<Result<Vec<TaskEvent>, ActionProblem>>,
}

/// The task list page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TasksView {
    pub accounts: Vec<ActionAccount>,
    pub account: Option<ActionAccount>,
    pub tasks: Option<Result<Vec<TaskDetail>, ActionProblem>>,
}

#[server(endpoint = "file_manager_page")]
pub async fn file_manager_page(query: FileManagerQuery) -> Result<FileManagerView, AppError> {
    let (state, user) = super::api::server::caller().await?;
    server::page(&state, user, query).await
}

/// Starts the reviewed transfer (a plain form). Success goes to the new task's page; bad input back to the review
/// (`back`, one of our `/transfer?` URLs) with the field named; a problem after the submission was recorded (consent,
/// reconnect, the provider away) to the Actions page's retry of it, which reuses its `submission_id`.
#[server(endpoint = "file_manager_start")]
pub async fn start_transfer(
    account: String,
    back: String,
    source_endpoint: String,
    source_path: String,
    destination_endpoint: String,
    destination_path: String,
    #[server(default)] items: String,
    #[server(default)] label: String,
    #[server(default)] sync_level: String,
    #[server(default)] verify_checksum: Option<String>,
    #[server(default)] preserve_timestamp: Option<String>,
    #[server(default)] encrypt_data: Option<String>,
    #[server(default)] delete_destination_extra: Option<String>,
    #[server(default)] form_key: Option<String>,
) -> Result<Result<super::Submission, ActionProblem>, AppError> {
    let (state, user) = super::api::server::caller().await?;
    let form = super::TransferForm {
        account: account.clone(),
        source_endpoint,
        source_path,
        destination_endpoint,
        destination_path,
        label,
        sync_level,
        recursive: None,
        items: super::item_names(&items),
        options: super::TransferOptions {
            verify_checksum: verify_checksum.is_some(),
            preserve_timestamp: preserve_timestamp.is_some(),
            encrypt_data: encrypt_data.is_some(),
            delete_destination_extra: delete_destination_extra.is_some(),
        },
        form_key,
    };
    let result = server::start(&state, user, form).await;
    crate::state::redirect_plain_form(&server::after_start(&result, &account, &back));
    Ok(result)
}

#[server(endpoint = "transfer_tasks_page")]
pub async fn transfer_tasks_page(account: Option<String>) -> Result<TasksView, AppError> {
    let (state, user) = super::api::server::caller().await?;
    server::tasks(&state, user, account).await
}

#[server(endpoint = "transfer_task_page")]
pub async fn transfer_task_page(account: String, task_id: String) -> Result<TaskView, AppError> {
    let (state, user) = super::api::server::caller().await?;
    server::task(&state, user, &account, &task_id).await
}

/// The summary of a selection: "3 folders, 12 files, 4.2 GB".
pub fn selection_words(review: &Review, bytes: impl Fn(u64) -> String) -> String {
    let count = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if review.folders > 0 {
        parts.push(count(review.folders, "folder", "folders"));
    }
    if review.files > 0 {
        parts.push(count(review.files, "file", "files"));
        parts.push(bytes(review.bytes));
    }
    parts.join(", ")
}

impl FileEntry {
    /// The name a transfer item carries: a folder's ends in `/`.
    pub fn item_name(&self) -> String {
        match self.kind {
            FileKind::Dir => format!("{}/", self.name),
            _ => self.name.clone(),
        }
    }
}

#[cfg(feature = "ssr")]
pub(crate) mod server {
    use super::*;
    use crate::{
        actions::{
            EndpointScope, LS_PAGE, ListingQuery, SortKey, Submission, TransferForm, repo,
            service::{self, GlobusAction, RECENT_TASKS},
        },
        db::now_ms,
        notice::Notice,
        query::encode,
        state::AppState,
    };

    /// The user's Globus accounts, and the one the page is about (the query's, else the first).
    async fn globus_accounts(
        state: &AppState,
        user_id: i64,
        wanted: Option<&str>,
    ) -> Result<(Vec<ActionAccount>, Option<ActionAccount>), AppError> {
        let accounts: Vec<ActionAccount> = crate::actions::api::server::accounts(state, user_id)
            .await?
            .into_iter()
            .filter(|a| a.is_globus)
            .collect();
        let account = wanted
            .and_then(|id| accounts.iter().find(|a| a.id == id))
            .or(accounts.first())
            .cloned();
        Ok((accounts, account))
    }

    pub async fn page(state: &AppState, user_id: i64, query: FileManagerQuery) -> Result<FileManagerView, AppError> {
        let (accounts, account) = globus_accounts(state, user_id, query.account.as_deref()).await?;
        let Some(account) = account else {
            return Ok(FileManagerView {
                accounts,
                account: None,
                source: PaneView::default(),
                destination: PaneView::default(),
                review: None,
            });
        };
        // The two sides load at once: a page waits for the slower, not their sum. Boxed: the six calls' futures
        // side by side would be too large for a worker's stack in a debug build.
        let (source, destination) = tokio::join!(
            Box::pin(pane(state, user_id, &account.id, &query.source)),
            Box::pin(pane(state, user_id, &account.id, &query.destination)),
        );
        let review = query.review.then(|| review(&query, &source, &destination));
        Ok(FileManagerView {
            accounts,
            account: Some(account),
            source,
            destination,
            review,
        })
    }

    async fn pane(state: &AppState, user_id: i64, account: &str, query: &PaneQuery) -> PaneView {
        let collection = query.collection.as_deref().filter(|c| !c.trim().is_empty());
        let picking = collection.is_none() || query.pick;
        let picker = async {
            if !picking {
                return None;
            }
            let text = query.q.trim().to_owned();
            // Search text searches every collection the user can see; without it, the scope asked for (the
            // user's own by default).
            let scope = match query.scope.as_deref().and_then(EndpointScope::parse) {
                Some(scope) => scope,
                None if text.is_empty() => EndpointScope::MyEndpoints,
                None => EndpointScope::All,
            };
            let (recent, results) = tokio::join!(
                repo::recent_collections(&state.db.pool, user_id, account),
                Box::pin(service::run(
                    state,
                    user_id,
                    account,
                    GlobusAction::EndpointSearch { scope, text, offset: 0 }.into()
                )),
            );
            Some(Picker {
                recent: recent.unwrap_or_else(|e| {
                    tracing::warn!("recent collections could not be read: {e}");
                    Vec::new()
                }),
                results,
            })
        };
        let chosen = async {
            let id = collection?;
            let listing = ListingQuery {
                endpoint_id: id.to_owned(),
                path: query
                    .path
                    .clone()
                    .filter(|p| !p.trim().is_empty())
                    .unwrap_or_else(|| "/~/".into()),
                sort: query.sort.as_deref().and_then(SortKey::parse).unwrap_or_default(),
                descending: query.order.as_deref() == Some("desc"),
                filter: query.filter.clone(),
                offset: query.offset,
                limit: LS_PAGE,
            };
            let (collection, listing) = tokio::join!(
                Box::pin(service::run(
                    state,
                    user_id,
                    account,
                    GlobusAction::Endpoint {
                        endpoint_id: id.to_owned()
                    }
                    .into()
                )),
                async {
                    if picking {
                        None
                    } else {
                        Some(Box::pin(service::run(state, user_id, account, GlobusAction::Ls(listing).into())).await)
                    }
                }
            );
            Some((collection, listing))
        };
        let (picker, chosen) = tokio::join!(picker, chosen);
        let (collection, listing) = match chosen {
            Some((collection, listing)) => (Some(collection), listing),
            None => (None, None),
        };
        PaneView {
            collection,
            picker,
            listing,
        }
    }

    /// The selected names, found in the source folder's page that showed them.
    fn review(query: &FileManagerQuery, source: &PaneView, destination: &PaneView) -> Result<Review, String> {
        let Some(Ok(listing)) = &source.listing else {
            return Err("Choose a source collection and open the folder to copy from.".into());
        };
        if !matches!(destination.listing, Some(Ok(_))) {
            return Err("Choose a destination collection and open the folder to copy into.".into());
        }
        if query.selected.is_empty() {
            return Err("Select files or folders to transfer first: tick them in the source folder.".into());
        }
        let items: Vec<FileEntry> = query
            .selected
            .iter()
            .filter_map(|name| {
                listing
                    .entries
                    .iter()
                    .find(|e| e.item_name() == *name || e.name == *name)
                    .cloned()
            })
            .collect();
        if items.is_empty() {
            return Err("The selected names are no longer in this folder: select again.".into());
        }
        let files = items.iter().filter(|e| e.kind != FileKind::Dir).count() as u32;
        Ok(Review {
            form_key: uuid::Uuid::new_v4().to_string(),
            files,
            folders: items.len() as u32 - files,
            bytes: items.iter().filter(|e| e.kind != FileKind::Dir).map(|e| e.size).sum(),
            items,
        })
    }

    /// Starts a transfer and remembers both collections as recently used.
    pub async fn start(state: &AppState, user_id: i64, form: TransferForm) -> Result<Submission, ActionProblem> {
        let account = form.account.clone();
        let (source, destination) = (form.source_endpoint.clone(), form.destination_endpoint.clone());
        let submission: Submission = service::run(
            state,
            user_id,
            &account,
            GlobusAction::Transfer { form, resume: None }.into(),
        )
        .await?;
        let look_up = |id: String| {
            service::run::<Endpoint>(
                state,
                user_id,
                &account,
                GlobusAction::Endpoint { endpoint_id: id }.into(),
            )
        };
        let (source, destination) = tokio::join!(look_up(source), look_up(destination));
        let used: Vec<&Endpoint> = [&source, &destination]
            .into_iter()
            .filter_map(|r| r.as_ref().ok())
            .collect();
        if let Err(e) = repo::remember_collections(&state.db.pool, user_id, &account, &used, now_ms()).await {
            tracing::warn!("recent collections could not be written: {e}");
        }
        Ok(submission)
    }

    /// Where a plain-form start goes next.
    pub fn after_start(result: &Result<Submission, ActionProblem>, account: &str, back: &str) -> String {
        // Only our own page: `back` comes from the form.
        // Only our own page (`back` comes from the form), and only characters a Location header carries as they are.
        let back = if back.starts_with("/transfer?") && back.bytes().all(|b| b.is_ascii_graphic()) {
            back.split('#').next().unwrap_or(back)
        } else {
            "/transfer?"
        };
        match result {
            Ok(submission) => format!(
                "/transfer/tasks/{}?account={}&started=1",
                encode(submission.task_id.as_deref().unwrap_or_default()),
                encode(account)
            ),
            Err(problem) if problem.pending_transfer().is_some() => crate::notice::transfer_page(problem, account),
            Err(ActionProblem::Invalid { field, .. }) => format!(
                "{back}&{}#review",
                Notice::TransferInvalid { field: field.clone() }.to_query()
            ),
            Err(_) => format!("{back}&{}#review", Notice::TransferNotSubmitted.to_query()),
        }
    }

    pub async fn tasks(state: &AppState, user_id: i64, wanted: Option<String>) -> Result<TasksView, AppError> {
        let (accounts, account) = globus_accounts(state, user_id, wanted.as_deref()).await?;
        let tasks = match &account {
            Some(account) => Some(
                service::run(
                    state,
                    user_id,
                    &account.id,
                    GlobusAction::Tasks {
                        limit: RECENT_TASKS * 2,
                    }
                    .into(),
                )
                .await,
            ),
            None => None,
        };
        Ok(TasksView {
            accounts,
            account,
            tasks,
        })
    }

    pub async fn task(state: &AppState, user_id: i64, account: &str, task_id: &str) -> Result<TaskView, AppError> {
        let (_, found) = globus_accounts(state, user_id, Some(account)).await?;
        let account = found.filter(|a| a.id == account).ok_or_else(|| AppError::NotFound {
            what: "Globus account".into(),
        })?;
        let (task, events) = tokio::join!(
            service::run::<TaskDetail>(
                state,
                user_id,
                &account.id,
                GlobusAction::Task {
                    task_id: task_id.to_owned()
                }
                .into()
            ),
            service::run::<Vec<TaskEvent>>(
                state,
                user_id,
                &account.id,
                GlobusAction::TaskEvents {
                    task_id: task_id.to_owned(),
                    limit: crate::actions::service::MAX_TASKS,
                }
                .into()
            ),
        );
        Ok(TaskView {
            account,
            task,
            events: Some(events),
        })
    }
}
