//! Sending what the outbox holds: every instance runs one dispatcher (`webhooks.dispatch`).
//!
//! - **Claim**: due deliveries are taken under a lease (`repo::claim`: pending, not leased, the first pending one of
//!   their account for their endpoint), as many as there are free slots (`webhooks.concurrency`). An instance that
//!   dies holding a lease loses it when it expires, and another instance sends the delivery: at least once.
//! - **Send**: each delivery is one task: a POST signed per Standard Webhooks (`webhook-id` is the event's id, the
//!   same on every retry), under `webhooks.timeout`, reading at most 4 KB of the answer, following no redirect,
//!   connecting only to public addresses (`address::GuardedResolver`). A slow or huge answer holds one slot for at
//!   most the timeout; the others go on.
//! - **Record**: results go to one recorder task that writes them in batches (one transaction per batch, fenced by
//!   the lease), with the endpoint's health; a delivery that is over makes the next one of its account due (only
//!   the first pending delivery of an account is ever due: see `repo::WAITING`); then the claimer looks again.
//!   2xx: delivered. 410 Gone: failed, and the endpoint disabled. Anything else (other statuses, timeouts, refused
//!   connections): retried after a full-jitter exponential backoff ([`retry_delay`]) until `webhooks.retry_for`
//!   has passed since the event, then failed. An endpoint failing for `webhooks.disable_after` is disabled and
//!   audited.
//!
//! The claimer wakes when this process commits an event (`outbox::committed`), when a result was recorded, and every
//! `webhooks.poll_interval` for what other instances enqueued and for retries that came due.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use super::{
    address::{self, GuardedResolver, Policy},
    endpoints::{self, ChangedBy},
    outbox,
    repo::{self, AttemptResult, Claimed, Next},
};
use crate::{
    config::WebhookSettings,
    db::{Db, now_ms},
    metrics,
    tokens::vault::Vault,
};

/// How much of a receiver's answer is kept (and read).
pub const RESPONSE_BODY_MAX: usize = 4096;
/// How many response headers are kept, and how long each value may be.
const RESPONSE_HEADERS_MAX: usize = 50;
const HEADER_VALUE_MAX: usize = 512;
/// How many results the recorder writes in one transaction at most.
const RECORD_BATCH: usize = 256;

pub struct Dispatcher {
    db: Db,
    vault: Arc<Vault>,
    settings: WebhookSettings,
    /// This instance's lease owner id.
    owner: String,
    client: reqwest::Client,
    /// Wakes the claimer when results were recorded.
    recorded: Notify,
}

/// The client that sends webhooks: no redirects, the timeout, public addresses only.
pub fn client(settings: &WebhookSettings) -> reqwest::Client {
    let policy = Policy {
        allow_http_loopback: settings.allow_http_loopback,
    };
    reqwest::Client::builder()
        // A proxy would resolve the name itself, out of the resolver's sight: webhooks connect directly.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
        .dns_resolver(GuardedResolver::shared(policy))
        .user_agent(concat!("onbehalf-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook client's settings are valid")
}

/// How long to wait before the next attempt after `attempt` (1-based) failed: uniformly random up to
/// `base · 2^(attempt−1)`, capped at `max` ("full jitter": receivers coming back from an outage are not hit by every
/// sender at once).
pub fn retry_delay(attempt: i64, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << (attempt - 1).clamp(0, 30) as u32).min(max);
    Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling.as_millis() as u64))
}

impl Dispatcher {
    pub fn new(db: Db, vault: Arc<Vault>, settings: WebhookSettings, instance: &str) -> Arc<Self> {
        Arc::new(Self {
            client: client(&settings),
            db,
            vault,
            settings,
            owner: format!("{instance}/webhooks"),
            recorded: Notify::new(),
        })
    }

