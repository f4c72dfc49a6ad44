//! Exactly-once refresh (DESIGN §3).
//!
//! Two layers, so one refresh-grant request reaches the provider per expiry however many callers want it:
//! - **in this process**, callers for one token set share one refresh ([`shared`]): the first starts it on its own
//!   task (so a caller that goes away cannot strand the others) and everybody, the first included, waits for its
//!   result on a watch channel;
//! - **across instances**, the refresh runs only while holding the token set's lease in the database
//!   (`repo::acquire_lease`: compare-and-swap on `version`, the failure count and the lease owner, and on the lease
//!   being free or expired, under an owner string unique to this acquisition). An instance that finds the lease
//!   taken polls the row (10 ms, backing off to 250 ms) until the holder's result is there — a new version, a
//!   status, a failure — and uses that. The refreshed tokens are written only while the row still carries our
//!   lease, in the same transaction that bumps the version and records the audit event; a rotated refresh token
//!   replaces the old one there, a response without `refresh_token` keeps it.
//!
//! **The lease cannot run out under its holder.** Its end is written, and judged, by the database's clock, so no
//! instance's clock can make it expire early. The holder counts the same length on its own monotonic clock from
//! before it asked, minus [`LEASE_MARGIN`], and does everything inside that: no attempt starts unless the attempt
//! (the whole outbound timeout) and storing its result (the whole `refresh_write_budget`: a pool wait, SQLite's
//! busy wait, a PostgreSQL restart) both fit, and a write that fails is tried again until then with the tokens in
//! memory ([`write_refreshed`]). If it never succeeds, the new tokens are given back to the provider and the account
//! is marked `needs_reconnect` when its refresh token was spent ([`lost_write`]).
//!
//! **A refresh token the provider may have consumed is not sent again.** It is read under the lease at the version
//! the lease was taken for, the commit moves the version on, and a failed refresh moves the failure count on, so a
//! caller holding an older read cannot take the lease and resend it. Within one refresh, a transient failure the
//! provider did not act on (5xx, 429, no connection) is retried with the same token; a timeout (the request may
//! have arrived) is retried only at a provider that does not replace refresh tokens (`rotates_refresh_tokens`), and
//! a 2xx answer that cannot be read never.
//!
//! **The crash window**: if this process dies (or loses the database for longer than the lease) after the request
//! was sent and before the commit, the new tokens are lost, and the stored refresh token may be spent. Its lease
//! then runs out still held, and the next refresh sees that (the owner it replaces was never released): at a
//! provider that rotates refresh tokens it does not send the token again but marks the account `needs_reconnect`
//! (`refresh_interrupted`) — one reconnect, without tripping the provider's reuse detection; at one that does not, it
//! sends it, which is safe there. Shrinking the window further would need the provider's help (a reuse grace period,
//! as some offer).
//!
//! Failures: `invalid_grant`, `invalid_client`, `unauthorized_client` and other OAuth refusals → `needs_reconnect`,
//! and so does a 2xx answer that cannot be read (cut off, not JSON, too large, no token: the provider may have
//! rotated the refresh token, so the old one is never sent again) and a timeout at a rotating provider;
//! network, 5xx, 429 → up to `refresh_attempts` tries with full-jitter exponential backoff (a `Retry-After` of up
//! to [`MAX_RETRY_WAIT`] is honoured), then a cooldown (doubled per failure, capped; at least `Retry-After`) during
//! which no refresh is attempted: calls use the current token while it is valid and fail fast after. One audit
//! event per change of state, none per attempt.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rand::Rng;
use secrecy::SecretString;
use tokio::sync::watch;

use super::{Bearer, Delegator, InflightMap, Unavailable, repo, repo::TokenSetRow};
use crate::{
    accounts::status,
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    db::now_ms,
    metrics::{self, RefreshAttempt},
    providers::{
        Provider,
        discovery::Endpoints,
        revocation::{self, TokenKind},
        token_endpoint::{self, TokenEndpointError, TokenResponse},
    },
    tokens::{IssuedTokenSet, repo::refresh_slot, vault::VaultError},
    webhooks::{EventType, outbox, payload},
};

/// The longest wait between two attempts, whatever `Retry-After` says; a longer one becomes the cooldown.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// What a lease holder leaves unused at the end of its lease: it stops writing this long before another instance may
/// take the lease over (round trips, and clocks that tick at slightly different rates).
pub const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// How often a caller waiting on another instance's lease re-reads the row: first, and at most.
const POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_millis(250);

