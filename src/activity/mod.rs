//! A user's own history in words: the Activity page and the service API's `events` read the audit trail
//! (`audit`) through [`service`], which turns each event into a sentence. The trail itself knows nothing of
//! pages; this module reads it.

pub mod api;
#[cfg(feature = "ssr")]
pub mod service;

use serde::{Deserialize, Serialize};

use crate::audit::Outcome;

/// A filter of the activity page: which kind of event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    #[default]
    All,
    Links,
    Refreshes,
    Problems,
    Actions,
    Disconnects,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 6] = [
        ActivityKind::All,
        ActivityKind::Links,
        ActivityKind::Refreshes,
        ActivityKind::Problems,
        ActivityKind::Actions,
        ActivityKind::Disconnects,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::All => "all",
            ActivityKind::Links => "links",
            ActivityKind::Refreshes => "refreshes",
            ActivityKind::Problems => "problems",
            ActivityKind::Actions => "actions",
            ActivityKind::Disconnects => "disconnects",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            ActivityKind::All => "Everything",
            ActivityKind::Links => "Links and reconnects",
            ActivityKind::Refreshes => "Token renewals",
            ActivityKind::Problems => "Failures",
            ActivityKind::Actions => "Actions taken for you",
            ActivityKind::Disconnects => "Disconnects",
        }
    }
}

/// One line of the user's own history, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub id: i64,
    pub at: i64,
    /// The audit action (`account_linked`, …).
    pub action: String,
    pub outcome: Outcome,
    pub provider_id: Option<String>,
    pub account_id: Option<String>,
    pub provider_name: Option<String>,
    pub account_label: Option<String>,
    pub summary: String,
}

/// A page of the activity list, newest first; `older` is the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityList {
    pub kind: ActivityKind,
    pub provider: Option<String>,
    pub entries: Vec<ActivityEntry>,
    pub older: Option<i64>,
    /// Whether this is not the first page (a "Newest" link).
    pub paged: bool,
    pub providers: Vec<crate::accounts::ProviderView>,
    pub now: i64,
}

/// The activity page's query: kind, provider and the keyset cursor, all in the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityQuery {
    pub kind: Option<String>,
    pub provider: Option<String>,
    /// Show events older than this id.
    pub before: Option<i64>,
}