    /// Claims, sends and records until the process ends.
    pub async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let (results, inbox) = mpsc::unbounded_channel();
        tokio::spawn(self.clone().record_loop(inbox));
        let mut enqueued = outbox::watch_enqueued();
        loop {
            // At least one free slot before claiming.
            match slots.clone().acquire_owned().await {
                Ok(permit) => drop(permit),
                Err(_) => return,
            }
            let free = slots.available_permits().max(1) as i64;
            let now = now_ms();
            let lease_until = now + self.settings.lease.as_millis() as i64;
            let claimed = match repo::claim(&self.db, &self.owner, now, lease_until, free).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!("claiming webhook deliveries failed: {e}");
                    tokio::time::sleep(self.settings.poll_interval).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = enqueued.changed() => {}
                    () = self.recorded.notified() => {}
                    () = tokio::time::sleep(self.settings.poll_interval) => {}
                }
                continue;
            }
            for delivery in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                let results = results.clone();
                tokio::spawn(async move {
                    let result = this.attempt(&delivery).await;
                    // The slot stays taken until the result is recorded: a slow recorder slows the claims, and
                    // what waits in the channel is bounded by the slots.
                    let _ = results.send(Recorded {
                        result,
                        occurred_at: delivery.occurred_at,
                        _slot: permit,
                    });
                });
            }
        }
    }

    /// One attempt at one delivery.
    async fn attempt(&self, d: &Claimed) -> AttemptResult {
        let sent_at = now_ms();
        let timestamp = sent_at / 1000;
        let started = std::time::Instant::now();
        let outcome = self.send(d, sent_at).await;
        let counts = !matches!(outcome, Err(Failure::Unsigned(_)));
        let latency_ms = started.elapsed().as_millis() as i64;
        let retry_or_fail = || {
            let at = now_ms()
                + retry_delay(d.attempt, self.settings.retry_base, self.settings.retry_max_delay).as_millis() as i64;
            if at > d.created_at + self.settings.retry_for.as_millis() as i64 {
                Next::Failed
            } else {
                Next::RetryAt(at)
            }
        };
        let (status, error, response_headers, response_body, next) = match outcome {
            Ok(answer) => {
                let next = match answer.status {
                    200..=299 => Next::Delivered,
                    410 => Next::Gone,
                    _ => retry_or_fail(),
                };
                (Some(answer.status), None, Some(answer.headers), Some(answer.body), next)
            }
            Err(Failure::Retry(e) | Failure::Unsigned(e)) => (None, Some(e), None, None, retry_or_fail()),
            Err(Failure::Refused(e)) => (None, Some(e), None, None, Next::Failed),
        };
        AttemptResult {
            delivery_id: d.id,
            endpoint_id: d.endpoint_id.clone(),
            ordering_key: d.ordering_key.clone(),
            attempt: d.attempt,
            sent_at,
            webhook_timestamp: timestamp,
            latency_ms,
            status,
            error,
            response_headers,
            response_body,
            next,
            counts,
        }
    }

    async fn send(&self, d: &Claimed, sent_at: i64) -> Result<Answer, Failure> {
        let timestamp = sent_at / 1000;
        let policy = Policy {
            allow_http_loopback: self.settings.allow_http_loopback,
        };
        // The URL was checked when it was added; checked again because an IP literal never meets the resolver and
        // the policy may have changed since.
        address::check_url(&d.url, policy).map_err(|e| Failure::Refused(e.0))?;
        let keys = endpoints::signing_keys(
            &self.vault,
            &d.endpoint_id,
            &d.secret,
            d.previous_secret.as_deref(),
            d.previous_secret_until,
            sent_at,
        )
        .map_err(|e| Failure::Unsigned(format!("the endpoint's secret cannot be opened here: {e}")))?;
        let signature = super::signing::signature_header(&keys, &d.event_id, timestamp, d.payload.as_bytes());
        let request = self
            .client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &d.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone());
        let exchange = async {
            let mut response = request.send().await.map_err(|e| Failure::Retry(describe(&e)))?;
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .take(RESPONSE_HEADERS_MAX)
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes());
                    (name.to_string(), value.chars().take(HEADER_VALUE_MAX).collect())
                })
                .collect();
            let mut body = Vec::new();
            // Only the first 4 KB are read; the rest is never downloaded (the connection is dropped).
            while body.len() < RESPONSE_BODY_MAX {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        body.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_BODY_MAX - body.len())])
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            Ok(Answer {
                status,
                headers: storable(&serde_json::to_string(&headers).unwrap_or_default()),
                body: storable(&String::from_utf8_lossy(&body)),
            })
        };
        // reqwest's timeout covers the whole exchange too; this one also bounds a body trickling in.
        tokio::time::timeout(self.settings.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(Failure::Retry(format!("no answer within {:?}", self.settings.timeout))))
    }

    /// Writes results in batches until the process ends.
    async fn record_loop(self: Arc<Self>, mut inbox: mpsc::UnboundedReceiver<Recorded>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while inbox.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let results: Vec<&Recorded> = batch.iter().collect();
            if let Err(e) = self.record(&results).await {
                // One result the database refuses must not sink the others: each alone, then.
                tracing::warn!(
                    "recording {} webhook results in one transaction failed ({e}); one by one",
                    batch.len()
                );
                for one in &batch {
                    if let Err(e) = self.record(&[one]).await {
                        // Its lease runs out and another attempt is made: at least once, never lost.
                        tracing::error!(
                            delivery = one.result.delivery_id,
                            "recording a webhook result failed: {e}"
                        );
                    }
                }
            }
            batch.clear(); // frees the slots
            self.recorded.notify_one();
            let before = now_ms() - self.settings.disable_after.as_millis() as i64;
            if let Err(e) = endpoints::disable_failing(&self.db, before, &in_words(self.settings.disable_after)).await {
                tracing::error!("disabling failing webhook endpoints: {e}");
            }
        }
    }

    /// Records results in one transaction: each delivery (fenced by its claim; one that is over makes the next of
    /// its key due), then each endpoint's health once, in endpoint order (so instances recording at once lock
    /// endpoints in the same order).
    async fn record(&self, batch: &[&Recorded]) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let mut ordered: Vec<&AttemptResult> = batch.iter().map(|r| &r.result).collect();
        ordered.sort_by_key(|r| r.delivery_id);
        let mut tx = self.db.begin_write().await?;
        // Before anything else (all writers take these first, in key order): a delivery that ends promotes the next
        // of its key, which an enqueue of the same key must not miss.
        let ending = ordered
            .iter()
            .filter(|r| r.next.ends())
            .map(|r| r.ordering_key.as_str());
        repo::lock_order(&mut tx, ending).await?;
        let mut recorded = Vec::with_capacity(batch.len());
        let mut health: std::collections::BTreeMap<&str, Vec<(i64, bool)>> = Default::default();
        for result in ordered {
            if repo::record(&mut tx, &self.owner, result, now).await? {
                recorded.push(result.delivery_id);
                if result.counts {
                    health
                        .entry(&result.endpoint_id)
                        .or_default()
                        .push((result.sent_at, result.next == Next::Delivered));
                }
            }
        }
        for (endpoint, attempts) in health {
            repo::record_health(&mut tx, endpoint, &repo::Health::of(attempts)).await?;
        }
        tx.commit().await?;
        for r in batch.iter().filter(|r| recorded.contains(&r.result.delivery_id)) {
            let outcome = match r.result.next {
                Next::Delivered => "delivered",
                Next::RetryAt(_) => "retry",
                Next::Failed => "failed",
                Next::Gone => "gone",
            };
            let latency = (r.result.next == Next::Delivered)
                .then(|| Duration::from_millis(now.saturating_sub(r.occurred_at).max(0) as u64));
            metrics::webhook_delivery(outcome, latency);
            if r.result.next == Next::Gone {
                let reason = "gone: the receiver answered 410 Gone";
                if let Err(e) =
                    endpoints::set_disabled(&self.db, &r.result.endpoint_id, Some(reason), ChangedBy::default()).await
                {
                    tracing::error!("disabling a gone webhook endpoint: {e}");
                }
            }
        }
        Ok(())
    }
}

