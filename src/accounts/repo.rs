//! SQL for `oauth_flows` and `linked_accounts`.

use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use super::{AccountStatus, LinkIntent};
use crate::tokens::repo::{self as tokens, TokenSetMeta};

/// A pending authorization, as stored (the state itself is only kept hashed).
#[derive(Clone)]
pub struct FlowRow {
    pub state_hash: String,
    pub session_hash: String,
    pub user_id: i64,
    pub provider: String,
    pub intent: LinkIntent,
    pub account_id: Option<String>,
    pub pkce_verifier: String,
    pub nonce: Option<String>,
    pub requested_scopes: Vec<String>,
    pub return_to: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for FlowRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRow")
            .field("user_id", &self.user_id)
            .field("provider", &self.provider)
            .field("intent", &self.intent)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

const FLOW_COLUMNS: &str = "state_hash, session_hash, user_id, provider, intent, account_id, pkce_verifier, nonce, \
                            requested_scopes, return_to, created_at, expires_at";

/// How many pending flows one session keeps: more tabs than anyone opens at once. A session that starts more loses
/// its oldest (their callbacks then say the link attempt is unknown), so a script cannot fill the table through one
/// session.
pub const MAX_PENDING_FLOWS_PER_SESSION: i64 = 20;

/// Stores a new flow, and forgets the session's oldest pending ones past [`MAX_PENDING_FLOWS_PER_SESSION`].
pub async fn insert_flow(pool: &AnyPool, flow: &FlowRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO oauth_flows ({FLOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&flow.state_hash)
    .bind(&flow.session_hash)
    .bind(flow.user_id)
    .bind(&flow.provider)
    .bind(flow.intent.as_str())
    .bind(&flow.account_id)
    .bind(&flow.pkce_verifier)
    .bind(&flow.nonce)
    .bind(flow.requested_scopes.join(" "))
    .bind(&flow.return_to)
    .bind(flow.created_at)
    .bind(flow.expires_at)
    .execute(pool)
    .await?;
    sqlx::query(
        "DELETE FROM oauth_flows WHERE session_hash = $1 AND consumed_at IS NULL AND state_hash NOT IN \
         (SELECT state_hash FROM oauth_flows WHERE session_hash = $1 AND consumed_at IS NULL \
          ORDER BY created_at DESC, state_hash DESC LIMIT $2)",
    )
    .bind(&flow.session_hash)
    .bind(MAX_PENDING_FLOWS_PER_SESSION)
    .execute(pool)
    .await?;
    Ok(())
}

pub enum Consumed {
    Fresh(Box<FlowRow>),
    /// The state was consumed before: a replay (or a double-submitted callback).
    Replayed,
    /// A live flow, but of another session, user or provider: left untouched, so whoever holds a leaked state
    /// cannot spend the owner's flow.
    NotYours,
    Unknown,
}

/// The caller a flow must belong to.
pub struct FlowOwner<'a> {
    pub session_hash: &'a str,
    pub user_id: i64,
    pub provider: &'a str,
}

/// Marks the flow consumed and returns it, atomically — only for its owner: of two concurrent callbacks with one
/// state, one wins.
pub async fn consume_flow(
    pool: &AnyPool,
    state_hash: &str,
    owner: &FlowOwner<'_>,
    now: i64,
) -> Result<Consumed, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE oauth_flows SET consumed_at = $2 WHERE state_hash = $1 AND consumed_at IS NULL \
         AND session_hash = $3 AND user_id = $4 AND provider = $5 RETURNING {FLOW_COLUMNS}"
    ))
    .bind(state_hash)
    .bind(now)
    .bind(owner.session_hash)
    .bind(owner.user_id)
    .bind(owner.provider)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = row {
        return Ok(Consumed::Fresh(Box::new(flow_from_row(&row)?)));
    }
    let consumed: Option<Option<i64>> = sqlx::query_scalar("SELECT consumed_at FROM oauth_flows WHERE state_hash = $1")
        .bind(state_hash)
        .fetch_optional(pool)
        .await?;
    Ok(match consumed {
        Some(Some(_)) => Consumed::Replayed,
        Some(None) => Consumed::NotYours,
        None => Consumed::Unknown,
    })
}

