//! Actions taken for users with their linked accounts: Globus Transfer (typed) and the configured read actions of
//! any provider. This module holds the wire types (compiled for the browser too). [`service`] is the one way an
//! action runs, for the pages' server functions ([`api`]) and the service API alike; the calls themselves are in
//! [`globus`] and [`configured`].
//!
//! Every call goes through `delegation` (one internal API: bearer, exactly-once refresh, failure states, audit).
//! A failure the user can fix comes back as an [`ActionProblem`] the page turns into the action that fixes it.

pub mod api;
#[cfg(feature = "ssr")]
pub mod configured;
pub mod file_manager;
#[cfg(feature = "ssr")]
pub mod globus;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod service;

use serde::{Deserialize, Serialize};

/// The actions every Globus account has (the demo provider's too), by their names in the service API; any other
/// name is one of the provider's configured actions, and a configured action of a Globus provider may not take one
/// of these names (`providers::settings::validate`), which would hide it.
pub const GLOBUS_ACTIONS: [&str; 8] = [
    "endpoint_search",
    "endpoint",
    "ls",
    "tasks",
    "task",
    "task_events",
    "transfer",
    "cancel",
];

/// The resource server of Globus Transfer tokens.
pub const TRANSFER_RESOURCE_SERVER: &str = "transfer.api.globus.org";
/// Globus' `endpoint_search` never returns results past this offset + limit.
pub const SEARCH_CAP: u32 = 1000;
pub const SEARCH_PAGE: u32 = 25;
/// How many entries of a folder one page of the browser shows (and `ls` lists unless asked for another number).
pub const LS_PAGE: u32 = 100;
/// The most entries one `ls` lists.
pub const LS_MAX: u32 = 1000;

/// Why an action could not be done, as something the user can act on.
///
/// `transfer` names a transfer submission that was recorded before the problem happened: retry it (with the same
/// Globus `submission_id`, so at most one task starts) rather than submitting the form again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionProblem {
    /// Reconnect the account.
    NeedsReconnect {
        reason: String,
        #[serde(default)]
        transfer: Option<String>,
    },
    /// Grant access: the provider asked for these scopes.
    NeedsConsent {
        scopes: Vec<String>,
        #[serde(default)]
        transfer: Option<String>,
    },
    /// Retry after `retry_at` (Unix ms).
    ProviderUnavailable {
        retry_at: i64,
        #[serde(default)]
        transfer: Option<String>,
    },
    /// Bad input: which field, and what is wrong.
    Invalid { field: String, message: String },
    /// No such account (of yours), endpoint, task or action.
    NotFound {
        what: String,
        #[serde(default)]
        transfer: Option<String>,
    },
    /// The provider refused the request itself (its code and message).
    Upstream {
        status: u16,
        code: String,
        message: String,
        #[serde(default)]
        transfer: Option<String>,
    },
    /// Anything else: the provider did not answer, or an internal error (logged).
    Failed {
        message: String,
        #[serde(default)]
        transfer: Option<String>,
    },
}

impl ActionProblem {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ActionProblem::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        ActionProblem::Failed {
            message: message.into(),
            transfer: None,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ActionProblem::NotFound {
            what: what.into(),
            transfer: None,
        }
    }

    /// The same problem, naming the recorded submission to retry after it. Bad input is refused before anything
    /// is recorded, so it carries none.
    pub fn with_transfer(mut self, submission: &str) -> Self {
        match &mut self {
            ActionProblem::NeedsReconnect { transfer, .. }
            | ActionProblem::NeedsConsent { transfer, .. }
            | ActionProblem::ProviderUnavailable { transfer, .. }
            | ActionProblem::NotFound { transfer, .. }
            | ActionProblem::Upstream { transfer, .. }
            | ActionProblem::Failed { transfer, .. } => *transfer = Some(submission.to_owned()),
            ActionProblem::Invalid { .. } => {}
        }
        self
    }

    /// The recorded submission waiting for this problem's fix, to retry after it.
    pub fn pending_transfer(&self) -> Option<&str> {
        match self {
            ActionProblem::NeedsReconnect { transfer, .. }
            | ActionProblem::NeedsConsent { transfer, .. }
            | ActionProblem::ProviderUnavailable { transfer, .. }
            | ActionProblem::NotFound { transfer, .. }
            | ActionProblem::Upstream { transfer, .. }
            | ActionProblem::Failed { transfer, .. } => transfer.as_deref(),
            ActionProblem::Invalid { .. } => None,
        }
    }

    /// Whether the fix is the user's, at the provider (Reconnect, Grant access).
    pub fn needs_the_user(&self) -> bool {
        matches!(
            self,
            ActionProblem::NeedsReconnect { .. } | ActionProblem::NeedsConsent { .. }
        )
    }

