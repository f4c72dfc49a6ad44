//! Prometheus metrics, for operators: how refreshes and delegated calls go, per provider, how many links are in
//! which state, and what the audit log and webhooks do. The counters are called from the lowest layers (the audit
//! log, delegated calls), so this module depends on nothing of the application's; `http::metrics` serves them.
//!
//! The counters and the histogram are this process's, since it started (Prometheus sums instances and handles
//! restarts); the links by state are read from the database at each scrape, so every instance reports the same
//! totals (take `max`, not `sum`, across instances). Label values come from bounded sets only: configured provider
//! ids, HTTP status codes, typed error codes, audit action names; never a user, an account or a URL.

use std::{sync::LazyLock, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

/// How one attempt at a provider's token endpoint to refresh a token ended.
#[derive(Debug, Clone, Copy)]
pub enum RefreshAttempt {
    /// New tokens came back.
    Success,
    /// Worth trying again (no connection, timeout, 5xx, 429).
    Transient,
    /// The provider refused (the grant is gone, the client is refused, …).
    Rejected,
}

impl RefreshAttempt {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Transient => "transient_error",
            Self::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    provider: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: String,
    /// The upstream's HTTP status, or why no answer came (`unreachable`, `needs_reconnect`, …).
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditLabels {
    action: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LinkLabels {
    provider: String,
    status: String,
}

fn call_duration_histogram() -> Histogram {
    // 5 ms to ~41 s, doubling: a provider API answers in tens to hundreds of milliseconds; the outbound timeout is
    // 15 s by default.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    outcome: &'static str,
}

struct Metrics {
    registry: Registry,
    webhook_deliveries: Family<WebhookLabels, Counter>,
    webhook_latency: Histogram,
    refresh_attempts: Family<RefreshLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    call_duration: Family<ProviderLabel, Histogram, fn() -> Histogram>,
    audit_events: Family<AuditLabels, Counter>,
    links: Family<LinkLabels, Gauge>,
    /// One scrape at a time: each one clears and refills `links` before encoding.
    scrape: tokio::sync::Mutex<()>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let refresh_attempts = Family::default();
    registry.register(
        "onbehalf_refresh_attempts",
        "Attempts at a provider's token endpoint to refresh a user's token, by outcome",
        refresh_attempts.clone(),
    );
    let calls = Family::default();
    registry.register(
        "onbehalf_delegated_calls",
        "Calls made to provider APIs with a user's token, by the upstream's status (or why none came)",
        calls.clone(),
    );
    let call_duration = Family::new_with_constructor(call_duration_histogram as fn() -> Histogram);
    registry.register_with_unit(
        "onbehalf_delegated_call_duration",
        "Duration of calls made with a user's token, refreshes included",
        Unit::Seconds,
        call_duration.clone(),
    );
    let audit_events = Family::default();
    registry.register(
        "onbehalf_audit_events",
        "Audit events written by this instance, by action and outcome",
        audit_events.clone(),
    );
    let links = Family::default();
    registry.register(
        "onbehalf_linked_accounts",
        "Linked accounts in the database, by provider and status (read at each scrape)",
        links.clone(),
    );
    let webhook_deliveries = Family::default();
    registry.register(
        "onbehalf_webhook_deliveries",
        "Webhook delivery attempts by this instance, by outcome (delivered, retry, failed, gone)",
        webhook_deliveries.clone(),
    );
    // 10 ms to ~80 s, doubling: a healthy receiver gets an event in milliseconds; retries take seconds and more.
    let webhook_latency = Histogram::new(exponential_buckets(0.01, 2.0, 14));
    registry.register_with_unit(
        "onbehalf_webhook_delivery_latency",
        "From the change that made an event to its delivery's 2xx, retries included",
        Unit::Seconds,
        webhook_latency.clone(),
    );
    Metrics {
        registry,
        webhook_deliveries,
        webhook_latency,
        refresh_attempts,
        calls,
        call_duration,
        audit_events,
        links,
        scrape: tokio::sync::Mutex::new(()),
    }
});

/// Counts one attempt at refreshing a token of `provider`.
pub fn refresh_attempt(provider: &str, outcome: RefreshAttempt) {
    let labels = RefreshLabels {
        provider: provider.to_owned(),
        outcome: outcome.as_str(),
    };
    METRICS.refresh_attempts.get_or_create(&labels).inc();
}

/// Counts one delegated call and its duration. `status` is the upstream's, or `None` when no answer came; `error`
/// is the call's typed error code then.
pub fn delegated_call(provider: &str, status: Option<u16>, error: Option<&str>, took: Duration) {
    let provider = if provider.is_empty() { "unknown" } else { provider };
    let status = match (status, error) {
        (Some(code), _) => code.to_string(),
        (None, Some(error)) => error.to_owned(),
        (None, None) => "none".to_owned(),
    };
    METRICS
        .calls
        .get_or_create(&CallLabels {
            provider: provider.to_owned(),
            status,
        })
        .inc();
    METRICS
        .call_duration
        .get_or_create(&ProviderLabel {
            provider: provider.to_owned(),
        })
        .observe(took.as_secs_f64());
}

/// Counts one audit event written (by `audit::repo::record`, inside its transaction: an event whose transaction
/// then fails is counted too, which only a database error causes).
pub fn audit_event(action: &'static str, outcome: &'static str) {
    METRICS
        .audit_events
        .get_or_create(&AuditLabels { action, outcome })
        .inc();
}

/// Counts one webhook delivery attempt; `latency` (event to 2xx) when it was delivered.
pub fn webhook_delivery(outcome: &'static str, latency: Option<Duration>) {
    METRICS
        .webhook_deliveries
        .get_or_create(&WebhookLabels { outcome })
        .inc();
    if let Some(latency) = latency {
        METRICS.webhook_latency.observe(latency.as_secs_f64());
    }
}

/// The OpenMetrics text of every metric, the linked-accounts gauge set first to `links` (provider, status, count:
/// every series the scrape should show, zeros included). One at a time, since each call clears and refills the gauge.
pub async fn encode_with_links(
    links: impl IntoIterator<Item = (String, String, i64)>,
) -> Result<String, std::fmt::Error> {
    let _one_at_a_time = METRICS.scrape.lock().await;
    METRICS.links.clear();
    for (provider, status, count) in links {
        METRICS.links.get_or_create(&LinkLabels { provider, status }).set(count);
    }
    let mut body = String::new();
    encode(&mut body, &METRICS.registry)?;
    Ok(body)
}
