//! The outbox: events written in the transaction of the change they report, each with one delivery per endpoint
//! subscribed to its type at that moment. Nothing here talks to the network: the dispatcher sends what commits, so a
//! change and its event commit or vanish together (an event for a rolled-back change is never sent, and a committed
//! change never lacks its event).

use std::sync::LazyLock;

use sqlx::AnyConnection;
use tokio::sync::Notify;

use super::{
    EventType,
    payload::{self, Event, EventData},
    repo,
};

/// Wakes this process's dispatcher when something was enqueued and committed here (other instances find it at their
/// next poll).
static ENQUEUED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Call after committing a transaction that enqueued events: the dispatcher sends them now, not at its next poll.
pub fn committed() {
    ENQUEUED.notify_one();
}

/// Waits for [`committed`] (or returns at once if it was called since the last wait).
pub async fn enqueued() {
    ENQUEUED.notified().await;
}

/// Writes the event and its deliveries, in the caller's transaction; returns the event's id. `account_id` and
/// `user_id` give its ordering key (see [`payload::ordering_key`]).
pub async fn enqueue(
    conn: &mut AnyConnection,
    kind: EventType,
    data: EventData,
    now: i64,
) -> Result<String, sqlx::Error> {
    let id = new_event_id();
    let user_id = data.user.as_ref().map(|u| u.id);
    let account_id = data
        .account
        .as_ref()
        .map(|a| a.id.clone())
        .or_else(|| data.account_id.clone());
    write_event(conn, &id, kind, user_id, account_id.as_deref(), data, now).await?;
    let key = payload::ordering_key(account_id.as_deref(), user_id, &id);
    // Subscribed: no list (every type), or the type among the space-separated ones (`_` escaped for LIKE).
    let pattern = format!("% {} %", kind.as_str().replace('_', "\\_"));
    repo::lock_order(conn, [key.as_str()]).await?;
    repo::insert_subscribed(conn, &id, &key, &pattern, now).await?;
    Ok(id)
}

/// A `webhook.test` event for one endpoint only.
pub async fn enqueue_test(conn: &mut AnyConnection, endpoint_id: &str, now: i64) -> Result<String, sqlx::Error> {
    let id = new_event_id();
    write_event(conn, &id, EventType::Test, None, None, EventData::default(), now).await?;
    // Its key is its own: nothing to wait for, nobody to lock out.
    repo::insert_delivery(conn, &id, endpoint_id, &payload::ordering_key(None, None, &id), now).await?;
    Ok(id)
}

async fn write_event(
    conn: &mut AnyConnection,
    id: &str,
    kind: EventType,
    user_id: Option<i64>,
    account_id: Option<&str>,
    data: EventData,
    now: i64,
) -> Result<(), sqlx::Error> {
    let event = Event {
        id: id.to_owned(),
        kind: kind.as_str().to_owned(),
        occurred_at: now,
        data,
    };
    let body = serde_json::to_string(&event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO webhook_events (id, type, user_id, account_id, occurred_at, payload) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(kind.as_str())
    .bind(user_id)
    .bind(account_id)
    .bind(now)
    .bind(body)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `evt_` and 32 hex digits: unique, and free of the `.` that separates the signed parts.
fn new_event_id() -> String {
    format!("evt_{}", uuid::Uuid::new_v4().simple())
}
