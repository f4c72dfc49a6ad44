//! The audit of delegated calls, written off the request path.
//!
//! A call changes nothing in the database, so there is no transaction to share with it (DESIGN §2's rule is for
//! changes); writing one row per call on the request path would cap delegated calls at the database's commit rate.
//! Calls are queued to one writer task per instance, which writes whatever has queued up in one transaction and
//! moves each account's `last_used_at` forward in the same transaction. The queue is bounded, so a slow database
//! slows callers down rather than letting the queue grow. A batch the database refuses twice is logged and dropped
//! (an audit outage must not stop delegated calls), and what is queued when the process dies is lost (at most one
//! batch, normally milliseconds of calls).

use std::collections::BTreeMap;

use tokio::sync::{mpsc, oneshot};

use super::{AuditAction, Outcome, repo::NewEvent};
use crate::db::Db;

const QUEUE: usize = 16_384;
const BATCH: usize = 1_000;

/// One delegated call: never a body, a token or a query string (those can carry personal data).
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub at: i64,
    pub user_id: i64,
    pub account_id: String,
    pub provider: String,
    pub resource_server: String,
    pub method: &'static str,
    pub host: String,
    /// The route with its variable parts named (`/v0.10/endpoint/{endpoint_id}`), not the concrete path.
    pub path_template: String,
    /// The upstream's HTTP status; `None` when no answer came (or no call was made).
    pub status: Option<u16>,
    pub latency_ms: f64,
    /// Why the call failed, when it did (a typed reason, never upstream text).
    pub error: Option<String>,
    pub request_id: Option<String>,
    /// What the call was about, in words ([`ApiRequest::about`](crate::delegation::ApiRequest::about)).
    pub about: Vec<(&'static str, String)>,
}

enum Message {
    Call(Box<CallRecord>),
    Flush(oneshot::Sender<()>),
}

/// Handle to this instance's call-audit writer. Cheap to clone.
#[derive(Clone)]
pub struct CallLog {
    queue: mpsc::Sender<Message>,
}

impl CallLog {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(db, rx));
        Self { queue }
    }

    pub async fn record(&self, call: CallRecord) {
        if self.queue.send(Message::Call(Box::new(call))).await.is_err() {
            tracing::error!("the call-audit writer has stopped; a delegated call was not audited");
        }
    }

    /// Waits until every call recorded before this one is in the database.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Message>) {
    let mut calls = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Call(call) => calls.push(*call),
                Message::Flush(done) => flushes.push(done),
            }
            if calls.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !calls.is_empty() {
            // One retry covers a momentary lock or connection loss; after that the batch is reported and dropped
            // rather than blocking every caller behind a database that is down.
            let mut result = write(&db, &calls).await;
            if result.is_err() {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                result = write(&db, &calls).await;
            }
            if let Err(e) = result {
                tracing::error!(calls = calls.len(), "could not write the audit of delegated calls: {e}");
            }
            calls.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write(db: &Db, calls: &[CallRecord]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let mut last_used: BTreeMap<&str, i64> = BTreeMap::new();
    for call in calls {
        let outcome = match (call.status, &call.error) {
            (Some(200..=399), None) => Outcome::Success,
            _ => Outcome::Failure,
        };
        let mut event = NewEvent::by_user(AuditAction::DelegatedCall, outcome, call.user_id);
        event.provider = Some(&call.provider);
        event.account_id = Some(&call.account_id);
        event.resource_server = Some(&call.resource_server);
        event.request_id = call.request_id.as_deref();
        event.details = serde_json::json!({
            "method": call.method,
            "host": call.host,
            "path": call.path_template,
            "status": call.status,
            "latency_ms": (call.latency_ms * 1000.0).round() / 1000.0,
            "error": call.error,
        });
        if !call.about.is_empty() {
            event.details["about"] = call
                .about
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        super::repo::record(&mut tx, &event, call.at).await?;
        if call.status.is_some() {
            let at = last_used.entry(&call.account_id).or_insert(call.at);
            *at = (*at).max(call.at);
        }
    }
    for (account_id, at) in last_used {
        sqlx::query(
            "UPDATE linked_accounts SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(at)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
