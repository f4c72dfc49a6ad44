//! The whole audit log for admins: filtered by actor, subject, action, provider, outcome and time, newest first
//! (by time, then id), keyset-paged; and the same filtered set, in the same order, for the export (`export`).
//!
//! The order is (at, id) rather than id alone so that a time range is one index range scan in list order
//! (`audit_events_*_at_idx`): ids and times mostly rise together, but not exactly (delegated calls are written in
//! batches, after the fact), and a range by time must not depend on that.

use sqlx::{Row, any::AnyRow};

use super::{
    AuditEntry, AuditList, AuditQuery, PAGE_SIZE, non_empty,
    sql::{Value, Where},
};
use crate::{
    activity::service::summary,
    audit::{AuditAction, Outcome},
    components::time::parse_time,
    db::now_ms,
    error::AppError,
    state::AppState,
};

/// The columns of an event with its actor's and subject's emails and its account's names, as [`entry`] reads them.
pub(super) const EVENT_SQL: &str = "SELECT e.id, e.at, e.actor_user_id, e.subject_user_id, e.action, e.outcome, \
     e.provider, e.account_id, e.resource_server, e.request_id, e.details, COALESCE(actor.email, actor.external_id) AS actor_email, \
     COALESCE(subject.email, subject.external_id) AS subject_email, a.username, a.email, a.display_name, a.subject \
     FROM audit_events e LEFT JOIN users actor ON actor.id = e.actor_user_id \
     LEFT JOIN users subject ON subject.id = e.subject_user_id LEFT JOIN linked_accounts a ON a.id = e.account_id";

/// A query's filters, checked, with the end of its time range kept apart until a page or batch adds its cursor
/// ([`AuditFilter::older_than`]).
#[derive(Clone, Debug)]
pub struct AuditFilter {
    conditions: Where,
    /// Events strictly before this time (ms), when the range has an end.
    until: Option<i64>,
}

impl AuditFilter {
    /// Adds a condition, as [`Where::and`].
    pub fn and(&mut self, condition: &str, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.conditions.and(condition, values);
        self
    }