pub type RefreshResult = Result<Bearer, Unavailable>;
pub type Inflight = Mutex<InflightMap>;

/// A refresh running in this process: whose account it is, the token-set version it replaces, and where its
/// result will appear.
#[derive(Clone)]
pub struct Running {
    user_id: i64,
    pub(crate) from_version: i64,
    /// The token being replaced, when it is still valid: callers arriving meanwhile use it instead of waiting.
    current: Option<Bearer>,
    result: watch::Receiver<Option<RefreshResult>>,
}

/// The in-process key of a token set: (account, resource server), so a caller can join a running refresh before
/// reading the row (in a storm, 999 callers then make no database round trip at all). The background refresher
/// keeps its own entries: a request must not inherit its "someone else has the lease, move on" answer. Both still
/// meet at the database lease, so the provider sees one refresh.
pub type Key = (String, String, Wait);

fn key(account_id: &str, resource_server: &str, wait: Wait) -> Key {
    (account_id.to_owned(), resource_server.to_owned(), wait)
}

/// The refresh of (account, resource server) running in this process for `user_id`'s account, if any.
pub fn running(delegator: &Delegator, user_id: i64, account_id: &str, resource_server: &str) -> Option<Running> {
    let map = delegator.inflight.lock().ok()?;
    map.get(&key(account_id, resource_server, Wait::ForResult))
        .filter(|running| running.user_id == user_id)
        .cloned()
}

/// Waits for a running refresh's result, or hands out the token it replaces while that is still valid.
pub async fn join(running: Running) -> RefreshResult {
    if let Some(current) = running.current.filter(|b| b.expires_at.is_some_and(|at| at > now_ms())) {
        return Ok(current);
    }
    wait_for(running.result).await
}

/// Waits for a running refresh's result (a caller whose token was refused cannot use the one being replaced).
pub async fn outcome(running: Running) -> RefreshResult {
    wait_for(running.result).await
}

async fn wait_for(mut result: watch::Receiver<Option<RefreshResult>>) -> RefreshResult {
    loop {
        if let Some(result) = result.borrow_and_update().clone() {
            return result;
        }
        if result.changed().await.is_err() {
            return Err(Unavailable::Internal("the refresh task ended without a result".into()));
        }
    }
}

/// Whether a caller waits for a refresh another instance is running (requests do; the background refresher
/// moves on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wait {
    ForResult,
    No,
}

/// Removes the in-flight entry when the refresh task ends, however it ends.
struct InflightGuard {
    delegator: Arc<Delegator>,
    id: Key,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.delegator.inflight.lock() {
            map.remove(&self.id);
        }
    }
}

/// Refreshes `row` once for every caller in this process that asks while it runs.
pub async fn shared(
    delegator: &Arc<Delegator>,
    row: TokenSetRow,
    provider: Arc<Provider>,
    wait: Wait,
) -> RefreshResult {
    wait_for(start(delegator, row, provider, wait, None)?.result).await
}

/// Starts refreshing `row` on its own task, or finds the refresh of it already running; [`join`] waits for it.
pub fn start(
    delegator: &Arc<Delegator>,
    row: TokenSetRow,
    provider: Arc<Provider>,
    wait: Wait,
    current: Option<Bearer>,
) -> Result<Running, Unavailable> {
    let key = key(&row.account_id, &row.resource_server, wait);
    let running = {
        let mut map = delegator
            .inflight
            .lock()
            .map_err(|_| Unavailable::Internal("poisoned".into()))?;
        match map.get(&key) {
            Some(running) => running.clone(),
            None => {
                let (tx, rx) = watch::channel(None);
                let running = Running {
                    user_id: row.user_id,
                    from_version: row.version,
                    current,
                    result: rx,
                };
                map.insert(key.clone(), running.clone());
                let guard = InflightGuard {
                    delegator: delegator.clone(),
                    id: key,
                };
                let delegator = delegator.clone();
                tokio::spawn(async move {
                    let result = lead(&delegator, row, &provider, wait).await;
                    // The entry goes before the result is published: a caller arriving after this reads the
                    // committed row instead of joining a finished refresh.
                    drop(guard);
                    let _ = tx.send(Some(result));
                });
                running
            }
        }
    };
    Ok(running)
}

/// One holding of a token set's lease: the owner string written into the row (unique per acquisition, so a
/// holder whose lease expired and was taken over — even by this instance — can write nothing) and the end of what
/// the holder may do, on this process's monotonic clock. The lease's end in the row comes from the database's clock
/// (`repo::acquire_lease`), which no other instance's clock can move; `deadline` counts the same length from before
/// the acquiring statement was sent, minus [`LEASE_MARGIN`], so it falls before the row's end whatever the
/// instances' wall clocks say.
struct Lease {
    owner: String,
    deadline: Instant,
}

