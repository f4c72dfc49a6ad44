//! SQL of the admin area: the accounts list and one account, the users list, the audit log's pages and its export's
//! batches, the dashboard's counts. Rows (`...Row`) stay here; `service.rs` checks what the admin asked for and turns
//! rows into the wire types.
//!
//! Every list is keyset-paged in the order of an index (`migrations/*/20261127000001_admin.sql` and
//! `20261127000002_admin_scale_indexes.sql`), and its `WHERE` holds only the filters that are set ([`Where`]).

use sqlx::{Any, AnyPool, FromRow, Row, Transaction, any::AnyRow};

use super::{
    AccountSort,
    sql::{Value, Where},
};
use crate::{
    accounts::AccountStatus,
    audit::{AuditAction, Outcome},
    db::{Backend, Db},
};

// --- linked accounts ---------------------------------------------------------------------------------------------

/// The SQL sort key of an order and whether it runs descending. The expressions are those of the indexes in
/// `migrations/*/20261127000001_admin.sql` (whose comments call this `admin::accounts`), character for character: a
/// NULL sorts as "never".
fn sort_key(sort: AccountSort) -> (&'static str, bool) {
    match sort {
        AccountSort::Created => ("a.created_at", true),
        AccountSort::LastUsed => ("COALESCE(a.last_used_at, 0)", true),
        AccountSort::Expiry => ("COALESCE(a.token_expires_at, 253402300799999)", false),
    }
}

/// The columns of [`AccountSummaryRow`], from `linked_accounts a JOIN users u`.
const SUMMARY_COLUMNS: &str = "a.id, a.user_id, COALESCE(u.email, '') AS user_email, u.external_id AS user_external_id, a.provider, a.subject, a.username, a.email, \
     a.display_name, a.status, a.status_reason, a.created_at, a.last_used_at, a.token_expires_at";

/// One linked account with its user, as the lists show it.
#[derive(Debug, Clone, FromRow)]
pub struct AccountSummaryRow {
    pub id: String,
    pub user_id: i64,
    /// Empty for a platform user whose platform gave no email.
    pub user_email: String,
    pub user_external_id: Option<String>,
    pub provider: String,
    pub subject: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The soonest expiry of its access tokens (kept by the database, see the migration).
    pub token_expires_at: Option<i64>,
}

/// A row of the accounts list with the value of its order's sort key, for the next page's cursor.
#[derive(Debug, Clone, FromRow)]
pub struct SortedAccountRow {
    #[sqlx(flatten)]
    pub account: AccountSummaryRow,
    pub sort_key: i64,
}

/// The accounts list's filters, checked, and where the page starts.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter<'a> {
    pub provider: Option<&'a str>,
    pub status: Option<AccountStatus>,
    pub user_id: Option<i64>,
    /// The identity's subject, username or email at the provider (exact).
    pub identity: Option<&'a str>,
    pub sort: AccountSort,
    /// The list continues after this row: its sort key and id.
    pub after: Option<(i64, String)>,
}

/// At most `limit` accounts matching `filter`, in its order.
pub async fn accounts(
    pool: &AnyPool,
    filter: &AccountFilter<'_>,
    limit: i64,
) -> Result<Vec<SortedAccountRow>, sqlx::Error> {
    let mut conditions = Where::default();
    if let Some(provider) = filter.provider {
        conditions.and("a.provider = {}", [Value::Text(provider.to_owned())]);
    }
    if let Some(status) = filter.status {
        conditions.and("a.status = {}", [Value::Text(status.as_str().to_owned())]);
    }
    if let Some(id) = filter.user_id {
        conditions.and("a.user_id = {}", [Value::Int(id)]);
    }
    if let Some(identity) = filter.identity {
        let v = || Value::Text(identity.to_owned());
        conditions.and("(a.subject = {} OR a.username = {} OR a.email = {})", [v(), v(), v()]);
    }
    let (key, descending) = sort_key(filter.sort);
    if let Some((last_key, last_id)) = &filter.after {
        let op = if descending { "<" } else { ">" };
        // The lone `key <= k` (or `>=`) says nothing the row value does not, but SQLite seeks an expression index
        // only on a plain comparison: without it, a deep page sorted by last use scanned half a million entries.
        conditions.and(
            &format!("{key} {op}= {{}} AND ({key}, a.id) {op} ({{}}, {{}})"),
            [
                Value::Int(*last_key),
                Value::Int(*last_key),
                Value::Text(last_id.clone()),
            ],
        );
    }
    let limit = conditions.placeholder(Value::Int(limit));
    let direction = if descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, {key} AS sort_key FROM linked_accounts a JOIN users u ON u.id = a.user_id \
         WHERE {} ORDER BY {key} {direction}, a.id {direction} LIMIT {limit}",
        conditions.sql()
    );
    let rows = conditions.bind(sqlx::query(&sql)).fetch_all(pool).await?;
    rows.iter().map(SortedAccountRow::from_row).collect()
}

