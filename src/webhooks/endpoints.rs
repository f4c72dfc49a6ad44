//! Webhook endpoints: the receivers a platform's administrators register (`onbehalf webhook …`, the admin page).
//! The rules live here: the URL's (see [`super::address`]), the event types', the secret's (generated here, shown
//! once, sealed by the vault like tokens, bound to its row and column), rotation with an overlap, and the audit
//! event of every change.

use secrecy::ExposeSecret;

use super::{
    EndpointView, EventType, address,
    repo::{self, EndpointRow, NewEndpoint},
    signing,
};
use crate::{
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    config::WebhookSettings,
    db::{Db, now_ms},
    tokens::vault::{Slot, Vault, VaultError},
    webhooks::outbox,
};

/// The longest description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{0}")]
    Url(#[from] address::Refused),
    #[error("unknown event type `{0}` (the types are: {types})", types = EventType::subscribable().join(", "))]
    UnknownEvent(String),
    #[error("the description is longer than {MAX_DESCRIPTION_LEN} characters")]
    Description,
    #[error("no webhook endpoint has the id `{0}`")]
    NotFound(String),
    #[error("the endpoint's secret cannot be opened: {0}")]
    Secret(#[from] VaultError),
    #[error(
        "the endpoint's secret was rotated by someone else at the same moment; run it again if a new one is still wanted"
    )]
    Concurrent,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl EventType {
    /// The types an endpoint can subscribe to (the test event goes to whoever is tested).
    pub fn subscribable() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|t| *t != EventType::Test)
            .map(EventType::as_str)
            .collect()
    }
}

pub fn secret_slot(id: &str) -> Slot<'_> {
    Slot {
        table: "webhook_endpoints",
        row: id,
        column: "secret",
        owner: None,
    }
}

pub fn previous_secret_slot(id: &str) -> Slot<'_> {
    Slot {
        table: "webhook_endpoints",
        row: id,
        column: "previous_secret",
        owner: None,
    }
}

/// Who changed an endpoint, for the audit trail: an admin in the app, or nobody (the `webhook` command, or the
/// dispatcher disabling a failing endpoint).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangedBy<'a> {
    pub actor_user_id: Option<i64>,
    /// The service API key that asked, by name.
    pub key: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

fn event<'a>(action: AuditAction, endpoint: &'a EndpointRow, by: ChangedBy<'a>) -> NewEvent<'a> {
    NewEvent {
        action,
        outcome: Outcome::Success,
        actor_user_id: by.actor_user_id,
        subject_user_id: None,
        provider: None,
        account_id: None,
        resource_server: None,
        request_id: by.request_id,
        details: serde_json::json!({ "endpoint": endpoint.id, "url": endpoint.url, "key": by.key }),
    }
}

/// What `webhook add` asks for.
pub struct NewWebhook<'a> {
    pub url: &'a str,
    /// Empty: every type.
    pub events: &'a [String],
    pub description: Option<&'a str>,
}

/// Adds an endpoint; returns it and its secret, which is shown this once and never again.
pub async fn add(
    db: &Db,
    vault: &Vault,
    settings: &WebhookSettings,
    new: NewWebhook<'_>,
    by: ChangedBy<'_>,
) -> Result<(EndpointView, String), EndpointError> {
    let policy = address::Policy {
        allow_http_loopback: settings.allow_http_loopback,
    };
    let url = address::check_url(new.url.trim(), policy)?;
    address::check_resolved(&url, policy).await?;
    let mut events = Vec::new();
    for name in new
        .events
        .iter()
        .flat_map(|e| e.split([',', ' ']))
        .filter(|e| !e.is_empty())
    {
        match EventType::parse(name) {
            Some(kind) if kind != EventType::Test => {
                if !events.contains(&kind.as_str()) {
                    events.push(kind.as_str());
                }
            }
            _ => return Err(EndpointError::UnknownEvent(name.to_owned())),
        }
    }
    let description = new.description.map(str::trim).filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN) {
        return Err(EndpointError::Description);
    }
    let id = format!("ep_{}", uuid::Uuid::new_v4().simple());
    let secret = signing::generate_secret();
    let sealed = vault.seal(&secret, secret_slot(&id));
    let events = (!events.is_empty()).then(|| events.join(" "));
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    repo::insert_endpoint(
        &mut tx,
        &NewEndpoint {
            id: &id,
            url: url.as_str(),
            description,
            events: events.as_deref(),
            sealed_secret: &sealed,
        },
        now,
    )
    .await?;
    let row = repo::endpoint(&mut *tx, &id)
        .await?
        .ok_or_else(|| EndpointError::NotFound(id.clone()))?;
    let mut audit_event = event(AuditAction::WebhookEndpointAdded, &row, by);
    audit_event.details["events"] = events.clone().into();
    audit::record(&mut tx, &audit_event, now).await?;
    tx.commit().await?;
    Ok((row.view(), secret))
}