impl Lease {
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Takes the lease (or waits for whoever has it) and refreshes.
async fn lead(delegator: &Arc<Delegator>, mut row: TokenSetRow, provider: &Provider, wait: Wait) -> RefreshResult {
    // The endpoints first (discovery may take a request of its own): the lease then only covers token requests.
    let endpoints = match provider.endpoints(&delegator.http).await {
        Ok(endpoints) => endpoints,
        Err(e) => {
            tracing::warn!(provider = provider.id, "refresh impossible, discovery failed: {e}");
            return Err(Unavailable::ProviderUnavailable {
                retry_at: now_ms() + delegator.settings.cooldown.as_millis() as i64,
            });
        }
    };
    let length = delegator.lease_duration();
    let deadline = Instant::now() + length + Duration::from_secs(1);
    let mut poll = POLL;
    loop {
        let sent = Instant::now();
        let owner = format!("{}/{}", delegator.instance, uuid::Uuid::new_v4());
        if repo::acquire_lease(&delegator.db, &row, &owner, length).await? {
            let lease = Lease {
                owner,
                deadline: sent + length.saturating_sub(LEASE_MARGIN),
            };
            if row.lease_owner.is_some() && provider.rotates_refresh_tokens {
                // The lease we took over ran out while held: its holder stopped (crash, lost database) after it may
                // have sent the refresh token, so the provider may have replaced it already. Sending it again
                // could be reuse; only a new authorization is safe.
                let reason = "A renewal of this link's token was interrupted, and the provider may already have \
                              replaced the token. Reconnect the account.";
                let cause = "refresh_interrupted";
                return dead_link(
                    delegator,
                    &row,
                    &lease,
                    reason,
                    cause,
                    "the previous refresh lease ran out unreleased",
                )
                .await;
            }
            return refresh_under_lease(delegator, &row, provider, &endpoints, &lease).await;
        }
        // The lease is someone else's, or the row moved on since it was read.
        if wait == Wait::No {
            return Err(Unavailable::Busy);
        }
        let current = repo::load_by_id(&delegator.db.pool, &row.id)
            .await?
            .ok_or(Unavailable::NotFound)?;
        if current.version != row.version || current.failures != row.failures {
            // The other refresh finished: its result is in the row.
            return delegator.settle(&current, now_ms(), false).await;
        }
        // A status change alone (a consent demand meanwhile) is not the other refresh's result; a dead link is.
        super::usable_status(&current)?;
        if Instant::now() > deadline {
            return Err(Unavailable::Busy);
        }
        row = current;
        // 10 ms, doubling to 250 ms: quick when the other refresh is quick, a few reads a second when it is not.
        let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..5));
        tokio::time::sleep(poll + jitter).await;
        poll = (poll * 2).min(MAX_POLL);
    }
}

