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
    /// A platform backend listed the user's linked accounts through the service API (`details.key`: which key).
    ServiceAccountsListed,
    /// A platform backend obtained an access token of the user's account through the service API (`details.key`;
    /// `failure` with `details.error` when none could be had).
    ServiceTokenIssued,
    /// A platform backend ran an action with the user's account through the service API (`details`: key, action,
    /// error when it failed).
    ServiceActionRun,
    /// A user was disabled (by an admin, `actor`, or by the `onbehalf user` command, no actor): they cannot sign in
    /// and nothing is done for them.
    UserDisabled,
    /// A disabled user was enabled again.
    UserEnabled,
    /// A platform backend read the user's history through the service API (`details`: key, events).
    ServiceEventsRead,
    /// A platform backend made a connect link for the user (`details`: key, mode, provider).
    ConnectSessionCreated,
    /// The user's browser opened a connect link (`rejected` with `details.error` = `used` or `expired` when the link
    /// was spent, or `user_disabled` / `key_revoked`).
    ConnectSessionOpened,
    /// A webhook endpoint was added (`details`: endpoint, url, events); no user is its subject.
    WebhookEndpointAdded,
    /// A webhook endpoint was disabled (`details.reason`: an admin's, or `failing` / `gone` when the dispatcher did).
    WebhookEndpointDisabled,
    WebhookEndpointEnabled,
    /// A webhook endpoint got a new signing secret (`details.previous_valid_until`).
    WebhookSecretRotated,
    /// Events were queued again for a webhook endpoint (`details`: event or since, queued).
    WebhookReplayed,
}

impl AuditAction {
    /// Every action, in the order the admin audit filter lists them.
    pub const ALL: [AuditAction; 24] = [
        AuditAction::AccountLinked,
        AuditAction::AccountRelinked,
        AuditAction::LinkRejected,
        AuditAction::TokenRefreshed,
        AuditAction::AccountStatusChanged,
        AuditAction::TokenUndecryptable,
        AuditAction::ProviderUnavailable,
        AuditAction::ProviderRecovered,
        AuditAction::DelegatedCall,
        AuditAction::AccountDisconnected,
        AuditAction::TokensRevoked,
        AuditAction::ServiceAccountsListed,
        AuditAction::ServiceTokenIssued,
        AuditAction::ServiceActionRun,
        AuditAction::ServiceEventsRead,
        AuditAction::UserDisabled,
        AuditAction::UserEnabled,
        AuditAction::ConnectSessionCreated,
        AuditAction::ConnectSessionOpened,
        AuditAction::WebhookEndpointAdded,
        AuditAction::WebhookEndpointDisabled,
        AuditAction::WebhookEndpointEnabled,
        AuditAction::WebhookSecretRotated,
        AuditAction::WebhookReplayed,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

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
            AuditAction::ServiceAccountsListed => "service_accounts_listed",
            AuditAction::ServiceTokenIssued => "service_token_issued",
            AuditAction::ServiceActionRun => "service_action_run",
            AuditAction::UserDisabled => "user_disabled",
            AuditAction::UserEnabled => "user_enabled",
            AuditAction::ServiceEventsRead => "service_events_read",
            AuditAction::ConnectSessionCreated => "connect_session_created",
            AuditAction::ConnectSessionOpened => "connect_session_opened",
            AuditAction::WebhookEndpointAdded => "webhook_endpoint_added",
            AuditAction::WebhookEndpointDisabled => "webhook_endpoint_disabled",
            AuditAction::WebhookEndpointEnabled => "webhook_endpoint_enabled",
            AuditAction::WebhookSecretRotated => "webhook_secret_rotated",
            AuditAction::WebhookReplayed => "webhook_replayed",
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
    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Success, Outcome::Failure, Outcome::Rejected]
            .into_iter()
            .find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Rejected => "rejected",
        }
    }
}