pub async fn list(db: &Db) -> Result<Vec<EndpointView>, sqlx::Error> {
    Ok(repo::endpoints(&db.pool).await?.iter().map(EndpointRow::view).collect())
}

async fn find(db: &Db, id: &str) -> Result<EndpointRow, EndpointError> {
    repo::endpoint(&db.pool, id)
        .await?
        .ok_or_else(|| EndpointError::NotFound(id.to_owned()))
}

/// Disables (`Some(reason)`) or enables (`None`) an endpoint; asking for the state it is in changes and records
/// nothing. While disabled, nothing is sent to it and no new deliveries are made for it; those already waiting go
/// out when it is enabled again (replay covers what happened in between).
pub async fn set_disabled(
    db: &Db,
    id: &str,
    disabled: Option<&str>,
    by: ChangedBy<'_>,
) -> Result<EndpointView, EndpointError> {
    let row = find(db, id).await?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    if repo::set_disabled(&mut tx, id, disabled, now).await? {
        let (action, reason) = match disabled {
            Some(reason) => (AuditAction::WebhookEndpointDisabled, Some(reason)),
            None => (AuditAction::WebhookEndpointEnabled, None),
        };
        let mut audit_event = event(action, &row, by);
        audit_event.details["reason"] = reason.into();
        audit::record(&mut tx, &audit_event, now).await?;
    }
    let row = repo::endpoint(&mut *tx, id)
        .await?
        .ok_or_else(|| EndpointError::NotFound(id.to_owned()))?;
    tx.commit().await?;
    if disabled.is_none() {
        outbox::committed();
    }
    Ok(row.view())
}

/// A new secret for the endpoint, shown this once; the current one keeps signing too for `rotation_overlap`, so
/// the receiver can switch without losing a message (Standard Webhooks allows several signatures).
pub async fn rotate_secret(
    db: &Db,
    vault: &Vault,
    settings: &WebhookSettings,
    id: &str,
    by: ChangedBy<'_>,
) -> Result<String, EndpointError> {
    let row = find(db, id).await?;
    let current = vault.open(&row.secret, secret_slot(id))?;
    let secret = signing::generate_secret();
    let now = now_ms();
    let until = now + settings.rotation_overlap.as_millis() as i64;
    let mut tx = db.begin_write().await?;
    let rotated = repo::rotate_secret(
        &mut tx,
        id,
        &row.secret,
        &vault.seal(&secret, secret_slot(id)),
        &vault.seal(current.expose_secret(), previous_secret_slot(id)),
        until,
        now,
    )
    .await?;
    if !rotated {
        return Err(EndpointError::Concurrent);
    }
    let mut audit_event = event(AuditAction::WebhookSecretRotated, &row, by);
    audit_event.details["previous_valid_until"] = until.into();
    audit::record(&mut tx, &audit_event, now).await?;
    tx.commit().await?;
    Ok(secret)
}

/// The keys that sign a delivery now: the current secret, and the previous one during its overlap.
pub fn signing_keys(
    vault: &Vault,
    endpoint_id: &str,
    secret: &str,
    previous: Option<&str>,
    previous_until: Option<i64>,
    now: i64,
) -> Result<Vec<Vec<u8>>, VaultError> {
    let mut keys = Vec::with_capacity(2);
    let current = vault.open(secret, secret_slot(endpoint_id))?;
    // Never an unsigned request: a secret that is not one is an error, not an empty signature.
    keys.push(signing::key_of(current.expose_secret()).ok_or(VaultError::Malformed)?);
    if let (Some(previous), Some(until)) = (previous, previous_until)
        && until > now
    {
        let previous = vault.open(previous, previous_secret_slot(endpoint_id))?;
        keys.extend(signing::key_of(previous.expose_secret()));
    }
    Ok(keys)
}

