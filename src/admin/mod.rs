//! The admin area (role `admin`): every linked account across users, one account's tokens' metadata and history,
//! force disconnect, users disable / enable, the whole audit log with its export, and the webhook endpoints with their
//! deliveries.
//!
//! Every server function here and the export route begin with [`require_admin`]: anonymous callers get 401, signed-in
//! users who are not admins 403 (`tests/it/admin.rs` checks each one). The wire types below never carry a token value.
//!
//! This file holds the wire types the pages share and [`require_admin`]; `api.rs` the server functions, `service.rs`
//! the rules, `repo.rs` the SQL, `export/` the download route and its two formats.

pub mod api;
#[cfg(feature = "ssr")]
pub mod export;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
mod sql;

use serde::{Deserialize, Serialize};

use crate::{
    accounts::{AccountStatus, ProviderView},
    audit::Outcome,
    auth::Role,
    query::query_string,
};

/// Rows per page of every admin list.
pub const PAGE_SIZE: usize = 50;

/// The longest reason an admin can give for a forced disconnect (it is shown to the user).
pub const REASON_MAX_LEN: usize = 500;

/// The caller, if they are a signed-in admin: `NotSignedIn` (401) for visitors, `Forbidden` (403) for other users.
#[cfg(feature = "ssr")]
pub async fn require_admin(
    state: &crate::state::AppState,
    session: &tower_sessions::Session,
) -> Result<crate::auth::service::User, crate::error::AppError> {
    let user = crate::state::require_user(state, session).await?;
    // A session opened from a platform's connect link is never an admin's, whoever its user is.
    if user.role != Role::Admin || user.connect.is_some() {
        tracing::warn!(user_id = user.id, "admin area refused: not an admin");
        return Err(crate::error::AppError::Forbidden);
    }
    Ok(user)
}

/// How the accounts list is ordered. Each order has one direction, the useful one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountSort {
    /// Newest links first.
    #[default]
    Created,
    /// Most recently used first; never used last.
    LastUsed,
    /// Soonest token expiry first; no expiry last.
    Expiry,
}

impl AccountSort {
    pub const ALL: [AccountSort; 3] = [AccountSort::Created, AccountSort::LastUsed, AccountSort::Expiry];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountSort::Created => "created",
            AccountSort::LastUsed => "last_used",
            AccountSort::Expiry => "expiry",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            AccountSort::Created => "Newest first",
            AccountSort::LastUsed => "Last used",
            AccountSort::Expiry => "Expiring soonest",
        }
    }
}

/// The accounts list's filters, order and cursor, as they are in the URL (every field optional, empty = any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountQuery {
    pub provider: Option<String>,
    pub status: Option<String>,
    /// The user: their email, or their numeric id.
    pub user: Option<String>,
    /// The linked identity: its subject, username or email at the provider (exact).
    pub identity: Option<String>,
    pub sort: Option<String>,
    /// Keyset cursor: the list continues after this row (opaque to the browser).
    pub after: Option<String>,
}

impl AccountQuery {
    /// The query string of this query (without the cursor unless given), for links.
    pub fn to_query_string(&self, after: Option<&str>) -> String {
        let pairs = [
            ("provider", self.provider.as_deref()),
            ("status", self.status.as_deref()),
            ("user", self.user.as_deref()),
            ("identity", self.identity.as_deref()),
            ("sort", self.sort.as_deref()),
            ("after", after),
        ];
        query_string(&pairs)
    }
}

impl AccountSummary {
    /// How the admin pages name the account's user: their email, else their platform's id.
    pub fn user_label(&self) -> String {
        match (&self.user_external_id, self.user_email.is_empty()) {
            (Some(external), true) => format!("platform user {external}"),
            (Some(external), false) => format!("{} ({external})", self.user_email),
            (None, _) => self.user_email.clone(),
        }
    }
}

/// One linked account in the admin list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub id: String,
    pub user_id: i64,
    /// Empty for a platform user whose platform gave no email.
    pub user_email: String,
    /// The platform's id of a platform user.
    pub user_external_id: Option<String>,
    pub provider_id: String,
    pub provider_name: String,
    /// The identity's best name (username, else email, else name, else subject).
    pub label: String,
    pub subject: String,
    pub status: AccountStatus,
    pub status_reason: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The soonest expiry of its access tokens.
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountList {
    pub query: AccountQuery,
    pub sort: AccountSort,
    pub rows: Vec<AccountSummary>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    pub providers: Vec<ProviderView>,
    pub now: i64,
}

