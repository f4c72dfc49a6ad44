//! The one way an action runs, for the Actions page's server functions ([`super::api`]) and the service API
//! (`service_api/actions.rs`) alike.
//!
//! [`Action`] names every action an account can take. The API's text parameters become one in [`Action::parse`],
//! the only place that reads them, so a parameter's rules and messages are written once; the page builds its
//! actions from typed form fields. [`run`] takes an action to the provider through `delegation` (bearer,
//! exactly-once refresh, failure states, audit) and gives back [`Done`], or the caller's own type of it.
//!
//! Adding a Globus action: a variant of [`GlobusAction`] with its name, its parameters and their documentation
//! ([`NAMES_DOC`], [`PARAMETERS_DOC`]: a test checks that every name is there) here, its call on [`Transfer`], and
//! its control on the page if it has one. The service API runs it without a change.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    ActionProblem, Cancellation, Endpoint, EndpointPage, EndpointScope, GLOBUS_ACTIONS, LS_MAX, LS_PAGE, Listing,
    ListingQuery, SortKey, Submission, Task, TaskDetail, TaskEvent, TransferForm, TransferOptions, configured,
    globus::{Transfer, internal},
    item_names,
};
use crate::{delegation::ApiResponse, state::AppState};

/// How many recent tasks `tasks` lists unless asked for another number (the page shows this many).
pub const RECENT_TASKS: u32 = 10;
/// The most `tasks` lists at once.
pub const MAX_TASKS: u32 = 100;

/// The service API's documentation of the action names (its OpenAPI document shows it; a test keeps it whole).
pub const NAMES_DOC: &str = "`endpoint_search`, `endpoint`, `ls`, `tasks`, `task`, `task_events`, `transfer`, `cancel` \
                             (Globus accounts), or a configured action's name";

/// The service API's documentation of the actions' parameters, as [`Action::parse`] reads them.
pub const PARAMETERS_DOC: &str = "The action's parameters, as strings. `endpoint_search`: `scope` (`my-endpoints`, \
    `shared-with-me`, `administered-by-me`, `recently-used`, `all`), `q`, `offset`. `endpoint`: `endpoint_id`. \
    `ls` (one page of a folder, folders first): `endpoint_id`, `path` (default `/~/`), `sort` (`name`, `size`, \
    `modified`), `order` (`asc`, `desc`), `filter` (names containing it; `*` and `?` are wildcards), `offset`, \
    `limit` (1–1000, default 100). `tasks`: `limit` (1–100, default 10). `task`: `task_id`. `task_events` (newest first): `task_id`, `limit` \
    (1–100, default 10). `transfer`: `source_endpoint`, `source_path`, \
    `destination_endpoint`, `destination_path`, `label`, `sync_level`, `recursive` (`true`), `items` (names \
    in the source folder to copy into the destination folder, one per line, a folder's ending in `/`), \
    `verify_checksum`, `preserve_timestamp`, `encrypt_data`, `delete_destination_extra` (`true`; all off by \
    default), `idempotency_key` (up to 64 letters, digits and dashes: the same key again answers with the same \
    submission, so a resent request starts one task), or `resume` (a submission's id, to retry it). `cancel`: `task_id`. A Globus action refuses a parameter it does not take. \
    Configured actions: their declared parameters.";

/// An action, checked and ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Boxed: a transfer's form is large, the other actions small.
    Globus(Box<GlobusAction>),
    /// One of the provider's configured read actions (`[[providers.<id>.actions]]`); its parameters are checked
    /// against the declaration when it runs.
    Configured {
        name: String,
        params: BTreeMap<String, String>,
    },
}

/// Globus Transfer, for any account of a Globus provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobusAction {
    /// `endpoint_search`: one page of endpoints in `scope` matching `text`.
    EndpointSearch {
        scope: EndpointScope,
        text: String,
        offset: u32,
    },
    /// `endpoint`: one endpoint's document.
    Endpoint { endpoint_id: String },
    /// `ls`: one page of a folder.
    Ls(ListingQuery),
    /// `tasks`: the most recent tasks, newest first.
    Tasks { limit: u32 },
    /// `task`: one task's status.
    Task { task_id: String },
    /// `task_events`: what happened to a task, newest first.
    TaskEvents { task_id: String, limit: u32 },
    /// `transfer`: submit `form`, or retry the recorded submission `resume` with its own `submission_id`.
    Transfer { form: TransferForm, resume: Option<String> },
    /// `cancel`: cancel a task that has not finished.
    Cancel { task_id: String },
}

impl From<GlobusAction> for Action {
    fn from(action: GlobusAction) -> Self {
        Action::Globus(Box::new(action))
    }
}

