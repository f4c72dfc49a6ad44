//! Linked accounts across users: the filtered, sorted, keyset-paged list; one account's detail; force disconnect.

use sqlx::{Row, any::AnyRow};

use super::{
    AccountDetail, AccountList, AccountQuery, AccountSort, AccountSummary, PAGE_SIZE, REASON_MAX_LEN, TokenSetDetail,
    audit_log, non_empty,
    sql::{Value, Where},
};
use crate::{
    accounts::{
        AccountStatus, DisconnectOutcome,
        disconnect::{self, DisconnectError, DisconnectedBy},
        label,
    },
    db::now_ms,
    error::AppError,
    state::AppState,
};

/// The SQL sort key of an order and whether it runs descending. The expressions are those of the indexes in
/// `migrations/*/20261127000001_admin.sql`, character for character: a NULL sorts as "never".
fn sort_key(sort: AccountSort) -> (&'static str, bool) {
    match sort {
        AccountSort::Created => ("a.created_at", true),
        AccountSort::LastUsed => ("COALESCE(a.last_used_at, 0)", true),
        AccountSort::Expiry => ("COALESCE(a.token_expires_at, 253402300799999)", false),
    }
}

/// The columns [`summary`] reads, from `linked_accounts a JOIN users u`.
pub(super) const SUMMARY_COLUMNS: &str = "a.id, a.user_id, COALESCE(u.email, '') AS user_email, u.external_id AS user_external_id, a.provider, a.subject, a.username, a.email, \
     a.display_name, a.status, a.status_reason, a.created_at, a.last_used_at, a.token_expires_at";

/// A cursor: the last row's sort key and id. Opaque to the browser, checked when it comes back.
fn cursor(key: i64, id: &str) -> String {
    format!("{key}.{id}")
}

fn parse_cursor(value: &str) -> Result<(i64, String), AppError> {
    value
        .split_once('.')
        .and_then(|(key, id)| Some((key.parse().ok()?, id.to_owned())))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| AppError::invalid("after", "This page link is not valid. Start again from the first page."))
}

pub async fn list(state: &AppState, query: AccountQuery) -> Result<AccountList, AppError> {
    let sort = match non_empty(&query.sort) {
        None => AccountSort::default(),
        Some(s) => AccountSort::parse(s).ok_or_else(|| AppError::invalid("sort", "Choose an order from the list."))?,
    };
    let mut filter = Where::default();
    if let Some(provider) = non_empty(&query.provider) {
        filter.and("a.provider = {}", [Value::Text(provider.to_owned())]);
    }
    if let Some(status) = non_empty(&query.status) {
        let status = AccountStatus::parse(status)
            .ok_or_else(|| AppError::invalid("status", "Choose a status from the list."))?;
        filter.and("a.status = {}", [Value::Text(status.as_str().to_owned())]);
    }
    if let Some(user) = non_empty(&query.user) {
        let id = super::users::resolve(state, "user", user).await?;
        filter.and("a.user_id = {}", [Value::Int(id)]);
    }
    if let Some(identity) = non_empty(&query.identity) {
        let v = || Value::Text(identity.to_owned());
        filter.and("(a.subject = {} OR a.username = {} OR a.email = {})", [v(), v(), v()]);
    }
    let (key, descending) = sort_key(sort);
    if let Some(after) = non_empty(&query.after) {
        let (last_key, last_id) = parse_cursor(after)?;
        let op = if descending { "<" } else { ">" };
        // The lone `key <= k` (or `>=`) says nothing the row value does not, but SQLite seeks an expression index
        // only on a plain comparison: without it, a deep page sorted by last use scanned half a million entries.
        filter.and(
            &format!("{key} {op}= {{}} AND ({key}, a.id) {op} ({{}}, {{}})"),
            [Value::Int(last_key), Value::Int(last_key), Value::Text(last_id)],
        );
    }
    let limit = filter.placeholder(Value::Int(PAGE_SIZE as i64 + 1));
    let direction = if descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, {key} AS sort_key FROM linked_accounts a JOIN users u ON u.id = a.user_id \
         WHERE {} ORDER BY {key} {direction}, a.id {direction} LIMIT {limit}",
        filter.sql()
    );
    let rows = filter
        .bind(sqlx::query(&sql))
        .fetch_all(&state.db.pool)
        .await
        .map_err(AppError::internal)?;
    let mut summaries = Vec::with_capacity(PAGE_SIZE);
    let mut last_key = None;
    for row in rows.iter().take(PAGE_SIZE) {
        summaries.push(summary(state, row).map_err(AppError::internal)?);
        last_key = Some(row.try_get::<i64, _>("sort_key").map_err(AppError::internal)?);
    }
    let next = match (rows.len() > PAGE_SIZE, last_key, summaries.last()) {
        (true, Some(key), Some(last)) => Some(cursor(key, &last.id)),
        _ => None,
    };
    Ok(AccountList {
        query,
        sort,
        rows: summaries,
        next,
        providers: crate::accounts::view::provider_views(&state.catalog),
        now: now_ms(),
    })
}

