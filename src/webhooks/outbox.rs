//! The outbox: events written in the transaction of the change they report, each with one delivery per endpoint
//! subscribed to its type at that moment (made by the event's own INSERT: the `webhook_events_fan_out` trigger).
//! Nothing here talks to the network: the dispatcher sends what commits, so a change and its event commit or vanish
//! together (an event for a rolled-back change is never sent, and a committed change never lacks its event).

use std::sync::LazyLock;

use sqlx::AnyConnection;
use tokio::sync::watch;

use super::{
    EventType,
    payload::{self, Event, EventData},
    repo,
};

/// Counts this process's commits of events; each dispatcher watches it. A `watch` rather than one `Notify`: a
/// process may run several apps (the test suite does), and `notify_one` woke one dispatcher of them, maybe another
/// app's, so an app's event waited for its next poll. Every dispatcher sees every commit, and one made while it was
/// busy claiming is still seen at its next wait.
static ENQUEUED: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::Sender::new(0));

/// Call after committing a transaction that enqueued events: the dispatchers send them now, not at their next poll.
pub fn committed() {
    ENQUEUED.send_modify(|count| *count = count.wrapping_add(1));
}

/// A dispatcher's view of [`committed`]: `changed().await` returns at once if there was a commit since its last wait.
pub fn watch_enqueued() -> watch::Receiver<u64> {
    ENQUEUED.subscribe()
}

/// Writes the event, in the caller's transaction; its INSERT also writes one delivery per endpoint subscribed to its
/// type (the `webhook_events_fan_out` trigger, in the migrations: the deliveries, and on PostgreSQL the order lock,
/// are no longer statements of their own inside the change's transaction — see its comment). Returns the event's
/// id. `account_id` and `user_id` give its ordering key (see [`payload::ordering_key`]).
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
    let key = payload::ordering_key(account_id.as_deref(), user_id, &id);
    let event = NewEvent {
        id: &id,
        kind,
        user_id,
        account_id: account_id.as_deref(),
        ordering_key: &key,
    };
    write_event(conn, event, data, now).await?;
    Ok(id)
}

/// A `webhook.test` event for one endpoint only (the trigger leaves test events alone).
pub async fn enqueue_test(conn: &mut AnyConnection, endpoint_id: &str, now: i64) -> Result<String, sqlx::Error> {
    let id = new_event_id();
    // Its key is its own: nothing to wait for, nobody to lock out.
    let key = payload::ordering_key(None, None, &id);
    let event = NewEvent {
        id: &id,
        kind: EventType::Test,
        user_id: None,
        account_id: None,
        ordering_key: &key,
    };
    write_event(conn, event, EventData::default(), now).await?;
    repo::insert_delivery(conn, &id, endpoint_id, &key, now).await?;
    Ok(id)
}

struct NewEvent<'a> {
    id: &'a str,
    kind: EventType,
    user_id: Option<i64>,
    account_id: Option<&'a str>,
    ordering_key: &'a str,
}

async fn write_event(
    conn: &mut AnyConnection,
    new: NewEvent<'_>,
    data: EventData,
    now: i64,
) -> Result<(), sqlx::Error> {
    let event = Event {
        id: new.id.to_owned(),
        kind: new.kind.as_str().to_owned(),
        occurred_at: now,
        data,
    };
    let body = serde_json::to_string(&event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO webhook_events (id, type, user_id, account_id, ordering_key, occurred_at, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new.id)
    .bind(new.kind.as_str())
    .bind(new.user_id)
    .bind(new.account_id)
    .bind(new.ordering_key)
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