/// What an action gave back.
#[derive(Debug)]
pub enum Done {
    Endpoints(EndpointPage),
    Endpoint(Endpoint),
    Listing(Listing),
    Tasks(Vec<TaskDetail>),
    Task(TaskDetail),
    TaskEvents(Vec<TaskEvent>),
    Submission(Submission),
    Cancellation(Cancellation),
    /// A configured action's successful answer, as the provider sent it.
    Configured(ApiResponse),
}

impl Done {
    /// The result as the service API answers it: onbehalf's typed documents, or the provider's JSON as it is
    /// (anything else as text).
    pub fn into_json(self) -> Result<Value, ActionProblem> {
        let json = match self {
            Done::Endpoints(page) => serde_json::to_value(page),
            Done::Endpoint(endpoint) => serde_json::to_value(endpoint),
            Done::Listing(listing) => serde_json::to_value(listing),
            Done::Tasks(tasks) => serde_json::to_value(tasks),
            Done::Task(task) => serde_json::to_value(task),
            Done::TaskEvents(events) => serde_json::to_value(events),
            Done::Submission(submission) => serde_json::to_value(submission),
            Done::Cancellation(cancellation) => serde_json::to_value(cancellation),
            Done::Configured(response) => {
                return Ok(serde_json::from_slice(&response.body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&response.body).into_owned())));
            }
        };
        json.map_err(internal)
    }
}

/// A caller that knows which action it ran takes its result as that action's type.
pub trait Output: Sized {
    fn from_done(done: Done) -> Option<Self>;
}

impl Output for Done {
    fn from_done(done: Done) -> Option<Self> {
        Some(done)
    }
}

macro_rules! outputs {
    ($($variant:ident($type:ty)),* $(,)?) => {$(
        impl Output for $type {
            fn from_done(done: Done) -> Option<Self> {
                match done {
                    Done::$variant(value) => Some(value),
                    _ => None,
                }
            }
        }
    )*};
}

outputs!(
    Endpoints(EndpointPage),
    Endpoint(Endpoint),
    Listing(Listing),
    Tasks(Vec<TaskDetail>),
    Task(TaskDetail),
    TaskEvents(Vec<TaskEvent>),
    Submission(Submission),
    Cancellation(Cancellation),
    Configured(ApiResponse),
);

/// A caller that shows only the status and counts (the live status, the Actions page) takes a task as [`Task`].
impl Output for Task {
    fn from_done(done: Done) -> Option<Self> {
        TaskDetail::from_done(done).map(|detail| detail.task)
    }
}

impl Output for Vec<Task> {
    fn from_done(done: Done) -> Option<Self> {
        Vec::<TaskDetail>::from_done(done).map(|tasks| tasks.into_iter().map(|detail| detail.task).collect())
    }
}