/// How a refresh ended, for the row and the account.
enum Failure {
    /// The grant is gone or the client is refused: only the user (or an admin) can fix it.
    Dead { reason: &'static str, code: String },
    /// Worth trying again later: cooldown.
    Transient(TokenEndpointError),
}

fn classify(e: TokenEndpointError, provider: &Provider) -> Failure {
    if matches!(e, TokenEndpointError::TimedOut) && provider.rotates_refresh_tokens {
        return Failure::Dead {
            reason: "The provider did not answer a token renewal in time, and may have replaced the stored token \
                     meanwhile. Reconnect the account.",
            code: "refresh_timed_out".to_owned(),
        };
    }
    if e.is_client_error() {
        return Failure::Dead {
            reason: "The provider refused this application's credentials while refreshing (an administrator must \
                     check the client configuration); reconnect the account afterwards.",
            code: error_code(&e).to_owned(),
        };
    }
    if e.is_transient() {
        return Failure::Transient(e);
    }
    match e {
        // invalid_grant, and any other OAuth refusal (invalid_scope, invalid_request, …): retrying the same
        // request cannot succeed.
        TokenEndpointError::Rejected { .. } => Failure::Dead {
            reason: "The provider no longer accepts this link (the grant was revoked or expired). Reconnect the \
                     account.",
            code: error_code(&e).to_owned(),
        },
        // The provider accepted the refresh (2xx) but what it sent cannot be read (cut off, not JSON, too large,
        // no token): it may have rotated the refresh token, and sending the old one again would be reuse, which a
        // strict provider punishes by revoking the grant. Only a new authorization is safe.
        TokenEndpointError::BadResponse { status: 200..=299, .. } => Failure::Dead {
            reason: "The provider's answer to a token renewal could not be read, and it may have replaced the \
                     stored token. Reconnect the account.",
            code: "unreadable_refresh_answer".to_owned(),
        },
        other => Failure::Transient(other),
    }
}

async fn refresh_under_lease(
    delegator: &Arc<Delegator>,
    row: &TokenSetRow,
    provider: &Provider,
    endpoints: &Endpoints,
    lease: &Lease,
) -> RefreshResult {
    let Some(sealed) = row.refresh_token.as_deref() else {
        return Err(Unavailable::Internal("no refresh token".into()));
    };
    let refresh_token = match delegator.vault.open(sealed, refresh_slot(row.key())) {
        Ok(token) => token,
        Err(VaultError::UnknownKey(key)) => {
            // A key change still rolling out: an instance that has the key can do it, so no cooldown (it would
            // hold them back too).
            release(delegator, row, lease, "sealed with a key this instance lacks").await?;
            return Err(Unavailable::KeyNotConfigured(key));
        }
        Err(e) => {
            release(delegator, row, lease, "undecryptable refresh token").await?;
            crate::accounts::status::mark_undecryptable(&delegator.db, &delegator.catalog, &row.account_id, &e).await?;
            return Err(Unavailable::NeedsReconnect {
                reason: "A stored token cannot be decrypted. Reconnect the account.".into(),
            });
        }
    };
    let granted: Vec<String> = row.scopes.split_whitespace().map(str::to_owned).collect();
    let settings = &delegator.settings;
    // An attempt may take the whole outbound timeout, and storing its result the whole write budget; none starts
    // unless both fit inside the lease.
    let attempt_budget = delegator.outbound_timeout + settings.refresh_write_budget;
    if lease.left() < attempt_budget {
        release(delegator, row, lease, "the lease was too short to try").await?;
        return Err(Unavailable::Busy);
    }
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let result =
            token_endpoint::refresh(&delegator.http, provider, &endpoints.token, &refresh_token, &granted).await;
        let outcome = match &result {
            Ok(_) => RefreshAttempt::Success,
            Err(e) if e.is_transient() => RefreshAttempt::Transient,
            Err(_) => RefreshAttempt::Rejected,
        };
        metrics::refresh_attempt(&provider.id, outcome);
        match result {
            Err(e) if may_resend(&e, provider) && attempt < settings.refresh_attempts => {
                let asked = Duration::from_secs(e.retry_after().unwrap_or(0));
                if asked > MAX_RETRY_WAIT {
                    break Err(e);
                }
                let backoff = settings.retry_backoff.saturating_mul(1 << (attempt - 1).min(16));
                let jittered = Duration::from_millis(rand::thread_rng().gen_range(0..=backoff.as_millis() as u64));
                let wait = jittered.max(asked).min(MAX_RETRY_WAIT);
                if lease.left() < wait + attempt_budget {
                    break Err(e);
                }
                tracing::info!(
                    account_id = row.account_id,
                    attempt,
                    "refresh failed transiently, retrying: {e}"
                );
                // The same refresh token again: the provider did not take it (5xx, 429, no connection), or it
                // does not replace refresh tokens (a timeout); see the module documentation.
                tokio::time::sleep(wait).await;
            }
            other => break other,
        }
    };
    match result {
        Ok(response) => {
            stored(
                delegator,
                row,
                provider,
                endpoints,
                lease,
                &refresh_token,
                response,
                attempt,
            )
            .await
        }
        Err(e) => failed(delegator, row, provider, lease, e, attempt).await,
    }
}

/// Whether a refresh that failed with `e` may be sent again with the same refresh token: a transient failure the
/// provider did not act on (5xx, 429, no connection), or a timeout at a provider that does not replace refresh
/// tokens. A timeout at one that does may have consumed the token: sending it again could be reuse.
fn may_resend(e: &TokenEndpointError, provider: &Provider) -> bool {
    e.is_transient() && !(matches!(e, TokenEndpointError::TimedOut) && provider.rotates_refresh_tokens)
}