/// The latest-changed accounts that are not active (the dashboard's "needs attention").
pub async fn accounts_needing_attention(pool: &AnyPool, limit: i64) -> Result<Vec<AccountSummaryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM linked_accounts a JOIN users u ON u.id = a.user_id WHERE a.status <> 'active' \
         ORDER BY a.updated_at DESC, a.id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One account with its user, for its detail page.
#[derive(Debug, Clone, FromRow)]
pub struct AccountDetailRow {
    #[sqlx(flatten)]
    pub account: AccountSummaryRow,
    pub last_refreshed_at: Option<i64>,
    /// Space-separated.
    pub consent_scopes: Option<String>,
    pub user_display_name: String,
    pub user_disabled_at: Option<i64>,
}

pub async fn account(pool: &AnyPool, account_id: &str) -> Result<Option<AccountDetailRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS}, a.last_refreshed_at, a.consent_scopes, u.display_name AS user_display_name, \
         u.disabled_at AS user_disabled_at FROM linked_accounts a JOIN users u ON u.id = a.user_id WHERE a.id = $1"
    ))
    .bind(account_id)
    .fetch_optional(pool)
    .await
}

/// A token set's metadata: the query reads no token.
#[derive(Debug, Clone)]
pub struct TokenSetRow {
    pub resource_server: String,
    /// Space-separated.
    pub scopes: String,
    pub token_type: String,
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    pub has_refresh_token: bool,
    pub version: i64,
    pub failures: i64,
    pub cooldown_until: Option<i64>,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

impl<'r> FromRow<'r, AnyRow> for TokenSetRow {
    fn from_row(s: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            resource_server: s.try_get("resource_server")?,
            scopes: s.try_get("scopes")?,
            token_type: s.try_get("token_type")?,
            issued_at: s.try_get("issued_at")?,
            expires_at: s.try_get("expires_at")?,
            // A boolean expression is an integer on SQLite and a boolean on PostgreSQL.
            has_refresh_token: s
                .try_get::<bool, _>("has_refresh")
                .or_else(|_| s.try_get::<i64, _>("has_refresh").map(|v| v != 0))?,
            version: s.try_get("version")?,
            failures: s.try_get("failures")?,
            cooldown_until: s.try_get("cooldown_until")?,
            last_error: s.try_get("last_error")?,
            updated_at: s.try_get("updated_at")?,
        })
    }
}

/// An account's token sets, by resource server.
pub async fn token_sets(pool: &AnyPool, account_id: &str) -> Result<Vec<TokenSetRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT resource_server, scopes, token_type, issued_at, expires_at, refresh_token IS NOT NULL AS has_refresh, \
         version, failures, cooldown_until, last_error, updated_at FROM token_sets WHERE account_id = $1 \
         ORDER BY resource_server",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
}

// --- users -------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct UserSummaryRow {
    pub id: i64,
    /// Empty for a platform user whose platform gave no email.
    pub email: String,
    pub external_id: Option<String>,
    pub display_name: String,
    pub role: String,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    /// How many linked accounts the user has.
    pub accounts: i64,
}