    /// One sentence for the page.
    pub fn message(&self) -> String {
        match self {
            ActionProblem::NeedsReconnect { reason, .. } => reason.clone(),
            ActionProblem::NeedsConsent { .. } => {
                "The provider needs your consent for more access before this can be done.".to_owned()
            }
            ActionProblem::ProviderUnavailable { .. } => {
                "The provider is not answering right now; onbehalf will not retry before the time shown.".to_owned()
            }
            ActionProblem::Invalid { message, .. } => message.clone(),
            ActionProblem::NotFound { what, .. } => format!("No such {what}."),
            ActionProblem::Upstream { code, message, .. } => format!("The provider refused: {message} ({code})."),
            ActionProblem::Failed { message, .. } => message.clone(),
        }
    }
}

/// `endpoint_search`'s `filter_scope` values offered to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EndpointScope {
    #[default]
    MyEndpoints,
    AdministeredByMe,
    SharedWithMe,
    RecentlyUsed,
    /// Every endpoint visible to the user; needs search text.
    All,
}

impl EndpointScope {
    pub const ALL: [EndpointScope; 5] = [
        EndpointScope::MyEndpoints,
        EndpointScope::AdministeredByMe,
        EndpointScope::SharedWithMe,
        EndpointScope::RecentlyUsed,
        EndpointScope::All,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointScope::MyEndpoints => "my-endpoints",
            EndpointScope::AdministeredByMe => "administered-by-me",
            EndpointScope::SharedWithMe => "shared-with-me",
            EndpointScope::RecentlyUsed => "recently-used",
            EndpointScope::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            EndpointScope::MyEndpoints => "My endpoints",
            EndpointScope::AdministeredByMe => "Administered by me",
            EndpointScope::SharedWithMe => "Shared with me",
            EndpointScope::RecentlyUsed => "Recently used",
            EndpointScope::All => "All (search)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub display_name: String,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub entity_type: Option<String>,
    pub organization: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointPage {
    pub endpoints: Vec<Endpoint>,
    pub offset: u32,
    pub limit: u32,
    pub has_next_page: bool,
    /// The next page would pass Globus' 1,000-result cap: refine the search to see more.
    pub at_cap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub task_id: String,
    pub label: Option<String>,
    pub status: String,
    pub source: String,
    pub destination: String,
    pub request_time: String,
    pub completion_time: Option<String>,
    pub files: u64,
    pub files_transferred: u64,
    pub bytes_transferred: u64,
}

/// A task with what its page shows beyond [`Task`] (which the live status island reads, so it stays small): the
/// service API answers it flat, as one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: Task,
    pub bytes_per_second: u64,
    pub files_skipped: u64,
    pub faults: u64,
    /// Why it failed, in the provider's words (`fatal_error`).
    pub fatal_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncLevel {
    Exists,
    Size,
    Mtime,
    Checksum,
}

impl SyncLevel {
    pub const ALL: [SyncLevel; 4] = [
        SyncLevel::Exists,
        SyncLevel::Size,
        SyncLevel::Mtime,
        SyncLevel::Checksum,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncLevel::Exists => "exists",
            SyncLevel::Size => "size",
            SyncLevel::Mtime => "mtime",
            SyncLevel::Checksum => "checksum",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.as_str() == s)
    }
}

/// The rule a field of a Globus action breaks, in the words the user reads: the validator's message
/// (`globus::validate`), and the page's after a plain-form post, which carries only the field's name.
pub fn field_rule(field: &str) -> Option<&'static str> {
    Some(match field {
        "source_endpoint" | "destination_endpoint" | "endpoint_id" => {
            "An endpoint id is a UUID (like 4f8e…-…): copy it from the endpoints table."
        }
        "task_id" => "A task id is a UUID (like 4f8e…-…).",
        "source_path" | "destination_path" | "path" => {
            "A path starts with / or ~/, has no “..” and no control characters, and at most 4,096 bytes."
        }
        "items" => "Pick at most 1,000 files or folders of the source folder, by their names.",
        "filter" => "A filter has at most 100 characters, no / and no control characters (* and ? are wildcards).",
        "delete_destination_extra" => {
            "Deleting what the source does not have needs a sync level: choose one, or leave it off."
        }
        "idempotency_key" => {
            "This form (or key) already started a transfer with other details: start again from a new review, or \
             use another key."
        }
        "label" => "A label has at most 128 letters, digits, spaces and - _ . , ( ).",
        "sync_level" => "Sync level is one of exists, size, mtime, checksum (or none).",
        _ => return None,
    })
}