/// Records a failed refresh: `needs_reconnect` for a dead grant, a cooldown for an outage. Only while the lease is
/// still ours: a holder that was overtaken changes nothing (the row may already hold fresh tokens).
async fn failed(
    delegator: &Arc<Delegator>,
    row: &TokenSetRow,
    provider: &Provider,
    lease: &Lease,
    e: TokenEndpointError,
    attempts: u32,
) -> RefreshResult {
    let settings = &delegator.settings;
    let now = now_ms();
    let error = e.to_string();
    match classify(e, provider) {
        Failure::Dead { reason, code } => dead_link(delegator, row, lease, reason, &code, &error).await,
        Failure::Transient(e) => {
            let mut tx = delegator.db.begin_write().await?;
            let failures = row.failures + 1;
            let cooldown = settings
                .cooldown
                .saturating_mul(1 << (failures - 1).clamp(0, 16) as u32)
                .min(settings.cooldown_max)
                .max(Duration::from_secs(e.retry_after().unwrap_or(0)));
            let retry_at = now + cooldown.as_millis() as i64;
            tracing::warn!(account_id = row.account_id, attempts, failures, "refresh failed: {e}");
            let released =
                repo::release_failed(&mut tx, row, &lease.owner, failures, Some(retry_at), &error, now).await?;
            let unavailable = released && row.failures == 0;
            if unavailable {
                let mut event = system_event(AuditAction::ProviderUnavailable, Outcome::Failure, row);
                event.details = serde_json::json!({
                    "error": error, "attempts": attempts, "retry_at": retry_at,
                });
                audit::record(&mut tx, &event, now).await?;
                let reason = format!("The provider could not renew the token: {error}");
                notify(
                    delegator,
                    &mut tx,
                    row,
                    EventType::AccountProviderUnavailable,
                    Some(reason),
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            if unavailable {
                outbox::committed();
            }
            Err(Unavailable::ProviderUnavailable { retry_at })
        }
    }
}

/// Ends a refresh whose grant is unusable: the lease is given back with the failure counted and, if it was still
/// ours, the account becomes `needs_reconnect` (with its audit event) in the same transaction.
async fn dead_link(
    delegator: &Delegator,
    row: &TokenSetRow,
    lease: &Lease,
    reason: &'static str,
    code: &str,
    error: &str,
) -> RefreshResult {
    let now = now_ms();
    let mut tx = delegator.db.begin_write().await?;
    if !repo::release_failed(&mut tx, row, &lease.owner, row.failures + 1, None, error, now).await? {
        // The row moved on without us (our lease lapsed, or the account was reconnected): what it holds now
        // decides, not this stale refusal.
        tx.rollback().await?;
        let current = repo::load_by_id(&delegator.db.pool, &row.id)
            .await?
            .ok_or(Unavailable::NotFound)?;
        return delegator.settle(&current, now_ms(), false).await;
    }
    let problem = status::Problem::NeedsReconnect { reason, cause: code };
    report(delegator, &mut tx, row, problem, now).await?;
    tx.commit().await?;
    outbox::committed();
    Err(Unavailable::NeedsReconnect { reason: reason.into() })
}

/// Stores a successful refresh (under the lease) and hands out the new token.
#[allow(clippy::too_many_arguments)]
async fn stored(
    delegator: &Arc<Delegator>,
    row: &TokenSetRow,
    provider: &Provider,
    endpoints: &Endpoints,
    lease: &Lease,
    sent: &SecretString,
    response: TokenResponse,
    attempts: u32,
) -> RefreshResult {
    let TokenResponse { mut sets, .. } = response;
    // Globus names the resource server of every token; a standard answer has one token, for this row.
    let position = sets
        .iter()
        .position(|s| s.resource_server == row.resource_server)
        .or_else(|| (sets.len() == 1 && provider_names_no_resource_server(delegator, row)).then_some(0));
    let Some(position) = position else {
        // The provider consumed the refresh token but sent nothing for this row: sending it again would be
        // reuse. Only a new authorization helps.
        let reason = "The provider's refresh answer held no token for this service. Reconnect the account.";
        return dead_link(delegator, row, lease, reason, "no_token_for_resource_server", reason).await;
    };
    let set: IssuedTokenSet = sets.swap_remove(position);
    let now = now_ms();
    match write_refreshed(delegator, row, lease, &set, sent, attempts, now).await {
        Ok(true) => {}
        Ok(false) => {
            // The row moved on under us: the account was reconnected or disconnected meanwhile. The token we got
            // is valid, so this caller still gets it; the row keeps the rest.
            if repo::load_by_id(&delegator.db.pool, &row.id).await?.is_none() {
                // Disconnected while the provider answered: nothing may act with these tokens and nobody else knows
                // them, so they are given back here (`accounts::disconnect` revoked the ones it found).
                revoke_orphaned(delegator, row, &set).await;
                return Err(Unavailable::NotFound);
            }
            tracing::error!(
                account_id = row.account_id,
                "refresh finished after its lease was lost; its result was not stored"
            );
            // Its rotated refresh token is known to nobody else: given back, so it cannot outlive the link. The
            // access token serves this caller and expires by itself.
            give_back(delegator, row, provider, endpoints, sent, Returned::RefreshOnly(&set)).await;
        }
        Err(err) => return lost_write(delegator, row, provider, endpoints, lease, sent, &set, &err).await,
    }
    let expires_at = set.expires_in.map(|s| now.saturating_add(s.saturating_mul(1000)));
    Ok(delegator.bearer_from(row, set.access_token, row.version + 1, expires_at, set.scopes.join(" ")))
}

/// Writes a refresh result under the lease, with its audit events, in one transaction; tried again while the lease
/// lasts when the database fails (no free connection, SQLite busy, PostgreSQL restarting): until it is written the
/// new tokens exist only here. `Ok(false)`: the lease is no longer ours, nothing was written.
async fn write_refreshed(
    delegator: &Delegator,
    row: &TokenSetRow,
    lease: &Lease,
    set: &IssuedTokenSet,
    sent: &SecretString,
    attempts: u32,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let mut pause = Duration::from_millis(50);
    loop {
        let result = match tokio::time::timeout(
            lease.left(),
            write_once(delegator, row, lease, set, sent, attempts, now),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        };
        match result {
            Err(err) if lease.left() > pause => {
                tracing::warn!(
                    account_id = row.account_id,
                    "storing a refresh failed, trying again: {err}"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            done => return done,
        }
    }
}

async fn write_once(
    delegator: &Delegator,
    row: &TokenSetRow,
    lease: &Lease,
    set: &IssuedTokenSet,
    sent: &SecretString,
    attempts: u32,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = delegator.db.begin_write().await?;
    if !repo::store_refreshed(&mut tx, &delegator.vault, row, &lease.owner, set, sent, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let mut event = system_event(AuditAction::TokenRefreshed, Outcome::Success, row);
    event.details = serde_json::json!({
        "rotated": set.refresh_token.is_some(), "attempts": attempts, "expires_in": set.expires_in,
    });
    audit::record(&mut tx, &event, now).await?;
    if row.failures > 0 {
        let mut event = system_event(AuditAction::ProviderRecovered, Outcome::Success, row);
        event.details = serde_json::json!({ "failures": row.failures });
        audit::record(&mut tx, &event, now).await?;
        notify(delegator, &mut tx, row, EventType::AccountRecovered, None, now).await?;
    }
    tx.commit().await?;
    if row.failures > 0 {
        outbox::committed();
    }
    Ok(true)
}

/// The provider answered, but its answer could not be stored before the lease ran out (the database stayed
/// unreachable). Nobody else will ever know these tokens, so they are given back to the provider — unless that would
/// end the whole grant (`revocation_ends_grant`) — and then, if the provider replaced the refresh token (the stored
/// one is spent), the account is marked `needs_reconnect`; if not, the lease is released and the stored refresh
/// token serves the next refresh. Both writes are best effort: a database still gone leaves the lease to run out,
/// and the next refresh finds it so (`lead`: an interrupted refresh is never resent to a rotating provider).
#[allow(clippy::too_many_arguments)]
async fn lost_write(
    delegator: &Delegator,
    row: &TokenSetRow,
    provider: &Provider,
    endpoints: &Endpoints,
    lease: &Lease,
    sent: &SecretString,
    set: &IssuedTokenSet,
    err: &sqlx::Error,
) -> RefreshResult {
    tracing::error!(
        account_id = row.account_id,
        "a refresh's result could not be stored ({err}); its tokens are given back to the provider"
    );
    let rotated = give_back(delegator, row, provider, endpoints, sent, Returned::All(set)).await;
    if rotated {
        let reason = "A renewed token could not be stored (the database was unavailable) and the provider had already \
                      replaced the previous one. Reconnect the account.";
        match dead_link(delegator, row, lease, reason, "refresh_not_stored", &err.to_string()).await {
            Err(Unavailable::Internal(e)) => {
                tracing::warn!(
                    account_id = row.account_id,
                    "recording the unstored refresh failed too: {e}"
                );
            }
            settled => return settled,
        }
    } else if let Err(e) = release(delegator, row, lease, "the refreshed tokens could not be stored").await {
        tracing::warn!(
            account_id = row.account_id,
            "releasing the lease of the unstored refresh failed too: {e}"
        );
    }
    Err(Unavailable::Internal("the refreshed tokens could not be stored".into()))
}

/// What of a refresh result [`give_back`] revokes.
enum Returned<'a> {
    /// Its refresh token (when rotated) and its access token.
    All(&'a IssuedTokenSet),
    /// Its refresh token, when rotated.
    RefreshOnly(&'a IssuedTokenSet),
}

/// Revokes tokens of a refresh result that will not be stored (one at a time, never the whole grant; nothing where
/// any revocation ends the grant the stored tokens live on). A refresh token the provider sent back unchanged is the
/// stored one and is kept. Best effort: a failure is logged. Returns whether the refresh token was rotated (the one
/// `sent` is then spent).
async fn give_back(
    delegator: &Delegator,
    row: &TokenSetRow,
    provider: &Provider,
    endpoints: &Endpoints,
    sent: &SecretString,
    returned: Returned<'_>,
) -> bool {
    use secrecy::ExposeSecret;
    let (set, with_access) = match returned {
        Returned::All(set) => (set, true),
        Returned::RefreshOnly(set) => (set, false),
    };
    let rotated = set
        .refresh_token
        .as_ref()
        .is_some_and(|new| new.expose_secret() != sent.expose_secret());
    if provider.revocation_ends_grant {
        return rotated;
    }
    let method = revocation::Method::of(provider, endpoints).single_token();
    let refresh = set
        .refresh_token
        .as_ref()
        .filter(|_| rotated)
        .map(|t| (t, TokenKind::Refresh));
    let access = with_access.then_some((&set.access_token, TokenKind::Access));
    for (token, kind) in refresh.into_iter().chain(access) {
        if method.takes(kind)
            && let Err(e) = revocation::revoke(&delegator.http, provider, &method, token, kind).await
        {
            tracing::warn!(
                account_id = row.account_id,
                "giving back an unstored refreshed token failed: {e}"
            );
        }
    }
    rotated
}

/// Hands a refresh result whose account was disconnected meanwhile to the revocation queue, which revokes it
/// (and keeps it, sealed, for a retry if the provider does not confirm).
async fn revoke_orphaned(delegator: &Delegator, row: &TokenSetRow, set: &IssuedTokenSet) {
    use crate::accounts::disconnect;
    let revoker = disconnect::Revoker {
        db: &delegator.db,
        vault: &delegator.vault,
        catalog: &delegator.catalog,
        http: &delegator.http,
    };
    let tokens: Vec<_> = set
        .refresh_token
        .iter()
        .map(|t| (t, TokenKind::Refresh))
        .chain([(&set.access_token, TokenKind::Access)])
        .collect();
    if let Err(err) = disconnect::revoke_orphans(revoker, row.user_id, &row.provider, &row.account_id, &tokens).await {
        tracing::error!(
            account_id = row.account_id,
            "queueing a disconnected account's refreshed tokens: {err}"
        );
    }
}

/// Whether the row's provider leaves the resource server unnamed (standard token responses), so a single token
/// in a refresh answer is this row's.
fn provider_names_no_resource_server(delegator: &Delegator, row: &TokenSetRow) -> bool {
    delegator
        .catalog
        .get(&row.provider)
        .is_some_and(|p| p.token_shape == crate::providers::TokenShape::Standard)
}

/// Gives the lease back without counting a failure or starting a cooldown (nothing was sent to the provider).
async fn release(delegator: &Delegator, row: &TokenSetRow, lease: &Lease, why: &str) -> Result<(), Unavailable> {
    let mut tx = delegator.db.begin_write().await?;
    repo::release_failed(&mut tx, row, &lease.owner, row.failures, None, why, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}

/// An event no user caused: the platform acting for the account's owner.
fn system_event(action: AuditAction, outcome: Outcome, row: &TokenSetRow) -> NewEvent<'_> {
    let mut event = NewEvent::by_user(action, outcome, row.user_id);
    event.actor_user_id = None;
    event.provider = Some(&row.provider);
    event.account_id = Some(&row.account_id);
    event.resource_server = Some(&row.resource_server);
    event
}

fn error_code(e: &TokenEndpointError) -> &str {
    match e {
        TokenEndpointError::Rejected { error, .. } => error,
        _ => "refresh_failed",
    }
}

/// Reports a problem the provider showed with `row`'s token (`accounts::status`: precedence, audit event and webhook),
/// in the caller's transaction; whether the status changed.
pub(crate) async fn report(
    delegator: &Delegator,
    conn: &mut sqlx::AnyConnection,
    row: &TokenSetRow,
    problem: status::Problem<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let seen = status::Seen {
        resource_server: Some(&row.resource_server),
    };
    Ok(
        status::report(conn, &delegator.catalog, &row.account_id, problem, seen, now)
            .await?
            .is_some(),
    )
}

/// The webhook of a token set's provider going away or coming back (no status change: the account stays as it is,
/// its calls fail fast meanwhile), in the caller's transaction.
async fn notify(
    delegator: &Delegator,
    conn: &mut sqlx::AnyConnection,
    row: &TokenSetRow,
    kind: EventType,
    reason: Option<String>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut data = payload::about_account(conn, &delegator.catalog, row.user_id, &row.account_id).await?;
    data.resource_server = Some(row.resource_server.clone());
    data.reason = reason;
    outbox::enqueue(conn, kind, data, now).await?;
    Ok(())
}

/// `needs_reconnect` for an access token that cannot be used or renewed.
pub(crate) async fn mark_needs_reconnect(
    delegator: &Delegator,
    row: &TokenSetRow,
    reason: &str,
    cause: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = delegator.db.begin_write().await?;
    let problem = status::Problem::NeedsReconnect { reason, cause };
    report(delegator, &mut tx, row, problem, now_ms()).await?;
    tx.commit().await?;
    outbox::committed();
    Ok(())
}

/// `needs_consent` with the scopes to request. Scopes asked for again while already `needs_consent` are added
/// to the ones recorded, without another event.
pub(crate) async fn mark_needs_consent(
    delegator: &Delegator,
    row: &TokenSetRow,
    scopes: &[String],
) -> Result<(), sqlx::Error> {
    let reason = "The provider asks for more consent before this can be done. Grant access to continue.";
    let mut tx = delegator.db.begin_write().await?;
    let problem = status::Problem::NeedsConsent { reason, scopes };
    if !report(delegator, &mut tx, row, problem, now_ms()).await? {
        // Already waiting for consent: remember these scopes too, without another event. (Or the link is dead:
        // then the scopes wait with it, for the reconnect to ask for them.)
        crate::accounts::repo::add_consent_scopes(&mut tx, &row.account_id, scopes).await?;
    }
    tx.commit().await?;
    outbox::committed();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16, error: &str) -> TokenEndpointError {
        TokenEndpointError::Rejected {
            status,
            error: error.into(),
            description: None,
            retry_after: None,
        }
    }

    #[test]
    fn refusals_are_dead_links_and_outages_are_transient() {
        let provider = |kind: &str| {
            let settings = serde_json::from_value(serde_json::json!({"kind": kind, "client_id": "c"})).unwrap();
            crate::providers::presets::resolve(kind, &settings)
        };
        let (globus, github) = (provider("globus"), provider("github"));
        let dead = |e| matches!(classify(e, &globus), Failure::Dead { .. });
        // A timeout may have consumed the token: a provider that rotates refresh tokens gets no second one.
        assert!(!dead(TokenEndpointError::TimedOut), "Globus keeps its refresh tokens");
        assert!(may_resend(&TokenEndpointError::TimedOut, &globus));
        assert!(matches!(
            classify(TokenEndpointError::TimedOut, &github),
            Failure::Dead { .. }
        ));
        assert!(!may_resend(&TokenEndpointError::TimedOut, &github));
        assert!(may_resend(
            &TokenEndpointError::Unreachable("connection refused".into()),
            &github
        ));
        assert!(dead(rejected(400, "invalid_grant")));
        assert!(dead(rejected(401, "invalid_client")));
        assert!(
            dead(rejected(400, "invalid_scope")),
            "retrying the same request cannot succeed"
        );
        assert!(!dead(rejected(503, "temporarily_unavailable")));
        assert!(!dead(rejected(429, "slow_down")));
        assert!(!dead(TokenEndpointError::ServerError {
            status: 502,
            html: true,
            retry_after: None
        }));
        assert!(!dead(TokenEndpointError::Unreachable("connection refused".into())));
        assert!(
            dead(TokenEndpointError::BadResponse {
                status: 200,
                what: "a body that is not JSON".into()
            }),
            "a 200 may have rotated the refresh token: it is never sent again"
        );
        assert!(!dead(TokenEndpointError::BadResponse {
            status: 404,
            what: "an HTML page instead of JSON".into()
        }));
    }
}