fn flow_from_row(row: &AnyRow) -> Result<FlowRow, sqlx::Error> {
    let intent: String = row.try_get("intent")?;
    let scopes: String = row.try_get("requested_scopes")?;
    Ok(FlowRow {
        state_hash: row.try_get("state_hash")?,
        session_hash: row.try_get("session_hash")?,
        user_id: row.try_get("user_id")?,
        provider: row.try_get("provider")?,
        intent: LinkIntent::parse(&intent).ok_or_else(|| sqlx::Error::Decode(format!("intent {intent}").into()))?,
        account_id: row.try_get("account_id")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        nonce: row.try_get("nonce")?,
        requested_scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        return_to: row.try_get("return_to")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Forgets flows that expired more than a day ago (kept that long so late replays are still told apart).
pub async fn delete_stale_flows(pool: &AnyPool, now: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM oauth_flows WHERE expires_at < $1")
        .bind(now - 24 * 3600 * 1000)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: String,
    pub user_id: i64,
    pub provider: String,
    pub subject: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub status: AccountStatus,
    pub status_reason: Option<String>,
    pub last_refreshed_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    /// Scopes a provider said are missing (needs consent), space-separated.
    pub consent_scopes: Option<String>,
}

impl AccountRow {
    pub fn label(&self) -> &str {
        super::label(&self.username, &self.email, &self.display_name, &self.subject)
    }
}

/// Deletes the caller's account (its token sets go with it), returning what it was; `None` if it is not theirs
/// or already gone.
pub async fn delete_account(
    conn: &mut AnyConnection,
    user_id: i64,
    account_id: &str,
) -> Result<Option<AccountRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "DELETE FROM linked_accounts WHERE id = $1 AND user_id = $2 RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(account_from_row).transpose()
}

const ACCOUNT_COLUMNS: &str = "id, user_id, provider, subject, username, display_name, email, status, status_reason, \
                               last_refreshed_at, last_used_at, created_at, consent_scopes";

fn account_from_row(row: &AnyRow) -> Result<AccountRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(AccountRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        provider: row.try_get("provider")?,
        subject: row.try_get("subject")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        status: AccountStatus::parse(&status).ok_or_else(|| sqlx::Error::Decode(format!("status {status}").into()))?,
        status_reason: row.try_get("status_reason")?,
        last_refreshed_at: row.try_get("last_refreshed_at")?,
        last_used_at: row.try_get("last_used_at")?,
        created_at: row.try_get("created_at")?,
        consent_scopes: row.try_get("consent_scopes")?,
    })
}

pub async fn find_by_subject(
    conn: &mut AnyConnection,
    provider: &str,
    subject: &str,
) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM linked_accounts WHERE provider = $1 AND subject = $2"
    ))
    .bind(provider)
    .bind(subject)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(account_from_row)
    .transpose()
}

/// Any user's account, by id: for callers that act for every user (the service API, admins), never for a user's
/// own requests (those use [`find_for_user`]).
pub async fn find(pool: &AnyPool, account_id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM linked_accounts WHERE id = $1"))
        .bind(account_id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
}

/// One account of one user (never another user's: the user id is part of the lookup).
pub async fn find_for_user(
    conn: &mut AnyConnection,
    account_id: &str,
    user_id: i64,
) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM linked_accounts WHERE id = $1 AND user_id = $2"
    ))
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(account_from_row)
    .transpose()
}

/// What the linked-accounts page reads from the database, in one query.
pub struct AccountsPage {
    /// The user's accounts, each with the metadata of its token sets (never a token), in provider, then linking
    /// order.
    pub accounts: Vec<(AccountRow, Vec<TokenSetMeta>)>,
    /// Whether some disconnected account of the user still waits for revocation: rare, so its details are read
    /// only then.
    pub has_pending_revocations: bool,
}

/// The linked-accounts page's query. The one-row `FROM` makes the answer a row even for a user without accounts,
/// so the pending-revocation flag always arrives.
pub async fn accounts_page(pool: &AnyPool, user_id: i64) -> Result<AccountsPage, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let account: Vec<String> = ACCOUNT_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
        format!(
            "SELECT {}, {}, CASE WHEN EXISTS (SELECT 1 FROM pending_revocations p WHERE p.user_id = $1) \
             THEN 1 ELSE 0 END AS has_pending \
             FROM (SELECT 1 AS one) AS one LEFT JOIN linked_accounts a ON a.user_id = $1 \
             LEFT JOIN token_sets t ON t.account_id = a.id \
             ORDER BY a.provider, a.created_at, a.id, t.resource_server",
            account.join(", "),
            tokens::META_COLUMNS
        )
    });
    let mut page = AccountsPage {
        accounts: Vec::new(),
        has_pending_revocations: false,
    };
    for row in sqlx::query(&SQL).bind(user_id).fetch_all(pool).await? {
        page.has_pending_revocations = row.try_get::<i32, _>("has_pending")? == 1;
        let Some(id) = row.try_get::<Option<String>, _>("id")? else {
            continue; // no accounts: the one row carries the flag only
        };
        if page.accounts.last().is_none_or(|(account, _)| account.id != id) {
            page.accounts.push((account_from_row(&row)?, Vec::new()));
        }
        if let (Some((_, sets)), Some(meta)) = (page.accounts.last_mut(), tokens::meta_from_row(&row)?) {
            sets.push(meta);
        }
    }
    Ok(page)
}

/// The `SELECT … FROM` of an account with its token sets' metadata (one row per set, or one without a set), and
/// `extra` columns.
fn with_sets_sql(extra: &str) -> String {
    let account: Vec<String> = ACCOUNT_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
    format!(
        "SELECT {}, {}{extra} FROM linked_accounts a LEFT JOIN token_sets t ON t.account_id = a.id",
        account.join(", "),
        tokens::META_COLUMNS
    )
}

