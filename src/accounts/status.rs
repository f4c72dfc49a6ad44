//! The one owner of an account's status (DESIGN §3 "Account status has one owner").
//!
//! Every change of `linked_accounts.status` is made here, and each one writes, in the caller's transaction, the
//! status, its audit event and its webhook event: the page, the trail and the platform never disagree, and a change
//! that rolls back leaves none of the three. Nothing else writes the column (`tests/it/status_owner.rs` reads the
//! source to hold that).
//!
//! **Precedence.** A problem replaces the status only when it is worse ([`severity`]): `error` (a token that does not
//! decrypt) over `needs_reconnect` (tokens that cannot be used or renewed) over `needs_consent` (more scopes
//! wanted) over `active`. So a consent demand never hides a dead link, and a second report of the same problem is no
//! change at all: one audit event and one webhook per change, however many callers saw the cause. Only a new
//! authorization ([`relinked`]) makes an account `active` again, from any state.
//!
//! **Concurrency.** The status is compared and swapped (`WHERE status = <the one read>`): of two concurrent changes
//! one wins and records; the other reads the new status again and applies the precedence to it (so a consent demand
//! racing a dead link on PostgreSQL still ends `needs_reconnect`).
//!
//! Disconnecting deletes the account rather than changing its status; its audit event and webhook are written here
//! too ([`disconnected`]), from the account as it was just before.

use sqlx::{AnyConnection, Row};

use super::{AccountStatus, LinkIntent, LinkedAccountView};
use crate::{
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    db::{Db, now_ms},
    providers::{Catalog, identity::ExternalIdentity},
    tokens::vault::VaultError,
    webhooks::{
        EventType, outbox,
        payload::{self, EventData},
    },
};

/// How bad a status is; a problem replaces only a less severe status.
pub fn severity(status: AccountStatus) -> u8 {
    match status {
        AccountStatus::Active => 0,
        AccountStatus::NeedsConsent => 1,
        AccountStatus::NeedsReconnect => 2,
        AccountStatus::Error | AccountStatus::Revoked => 3,
    }
}

/// What went wrong with an account.
#[derive(Debug, Clone, Copy)]
pub enum Problem<'a> {
    /// Its tokens cannot be used or renewed (`cause`: the provider's error code or what we found).
    NeedsReconnect { reason: &'a str, cause: &'a str },
    /// The provider wants consent to `scopes` first.
    NeedsConsent { reason: &'a str, scopes: &'a [String] },
    /// A stored token does not decrypt (`detail` names the key, never a value).
    Undecryptable { reason: &'a str, detail: &'a str },
}

impl<'a> Problem<'a> {
    pub fn status(self) -> AccountStatus {
        match self {
            Problem::NeedsReconnect { .. } => AccountStatus::NeedsReconnect,
            Problem::NeedsConsent { .. } => AccountStatus::NeedsConsent,
            Problem::Undecryptable { .. } => AccountStatus::Error,
        }
    }

    fn reason(self) -> &'a str {
        match self {
            Problem::NeedsReconnect { reason, .. }
            | Problem::NeedsConsent { reason, .. }
            | Problem::Undecryptable { reason, .. } => reason,
        }
    }
}

/// Which token set showed the problem, for the audit event (`None`: the account as a whole).
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen<'a> {
    pub resource_server: Option<&'a str>,
}

