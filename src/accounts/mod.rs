//! Linked accounts: a local user's accounts at external providers, linked through OAuth 2.0 / OpenID Connect
//! (DESIGN §3 "Link", "Reconnect / grant more access"). This file holds the wire types (both targets): what the
//! linked-accounts page shows — never a token — and the closed set of reasons a link can fail, each with its message.

#[cfg(feature = "ssr")]
pub mod disconnect;
#[cfg(feature = "ssr")]
pub mod link;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod status;
#[cfg(feature = "ssr")]
pub mod view;

pub mod api;

use serde::{Deserialize, Serialize};

/// How long a started link may take before its state expires (DESIGN §3).
pub const FLOW_TTL_MS: i64 = 10 * 60 * 1000;

/// What a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkIntent {
    /// Link a new account (or refresh an already linked one with the same identity).
    Link,
    /// Sign in again on an existing account (tokens dead or revoked); must come back as the same subject.
    Reconnect,
    /// Ask for more scopes on an existing account; must come back as the same subject.
    Grant,
}

impl LinkIntent {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkIntent::Link => "link",
            LinkIntent::Reconnect => "reconnect",
            LinkIntent::Grant => "grant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "link" => Some(LinkIntent::Link),
            "reconnect" => Some(LinkIntent::Reconnect),
            "grant" => Some(LinkIntent::Grant),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    NeedsReconnect,
    NeedsConsent,
    Revoked,
    Error,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 5] = [
        AccountStatus::Active,
        AccountStatus::NeedsReconnect,
        AccountStatus::NeedsConsent,
        AccountStatus::Revoked,
        AccountStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::NeedsReconnect => "needs_reconnect",
            AccountStatus::NeedsConsent => "needs_consent",
            AccountStatus::Revoked => "revoked",
            AccountStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            AccountStatus::Active,
            AccountStatus::NeedsReconnect,
            AccountStatus::NeedsConsent,
            AccountStatus::Revoked,
            AccountStatus::Error,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// The badge's classes (style/main.css).
    pub fn badge_class(self) -> &'static str {
        match self {
            AccountStatus::Active => "badge badge-ok",
            AccountStatus::NeedsReconnect | AccountStatus::NeedsConsent => "badge badge-warn",
            AccountStatus::Revoked | AccountStatus::Error => "badge badge-error",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AccountStatus::Active => "Active",
            AccountStatus::NeedsReconnect => "Needs reconnect",
            AccountStatus::NeedsConsent => "Needs consent",
            AccountStatus::Revoked => "Revoked",
            AccountStatus::Error => "Error",
        }
    }
}

/// A provider users can connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderView {
    pub id: String,
    pub display_name: String,
}

/// Consent status at one resource server: each scope the site requires or holds, granted or missing, and the
/// access token's expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ResourceServerView {
    pub resource_server: String,
    pub scopes: Vec<ScopeView>,
    /// Whether a token set is stored for this resource server.
    pub has_token: bool,
    /// Unix ms; `None` when the provider gave no lifetime (or no token is stored).
    pub expires_at: Option<i64>,
    pub has_refresh_token: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ScopeView {
    pub scope: String,
    /// What it lets this site do, in words.
    pub description: String,
    pub granted: bool,
}

impl ResourceServerView {
    pub fn missing(&self) -> impl Iterator<Item = &ScopeView> {
        self.scopes.iter().filter(|s| !s.granted)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LinkedAccountView {
    pub id: String,
    pub provider_id: String,
    pub provider_name: String,
    pub subject: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub status: AccountStatus,
    pub status_reason: Option<String>,
    pub resource_servers: Vec<ResourceServerView>,
    pub created_at: i64,
    pub last_refreshed_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl LinkedAccountView {
    pub fn label(&self) -> &str {
        label(&self.username, &self.email, &self.display_name, &self.subject)
    }

    /// Whether some required scope is not granted: "Grant access" asks for it.
    pub fn missing_scopes(&self) -> bool {
        self.resource_servers.iter().any(|rs| rs.missing().next().is_some())
    }
}

/// The best human name for an account: username, else email, else name, else the subject.
pub fn label<'a>(
    username: &'a Option<String>,
    email: &'a Option<String>,
    display_name: &'a Option<String>,
    subject: &'a str,
) -> &'a str {
    username
        .as_deref()
        .or(email.as_deref())
        .or(display_name.as_deref())
        .unwrap_or(subject)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedAccounts {
    /// The server's clock when the page was built (Unix ms): countdowns start from it, so the first paint and the
    /// hydrated island show the same text.
    pub now: i64,
    pub providers: Vec<ProviderView>,
    pub accounts: Vec<LinkedAccountView>,
    /// Disconnected accounts whose tokens the provider has not yet confirmed revoked.
    pub pending_revocations: Vec<PendingRevocationView>,
}

/// What disconnecting (or retrying its revocation) achieved at the provider. The local tokens are gone either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectOutcome {
    pub provider_id: String,
    pub provider_name: String,
    pub account_label: String,
    /// Revocation requests the provider accepted.
    pub revoked: u32,
    /// Tokens still live at the provider as far as we know: kept (sealed) for a retry.
    pub failed: u32,
    /// The provider offers no revocation: the user removes the access in the provider's own settings.
    pub not_offered: bool,
    /// The last failure, in words.
    pub error: Option<String>,
}

/// Who reads a disconnect's outcome, which decides where its retry is and whose settings are meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The account's owner on the Linked accounts page, which lists a pending revocation with its Retry button.
    Owner,
    /// The owner, answered in place by the disconnect island: the pending revocation appears after a reload.
    OwnerInPlace,
    /// An admin: the retry is the user's.
    Admin,
}