impl Action {
    /// The action `name` with text parameters, as the service API receives them. On a Globus account the names of
    /// [`GLOBUS_ACTIONS`] are Globus actions, which refuse parameters they do not take; every other name is a
    /// configured action.
    pub fn parse(name: &str, params: &BTreeMap<String, String>, globus: bool) -> Result<Action, ActionProblem> {
        if !(globus && GLOBUS_ACTIONS.contains(&name)) {
            return Ok(Action::Configured {
                name: name.to_owned(),
                params: params.clone(),
            });
        }
        let text = |field: &str| params.get(field).map(|v| v.trim().to_owned()).unwrap_or_default();
        let takes = |fields: &[&str]| match params.keys().find(|k| !fields.contains(&k.as_str())) {
            Some(unknown) => Err(ActionProblem::invalid(
                unknown,
                format!("“{name}” has no parameter “{unknown}”; it takes: {}.", list(fields)),
            )),
            None => Ok(()),
        };
        let action = match name {
            "endpoint_search" => {
                takes(&["scope", "q", "offset"])?;
                GlobusAction::EndpointSearch {
                    scope: match text("scope") {
                        s if s.is_empty() => EndpointScope::default(),
                        s => EndpointScope::parse(&s).ok_or_else(|| {
                            ActionProblem::invalid(
                                "scope",
                                format!(
                                    "The endpoint filter is one of {}.",
                                    list(&EndpointScope::ALL.map(EndpointScope::as_str))
                                ),
                            )
                        })?,
                    },
                    text: text("q"),
                    offset: number(&text("offset"), "offset", 0, u32::MAX)?.unwrap_or(0),
                }
            }
            "endpoint" => {
                takes(&["endpoint_id"])?;
                GlobusAction::Endpoint {
                    endpoint_id: text("endpoint_id"),
                }
            }
            "ls" => {
                takes(&["endpoint_id", "path", "sort", "order", "filter", "offset", "limit"])?;
                GlobusAction::Ls(ListingQuery {
                    endpoint_id: text("endpoint_id"),
                    path: Some(text("path"))
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "/~/".into()),
                    sort: match text("sort") {
                        s if s.is_empty() => SortKey::default(),
                        s => SortKey::parse(&s).ok_or_else(|| {
                            ActionProblem::invalid(
                                "sort",
                                format!("“sort” is one of {}.", list(&SortKey::ALL.map(SortKey::as_str))),
                            )
                        })?,
                    },
                    descending: match text("order").as_str() {
                        "" | "asc" => false,
                        "desc" => true,
                        _ => return Err(ActionProblem::invalid("order", "“order” is “asc” or “desc”.")),
                    },
                    // Not trimmed: a filter's spaces are part of the names it finds.
                    filter: params.get("filter").cloned().unwrap_or_default(),
                    offset: number(&text("offset"), "offset", 0, u32::MAX)?.unwrap_or(0),
                    limit: number(&text("limit"), "limit", 1, LS_MAX)?.unwrap_or(LS_PAGE),
                })
            }
            "tasks" => {
                takes(&["limit"])?;
                GlobusAction::Tasks {
                    limit: number(&text("limit"), "limit", 1, MAX_TASKS)?.unwrap_or(RECENT_TASKS),
                }
            }
            "task" => {
                takes(&["task_id"])?;
                GlobusAction::Task {
                    task_id: text("task_id"),
                }
            }
            "task_events" => {
                takes(&["task_id", "limit"])?;
                GlobusAction::TaskEvents {
                    task_id: text("task_id"),
                    limit: number(&text("limit"), "limit", 1, MAX_TASKS)?.unwrap_or(RECENT_TASKS),
                }
            }
            "cancel" => {
                takes(&["task_id"])?;
                GlobusAction::Cancel {
                    task_id: text("task_id"),
                }
            }
            "transfer" => {
                takes(&[
                    "source_endpoint",
                    "source_path",
                    "destination_endpoint",
                    "destination_path",
                    "label",
                    "sync_level",
                    "recursive",
                    "items",
                    "verify_checksum",
                    "preserve_timestamp",
                    "encrypt_data",
                    "delete_destination_extra",
                    "idempotency_key",
                    "resume",
                ])?;
                let flag = |field: &str| match text(field).as_str() {
                    "" | "false" => Ok(false),
                    "true" => Ok(true),
                    _ => Err(ActionProblem::invalid(
                        field,
                        format!("“{field}” is “true” or “false”."),
                    )),
                };
                GlobusAction::Transfer {
                    form: TransferForm {
                        account: String::new(),
                        source_endpoint: text("source_endpoint"),
                        source_path: text("source_path"),
                        destination_endpoint: text("destination_endpoint"),
                        destination_path: text("destination_path"),
                        label: text("label"),
                        sync_level: text("sync_level"),
                        recursive: matches!(text("recursive").as_str(), "true" | "on").then(|| "on".to_owned()),
                        items: params.get("items").map(|names| item_names(names)).unwrap_or_default(),
                        options: TransferOptions {
                            verify_checksum: flag("verify_checksum")?,
                            preserve_timestamp: flag("preserve_timestamp")?,
                            encrypt_data: flag("encrypt_data")?,
                            delete_destination_extra: flag("delete_destination_extra")?,
                        },
                        form_key: Some(text("idempotency_key")).filter(|k| !k.is_empty()),
                    },
                    resume: Some(text("resume")).filter(|r| !r.is_empty()),
                }
            }
            other => {
                return Err(internal(format!(
                    "the Globus action {other:?} has no parameters' rules"
                )));
            }
        };
        Ok(Action::Globus(Box::new(action)))
    }
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("“{n}”")).collect::<Vec<_>>().join(", ")
}

/// An optional whole number in `min..=max`.
fn number(value: &str, field: &str, min: u32, max: u32) -> Result<Option<u32>, ActionProblem> {
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ if max == u32::MAX => Err(ActionProblem::invalid(
            field,
            format!("“{field}” is a whole number from {min}."),
        )),
        _ => Err(ActionProblem::invalid(
            field,
            format!("“{field}” is a whole number from {min} to {max}."),
        )),
    }
}

/// Runs `action` as the user's account `account_id`, giving back its result as `T` ([`Done`] takes any).
pub async fn run<T: Output>(
    state: &AppState,
    user_id: i64,
    account_id: &str,
    action: Action,
) -> Result<T, ActionProblem> {
    let done = match action {
        Action::Configured { name, params } => {
            Done::Configured(configured::fetch(state, user_id, account_id, &name, &params).await?)
        }
        Action::Globus(action) => {
            let mut action = *action;
            if let GlobusAction::Transfer { form, .. } = &mut action {
                form.account = account_id.to_owned();
            }
            let transfer = Transfer::for_account(state, user_id, account_id).await?;
            run_globus(&transfer, action).await?
        }
    };
    T::from_done(done).ok_or_else(|| internal("an action's result was taken as another action's"))
}