/// A result on its way to the recorder, holding its delivery's slot.
struct Recorded {
    result: AttemptResult,
    occurred_at: i64,
    _slot: OwnedSemaphorePermit,
}

struct Answer {
    status: u16,
    headers: String,
    body: String,
}

enum Failure {
    /// Worth another attempt (no connection, timeout).
    Retry(String),
    /// This instance cannot sign (a vault key it lacks, during a key rollout): another attempt, by an instance that
    /// has it or later, and no fault of the receiver's.
    Unsigned(String),
    /// Can never work (the URL is no longer allowed).
    Refused(String),
}

/// Text a receiver chose, as the database stores it: PostgreSQL refuses NUL in `TEXT`, and one such answer must
/// not keep a batch of results from being recorded.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// A send error in words, with its cause (reqwest's own message alone is "error sending request").
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// "1 day", "6 hours", "90 seconds".
fn in_words(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = match secs {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Deletes events past `webhooks.retention` whose deliveries are over (housekeeping).
pub async fn delete_old_events(db: &Db, settings: &WebhookSettings) -> Result<u64, sqlx::Error> {
    repo::delete_finished_before(&db.pool, now_ms() - settings.retention.as_millis() as i64).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_are_full_jitter_under_a_doubling_ceiling() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..=6 {
            let ceiling = (100u64 << (attempt - 1)).min(1000);
            let draws: Vec<u64> = (0..2000)
                .map(|_| retry_delay(attempt, base, max).as_millis() as u64)
                .collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
            // Uniform on [0, ceiling]: the mean is half the ceiling, so it grows with each attempt until the cap.
            assert!(
                (mean - ceiling as f64 / 2.0).abs() < ceiling as f64 * 0.1,
                "attempt {attempt}: mean {mean}"
            );
            assert!(
                draws.iter().any(|d| *d < ceiling / 4),
                "attempt {attempt}: full jitter reaches low"
            );
        }
    }
}
