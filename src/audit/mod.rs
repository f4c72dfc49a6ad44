//! The audit trail: an append-only record of what happened to linked accounts and what was done with them.
//! Events are written in the same transaction as the change they record (DESIGN §2), so the trail never claims a
//! change that did not happen nor misses one that did. Details never hold token values.

#[cfg(feature = "ssr")]
pub mod calls;
#[cfg(feature = "ssr")]
pub mod repo;

use serde::{Deserialize, Serialize};

/// What happened: a closed set, named in the past tense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A new external account was linked.
    AccountLinked,
    /// An already linked account came back through link, reconnect or grant-more; its tokens were replaced.
    AccountRelinked,
    /// A link, reconnect or grant attempt was refused; `details.reason` says why.
    LinkRejected,
    /// A stored token could not be decrypted; the account was marked `error`.
    TokenUndecryptable,
    /// A token set was refreshed (one event per refresh grant, however many callers were waiting for it).
    TokenRefreshed,
    /// The account's status changed because of what a provider answered (`details`: from, to, reason, scopes).
    AccountStatusChanged,
    /// Refreshing failed transiently until the retries were spent: calls fail fast until the cooldown ends.
    /// Recorded when a token set enters that state, not for every failed attempt.
    ProviderUnavailable,
    /// A refresh succeeded after `ProviderUnavailable`.
    ProviderRecovered,
    /// The user disconnected an account: it and its token sets were deleted, its tokens queued for revocation.
    AccountDisconnected,
    /// Revocation of a disconnected account's tokens at the provider (`details`: revoked, failed, not_offered,
    /// error); `failure` leaves the tokens queued for a retry.
    TokensRevoked,
    /// An API call made with a user's token: provider, method, host, path template, status, latency.
    DelegatedCall,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::AccountLinked => "account_linked",
            AuditAction::AccountRelinked => "account_relinked",
            AuditAction::LinkRejected => "link_rejected",
            AuditAction::TokenUndecryptable => "token_undecryptable",
            AuditAction::TokenRefreshed => "token_refreshed",
            AuditAction::AccountStatusChanged => "account_status_changed",
            AuditAction::ProviderUnavailable => "provider_unavailable",
            AuditAction::ProviderRecovered => "provider_recovered",
            AuditAction::DelegatedCall => "delegated_call",
            AuditAction::AccountDisconnected => "account_disconnected",
            AuditAction::TokensRevoked => "tokens_revoked",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Rejected => "rejected",
        }
    }
}
