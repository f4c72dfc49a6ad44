//! Writing and reading `audit_events`.

use sqlx::{AnyConnection, AnyPool, Row};

use super::{AuditAction, Outcome};

/// One event to record. `details` is a JSON object of non-secret facts (reason, scopes, intent).
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub action: AuditAction,
    pub outcome: Outcome,
    pub actor_user_id: Option<i64>,
    pub subject_user_id: Option<i64>,
    pub provider: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub resource_server: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub details: serde_json::Value,
}

impl<'a> NewEvent<'a> {
    /// An event a user caused about their own data.
    pub fn by_user(action: AuditAction, outcome: Outcome, user_id: i64) -> Self {
        Self {
            action,
            outcome,
            actor_user_id: Some(user_id),
            subject_user_id: Some(user_id),
            provider: None,
            account_id: None,
            resource_server: None,
            request_id: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }
}

pub async fn record(conn: &mut AnyConnection, event: &NewEvent<'_>, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor_user_id, subject_user_id, action, outcome, provider, account_id, \
         resource_server, request_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(now)
    .bind(event.actor_user_id)
    .bind(event.subject_user_id)
    .bind(event.action.as_str())
    .bind(event.outcome.as_str())
    .bind(event.provider)
    .bind(event.account_id)
    .bind(event.resource_server)
    .bind(event.request_id)
    .bind(event.details.to_string())
    .execute(conn)
    .await?;
    crate::metrics::audit_event(event.action.as_str(), event.outcome.as_str());
    Ok(())
}

/// A stored event (for pages and tests).
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub actor_user_id: Option<i64>,
    pub subject_user_id: Option<i64>,
    pub action: String,
    pub outcome: String,
    pub provider: Option<String>,
    pub account_id: Option<String>,
    pub details: serde_json::Value,
}

/// The newest events about one user, newest first.
pub async fn for_subject(pool: &AnyPool, user_id: i64, limit: i64) -> Result<Vec<EventRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, at, actor_user_id, subject_user_id, action, outcome, provider, account_id, details \
         FROM audit_events WHERE subject_user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let details: String = r.try_get("details")?;
            Ok(EventRow {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor_user_id: r.try_get("actor_user_id")?,
                subject_user_id: r.try_get("subject_user_id")?,
                action: r.try_get("action")?,
                outcome: r.try_get("outcome")?,
                provider: r.try_get("provider")?,
                account_id: r.try_get("account_id")?,
                details: serde_json::from_str(&details).unwrap_or_default(),
            })
        })
        .collect()
}