/// A `webhook.test` event to this endpoint only ("Send test event"); its id, and whether the endpoint is enabled
/// (a disabled one gets it once enabled).
pub async fn send_test(db: &Db, id: &str) -> Result<(String, bool), EndpointError> {
    let row = find(db, id).await?;
    let mut tx = db.begin_write().await?;
    let event_id = outbox::enqueue_test(&mut tx, id, now_ms()).await?;
    tx.commit().await?;
    outbox::committed();
    Ok((event_id, row.disabled_at.is_none()))
}

/// Disables the endpoints that have not succeeded since before `before` (checked again in the update: a success
/// recorded meanwhile keeps an endpoint enabled), each with its audit event; how many.
pub async fn disable_failing(db: &Db, before: i64, for_how_long: &str) -> Result<usize, sqlx::Error> {
    let mut disabled = 0;
    for row in repo::failing_since_before(&mut *db.pool.acquire().await?, before).await? {
        let reason = format!(
            "failing: no delivery succeeded for {for_how_long} ({} failed attempts)",
            row.consecutive_failures
        );
        let now = now_ms();
        let mut tx = db.begin_write().await?;
        if repo::disable_if_failing(&mut tx, &row.id, before, &reason, now).await? {
            let mut audit_event = event(AuditAction::WebhookEndpointDisabled, &row, ChangedBy::default());
            audit_event.details["reason"] = reason.clone().into();
            audit::record(&mut tx, &audit_event, now).await?;
            tracing::warn!(endpoint = row.id, "webhook endpoint disabled: {reason}");
            disabled += 1;
        }
        tx.commit().await?;
    }
    Ok(disabled)
}

/// What a replay asks for.
#[derive(Debug, Clone, Copy)]
pub enum Replay<'a> {
    /// One event again.
    Event(&'a str),
    /// Every event (of the endpoint's types) since this time, Unix ms.
    Since(i64),
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(
        "this endpoint never had an event with the id `{0}` (events are kept for webhooks.retention; replay since a time sends it events it never had)"
    )]
    NoSuchEvent(String),
}

impl From<sqlx::Error> for ReplayError {
    fn from(e: sqlx::Error) -> Self {
        ReplayError::Endpoint(e.into())
    }
}

/// Sends events again to an endpoint, as new deliveries with the events' own ids (receivers de-duplicate on them);
/// how many were queued.
pub async fn replay(db: &Db, id: &str, what: Replay<'_>, by: ChangedBy<'_>) -> Result<u64, ReplayError> {
    let row = find(db, id).await?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let queued = match what {
        Replay::Event(event_id) => {
            if repo::redeliver(&mut tx, id, event_id, now).await?.is_none() {
                return Err(ReplayError::NoSuchEvent(event_id.to_owned()));
            }
            1
        }
        Replay::Since(since) => repo::redeliver_since(&mut tx, id, since, now).await?,
    };
    let mut audit_event = event(AuditAction::WebhookReplayed, &row, by);
    audit_event.details["queued"] = queued.into();
    match what {
        Replay::Event(event_id) => audit_event.details["event"] = event_id.into(),
        Replay::Since(since) => audit_event.details["since"] = since.into(),
    }
    audit::record(&mut tx, &audit_event, now).await?;
    tx.commit().await?;
    outbox::committed();
    Ok(queued)
}

/// Seals every endpoint's secrets under the vault's current key (`keys rotate`); returns (re-sealed, left on
/// other keys because they did not open).
pub async fn reseal(db: &Db, vault: &Vault) -> Result<(u64, u64), sqlx::Error> {
    let (mut resealed, mut left) = (0, 0);
    for row in repo::endpoints(&db.pool).await? {
        let secret = vault.reseal(&row.secret, secret_slot(&row.id));
        let previous = row
            .previous_secret
            .as_deref()
            .map(|p| vault.reseal(p, previous_secret_slot(&row.id)))
            .transpose();
        match (secret, previous) {
            (Ok(None), Ok(None)) => {}
            (Ok(secret), Ok(previous)) => {
                let secret = secret.unwrap_or_else(|| row.secret.clone());
                let previous = previous.flatten().or_else(|| row.previous_secret.clone());
                if repo::replace_sealed(&db.pool, &row, &secret, previous.as_deref()).await? {
                    resealed += 1;
                }
            }
            _ => left += 1,
        }
    }
    Ok((resealed, left))
}
