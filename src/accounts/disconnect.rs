//! Disconnecting a linked account (DESIGN §3 "Disconnect"): the account and its token sets are deleted and every
//! token is revoked at the provider.
//!
//! Order matters. One transaction deletes the account and its token sets and moves each token into
//! `pending_revocations` (sealed again, under that table's associated data) with the `account_disconnected` event:
//! from that commit on nothing can act with the tokens, whatever happens next. Then each token is revoked; a revoked
//! (or expired, or not revocable) token's row is deleted; a failed one stays with its error, shown on the page with a
//! "Retry" button ([`retry`]). A crash between the two steps leaves the rows for the retry: a token is never lost
//! while it may still be live.
//!
//! A refresh in flight on another task when the account goes finds its row gone and does not store its result
//! (`delegation::refresh`, fenced commit); it hands the tokens it got to [`revoke_orphans`].
//!
//! A reconnect (relink, grant more) that replaces an account's tokens queues the replaced ones the same way
//! ([`queue_replaced`], in the reconnect's transaction) and revokes them right after ([`revoke_replaced`]): at a
//! provider where older refresh tokens stay valid they would otherwise outlive the link. They are revoked one token at
//! a time (never GitHub's grant deletion, which would end the new ones too), and not at all where one revocation ends
//! the whole grant (Google).
//!
//! Queued tokens are sealed like token sets, so `keys rotate` re-seals them too ([`reseal_pending`]). A token this
//! instance cannot open because it lacks the key it was sealed with (a key rolled out elsewhere first) is queued
//! still sealed, with the associated data it was sealed for (`sealed_for`): an instance that has the key revokes it.
//! Only a token that cannot be opened by anyone (altered, or moved) is dropped, and the outcome says so.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AnyPool, Row};

use super::{DisconnectOutcome, PendingRevocationView, repo, status};
use crate::{
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    db::{Db, now_ms},
    providers::{
        Catalog,
        revocation::{self, Method, TokenKind},
    },
    tokens::{
        repo::{SetKey, access_slot, refresh_slot},
        vault::{Slot, Vault, VaultError},
    },
    webhooks::{EventType, outbox, payload},
};

const TABLE: &str = "pending_revocations";

/// Why a token waits in the queue (`pending_revocations.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Disconnected,
    Replaced,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Disconnected => "disconnected",
            Reason::Replaced => "replaced",
        }
    }
}

pub use super::status::DisconnectedBy;

/// What revoking needs: the database (the queue), the vault (its sealed tokens), the catalog and the outbound
/// client. Built from the app state (`AppState::revoker`), or from the delegator when a refresh outlived its
/// account.
#[derive(Clone, Copy)]
pub struct Revoker<'a> {
    pub db: &'a Db,
    pub vault: &'a Vault,
    pub catalog: &'a Catalog,
    pub http: &'a reqwest::Client,
}