    /// The `WHERE` clause of the filtered events older than `before` (at, id) in [`ORDER`], or of all of them.
    pub fn older_than(&self, before: Option<(i64, i64)>) -> Where {
        let mut filter = self.conditions.clone();
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

/// A query's filters (not its cursor). Every value is checked: a filter that names nothing real is an error on its
/// field, never an empty list that looks like "nothing happened".
pub async fn filter(state: &AppState, query: &AuditQuery) -> Result<AuditFilter, AppError> {
    let mut filter = Where::default();
    if let Some(actor) = non_empty(&query.actor) {
        let id = super::users::resolve(state, "actor", actor).await?;
        filter.and("e.actor_user_id = {}", [Value::Int(id)]);
    }
    if let Some(subject) = non_empty(&query.subject) {
        let id = super::users::resolve(state, "subject", subject).await?;
        filter.and("e.subject_user_id = {}", [Value::Int(id)]);
    }
    if let Some(action) = non_empty(&query.action) {
        let action =
            AuditAction::parse(action).ok_or_else(|| AppError::invalid("action", "Choose an action from the list."))?;
        filter.and("e.action = {}", [Value::Text(action.as_str().to_owned())]);
    }
    if let Some(provider) = non_empty(&query.provider) {
        filter.and("e.provider = {}", [Value::Text(provider.to_owned())]);
    }
    if let Some(outcome) = non_empty(&query.outcome) {
        let outcome =
            Outcome::parse(outcome).ok_or_else(|| AppError::invalid("outcome", "Choose a result from the list."))?;
        filter.and("e.outcome = {}", [Value::Text(outcome.as_str().to_owned())]);
    }
    let time = |field: &str, value: &str| {
        parse_time(value).ok_or_else(|| {
            AppError::invalid(
                field,
                format!("“{value}” is not a time: write 2026-11-22 or 2026-11-22T14:05 (UTC)."),
            )
        })
    };
    let from = non_empty(&query.from).map(|v| time("from", v)).transpose()?;
    let to = non_empty(&query.to).map(|v| time("to", v)).transpose()?;
    if let (Some((from, _)), Some((to, span))) = (from, to)
        && from >= to + span
    {
        return Err(AppError::invalid(
            "to",
            "The end of the time range is before its start.",
        ));
    }
    if let Some((from, _)) = from {
        filter.and("e.at >= {}", [Value::Int(from)]);
    }
    Ok(AuditFilter {
        conditions: filter,
        // Inclusive of the day or minute written.
        until: to.map(|(to, span)| to + span),
    })
}

pub async fn list(state: &AppState, query: AuditQuery) -> Result<AuditList, AppError> {
    let before = non_empty(&query.before).map(parse_cursor).transpose()?;
    let mut filter = filter(state, &query).await?.older_than(before);
    let limit = filter.placeholder(Value::Int(PAGE_SIZE as i64 + 1));
    let sql = format!("{EVENT_SQL} WHERE {} ORDER BY {ORDER} LIMIT {limit}", filter.sql());
    let rows = filter
        .bind(sqlx::query(&sql))
        .fetch_all(&state.db.pool)
        .await
        .map_err(AppError::internal)?;
    let entries = rows
        .iter()
        .take(PAGE_SIZE)
        .map(|r| entry(state, r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(AppError::internal)?;
    let older = (rows.len() > PAGE_SIZE)
        .then(|| entries.last().map(|e| cursor(e.at, e.id)))
        .flatten();
    Ok(AuditList {
        query,
        entries,
        older,
        providers: crate::accounts::view::provider_views(&state.catalog),
        now: now_ms(),
    })
}

/// The list's order, newest first; keyset cursors follow it.
pub(super) const ORDER: &str = "e.at DESC, e.id DESC";

fn cursor(at: i64, id: i64) -> String {
    format!("{at}.{id}")
}

fn parse_cursor(value: &str) -> Result<(i64, i64), AppError> {
    value
        .split_once('.')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.parse().ok()?)))
        .ok_or_else(|| {
            AppError::invalid(
                "before",
                "This page link is not valid. Start again from the newest events.",
            )
        })
}

/// An account's latest events, newest first (its detail page).
pub async fn for_account(state: &AppState, account_id: &str) -> Result<Vec<AuditEntry>, AppError> {
    let rows = sqlx::query(&format!(
        "{EVENT_SQL} WHERE e.account_id = $1 ORDER BY {ORDER} LIMIT $2"
    ))
    .bind(account_id)
    .bind(PAGE_SIZE as i64)
    .fetch_all(&state.db.pool)
    .await
    .map_err(AppError::internal)?;
    rows.iter()
        .map(|r| entry(state, r))
        .collect::<Result<_, _>>()
        .map_err(AppError::internal)
}

pub(super) fn entry(state: &AppState, row: &AnyRow) -> Result<AuditEntry, sqlx::Error> {
    let details: String = row.try_get("details")?;
    let details: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
    let provider: Option<String> = row.try_get("provider")?;
    let account_id: Option<String> = row.try_get("account_id")?;
    let subject: Option<String> = row.try_get("subject")?;
    // The account as it is now; once disconnected, as its events named it; else its id.
    let account = match &subject {
        Some(subject) => crate::accounts::label(
            &row.try_get("username")?,
            &row.try_get("email")?,
            &row.try_get("display_name")?,
            subject,
        )
        .to_owned(),
        None => details["label"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| account_id.clone())
            .unwrap_or_else(|| "an account".to_owned()),
    };
    let action: String = row.try_get("action")?;
    let outcome: String = row.try_get("outcome")?;
    let resource_server: Option<String> = row.try_get("resource_server")?;
    let provider_name = provider.as_deref().map(|p| state.catalog.display_name(p));
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        summary: summary(
            &action,
            &details,
            provider_name.as_deref().unwrap_or("the provider"),
            &account,
            resource_server.as_deref().unwrap_or("its service"),
        ),
        action,
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failure),
        actor_user_id: row.try_get("actor_user_id")?,
        actor: row.try_get("actor_email")?,
        subject_user_id: row.try_get("subject_user_id")?,
        subject: row.try_get("subject_email")?,
        provider,
        account_id,
        resource_server,
        request_id: row.try_get("request_id")?,
    })
}