/// At most `limit` users by id after `after`; with `search`, those whose email or name starts with it
/// (case-insensitive) or whose external id does (as typed).
pub async fn users(
    pool: &AnyPool,
    search: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<UserSummaryRow>, sqlx::Error> {
    let mut filter = Where::default();
    if let Some(q) = search {
        // A prefix of the email or the name, case-insensitive (emails are stored lower-case; names are folded with
        // LOWER, which folds ASCII only on SQLite). It scans `users`, not accounts or events: cheap enough at the
        // scale of people. A backslash escapes LIKE's wildcards.
        let like = |q: &str| format!("{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let pattern = like(&q.to_lowercase());
        // External ids are the platform's, compared as given (case matters to the platform).
        filter.and(
            "(u.email LIKE {} ESCAPE '\\' OR LOWER(u.display_name) LIKE {} ESCAPE '\\' OR u.external_id LIKE {} ESCAPE '\\')",
            [Value::Text(pattern.clone()), Value::Text(pattern), Value::Text(like(q))],
        );
    }
    if let Some(after) = after {
        filter.and("u.id > {}", [Value::Int(after)]);
    }
    let limit = filter.placeholder(Value::Int(limit));
    let sql = format!(
        "SELECT u.id, COALESCE(u.email, '') AS email, u.external_id, u.display_name, u.role, u.disabled_at, u.created_at, \
         (SELECT COUNT(*) FROM linked_accounts a WHERE a.user_id = u.id) AS accounts \
         FROM users u WHERE {} ORDER BY u.id LIMIT {limit}",
        filter.sql()
    );
    let rows = filter.bind(sqlx::query(&sql)).fetch_all(pool).await?;
    rows.iter().map(UserSummaryRow::from_row).collect()
}

/// How many users there are, and how many of them are disabled.
pub async fn count_users(pool: &AnyPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(CASE WHEN disabled_at IS NULL THEN 0 ELSE 1 END), 0) FROM users")
        .fetch_one(pool)
        .await
}

// --- audit events ------------------------------------------------------------------------------------------------

/// The audit log's order, newest first by time, then id; keyset cursors follow it.
///
/// The order is (at, id) rather than id alone so that a time range is one index range scan in list order
/// (`audit_events_*_at_idx`): ids and times mostly rise together, but not exactly (delegated calls are written in
/// batches, after the fact), and a range by time must not depend on that.
const ORDER: &str = "e.at DESC, e.id DESC";

/// An event with its actor's and subject's emails and its account's names, as [`EventRow`] reads it.
const EVENT_SQL: &str = "SELECT e.id, e.at, e.actor_user_id, e.subject_user_id, e.action, e.outcome, \
     e.provider, e.account_id, e.resource_server, e.request_id, e.details, COALESCE(actor.email, actor.external_id) AS actor_email, \
     COALESCE(subject.email, subject.external_id) AS subject_email, a.username, a.email, a.display_name, a.subject \
     FROM audit_events e LEFT JOIN users actor ON actor.id = e.actor_user_id \
     LEFT JOIN users subject ON subject.id = e.subject_user_id LEFT JOIN linked_accounts a ON a.id = e.account_id";

/// One audit event as the admin pages show it: its own columns (where the emails fall back to a platform user's
/// external id) and its account's names.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    #[sqlx(flatten)]
    pub event: ExportRow,
    /// The account's names as they are now; all `None` once it is disconnected.
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub subject: Option<String>,
}

/// The audit log's filters, checked, as the queries need them. The end of the time range is kept apart from the
/// other conditions until a page or batch adds its cursor ([`EventFilter::older_than`]).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub actor_user_id: Option<i64>,
    pub subject_user_id: Option<i64>,
    pub action: Option<AuditAction>,
    pub provider: Option<String>,
    pub outcome: Option<Outcome>,
    /// Events at or after this time (ms).
    pub from: Option<i64>,
    /// Events up to this id (an export's moment).
    pub max_id: Option<i64>,
    /// Events strictly before this time (ms), when the range has an end.
    pub until: Option<i64>,
}

impl EventFilter {
    /// The `WHERE` clause of the filtered events older than `before` (at, id) in [`ORDER`], or of all of them.
    fn older_than(&self, before: Option<(i64, i64)>) -> Where {
        let mut filter = Where::default();
        if let Some(id) = self.actor_user_id {
            filter.and("e.actor_user_id = {}", [Value::Int(id)]);
        }
        if let Some(id) = self.subject_user_id {
            filter.and("e.subject_user_id = {}", [Value::Int(id)]);
        }
        if let Some(action) = self.action {
            filter.and("e.action = {}", [Value::Text(action.as_str().to_owned())]);
        }
        if let Some(provider) = &self.provider {
            filter.and("e.provider = {}", [Value::Text(provider.clone())]);
        }
        if let Some(outcome) = self.outcome {
            filter.and("e.outcome = {}", [Value::Text(outcome.as_str().to_owned())]);
        }
        if let Some(from) = self.from {
            filter.and("e.at >= {}", [Value::Int(from)]);
        }
        if let Some(max_id) = self.max_id {
            filter.and("e.id <= {}", [Value::Int(max_id)]);
        }
        // One plain upper bound on `at`, the tighter of the range's end and the cursor. Given two, SQLite bounds
        // its index scan by the first it meets and filters with the other: a deep page inside one day of 10M
        // events scanned from the day's end down to the cursor (9 ms), and an export of a range would do that
        // for every batch. The row value alone does not bound the scan either.
        let end = match (self.until, before) {
            (Some(until), Some((at, _))) => Some(until.min(at.saturating_add(1))),
            (until, before) => until.or(before.map(|(at, _)| at.saturating_add(1))),
        };
        if let Some(end) = end {
            filter.and("e.at < {}", [Value::Int(end)]);
        }
        if let Some((at, id)) = before {
            filter.and("(e.at, e.id) < ({}, {})", [Value::Int(at), Value::Int(id)]);
        }
        filter
    }
}

