//! Acting for users: the one internal API every delegated call goes through (DESIGN §3 "Use", "Refresh is
//! exactly-once", "Failures are states").
//!
//! [`Delegator::bearer`] answers "a valid bearer for (account, resource server), or a typed reason why not"
//! ([`Unavailable`]); [`Delegator::call`] makes an API call with it and turns the provider's answers into account
//! states. The authorizers are globus-sdk's ([`Authorizer`]):
//! - *access-token*: a token set without a refresh token is used as is; once expired (or refused with 401) the
//!   account `needs_reconnect`;
//! - *refresh-token*: refreshed within the skew of expiry (default 60 s, per provider `refresh_skew`); on a 401 one
//!   forced refresh and one retry, never a loop ([`refresh`] makes every refresh exactly-once);
//! - *client-credentials*: the platform's own token per provider and scopes, cached until near expiry
//!   ([`app_token`]);
//! - *basic*: client authentication at the token endpoint (refresh, revoke, introspect:
//!   `providers::token_endpoint`).

pub mod app_token;
pub mod background;
pub mod call;
pub mod consent;
pub mod refresh;
pub mod repo;

use std::{collections::HashMap, sync::Arc, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use crate::{
    accounts::AccountStatus,
    audit::calls::CallLog,
    config::{DelegationSettings, Settings},
    db::{Db, now_ms},
    providers::{Catalog, Provider},
    tokens::{repo::access_slot, vault::Vault},
};
use repo::TokenSetRow;

pub use call::{ApiRequest, ApiResponse, CallError};

/// globus-sdk's authorizer kinds, as onbehalf applies them (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorizer {
    AccessToken,
    RefreshToken,
    ClientCredentials,
    Basic,
}

impl Authorizer {
    /// How a user's token set is used: refreshed when it can be.
    pub fn for_token_set(has_refresh_token: bool) -> Self {
        if has_refresh_token {
            Authorizer::RefreshToken
        } else {
            Authorizer::AccessToken
        }
    }
}

/// A usable access token for one (account, resource server), with what it was read from.
#[derive(Clone)]
pub struct Bearer {
    token: SecretString,
    pub token_type: String,
    pub account_id: String,
    pub user_id: i64,
    pub provider: String,
    pub subject: String,
    pub resource_server: String,
    pub scopes: Vec<String>,
    /// The token set's version this token came from: a 401 forces a refresh only if the set is still at it.
    pub version: i64,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bearer")
            .field("account_id", &self.account_id)
            .field("resource_server", &self.resource_server)
            .field("version", &self.version)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Bearer {
    /// The `Authorization` header value. Providers write the type in any case (`bearer`); RFC 6750 says `Bearer`.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token.expose_secret())
    }

    pub fn secret(&self) -> &SecretString {
        &self.token
    }
}

/// Why no token can be had. Every variant is something the user or an admin can act on; none carries a token or
/// provider text that could.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// No such account for this user, or no token for that resource server (the same answer either way, so
    /// account ids of other users cannot be probed).
    #[error("no such linked account, or it has no token for this service")]
    NotFound,
    #[error("the account must be reconnected: {reason}")]
    NeedsReconnect { reason: String },
    #[error("the account must grant more access ({})", scopes.join(" "))]
    NeedsConsent { scopes: Vec<String> },
    /// Refreshing failed until the retries were spent; calls fail fast until `retry_at` (Unix ms).
    #[error("the provider is unavailable; retry after {}", crate::datetime::format_time(*retry_at))]
    ProviderUnavailable { retry_at: i64 },
    /// Another instance holds the refresh lease and did not finish in time.
    #[error("a refresh of this token is still running elsewhere; try again in a moment")]
    Busy,
    /// Sealed with a key this instance lacks (a key change still rolling out): nothing is marked.
    #[error("the stored token was sealed with key `{0}`, which this instance does not have")]
    KeyNotConfigured(String),
    #[error("the provider `{0}` is no longer configured")]
    ProviderGone(String),
    /// The account's user is disabled: no token is handed out and no call is made for them.
    #[error("this user is disabled: nothing is done on their behalf")]
    UserDisabled,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for Unavailable {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!("database error in delegation: {e}");
        Unavailable::Internal("database error".into())
    }
}

impl Unavailable {
    /// A short stable code, for audit details and the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Unavailable::NotFound => "not_found",
            Unavailable::NeedsReconnect { .. } => "needs_reconnect",
            Unavailable::NeedsConsent { .. } => "needs_consent",
            Unavailable::ProviderUnavailable { .. } => "provider_unavailable",
            Unavailable::Busy => "busy",
            Unavailable::KeyNotConfigured(_) => "key_not_configured",
            Unavailable::ProviderGone(_) => "provider_gone",
            Unavailable::UserDisabled => "user_disabled",
            Unavailable::Internal(_) => "internal",
        }
    }
}