impl DisconnectOutcome {
    /// What `reader` reads after a disconnect, and whether it is good news: one wording for the plain-form redirect
    /// (which knows no account label: `account_label` is empty, see `notice::Notice`), the in-place answer and the
    /// admin's page.
    pub fn message(&self, reader: Reader) -> (bool, String) {
        let (whose, retry) = match reader {
            Reader::Owner => ("your", "Retry below."),
            Reader::OwnerInPlace => ("your", "Reload the page to retry."),
            Reader::Admin => (
                "the user's",
                "They wait on the user's Linked accounts page for a retry.",
            ),
        };
        let name = &self.provider_name;
        let account = if self.account_label.is_empty() {
            String::new()
        } else {
            format!(" {}", self.account_label)
        };
        if self.not_offered {
            let text = format!(
                "Disconnected{account}. {name} offers no way to revoke tokens for us: remove this site's access in \
                 {whose} {name} account settings."
            );
            return (true, text);
        }
        if self.failed > 0 {
            let text = format!(
                "Disconnected{account}: the account and its tokens are gone from this site, but {name} did not \
                 confirm revoking {} token{}. {retry}",
                self.failed,
                plural(self.failed)
            );
            return (false, text);
        }
        (
            true,
            format!(
                "Disconnected{account}. {name} revoked {} token{}.",
                self.revoked,
                plural(self.revoked)
            ),
        )
    }
}

/// What the user reads after retrying revocations, and whether it is good news.
pub fn retry_message(revoked: u32, failed: u32) -> (bool, String) {
    if failed == 0 {
        (
            true,
            format!("Revocation done: {revoked} token{} revoked.", plural(revoked)),
        )
    } else {
        (
            false,
            format!("{failed} token{} still not revoked. Try again later.", plural(failed)),
        )
    }
}

/// The plural ending of "token", "attempt" and the like for `n` of them.
pub fn plural(n: impl Into<i64>) -> &'static str {
    if n.into() == 1 { "" } else { "s" }
}

/// A disconnected account whose revocation failed: shown with a "Retry" button until it succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRevocationView {
    pub provider_id: String,
    pub provider_name: String,
    pub account_id: String,
    pub account_label: String,
    pub tokens: u32,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub since: i64,
    /// The tokens were replaced by a reconnect of an account that stays linked (not left by a disconnect).
    pub replaced: bool,
}

/// Why a link, reconnect or grant did not happen. The code travels in the redirect to the linked-accounts page
/// (`?error=<code>`); only these codes are ever shown, so nothing a provider or attacker puts in a URL reaches the
/// page as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkError {
    AccessDenied,
    ProviderError,
    StateMissing,
    StateUnknown,
    StateReplayed,
    StateExpired,
    StateOtherSession,
    IssuerMismatch,
    CodeMissing,
    CodeRejected,
    ClientRejected,
    ProviderUnavailable,
    ProviderBadResponse,
    IdTokenInvalid,
    IdentityUnavailable,
    IdentityTaken,
    SubjectMismatch,
    AccountGone,
    Internal,
}