async fn run_globus(transfer: &Transfer<'_>, action: GlobusAction) -> Result<Done, ActionProblem> {
    Ok(match action {
        GlobusAction::EndpointSearch { scope, text, offset } => {
            Done::Endpoints(transfer.endpoint_search(scope, &text, offset).await?)
        }
        GlobusAction::Endpoint { endpoint_id } => Done::Endpoint(transfer.endpoint(&endpoint_id).await?),
        GlobusAction::Ls(query) => Done::Listing(transfer.ls(&query).await?),
        GlobusAction::Tasks { limit } => Done::Tasks(transfer.tasks(limit).await?),
        GlobusAction::Task { task_id } => Done::Task(transfer.task(&task_id).await?),
        GlobusAction::TaskEvents { task_id, limit } => Done::TaskEvents(transfer.task_events(&task_id, limit).await?),
        GlobusAction::Transfer { form, resume } => Done::Submission(transfer.submit(&form, resume.as_deref()).await?),
        GlobusAction::Cancel { task_id } => Done::Cancellation(transfer.cancel(&task_id).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn field_of(result: Result<Action, ActionProblem>) -> String {
        match result {
            Err(ActionProblem::Invalid { field, .. }) => field,
            other => panic!("expected a field's problem, got {other:?}"),
        }
    }

    #[test]
    fn globus_names_parse_with_their_parameters() {
        assert_eq!(
            Action::parse(
                "endpoint_search",
                &params(&[("scope", "all"), ("q", " demo "), ("offset", "25")]),
                true
            ),
            Ok(GlobusAction::EndpointSearch {
                scope: EndpointScope::All,
                text: "demo".into(),
                offset: 25
            }
            .into())
        );
        assert_eq!(
            Action::parse("tasks", &params(&[]), true),
            Ok(GlobusAction::Tasks { limit: RECENT_TASKS }.into())
        );
        assert_eq!(
            Action::parse("cancel", &params(&[("task_id", "t")]), true),
            Ok(GlobusAction::Cancel { task_id: "t".into() }.into())
        );
        let Ok(Action::Globus(action)) = Action::parse(
            "transfer",
            &params(&[("source_path", "/a"), ("recursive", "true"), ("resume", "")]),
            true,
        ) else {
            panic!("transfer did not parse");
        };
        let GlobusAction::Transfer { form, resume } = *action else {
            panic!("transfer parsed as another action");
        };
        assert_eq!(
            (form.source_path.as_str(), form.recursive.as_deref(), resume),
            ("/a", Some("on"), None)
        );
    }

    #[test]
    fn every_globus_name_parses_and_the_rest_are_configured() {
        for name in GLOBUS_ACTIONS {
            assert!(
                matches!(Action::parse(name, &params(&[]), true), Ok(Action::Globus(_))),
                "{name}"
            );
            // Another provider's action may have a Globus action's name.
            assert!(
                matches!(Action::parse(name, &params(&[]), false), Ok(Action::Configured { .. })),
                "{name}"
            );
        }
        assert!(matches!(
            Action::parse("whoami", &params(&[("x", "1")]), true),
            Ok(Action::Configured { .. })
        ));
    }

    #[test]
    fn the_api_documentation_names_every_action() {
        for name in GLOBUS_ACTIONS {
            let named = format!("`{name}`");
            assert!(NAMES_DOC.contains(&named), "{name}");
            assert!(PARAMETERS_DOC.contains(&named), "{name}");
        }
    }

    #[test]
    fn bad_parameters_name_their_field() {
        assert_eq!(
            field_of(Action::parse("task", &params(&[("taskid", "t")]), true)),
            "taskid"
        );
        assert_eq!(
            field_of(Action::parse("endpoint_search", &params(&[("scope", "mine")]), true)),
            "scope"
        );
        assert_eq!(
            field_of(Action::parse("endpoint_search", &params(&[("offset", "-1")]), true)),
            "offset"
        );
        for limit in ["0", "101", "ten"] {
            assert_eq!(
                field_of(Action::parse("tasks", &params(&[("limit", limit)]), true)),
                "limit"
            );
        }
        let Err(problem) = Action::parse("cancel", &params(&[("id", "t")]), true) else {
            panic!("an unknown parameter was taken");
        };
        assert_eq!(
            problem.message(),
            "“cancel” has no parameter “id”; it takes: “task_id”."
        );
    }
}
