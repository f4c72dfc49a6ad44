//! Webhooks: the platform learns the moment a link changes (DESIGN §3 "Webhooks").
//!
//! - [`outbox`]: an event is written in the transaction of the change it reports (`accounts::status` and the few
//!   other places where something a platform must know happens), with one delivery per endpoint subscribed then.
//! - [`dispatcher`]: every instance claims due deliveries under a lease and POSTs them, signed per Standard Webhooks
//!   1.0 ([`signing`]), retrying with backoff; so a committed change is delivered at least once, whichever instance
//!   dies, and per account in the order the changes happened.
//! - [`endpoints`]: the receivers (`onbehalf webhook …`, the admin page), with SSRF rules ([`address`]) and sealed
//!   secrets.
//!
//! This file holds the wire types (both targets): the event types and what the admin page shows.

#[cfg(feature = "ssr")]
pub mod address;
#[cfg(feature = "ssr")]
pub mod dispatcher;
#[cfg(feature = "ssr")]
pub mod endpoints;
#[cfg(feature = "ssr")]
pub mod outbox;
#[cfg(feature = "ssr")]
pub mod payload;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod signing;

use serde::{Deserialize, Serialize};

/// What happened, as a platform subscribes to it. The names are the wire names (`account.linked`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A new account was linked.
    #[serde(rename = "account.linked")]
    AccountLinked,
    /// An account came back through reconnect (or was linked again): its tokens were replaced, it is active.
    #[serde(rename = "account.reconnected")]
    AccountReconnected,
    /// The user granted the scopes an account lacked: it is active again, with more scopes.
    #[serde(rename = "account.scopes_granted")]
    AccountScopesGranted,
    /// The account's tokens cannot be used or renewed (revoked grant, expired refresh token, undecryptable token):
    /// the user must reconnect it.
    #[serde(rename = "account.needs_reconnect")]
    AccountNeedsReconnect,
    /// The provider asks for more consent; `data.scopes` are the ones to request.
    #[serde(rename = "account.needs_consent")]
    AccountNeedsConsent,
    /// Renewing the account's token failed transiently until the retries were spent (the provider is down or slow);
    /// calls fail fast until it answers again.
    #[serde(rename = "account.provider_unavailable")]
    AccountProviderUnavailable,
    /// A renewal succeeded after `account.provider_unavailable`.
    #[serde(rename = "account.recovered")]
    AccountRecovered,
    /// The account was disconnected (`data.disconnected_by`: user, admin or platform; `data.reason`).
    #[serde(rename = "account.disconnected")]
    AccountDisconnected,
    /// Revoking a disconnected account's tokens at the provider failed; they stay queued for a retry.
    #[serde(rename = "account.revocation_failed")]
    AccountRevocationFailed,
    #[serde(rename = "user.disabled")]
    UserDisabled,
    #[serde(rename = "user.enabled")]
    UserEnabled,
    /// Sent by an admin's "Send test event" to one endpoint, whatever it subscribes to.
    #[serde(rename = "webhook.test")]
    Test,
}

impl EventType {
    pub const ALL: [EventType; 12] = [
        EventType::AccountLinked,
        EventType::AccountReconnected,
        EventType::AccountScopesGranted,
        EventType::AccountNeedsReconnect,
        EventType::AccountNeedsConsent,
        EventType::AccountProviderUnavailable,
        EventType::AccountRecovered,
        EventType::AccountDisconnected,
        EventType::AccountRevocationFailed,
        EventType::UserDisabled,
        EventType::UserEnabled,
        EventType::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::AccountLinked => "account.linked",
            EventType::AccountReconnected => "account.reconnected",
            EventType::AccountScopesGranted => "account.scopes_granted",
            EventType::AccountNeedsReconnect => "account.needs_reconnect",
            EventType::AccountNeedsConsent => "account.needs_consent",
            EventType::AccountProviderUnavailable => "account.provider_unavailable",
            EventType::AccountRecovered => "account.recovered",
            EventType::AccountDisconnected => "account.disconnected",
            EventType::AccountRevocationFailed => "account.revocation_failed",
            EventType::UserDisabled => "user.disabled",
            EventType::UserEnabled => "user.enabled",
            EventType::Test => "webhook.test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The fields of `data` every event of this type carries (the OpenAPI document's schema per type says the same).
    pub fn required_data(self) -> &'static [&'static str] {
        match self {
            EventType::AccountLinked | EventType::AccountReconnected | EventType::AccountScopesGranted => {
                &["user", "account"]
            }
            EventType::AccountNeedsReconnect => &["user", "account", "reason"],
            EventType::AccountNeedsConsent => &["user", "account", "reason", "scopes"],
            EventType::AccountProviderUnavailable => &["user", "account", "resource_server", "reason"],
            EventType::AccountRecovered => &["user", "account", "resource_server"],
            EventType::AccountDisconnected => &["user", "account", "disconnected_by"],
            EventType::AccountRevocationFailed => &["user", "account_id", "provider", "failed_tokens", "reason"],
            EventType::UserDisabled | EventType::UserEnabled => &["user"],
            EventType::Test => &[],
        }
    }

    /// The name of the type's schema in the OpenAPI document (`AccountNeedsReconnectEvent`, …).
    pub fn schema_name(self) -> String {
        let mut name: String = self
            .as_str()
            .split(['.', '_'])
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        name.push_str("Event");
        name
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One endpoint, as the admin page and `webhook list` show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub last_success_at: Option<i64>,
    /// Failed attempts since the last success.
    pub consecutive_failures: i64,
    pub failing_since: Option<i64>,
    /// A secret rotation is in its overlap until then: both secrets sign.
    pub previous_secret_until: Option<i64>,
    pub created_at: i64,
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub occurred_at: i64,
    /// When it is tried next (pending, not waiting).
    pub next_attempt_at: Option<i64>,
    /// Pending behind an earlier delivery of the same account (or user) to this endpoint: it goes when that one is
    /// over.
    pub waiting: bool,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub delivered_at: Option<i64>,
}

/// One attempt of a delivery: what was sent (the signature redacted) and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub attempt: i64,
    pub sent_at: i64,
    pub latency_ms: i64,
    pub request_headers: Vec<(String, String)>,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub response_headers: Vec<(String, String)>,
    /// The first 4 KB of the response body, as text.
    pub response_body: Option<String>,
}