/// Folds the rows of [`with_sets_sql`] (ordered by resource server) into the account and its sets.
fn fold_with_sets(rows: &[AnyRow]) -> Result<Option<(AccountRow, Vec<TokenSetMeta>)>, sqlx::Error> {
    let mut found: Option<(AccountRow, Vec<TokenSetMeta>)> = None;
    for row in rows {
        let (_, sets) = match &mut found {
            Some(found) => found,
            None => found.insert((account_from_row(row)?, Vec::new())),
        };
        if let Some(meta) = tokens::meta_from_row(row)? {
            sets.push(meta);
        }
    }
    Ok(found)
}

/// One account with the metadata of its token sets (never a token), in the caller's transaction.
pub async fn find_with_sets(
    conn: &mut AnyConnection,
    account_id: &str,
) -> Result<Option<(AccountRow, Vec<TokenSetMeta>)>, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{} WHERE a.id = $1 ORDER BY t.resource_server", with_sets_sql("")));
    fold_with_sets(&sqlx::query(&SQL).bind(account_id).fetch_all(conn).await?)
}

/// Who owns an account, as its webhook events name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: i64,
    pub external_id: Option<String>,
    pub email: Option<String>,
}

/// [`find_with_sets`] and the account's owner in one read: an account's webhook event is written inside the change's
/// transaction, where every statement holds SQLite's one write lock a little longer.
pub async fn find_with_sets_and_owner(
    conn: &mut AnyConnection,
    account_id: &str,
) -> Result<Option<(AccountRow, Vec<TokenSetMeta>, Owner)>, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{} JOIN users u ON u.id = a.user_id WHERE a.id = $1 ORDER BY t.resource_server",
            with_sets_sql(", u.external_id AS owner_external_id, u.email AS owner_email")
        )
    });
    let rows = sqlx::query(&SQL).bind(account_id).fetch_all(conn).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let owner = Owner {
        id: first.try_get("user_id")?,
        external_id: first.try_get("owner_external_id")?,
        email: first.try_get("owner_email")?,
    };
    Ok(fold_with_sets(&rows)?.map(|(account, sets)| (account, sets, owner)))
}

/// How many linked accounts each (provider, status) pair has, over all users (the metrics' gauge).
pub async fn count_by_provider_and_status(pool: &AnyPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT provider, status, COUNT(*) FROM linked_accounts GROUP BY provider, status")
        .fetch_all(pool)
        .await
}

pub async fn list_for_user(pool: &AnyPool, user_id: i64) -> Result<Vec<AccountRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM linked_accounts WHERE user_id = $1 ORDER BY provider, created_at, id"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(account_from_row)
    .collect()
}

/// The scopes an account was told it lacks (`needs_consent`), for "Grant access".
pub async fn consent_scopes_in(conn: &mut AnyConnection, account_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let scopes: Option<Option<String>> = sqlx::query_scalar("SELECT consent_scopes FROM linked_accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(conn)
        .await?;
    let mut seen = std::collections::HashSet::new();
    Ok(scopes
        .flatten()
        .map(|s| {
            s.split_whitespace()
                .filter(|scope| seen.insert(scope.to_string()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// The longest list of scopes an account may wait for: a provider that keeps naming new ones cannot grow the row
/// without bound.
pub const MAX_CONSENT_SCOPES_LEN: usize = 4096;

/// Adds scopes to those an account lacks, each unless it is already there (scopes compare exactly, case and all),
/// up to [`MAX_CONSENT_SCOPES_LEN`]. A compare-and-swap on the value read: a concurrent writer in between (another
/// consent error on PostgreSQL; SQLite's write transaction excludes it) makes it read again, so each scope lands
/// once.
pub async fn add_consent_scopes(
    conn: &mut AnyConnection,
    account_id: &str,
    scopes: &[String],
) -> Result<(), sqlx::Error> {
    for _ in 0..8 {
        let current: Option<Option<String>> =
            sqlx::query_scalar("SELECT consent_scopes FROM linked_accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some(current) = current else {
            return Ok(());
        };
        let current = current.unwrap_or_default();
        let mut merged: Vec<&str> = current.split_whitespace().collect();
        for scope in scopes
            .iter()
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        {
            if !merged.contains(&scope.as_str()) && merged.join(" ").len() + 1 + scope.len() <= MAX_CONSENT_SCOPES_LEN {
                merged.push(scope);
            }
        }
        let merged = merged.join(" ");
        if merged == current {
            return Ok(());
        }
        let done = sqlx::query(
            "UPDATE linked_accounts SET consent_scopes = $1 WHERE id = $2 AND COALESCE(consent_scopes, '') = $3",
        )
        .bind(&merged)
        .bind(account_id)
        .bind(&current)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
    }
    Err(sqlx::Error::Protocol(
        "consent scopes kept changing under the update".into(),
    ))
}