pub(super) fn summary(state: &AppState, row: &AnyRow) -> Result<AccountSummary, sqlx::Error> {
    let provider: String = row.try_get("provider")?;
    let status: String = row.try_get("status")?;
    let subject: String = row.try_get("subject")?;
    Ok(AccountSummary {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        user_email: row.try_get("user_email")?,
        user_external_id: row.try_get("user_external_id")?,
        provider_name: state.catalog.display_name(&provider),
        provider_id: provider,
        label: label(
            &row.try_get("username")?,
            &row.try_get("email")?,
            &row.try_get("display_name")?,
            &subject,
        )
        .to_owned(),
        subject,
        status: AccountStatus::parse(&status).unwrap_or(AccountStatus::Error),
        status_reason: row.try_get("status_reason")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("token_expires_at")?,
    })
}

/// One account with its user, its token sets' metadata and its latest history.
pub async fn detail(state: &AppState, account_id: &str) -> Result<AccountDetail, AppError> {
    let pool = &state.db.pool;
    let row = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS}, a.last_refreshed_at, a.consent_scopes, u.display_name AS user_display_name, \
         u.disabled_at AS user_disabled_at FROM linked_accounts a JOIN users u ON u.id = a.user_id WHERE a.id = $1"
    ))
    .bind(account_id)
    .fetch_optional(pool)
    .await
    .map_err(AppError::internal)?
    .ok_or_else(|| AppError::NotFound {
        what: "linked account".into(),
    })?;
    let sets = sqlx::query(
        "SELECT resource_server, scopes, token_type, issued_at, expires_at, refresh_token IS NOT NULL AS has_refresh, \
         version, failures, cooldown_until, last_error, updated_at FROM token_sets WHERE account_id = $1 \
         ORDER BY resource_server",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
    .map_err(AppError::internal)?;
    let token_sets = sets
        .iter()
        .map(|s| {
            Ok(TokenSetDetail {
                resource_server: s.try_get("resource_server")?,
                scopes: s
                    .try_get::<String, _>("scopes")?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
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
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(AppError::internal)?;
    let history = audit_log::for_account(state, account_id).await?;
    let get = |r: &AnyRow| -> Result<AccountDetail, sqlx::Error> {
        Ok(AccountDetail {
            account: summary(state, r)?,
            user_display_name: r.try_get("user_display_name")?,
            user_disabled: r.try_get::<Option<i64>, _>("user_disabled_at")?.is_some(),
            username: r.try_get("username")?,
            email: r.try_get("email")?,
            display_name: r.try_get("display_name")?,
            last_refreshed_at: r.try_get("last_refreshed_at")?,
            consent_scopes: r
                .try_get::<Option<String>, _>("consent_scopes")?
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            token_sets,
            history,
            now: now_ms(),
        })
    };
    get(&row).map_err(AppError::internal)
}

/// Checks an admin's reason for a forced disconnect: required, one paragraph of plain text.
pub fn validate_reason(raw: &str) -> Result<String, AppError> {
    let reason = raw.trim();
    if reason.is_empty() {
        return Err(AppError::invalid(
            "reason",
            "Give a reason: the user reads it in their activity.",
        ));
    }
    if reason.chars().count() > REASON_MAX_LEN {
        return Err(AppError::invalid(
            "reason",
            format!("A reason has at most {REASON_MAX_LEN} characters."),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(AppError::invalid("reason", "Write the reason on one line."));
    }
    Ok(reason.to_owned())
}

/// Disconnects any user's account for admin `admin_id`: the same path as the user's own disconnect (tokens
/// revoked at the provider, queued when it fails), audited with the admin as actor and their reason.
pub async fn force_disconnect(
    state: &AppState,
    admin_id: i64,
    account_id: &str,
    reason: &str,
    request_id: Option<&str>,
) -> Result<(i64, DisconnectOutcome), AppError> {
    let reason = validate_reason(reason)?;
    let gone = || AppError::NotFound {
        what: "linked account".into(),
    };
    let account = crate::accounts::repo::find(&state.db.pool, account_id)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(gone)?;
    let by = DisconnectedBy::Admin {
        user_id: admin_id,
        reason: &reason,
    };
    match disconnect::disconnect(state.revoker(), account.user_id, account_id, by, request_id).await {
        Ok(outcome) => Ok((account.user_id, outcome)),
        Err(DisconnectError::NotFound) => Err(gone()),
        Err(DisconnectError::Database(e)) => Err(AppError::internal(e)),
    }
}