/// What a folder entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Dir,
    File,
    /// A symbolic link (Transfer lists one as `link` where the collection reports them).
    Link,
}

/// One entry of a folder, as `ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// As Transfer writes it: `2023-05-20 04:37:33+00:00`.
    pub last_modified: String,
    pub permissions: Option<String>,
    pub link_target: Option<String>,
}

/// How a folder listing is ordered (folders always first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SortKey {
    #[default]
    Name,
    Size,
    Modified,
}

impl SortKey {
    pub const ALL: [SortKey; 3] = [SortKey::Name, SortKey::Size, SortKey::Modified];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Modified => "modified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.as_str() == s)
    }
}

/// Which page of which folder `ls` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListingQuery {
    pub endpoint_id: String,
    pub path: String,
    pub sort: SortKey,
    pub descending: bool,
    /// Names containing this text (`*` and `?` are wildcards); empty: every entry.
    pub filter: String,
    pub offset: u32,
    pub limit: u32,
}

/// One page of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub endpoint_id: String,
    /// The folder, as the collection names it (`/~/data/`).
    pub path: String,
    pub entries: Vec<FileEntry>,
    pub offset: u32,
    pub limit: u32,
    /// Entries in the folder that pass the filter, on every page.
    pub total: u32,
}

/// Transfer items as the start form and the service API send them: names one per line, blank lines skipped. Not
/// trimmed: a name may start or end with a space.
pub fn item_names(lines: &str) -> Vec<String> {
    lines
        .lines()
        .filter(|name| !name.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// `path` as a folder: ending in `/`.
pub fn folder_path(path: &str) -> String {
    if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

/// One event of a task (`event_list`), newest first: what happened, in the provider's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    pub code: String,
    pub description: String,
    pub details: String,
    pub is_error: bool,
    pub time: String,
}

/// What cancelling a task did: `cancelled`, or the task had already finished (Globus answers `TaskComplete`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub task_id: String,
    pub cancelled: bool,
    /// The provider's own words.
    pub message: String,
}

/// A transfer as the user asked for it (validated by `globus::validate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TransferForm {
    pub account: String,
    pub source_endpoint: String,
    pub source_path: String,
    pub destination_endpoint: String,
    pub destination_path: String,
    #[serde(default)]
    pub label: String,
    /// Empty, or a [`SyncLevel`].
    #[serde(default)]
    pub sync_level: String,
    /// `"on"` when the checkbox is ticked (plain forms send nothing otherwise).
    #[serde(default)]
    pub recursive: Option<String>,
    /// Names of entries of the source folder to copy into the destination folder, a folder's ending in `/`
    /// (copied recursively); empty: the source path itself is copied to the destination path.
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default)]
    pub options: TransferOptions,
    /// The key of the form it came from (one per rendered review; the service API's `idempotency_key`): the same
    /// key again finds this submission, so a double click or a resent request starts one task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_key: Option<String>,
}

/// A transfer's options, all off unless asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TransferOptions {
    /// Compare checksums after copying each file.
    #[serde(default)]
    pub verify_checksum: bool,
    /// Give copied files the source's modification times.
    #[serde(default)]
    pub preserve_timestamp: bool,
    /// Encrypt the data on the wire.
    #[serde(default)]
    pub encrypt_data: bool,
    /// Delete files in the destination folder that are not in the source: off unless asked for, and only with a
    /// sync level.
    #[serde(default)]
    pub delete_destination_extra: bool,
}

/// A transfer submission kept by onbehalf: its Globus `submission_id` is reused on every retry, so a retry after
/// consent (or after a lost answer) can never start a second task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub id: String,
    pub account_id: String,
    pub submission_id: String,
    pub form: TransferForm,
    pub status: String,
    pub task_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// What the Actions page's transfer form (an island) reads of a submission: not the form, which it has, so the
/// browser's bundle carries no decoder for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    /// The recorded submission's id.
    pub id: String,
    pub task_id: Option<String>,
    pub status: String,
}

impl From<&Submission> for Submitted {
    fn from(submission: &Submission) -> Self {
        Submitted {
            id: submission.id.clone(),
            task_id: submission.task_id.clone(),
            status: submission.status.clone(),
        }
    }
}

/// A configured read action as users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionView {
    pub provider: String,
    pub name: String,
    pub title: String,
    pub params: Vec<ActionParamView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionParamView {
    pub name: String,
    pub title: String,
    pub required: bool,
    pub default: Option<String>,
}

/// A configured action's answer: the upstream status and its JSON, pretty-printed (shown as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub status: u16,
    pub body: String,
}