/// One token set's metadata (never its tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSetDetail {
    pub resource_server: String,
    pub scopes: Vec<String>,
    pub token_type: String,
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    pub has_refresh_token: bool,
    /// Bumped at every refresh.
    pub version: i64,
    /// Refresh failures in a row, and the cooldown they started.
    pub failures: i64,
    pub cooldown_until: Option<i64>,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDetail {
    pub account: AccountSummary,
    pub user_display_name: String,
    pub user_disabled: bool,
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub last_refreshed_at: Option<i64>,
    /// Scopes the provider said are missing (needs consent).
    pub consent_scopes: Vec<String>,
    pub token_sets: Vec<TokenSetDetail>,
    /// The account's audit events, newest first (the latest [`PAGE_SIZE`]; the audit log has all).
    pub history: Vec<AuditEntry>,
    pub now: i64,
}

/// One audit event as the admin audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub action: String,
    pub outcome: Outcome,
    pub actor_user_id: Option<i64>,
    /// The actor's email; `None` with no actor (the server itself, a service key, the command line).
    pub actor: Option<String>,
    pub subject_user_id: Option<i64>,
    pub subject: Option<String>,
    pub provider: Option<String>,
    pub account_id: Option<String>,
    pub resource_server: Option<String>,
    pub request_id: Option<String>,
    /// The event in one sentence.
    pub summary: String,
    /// A delegated call as it went over the wire (`GET 127.0.0.1/task/{task_id} · HTTP 200 · 12 ms`): the
    /// sentence says what it was for, this what it was.
    #[serde(default)]
    pub call: Option<String>,
}

/// The audit log's filters and cursor, as in the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Who did it: an email or a user id.
    pub actor: Option<String>,
    /// Whom it was about: an email or a user id.
    pub subject: Option<String>,
    pub action: Option<String>,
    pub provider: Option<String>,
    pub outcome: Option<String>,
    /// Time range, UTC: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (what a `datetime-local` input sends).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Keyset cursor: show events older than this one (opaque to the browser).
    pub before: Option<String>,
}

impl AuditQuery {
    pub fn to_query_string(&self, before: Option<&str>) -> String {
        query_string(&[
            ("actor", self.actor.as_deref()),
            ("subject", self.subject.as_deref()),
            ("action", self.action.as_deref()),
            ("provider", self.provider.as_deref()),
            ("outcome", self.outcome.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("before", before),
        ])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    pub query: AuditQuery,
    pub entries: Vec<AuditEntry>,
    /// The cursor of the next (older) page, when there is one.
    pub older: Option<String>,
    pub providers: Vec<ProviderView>,
    pub now: i64,
}

/// Links of one (provider, status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCount {
    pub provider_id: String,
    pub provider_name: String,
    pub status: AccountStatus,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub links: Vec<LinkCount>,
    pub users: i64,
    pub disabled_users: i64,
    /// Over the last 24 hours: refreshes done, refreshes that failed (provider unavailable, link died), delegated
    /// calls and the calls that failed.
    pub refreshes: i64,
    pub refresh_failures: i64,
    pub calls: i64,
    pub call_failures: i64,
    /// Links needing attention (not active), most recently changed first, and how many there are in all.
    pub attention: Vec<AccountSummary>,
    pub attention_total: i64,
    pub now: i64,
}

/// The users list's search and cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserQuery {
    /// Email or name, a prefix of either (case-insensitive), or a prefix of a platform user's external id.
    pub q: Option<String>,
    pub after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: i64,
    /// Empty for a platform user whose platform gave no email.
    pub email: String,
    /// The platform's id of a platform user.
    pub external_id: Option<String>,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    pub accounts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub query: UserQuery,
    pub users: Vec<UserSummary>,
    pub next: Option<i64>,
    /// The caller's own id: their row offers no "Disable".
    pub me: i64,
    pub now: i64,
}

/// `/admin/webhooks`: every endpoint with its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookList {
    pub endpoints: Vec<crate::webhooks::EndpointView>,
    pub now: i64,
}

/// `/admin/webhooks/{id}`: one endpoint, its recent deliveries, and the one asked for in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDetail {
    pub endpoint: crate::webhooks::EndpointView,
    /// Newest first.
    pub deliveries: Vec<crate::webhooks::DeliveryView>,
    pub delivery: Option<DeliveryDetail>,
    pub now: i64,
}

/// A delivery's request (the signature redacted) and every attempt's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryDetail {
    pub delivery: crate::webhooks::DeliveryView,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub body: String,
    pub attempts: Vec<crate::webhooks::AttemptView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_keep_only_set_values_and_encode_them() {
        let q = AccountQuery {
            provider: Some("globus".into()),
            user: Some("ada+x@example.org".into()),
            identity: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(q.to_query_string(None), "provider=globus&user=ada%2Bx%40example.org");
        assert_eq!(
            q.to_query_string(Some("1.a b")),
            "provider=globus&user=ada%2Bx%40example.org&after=1.a%20b"
        );
    }
}