/// One per instance: the in-process half of exactly-once refresh, the app-token cache and the call audit.
pub struct Delegator {
    pub(crate) db: Db,
    pub(crate) vault: Arc<Vault>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) http: reqwest::Client,
    pub(crate) settings: DelegationSettings,
    outbound_timeout: Duration,
    /// This instance's lease owner id.
    pub(crate) instance: String,
    pub(crate) inflight: refresh::Inflight,
    pub(crate) app_tokens: app_token::Cache,
    pub calls: CallLog,
}

impl std::fmt::Debug for Delegator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegator")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Delegator {
    /// Must be called on the runtime that will serve (it starts the call-audit writer).
    pub fn new(settings: &Settings, db: Db, vault: Arc<Vault>, catalog: Arc<Catalog>, http: reqwest::Client) -> Self {
        Self {
            calls: CallLog::start(db.clone()),
            db,
            vault,
            catalog,
            http,
            settings: settings.delegation.clone(),
            outbound_timeout: settings.outbound.timeout,
            instance: uuid::Uuid::new_v4().to_string(),
            inflight: Default::default(),
            app_tokens: Default::default(),
        }
    }

    /// This instance's identity in refresh leases.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// How long a refresh may hold its lease: every attempt may take the whole outbound timeout, and the waits
    /// between attempts are capped at [`refresh::MAX_RETRY_WAIT`]; then storing the result may take the whole
    /// `refresh_write_budget`; plus [`refresh::LEASE_MARGIN`] twice: once for the work before the first attempt,
    /// once left unused at the end. (Discovery happens before the lease is taken; no attempt starts that could not
    /// be stored inside it.)
    pub fn lease_duration(&self) -> Duration {
        let attempts = self.settings.refresh_attempts.max(1);
        self.outbound_timeout * attempts
            + refresh::MAX_RETRY_WAIT * (attempts - 1)
            + self.settings.refresh_write_budget
            + refresh::LEASE_MARGIN * 2
    }

    fn skew_ms(&self, provider: &Provider) -> i64 {
        provider.refresh_skew.unwrap_or(self.settings.refresh_skew).as_millis() as i64
    }

    /// A valid bearer for (account, resource server) of `user_id`, refreshing first when it is due.
    pub async fn bearer(
        self: &Arc<Self>,
        user_id: i64,
        account_id: &str,
        resource_server: &str,
    ) -> Result<Bearer, Unavailable> {
        if let Some(running) = refresh::running(self, user_id, account_id, resource_server) {
            match refresh::join(running).await {
                // The refresh could not be done now: the row decides whether its current token still serves.
                Err(Unavailable::ProviderUnavailable { .. } | Unavailable::Busy | Unavailable::KeyNotConfigured(_)) => {
                }
                done => return done,
            }
        }
        let row = repo::load(&self.db.pool, account_id, resource_server, Some(user_id))
            .await?
            .ok_or(Unavailable::NotFound)?;
        self.bearer_for(row, None).await
    }

    /// After the provider answered 401 to `refused`: refresh once (unless someone already has) and hand out the
    /// new token. A token set without refresh token cannot recover: the account needs reconnecting.
    pub(crate) async fn bearer_after_401(self: &Arc<Self>, refused: &Bearer) -> Result<Bearer, Unavailable> {
        let row = repo::load(
            &self.db.pool,
            &refused.account_id,
            &refused.resource_server,
            Some(refused.user_id),
        )
        .await?
        .ok_or(Unavailable::NotFound)?;
        self.bearer_for(row, Some(refused.version)).await
    }

    /// Decides for one loaded row: use it, refresh it, or say why not. `refused_version` is the version a 401
    /// came back for.
    async fn bearer_for(
        self: &Arc<Self>,
        row: TokenSetRow,
        refused_version: Option<i64>,
    ) -> Result<Bearer, Unavailable> {
        let now = now_ms();
        usable_status(&row)?;
        let provider = self
            .catalog
            .get(&row.provider)
            .ok_or_else(|| Unavailable::ProviderGone(row.provider.clone()))?;
        let refused = refused_version == Some(row.version);
        if !refused && (refused_version.is_some() || !self.is_due(&row, &provider, now)) {
            // Fresh; or a 401 for a version someone has already replaced: use theirs.
            return self.open(&row).await;
        }
        match Authorizer::for_token_set(row.refresh_token.is_some()) {
            Authorizer::AccessToken => {
                // Nothing to renew it with: used until it expires or is refused.
                let expired = row.expires_at.is_some_and(|at| at <= now);
                if !(refused || expired) {
                    return self.open(&row).await;
                }
                let reason = if refused {
                    "The provider refused the access token and issued no refresh token. Reconnect the account."
                } else {
                    "The access token expired and the provider issued no refresh token. Reconnect the account."
                };
                refresh::mark_needs_reconnect(self, &row, reason, "access_token_dead").await?;
                Err(Unavailable::NeedsReconnect { reason: reason.into() })
            }
            _ if row.cooldown_until.is_some_and(|until| until > now) => {
                // Refreshing failed recently: no new attempt before the cooldown ends, but a token that has not
                // expired (nor been refused) is still good.
                self.settle(&row, now, refused).await
            }
            _ if !refused && row.expires_at.is_some_and(|at| at > now) => {
                // Due but still valid: the refresh runs on its own task and this caller goes on with the current
                // token, instead of waiting a token round trip (or an outage's retries) for nothing.
                let current = self.open(&row).await?;
                refresh::start(self, row, provider, refresh::Wait::ForResult, Some(current.clone()))?;
                Ok(current)
            }
            _ => {
                let current = row.clone();
                let mut running = refresh::start(self, row, provider.clone(), refresh::Wait::ForResult, None)?;
                if refused && running.from_version < current.version {
                    // A refresh begun from an older read ends by handing out the very token that was refused; wait
                    // for it, then refresh from the refused version.
                    let _ = refresh::outcome(running).await;
                    running = refresh::start(self, current.clone(), provider, refresh::Wait::ForResult, None)?;
                }
                match refresh::outcome(running).await {
                    Ok(bearer) if refused && bearer.version <= current.version => Err(Unavailable::Busy),
                    // The refresh could not be done now, but the token it was to replace still works.
                    Err(
                        Unavailable::ProviderUnavailable { .. } | Unavailable::Busy | Unavailable::KeyNotConfigured(_),
                    ) if !refused && current.expires_at.is_none_or(|at| at > now_ms()) => self.open(&current).await,
                    other => other,
                }
            }
        }
    }

    /// Whether the row is due for a refresh: within the skew of its expiry, the skew being at most half the
    /// token's lifetime (a token living 60 s would otherwise be refreshed on every call).
    pub(crate) fn is_due(&self, row: &TokenSetRow, provider: &Provider, now: i64) -> bool {
        row.expires_at.is_some_and(|at| {
            let skew = self.skew_ms(provider).min((at - row.issued_at).max(0) / 2);
            at - skew <= now
        })
    }

    /// The row as it stands, without refreshing: its token while it is valid, else why not.
    pub(crate) async fn settle(&self, row: &TokenSetRow, now: i64, refused: bool) -> Result<Bearer, Unavailable> {
        usable_status(row)?;
        let expired = row.expires_at.is_some_and(|at| at <= now);
        match row.cooldown_until {
            Some(until) if until > now && (expired || refused) => {
                Err(Unavailable::ProviderUnavailable { retry_at: until })
            }
            _ => self.open(row).await,
        }
    }

    /// Opens the row's access token. One that does not decrypt marks the account `error` (with an audit event).
    pub(crate) async fn open(&self, row: &TokenSetRow) -> Result<Bearer, Unavailable> {
        use crate::tokens::vault::VaultError;
        match self.vault.open(&row.access_token, access_slot(row.key())) {
            Ok(token) => Ok(self.bearer_from(row, token, row.version, row.expires_at, row.scopes.clone())),
            Err(VaultError::UnknownKey(key)) => Err(Unavailable::KeyNotConfigured(key)),
            Err(e) => {
                crate::accounts::status::mark_undecryptable(&self.db, &self.catalog, &row.account_id, &e).await?;
                Err(Unavailable::NeedsReconnect {
                    reason: "A stored token cannot be decrypted. Reconnect the account to store new tokens.".into(),
                })
            }
        }
    }

    pub(crate) fn bearer_from(
        &self,
        row: &TokenSetRow,
        token: SecretString,
        version: i64,
        expires_at: Option<i64>,
        scopes: String,
    ) -> Bearer {
        Bearer {
            token,
            token_type: row.token_type.clone(),
            account_id: row.account_id.clone(),
            user_id: row.user_id,
            provider: row.provider.clone(),
            subject: row.subject.clone(),
            resource_server: row.resource_server.clone(),
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
            version,
            expires_at,
        }
    }
}

/// Whether the row's account may be used at all: not when its user is disabled, nor when it must be reconnected.
pub(crate) fn usable_status(row: &TokenSetRow) -> Result<(), Unavailable> {
    if row.user_disabled {
        return Err(Unavailable::UserDisabled);
    }
    match row.status {
        AccountStatus::Active | AccountStatus::NeedsConsent => Ok(()),
        AccountStatus::NeedsReconnect | AccountStatus::Revoked | AccountStatus::Error => {
            Err(Unavailable::NeedsReconnect {
                reason: row
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| "The link must be reconnected.".into()),
            })
        }
    }
}

/// Refresh attempts in flight in this process, by account and resource server (see [`refresh::start`]).
pub(crate) type InflightMap = HashMap<refresh::Key, refresh::Running>;