fn token_slot(row: &str) -> Slot<'_> {
    Slot {
        table: TABLE,
        row,
        column: "token",
        owner: None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DisconnectError {
    /// No such account, or not the caller's: the same answer for both.
    #[error("the account is not linked (any more)")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Deletes `user_id`'s account and revokes its tokens. The local tokens are gone when this returns, whatever
/// the provider answered; the outcome says what the provider did.
pub async fn disconnect(
    revoker: Revoker<'_>,
    user_id: i64,
    account_id: &str,
    by: DisconnectedBy<'_>,
    request_id: Option<&str>,
) -> Result<DisconnectOutcome, DisconnectError> {
    let now = now_ms();
    let mut tx = revoker.db.begin_write().await?;
    // As it is before it goes, for the webhook (read before the delete checks the owner; unused if it refuses).
    let before = status::before_disconnect(&mut tx, revoker.catalog, account_id).await?;
    // Token sets first (the account's delete would cascade them away unread); the owner check is in the statement.
    let sets = sqlx::query(
        "DELETE FROM token_sets WHERE account_id = $1 \
         AND account_id IN (SELECT id FROM linked_accounts WHERE user_id = $2) \
         RETURNING id, resource_server, access_token, refresh_token, expires_at",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    let Some(account) = repo::delete_account(&mut tx, user_id, account_id).await? else {
        // Not ours, or a concurrent disconnect won: nothing was deleted.
        tx.rollback().await?;
        return Err(DisconnectError::NotFound);
    };
    let label = account.label().to_owned();
    let mut moved = 0;
    let mut undecryptable = 0;
    for set in &sets {
        let id: String = set.try_get("id")?;
        let resource_server: String = set.try_get("resource_server")?;
        let key = SetKey {
            id: &id,
            account_id,
            resource_server: &resource_server,
        };
        let access: String = set.try_get("access_token")?;
        let refresh: Option<String> = set.try_get("refresh_token")?;
        let expires_at: Option<i64> = set.try_get("expires_at")?;
        let tokens = refresh
            .map(|sealed| (sealed, refresh_slot(key), TokenKind::Refresh, None))
            .into_iter()
            .chain([(access, access_slot(key), TokenKind::Access, expires_at)]);
        for (sealed, slot, kind, expires_at) in tokens {
            let token = match revoker.vault.open(&sealed, slot) {
                Ok(token) => QueuedToken::Open(token),
                // Not broken, only not ours to open: an instance with the key can revoke it.
                Err(VaultError::UnknownKey(_)) => QueuedToken::SealedFor {
                    associated_data: Vault::associated_data_of(&sealed, slot),
                    sealed,
                },
                Err(_) => {
                    // Nothing can be sent for it; the account's `error` state already told the user.
                    undecryptable += 1;
                    continue;
                }
            };
            let pending = Pending {
                user_id,
                provider: &account.provider,
                account_id,
                account_label: &label,
                kind,
                expires_at,
                reason: Reason::Disconnected,
            };
            insert(&mut tx, revoker.vault, &pending, token, now).await?;
            moved += 1;
        }
    }
    let actor = by.actor(user_id);
    let mut event = NewEvent::by_user(AuditAction::AccountDisconnected, Outcome::Success, user_id);
    event.actor_user_id = actor;
    event.provider = Some(&account.provider);
    event.account_id = Some(account_id);
    event.request_id = request_id;
    event.details = serde_json::json!({
        "label": label, "token_sets": sets.len(), "tokens": moved, "undecryptable": undecryptable,
    });
    match by {
        DisconnectedBy::Admin { reason, .. } => {
            event.details["forced"] = true.into();
            event.details["reason"] = reason.into();
        }
        DisconnectedBy::Platform { key } => event.details["key"] = key.into(),
        DisconnectedBy::Owner => {}
    }
    status::disconnected(&mut tx, &event, before, by, now).await?;
    tx.commit().await?;
    outbox::committed();

    let rows = pending_rows(&revoker.db.pool, user_id, Some(account_id)).await?;
    let mut outcome = revoke_rows(revoker, user_id, actor, request_id, rows)
        .await?
        .into_iter()
        .next()
        .unwrap_or_else(|| DisconnectOutcome {
            provider_id: account.provider.clone(),
            provider_name: revoker.catalog.display_name(&account.provider),
            account_label: label,
            revoked: 0,
            failed: 0,
            not_offered: false,
            error: None,
        });
    if undecryptable > 0 {
        // Gone with the account, but never revoked: the provider may still honour them until they expire.
        outcome.failed += undecryptable;
        outcome.error = Some(format!(
            "{undecryptable} stored token(s) could not be decrypted here, so they could not be sent for revocation"
        ));
    }
    Ok(outcome)
}

/// Queues tokens a refresh obtained for an account that was disconnected meanwhile, and revokes them: nobody
/// else knows them, and they must not outlive the account.
pub async fn revoke_orphans(
    revoker: Revoker<'_>,
    user_id: i64,
    provider: &str,
    account_id: &str,
    tokens: &[(&secrecy::SecretString, TokenKind)],
) -> Result<(), sqlx::Error> {
    let label: Option<String> = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE account_id = $1 AND action = 'account_disconnected' \
         AND outcome = 'success' LIMIT 1",
    )
    .bind(account_id)
    .fetch_optional(&revoker.db.pool)
    .await?
    .and_then(|details: String| serde_json::from_str::<serde_json::Value>(&details).ok())
    .and_then(|d| d["label"].as_str().map(str::to_owned));
    let now = now_ms();
    let mut tx = revoker.db.begin_write().await?;
    for (token, kind) in tokens {
        let pending = Pending {
            user_id,
            provider,
            account_id,
            account_label: label.as_deref().unwrap_or(account_id),
            kind: *kind,
            expires_at: None,
            reason: Reason::Disconnected,
        };
        insert(
            &mut tx,
            revoker.vault,
            &pending,
            QueuedToken::Open((*token).clone()),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    let rows = pending_rows(&revoker.db.pool, user_id, Some(account_id)).await?;
    revoke_rows(revoker, user_id, Some(user_id), None, rows).await?;
    Ok(())
}

/// Queues, in the reconnect's transaction, the tokens it replaced (`tokens::repo::store_issued`'s answer), unless
/// revoking one would end the whole grant the new tokens live on (`revocation_ends_grant`). A token the provider
/// issued again unchanged, an access token already expired and one that cannot be opened by anyone are left out.
/// Returns how many were queued; [`revoke_replaced`] sends them once the transaction committed.
#[allow(clippy::too_many_arguments)]
pub async fn queue_replaced(
    conn: &mut AnyConnection,
    vault: &Vault,
    provider: &crate::providers::Provider,
    user_id: i64,
    account_id: &str,
    account_label: &str,
    replaced: &[crate::tokens::repo::Replaced],
    issued: &[crate::tokens::IssuedTokenSet],
    now: i64,
) -> Result<usize, sqlx::Error> {
    use secrecy::ExposeSecret;
    if provider.revocation_ends_grant {
        return Ok(0);
    }
    let mut queued = 0;
    for old in replaced {
        let new = issued.iter().find(|s| s.resource_server == old.resource_server);
        let key = SetKey {
            id: &old.id,
            account_id,
            resource_server: &old.resource_server,
        };
        let tokens = [
            (
                old.refresh_token.as_deref(),
                refresh_slot(key),
                TokenKind::Refresh,
                None,
                new.and_then(|n| n.refresh_token.as_ref()),
            ),
            (
                Some(old.access_token.as_str()),
                access_slot(key),
                TokenKind::Access,
                old.expires_at,
                new.map(|n| &n.access_token),
            ),
        ];
        for (sealed, slot, kind, expires_at, successor) in tokens {
            let Some(sealed) = sealed else { continue };
            if expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            let token = match vault.open(sealed, slot) {
                // The provider handed the same token out again: it is the live one.
                Ok(token) if successor.is_some_and(|s| s.expose_secret() == token.expose_secret()) => continue,
                Ok(token) => QueuedToken::Open(token),
                Err(VaultError::UnknownKey(_)) => QueuedToken::SealedFor {
                    sealed: sealed.to_owned(),
                    associated_data: Vault::associated_data_of(sealed, slot),
                },
                Err(_) => continue,
            };
            let pending = Pending {
                user_id,
                provider: &provider.id,
                account_id,
                account_label,
                kind,
                expires_at,
                reason: Reason::Replaced,
            };
            insert(conn, vault, &pending, token, now).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Revokes `account_id`'s replaced tokens on a task of its own (the reconnect's answer does not wait for the
/// provider); what fails stays queued, shown on the page with a retry.
pub async fn revoke_replaced(revoker: Revoker<'_>, user_id: i64, account_id: &str) {
    let result = async {
        let mut rows = pending_rows(&revoker.db.pool, user_id, Some(account_id)).await?;
        rows.retain(|row| row.reason == Reason::Replaced);
        revoke_rows(revoker, user_id, Some(user_id), None, rows).await
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(account_id, "revoking replaced tokens failed: {err}");
    }
}

/// Tries again every revocation of the caller's that failed before, at the providers `allowed` (`None`: all); one
/// outcome per disconnected account.
pub async fn retry(
    revoker: Revoker<'_>,
    user_id: i64,
    allowed: Option<&[String]>,
    request_id: Option<&str>,
) -> Result<Vec<DisconnectOutcome>, sqlx::Error> {
    let mut rows = pending_rows(&revoker.db.pool, user_id, None).await?;
    rows.retain(|row| allowed.is_none_or(|list| list.contains(&row.provider)));
    revoke_rows(revoker, user_id, Some(user_id), request_id, rows).await
}

/// The caller's failed revocations, one entry per disconnected account, oldest first.
pub async fn pending_for_user(
    db: &Db,
    catalog: &Catalog,
    user_id: i64,
) -> Result<Vec<PendingRevocationView>, sqlx::Error> {
    // One row per account, aggregated by the database; the sealed token column is never read for a page. The
    // latest error is the one of the most recently tried token (ties: any of them).
    let rows = sqlx::query(
        "SELECT provider, account_id, MIN(account_label) AS account_label, COUNT(*) AS tokens, \
         MAX(attempts) AS attempts, MIN(created_at) AS since, MIN(reason) AS reason, \
         (SELECT p2.last_error FROM pending_revocations p2 WHERE p2.account_id = p.account_id \
          AND p2.user_id = p.user_id AND p2.last_error IS NOT NULL ORDER BY p2.updated_at DESC LIMIT 1) AS last_error \
         FROM pending_revocations p WHERE user_id = $1 GROUP BY user_id, provider, account_id ORDER BY since, account_id",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let provider: String = r.try_get("provider")?;
            Ok(PendingRevocationView {
                provider_name: catalog.display_name(&provider),
                provider_id: provider,
                account_id: r.try_get("account_id")?,
                account_label: r.try_get("account_label")?,
                tokens: u32::try_from(r.try_get::<i64, _>("tokens")?).unwrap_or(u32::MAX),
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                since: r.try_get("since")?,
                // 'disconnected' sorts first: an account whose queue holds any of those was disconnected.
                replaced: r.try_get::<String, _>("reason")? == Reason::Replaced.as_str(),
            })
        })
        .collect()
}

/// Revokes `rows` (grouped by account) of `user_id`, deleting each row that needs no more work, and records one
/// `tokens_revoked` event per account with what happened, as done by `actor`.
async fn revoke_rows(
    revoker: Revoker<'_>,
    user_id: i64,
    actor: Option<i64>,
    request_id: Option<&str>,
    rows: Vec<PendingRow>,
) -> Result<Vec<DisconnectOutcome>, sqlx::Error> {
    let mut by_account: BTreeMap<String, Vec<PendingRow>> = BTreeMap::new();
    for row in rows {
        by_account.entry(row.account_id.clone()).or_default().push(row);
    }
    let mut outcomes = Vec::new();
    for (account_id, mut rows) in by_account {
        // Refresh tokens first: revoking one ends the access tokens issued with it (RFC 7009 §2.1).
        rows.sort_by_key(|r| r.kind != TokenKind::Refresh);
        let first = &rows[0];
        let mut outcome = DisconnectOutcome {
            provider_id: first.provider.clone(),
            provider_name: revoker.catalog.display_name(&first.provider),
            account_label: first.account_label.clone(),
            revoked: 0,
            failed: 0,
            not_offered: false,
            error: None,
        };
        let method = match revoker.catalog.get(&first.provider) {
            None => Err("the provider is no longer configured here".to_owned()),
            Some(provider) => provider
                .endpoints(revoker.http)
                .await
                .map(|endpoints| (provider.clone(), Method::of(&provider, &endpoints)))
                .map_err(|e| e.to_string()),
        };
        let now = now_ms();
        for row in &rows {
            let result = match &method {
                Err(error) => Err(error.clone()),
                Ok((_, Method::NotOffered)) => {
                    outcome.not_offered = true;
                    Ok(false)
                }
                // GitHub's grant deletion takes the refresh tokens along with the access token it is sent.
                Ok((_, method)) if !row.method(method).takes(row.kind) => Ok(false),
                Ok(_) if row.kind == TokenKind::Access && row.expires_at.is_some_and(|at| at <= now) => Ok(false),
                Ok((provider, method)) => match row.open(revoker.vault) {
                    // A key missing on this instance (or removed too early): kept, a retry with the key works.
                    Err(err @ VaultError::UnknownKey(_)) => Err(format!("the stored token cannot be opened: {err}")),
                    Err(err) => {
                        // Altered or moved: it cannot ever be sent, so a retry could not work.
                        delete(&revoker.db.pool, &row.id).await?;
                        Err(format!("the stored token cannot be decrypted: {err}"))
                    }
                    Ok(token) => revocation::revoke(revoker.http, provider, &row.method(method), &token, row.kind)
                        .await
                        .map(|()| true)
                        .map_err(|e| e.to_string()),
                },
            };
            match result {
                Ok(sent) => {
                    delete(&revoker.db.pool, &row.id).await?;
                    outcome.revoked += u32::from(sent);
                }
                Err(error) => {
                    record_failure(&revoker.db.pool, &row.id, &error, now).await?;
                    outcome.failed += 1;
                    outcome.error = Some(error);
                }
            }
        }
        let outcome_kind = if outcome.failed == 0 {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = NewEvent::by_user(AuditAction::TokensRevoked, outcome_kind, user_id);
        event.actor_user_id = actor;
        event.provider = Some(&outcome.provider_id);
        event.account_id = Some(&account_id);
        event.request_id = request_id;
        event.details = serde_json::json!({
            "revoked": outcome.revoked, "failed": outcome.failed, "not_offered": outcome.not_offered,
            "error": outcome.error,
        });
        let mut tx = revoker.db.begin_write().await?;
        audit::record(&mut tx, &event, now_ms()).await?;
        if outcome.failed > 0 {
            let mut data = payload::EventData::new_for(payload::user(&mut tx, user_id).await?, None);
            data.account_id = Some(account_id.clone());
            data.provider = Some(outcome.provider_id.clone());
            data.failed_tokens = Some(outcome.failed);
            data.reason = outcome.error.clone();
            outbox::enqueue(&mut tx, EventType::AccountRevocationFailed, data, now_ms()).await?;
        }
        tx.commit().await?;
        if outcome.failed > 0 {
            outbox::committed();
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

struct Pending<'a> {
    user_id: i64,
    provider: &'a str,
    account_id: &'a str,
    account_label: &'a str,
    kind: TokenKind,
    expires_at: Option<i64>,
    reason: Reason,
}

/// A token going into the queue: opened (sealed again for the queue's row), or still sealed as it was found.
enum QueuedToken {
    Open(secrecy::SecretString),
    SealedFor { sealed: String, associated_data: String },
}

struct PendingRow {
    id: String,
    provider: String,
    account_id: String,
    account_label: String,
    token: String,
    sealed_for: Option<String>,
    kind: TokenKind,
    expires_at: Option<i64>,
    reason: Reason,
}

impl PendingRow {
    fn open(&self, vault: &Vault) -> Result<secrecy::SecretString, VaultError> {
        open_queued(vault, &self.id, &self.token, self.sealed_for.as_deref())
    }

    /// How this token is revoked: a replaced one alone, never by ending the grant its successor lives on.
    fn method(&self, method: &Method) -> Method {
        match self.reason {
            Reason::Disconnected => method.clone(),
            Reason::Replaced => method.clone().single_token(),
        }
    }
}

/// A queued token in the clear: sealed for the queue's row, or (`sealed_for`) still for the slot it came from.
fn open_queued(
    vault: &Vault,
    id: &str,
    sealed: &str,
    sealed_for: Option<&str>,
) -> Result<secrecy::SecretString, VaultError> {
    match sealed_for {
        Some(associated_data) => vault.open_for(sealed, associated_data),
        None => vault.open(sealed, token_slot(id)),
    }
}

async fn insert(
    conn: &mut AnyConnection,
    vault: &Vault,
    pending: &Pending<'_>,
    token: QueuedToken,
    now: i64,
) -> Result<(), sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let (sealed, sealed_for) = match token {
        QueuedToken::Open(token) => (
            vault.seal(secrecy::ExposeSecret::expose_secret(&token), token_slot(&id)),
            None,
        ),
        QueuedToken::SealedFor {
            sealed,
            associated_data,
        } => (sealed, Some(associated_data)),
    };
    sqlx::query(
        "INSERT INTO pending_revocations (id, user_id, provider, account_id, account_label, token, sealed_for, \
         token_type_hint, expires_at, attempts, last_error, created_at, updated_at, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, NULL, $10, $10, $11)",
    )
    .bind(&id)
    .bind(pending.user_id)
    .bind(pending.provider)
    .bind(pending.account_id)
    .bind(pending.account_label)
    .bind(sealed)
    .bind(sealed_for)
    .bind(pending.kind.hint())
    .bind(pending.expires_at)
    .bind(now)
    .bind(pending.reason.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

async fn pending_rows(pool: &AnyPool, user_id: i64, account_id: Option<&str>) -> Result<Vec<PendingRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, provider, account_id, account_label, token, sealed_for, token_type_hint, expires_at, reason \
         FROM pending_revocations \
         WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR account_id = $2) ORDER BY created_at, id",
    )
    .bind(user_id)
    .bind(account_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let hint: String = r.try_get("token_type_hint")?;
            Ok(PendingRow {
                id: r.try_get("id")?,
                provider: r.try_get("provider")?,
                account_id: r.try_get("account_id")?,
                account_label: r.try_get("account_label")?,
                token: r.try_get("token")?,
                sealed_for: r.try_get("sealed_for")?,
                reason: if r.try_get::<String, _>("reason")? == "replaced" {
                    Reason::Replaced
                } else {
                    Reason::Disconnected
                },
                kind: TokenKind::parse(&hint).ok_or_else(|| sqlx::Error::Decode(format!("hint {hint}").into()))?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}

async fn delete(pool: &AnyPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM pending_revocations WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

async fn record_failure(pool: &AnyPool, id: &str, error: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pending_revocations SET attempts = attempts + 1, last_error = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Re-seals queued tokens under the vault's current key and for the queue's own row (`keys rotate`); returns
/// (re-sealed, left on old keys). A row is replaced only if it still holds what was read (compare-and-swap on the
/// sealed value).
pub async fn reseal_pending(db: &Db, vault: &Vault) -> Result<(u64, u64), sqlx::Error> {
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, token, sealed_for FROM pending_revocations ORDER BY id")
            .fetch_all(&db.pool)
            .await?;
    let (mut resealed, mut left) = (0, 0);
    for (id, sealed, sealed_for) in rows {
        if sealed_for.is_none() && Vault::key_id_of(&sealed).is_ok_and(|key| key == vault.current_key_id()) {
            continue;
        }
        let Ok(token) = open_queued(vault, &id, &sealed, sealed_for.as_deref()) else {
            left += 1;
            continue;
        };
        let fresh = vault.seal(secrecy::ExposeSecret::expose_secret(&token), token_slot(&id));
        let done =
            sqlx::query("UPDATE pending_revocations SET token = $1, sealed_for = NULL WHERE id = $2 AND token = $3")
                .bind(fresh)
                .bind(&id)
                .bind(&sealed)
                .execute(&db.pool)
                .await?;
        resealed += done.rows_affected();
    }
    Ok((resealed, left))
}