/// Puts the account in the problem's status, unless it is already there or somewhere worse; returns the status it
/// had when it changed (then the audit event and the webhook are written), `None` when nothing changed.
pub async fn report(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    account_id: &str,
    problem: Problem<'_>,
    seen: Seen<'_>,
    now: i64,
) -> Result<Option<AccountStatus>, sqlx::Error> {
    let to = problem.status();
    let scopes = match problem {
        Problem::NeedsConsent { scopes, .. } => Some(scopes.join(" ")),
        _ => None,
    };
    // Compare and swap, read again when another change got in between (it may have left a status this problem
    // outranks): bounded, because each lost round means another change committed.
    let mut rounds = 0;
    let (before, user_id, provider) = loop {
        let Some(current) = sqlx::query("SELECT status, user_id, provider FROM linked_accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let before = AccountStatus::parse(&current.try_get::<String, _>("status")?).unwrap_or(AccountStatus::Error);
        if severity(to) <= severity(before) {
            return Ok(None);
        }
        let done = sqlx::query(
            "UPDATE linked_accounts SET status = $1, status_reason = $2, consent_scopes = $3, updated_at = $4 \
             WHERE id = $5 AND status = $6",
        )
        .bind(to.as_str())
        .bind(problem.reason())
        .bind(scopes.as_deref())
        .bind(now)
        .bind(account_id)
        .bind(before.as_str())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            break (
                before,
                current.try_get::<i64, _>("user_id")?,
                current.try_get::<String, _>("provider")?,
            );
        }
        rounds += 1;
        if rounds == 5 {
            return Err(sqlx::Error::Protocol(format!(
                "account {account_id}: its status kept changing under five attempts to set it"
            )));
        }
    };

    let (action, details) = match problem {
        Problem::Undecryptable { detail, .. } => {
            (AuditAction::TokenUndecryptable, serde_json::json!({ "reason": detail }))
        }
        Problem::NeedsReconnect { reason, cause } => (
            AuditAction::AccountStatusChanged,
            serde_json::json!({ "from": before.as_str(), "to": to.as_str(), "reason": reason, "cause": cause }),
        ),
        Problem::NeedsConsent { reason, scopes } => (
            AuditAction::AccountStatusChanged,
            serde_json::json!({
                "from": before.as_str(), "to": to.as_str(), "reason": reason, "cause": "consent_required",
                "scopes": scopes,
            }),
        ),
    };
    let mut event = NewEvent::by_user(action, Outcome::Failure, user_id);
    event.actor_user_id = None;
    event.provider = Some(&provider);
    event.account_id = Some(account_id);
    event.resource_server = seen.resource_server;
    event.details = details;
    audit::record(conn, &event, now).await?;

    let mut data = payload::about_account(conn, catalog, user_id, account_id).await?;
    data.reason = Some(problem.reason().to_owned());
    let kind = match problem {
        Problem::NeedsConsent { scopes, .. } => {
            data.scopes = Some(scopes.to_vec());
            EventType::AccountNeedsConsent
        }
        // An undecryptable token asks the same of the user: reconnect, which stores new tokens.
        Problem::NeedsReconnect { .. } | Problem::Undecryptable { .. } => EventType::AccountNeedsReconnect,
    };
    outbox::enqueue(conn, kind, data, now).await?;
    Ok(Some(before))
}

/// An account a link's callback stored: the row ([`create`] or [`reactivate`]), then the token sets, then
/// [`announce_link`] with the audit event and the webhook (which shows the token sets).
pub struct Stored<'a> {
    pub user_id: i64,
    pub provider: &'a str,
    pub account_id: &'a str,
    pub intent: LinkIntent,
    /// A new account, or one linked again.
    pub new: bool,
    /// The audit event's details (the resource servers and scopes granted).
    pub details: serde_json::Value,
    pub request_id: Option<&'a str>,
}

/// A new account's row, `active`.
pub async fn create(
    conn: &mut AnyConnection,
    stored: &Stored<'_>,
    identity: &ExternalIdentity,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO linked_accounts (id, user_id, provider, subject, username, display_name, email, status, \
         last_refreshed_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8, $8)",
    )
    .bind(stored.account_id)
    .bind(stored.user_id)
    .bind(stored.provider)
    .bind(&identity.subject)
    .bind(&identity.username)
    .bind(&identity.name)
    .bind(&identity.email)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// An account authorized again (reconnect, grant, or the same identity linked again): `active` from whatever it
/// was, with the identity's fresh display facts and no scopes left wanting.
pub async fn reactivate(
    conn: &mut AnyConnection,
    account_id: &str,
    identity: &ExternalIdentity,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE linked_accounts SET username = $2, display_name = $3, email = $4, status = 'active', \
         status_reason = NULL, consent_scopes = NULL, last_refreshed_at = $5, updated_at = $5 WHERE id = $1",
    )
    .bind(account_id)
    .bind(&identity.username)
    .bind(&identity.name)
    .bind(&identity.email)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The audit event and the webhook of a stored link: `account.linked` for a new account, `account.scopes_granted`