/// At most `limit` events matching `filter`, older than `before`, in [`ORDER`].
pub async fn events(
    pool: &AnyPool,
    filter: &EventFilter,
    before: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let mut conditions = filter.older_than(before);
    let limit = conditions.placeholder(Value::Int(limit));
    let sql = format!("{EVENT_SQL} WHERE {} ORDER BY {ORDER} LIMIT {limit}", conditions.sql());
    let rows = conditions.bind(sqlx::query(&sql)).fetch_all(pool).await?;
    rows.iter().map(EventRow::from_row).collect()
}

/// An account's latest `limit` events, newest first.
pub async fn account_events(pool: &AnyPool, account_id: &str, limit: i64) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{EVENT_SQL} WHERE e.account_id = $1 ORDER BY {ORDER} LIMIT $2"
    ))
    .bind(account_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The day's events of the kinds the dashboard counts, by action and outcome: one range scan of the `at` index.
pub async fn count_recent_events(pool: &AnyPool, since: i64) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action, outcome, COUNT(*) AS n FROM audit_events WHERE at >= $1 \
         AND action IN ('token_refreshed', 'provider_unavailable', 'account_status_changed', 'delegated_call') \
         GROUP BY action, outcome",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}

// --- the audit export --------------------------------------------------------------------------------------------

/// An event as the export writes it: its own columns and the emails of its actor and subject.
const EXPORT_SQL: &str = "SELECT e.id, e.at, e.actor_user_id, actor.email AS actor_email, e.subject_user_id, \
     subject.email AS subject_email, e.action, e.outcome, e.provider, e.account_id, e.resource_server, e.request_id, \
     e.details FROM audit_events e LEFT JOIN users actor ON actor.id = e.actor_user_id \
     LEFT JOIN users subject ON subject.id = e.subject_user_id";

/// An audit event's own columns with its actor's and subject's emails: what the export writes, and the core of an
/// [`EventRow`].
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ExportRow {
    pub id: i64,
    pub at: i64,
    pub actor_user_id: Option<i64>,
    /// The actor's email (for the pages, else their external id).
    pub actor_email: Option<String>,
    pub subject_user_id: Option<i64>,
    /// The subject's email (for the pages, else their external id).
    pub subject_email: Option<String>,
    pub action: String,
    pub outcome: String,
    pub provider: Option<String>,
    pub account_id: Option<String>,
    pub resource_server: Option<String>,
    pub request_id: Option<String>,
    /// JSON, as recorded.
    pub details: String,
}

/// Where an export reads, so that it sees the log as of one moment:
/// - On SQLite, writes are serial, so events commit in id order: leaving out ids above the newest one at the start
///   is that moment ([`EventFilter::max_id`]), and no read transaction is held (a long one would hold back the
///   WAL's checkpoints): the pool.
/// - On PostgreSQL, ids are handed out at insert but commit in any order (an id below the newest can still be
///   in flight), so the whole export reads one `REPEATABLE READ` snapshot, on one connection.
pub enum Reader {
    Pool(AnyPool),
    Snapshot(Transaction<'static, Any>),
}

impl Reader {
    pub async fn open(db: &Db) -> Result<Self, sqlx::Error> {
        match db.backend {
            Backend::Sqlite => Ok(Reader::Pool(db.pool.clone())),
            Backend::Postgres => {
                let mut tx = db.pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                Ok(Reader::Snapshot(tx))
            }
        }
    }

    async fn fetch<'q>(
        &mut self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<AnyRow>, sqlx::Error> {
        match self {
            Reader::Pool(pool) => query.fetch_all(&*pool).await,
            Reader::Snapshot(tx) => query.fetch_all(&mut **tx).await,
        }
    }

    /// The id of the newest event; `None` when there is none.
    pub async fn newest_event_id(&mut self) -> Result<Option<i64>, sqlx::Error> {
        let rows = self
            .fetch(sqlx::query("SELECT MAX(id) AS newest FROM audit_events"))
            .await?;
        Ok(rows
            .first()
            .map(|r| r.try_get::<Option<i64>, _>("newest"))
            .transpose()?
            .flatten())
    }

    /// At most `limit` events matching `filter`, older than `before`, in the audit log's order.
    pub async fn events(
        &mut self,
        filter: &EventFilter,
        before: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<ExportRow>, sqlx::Error> {
        let mut conditions = filter.older_than(before);
        let limit = conditions.placeholder(Value::Int(limit));
        let sql = format!("{EXPORT_SQL} WHERE {} ORDER BY {ORDER} LIMIT {limit}", conditions.sql());
        let rows = self.fetch(conditions.bind(sqlx::query(&sql))).await?;
        rows.iter().map(ExportRow::from_row).collect()
    }
}