impl LinkError {
    pub const ALL: [LinkError; 19] = [
        LinkError::AccessDenied,
        LinkError::ProviderError,
        LinkError::StateMissing,
        LinkError::StateUnknown,
        LinkError::StateReplayed,
        LinkError::StateExpired,
        LinkError::StateOtherSession,
        LinkError::IssuerMismatch,
        LinkError::CodeMissing,
        LinkError::CodeRejected,
        LinkError::ClientRejected,
        LinkError::ProviderUnavailable,
        LinkError::ProviderBadResponse,
        LinkError::IdTokenInvalid,
        LinkError::IdentityUnavailable,
        LinkError::IdentityTaken,
        LinkError::SubjectMismatch,
        LinkError::AccountGone,
        LinkError::Internal,
    ];

    pub fn code(self) -> &'static str {
        match self {
            LinkError::AccessDenied => "access_denied",
            LinkError::ProviderError => "provider_error",
            LinkError::StateMissing => "state_missing",
            LinkError::StateUnknown => "state_unknown",
            LinkError::StateReplayed => "state_replayed",
            LinkError::StateExpired => "state_expired",
            LinkError::StateOtherSession => "state_other_session",
            LinkError::IssuerMismatch => "issuer_mismatch",
            LinkError::CodeMissing => "code_missing",
            LinkError::CodeRejected => "code_rejected",
            LinkError::ClientRejected => "client_rejected",
            LinkError::ProviderUnavailable => "provider_unavailable",
            LinkError::ProviderBadResponse => "provider_bad_response",
            LinkError::IdTokenInvalid => "id_token_invalid",
            LinkError::IdentityUnavailable => "identity_unavailable",
            LinkError::IdentityTaken => "identity_taken",
            LinkError::SubjectMismatch => "subject_mismatch",
            LinkError::AccountGone => "account_gone",
            LinkError::Internal => "internal",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }

    /// The sentence shown to the user; `provider` is the provider's display name.
    pub fn message(self, provider: &str) -> String {
        match self {
            LinkError::AccessDenied => format!("You declined access at {provider}, so nothing was linked."),
            LinkError::ProviderError => {
                format!("{provider} could not complete the request, so nothing was linked. Try again.")
            }
            LinkError::StateMissing => {
                "The answer from the provider was incomplete (no state). Start again with Connect.".to_owned()
            }
            LinkError::StateUnknown => {
                "This connection attempt is not known here. Start again with Connect.".to_owned()
            }
            LinkError::StateReplayed => {
                "This connection attempt was already used. Start again with Connect if you still need to.".to_owned()
            }
            LinkError::StateExpired => {
                "This connection attempt took longer than 10 minutes and expired. Start again with Connect.".to_owned()
            }
            LinkError::StateOtherSession => {
                "This connection attempt was started in another browser session. Start again with Connect here."
                    .to_owned()
            }
            LinkError::IssuerMismatch => format!(
                "The answer did not come from {provider} (its issuer did not match) and was refused. Nothing was \
                 linked."
            ),
            LinkError::CodeMissing => format!("{provider} sent no authorization code. Start again with Connect."),
            LinkError::CodeRejected => format!(
                "{provider} refused the authorization code (it may have expired or been used). Start again with \
                 Connect."
            ),
            LinkError::ClientRejected => format!(
                "{provider} refused this server's client credentials. An administrator must check the provider's \
                 configuration."
            ),
            LinkError::ProviderUnavailable => {
                format!("{provider} is not answering right now, so nothing was linked. Try again in a few minutes.")
            }
            LinkError::ProviderBadResponse => {
                format!("{provider} sent an answer that could not be read, so nothing was linked. Try again later.")
            }
            LinkError::IdTokenInvalid => {
                format!("{provider}'s identity token failed verification, so nothing was linked.")
            }
            LinkError::IdentityUnavailable => {
                format!("{provider} did not say which account you signed in with, so nothing was linked.")
            }
            LinkError::IdentityTaken => {
                format!("This {provider} account is already linked to another user of this site. Nothing changed.")
            }
            LinkError::SubjectMismatch => format!(
                "You signed in to {provider} as a different account than the one you were reconnecting. Nothing \
                 changed: the existing link keeps its access. Sign in as the same account and try again."
            ),
            LinkError::AccountGone => "The linked account you were updating no longer exists.".to_owned(),
            LinkError::Internal => {
                "Something went wrong on our side, so nothing was linked. Please try again.".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_error_code_round_trips_and_has_a_message() {
        for e in LinkError::ALL {
            assert_eq!(LinkError::from_code(e.code()), Some(e));
            assert!(e.message("Globus").ends_with('.'), "{e:?}");
        }
        assert_eq!(LinkError::from_code("<script>"), None);
    }
}