/// after "Grant access", `account.reconnected` otherwise.
pub async fn announce_link(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    stored: Stored<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (action, kind) = match (stored.new, stored.intent) {
        (true, _) => (AuditAction::AccountLinked, EventType::AccountLinked),
        (false, LinkIntent::Grant) => (AuditAction::AccountRelinked, EventType::AccountScopesGranted),
        (false, _) => (AuditAction::AccountRelinked, EventType::AccountReconnected),
    };
    let mut event = NewEvent::by_user(action, Outcome::Success, stored.user_id);
    event.provider = Some(stored.provider);
    event.account_id = Some(stored.account_id);
    event.request_id = stored.request_id;
    event.details = stored.details;
    audit::record(conn, &event, now).await?;
    let data = payload::about_account(conn, catalog, stored.user_id, stored.account_id).await?;
    outbox::enqueue(conn, kind, data, now).await?;
    Ok(())
}

/// Who asked for a disconnect, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub enum DisconnectedBy<'a> {
    /// The account's owner.
    Owner,
    /// An admin, with the reason they gave (the user reads it in their activity).
    Admin { user_id: i64, reason: &'a str },
    /// The platform's backend, through the service API with the named key (no person acted).
    Platform { key: &'a str },
}

impl DisconnectedBy<'_> {
    /// As the webhook names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectedBy::Owner => "user",
            DisconnectedBy::Admin { .. } => "admin",
            DisconnectedBy::Platform { .. } => "platform",
        }
    }

    /// The admin's reason, shown to the user and sent to the platform.
    pub fn reason(&self) -> Option<&str> {
        match self {
            DisconnectedBy::Admin { reason, .. } => Some(reason),
            _ => None,
        }
    }

    pub(super) fn actor(self, owner: i64) -> Option<i64> {
        match self {
            DisconnectedBy::Owner => Some(owner),
            DisconnectedBy::Admin { user_id, .. } => Some(user_id),
            DisconnectedBy::Platform { .. } => None,
        }
    }
}

/// The account as it is now, before [`disconnected`] deletes it (the webhook shows what went away).
pub async fn before_disconnect(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    account_id: &str,
) -> Result<Option<LinkedAccountView>, sqlx::Error> {
    payload::account(conn, catalog, account_id).await
}

/// The audit event (built by the caller, who knows what was queued for revocation) and `account.disconnected` of
/// an account deleted in this transaction.
pub async fn disconnected(
    conn: &mut AnyConnection,
    event: &NewEvent<'_>,
    account: Option<LinkedAccountView>,
    by: DisconnectedBy<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    audit::record(conn, event, now).await?;
    let Some(user_id) = event.subject_user_id else {
        return Ok(());
    };
    let mut data = EventData::new_for(payload::user(conn, user_id).await?, account);
    data.disconnected_by = Some(by.as_str().to_owned());
    data.reason = by.reason().map(str::to_owned);
    outbox::enqueue(conn, EventType::AccountDisconnected, data, now).await?;
    Ok(())
}

/// Marks the account `error` because one of its stored tokens does not decrypt (with its audit
/// event and webhook, in one transaction). The reason names the key, never a value.
pub async fn mark_undecryptable(
    db: &Db,
    catalog: &Catalog,
    account_id: &str,
    err: &VaultError,
) -> Result<(), sqlx::Error> {
    let reason = format!("A stored token cannot be decrypted: {err}. Reconnect the account to store new tokens.");
    let detail = err.to_string();
    let problem = Problem::Undecryptable {
        reason: &reason,
        detail: &detail,
    };
    let mut tx = db.begin_write().await?;
    report(&mut tx, catalog, account_id, problem, Seen::default(), now_ms()).await?;
    tx.commit().await?;
    outbox::committed();
    Ok(())
}
