//! The webhook tables' SQL: endpoints, the deliveries' claims and results, and what the admin page lists.

use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use super::{AttemptView, DeliveryView, EndpointView};
use crate::db::{Backend, Db};

// --- endpoints ---------------------------------------------------------------------------------------------------

const ENDPOINT_COLUMNS: &str = "id, url, description, events, secret, previous_secret, previous_secret_until, \
                                disabled_at, disabled_reason, last_success_at, failing_since, consecutive_failures, \
                                created_at";

/// An endpoint with its sealed secrets (never leaves the server).
#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub last_success_at: Option<i64>,
    pub failing_since: Option<i64>,
    pub consecutive_failures: i64,
    pub created_at: i64,
}

impl EndpointRow {
    pub fn view(&self) -> EndpointView {
        EndpointView {
            id: self.id.clone(),
            url: self.url.clone(),
            description: self.description.clone(),
            events: self
                .events
                .as_deref()
                .map(|e| e.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            enabled: self.disabled_at.is_none(),
            disabled_reason: self.disabled_reason.clone(),
            last_success_at: self.last_success_at,
            consecutive_failures: self.consecutive_failures,
            failing_since: self.failing_since,
            previous_secret_until: self.previous_secret_until,
            created_at: self.created_at,
        }
    }
}

fn endpoint_from_row(r: &AnyRow) -> Result<EndpointRow, sqlx::Error> {
    Ok(EndpointRow {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        description: r.try_get("description")?,
        events: r.try_get("events")?,
        secret: r.try_get("secret")?,
        previous_secret: r.try_get("previous_secret")?,
        previous_secret_until: r.try_get("previous_secret_until")?,
        disabled_at: r.try_get("disabled_at")?,
        disabled_reason: r.try_get("disabled_reason")?,
        last_success_at: r.try_get("last_success_at")?,
        failing_since: r.try_get("failing_since")?,
        consecutive_failures: r.try_get("consecutive_failures")?,
        created_at: r.try_get("created_at")?,
    })
}

pub struct NewEndpoint<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub events: Option<&'a str>,
    pub sealed_secret: &'a str,
}

pub async fn insert_endpoint(conn: &mut AnyConnection, new: &NewEndpoint<'_>, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, description, events, secret, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(new.id)
    .bind(new.url)
    .bind(new.description)
    .bind(new.events)
    .bind(new.sealed_secret)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn endpoints(pool: &AnyPool) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await?
    .iter()
    .map(endpoint_from_row)
    .collect()
}

pub async fn endpoint<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(endpoint_from_row)
    .transpose()
}

/// Disables (with the reason) or enables an endpoint, only from the other state; whether it changed. Enabling
/// starts its health afresh.
pub async fn set_disabled(
    conn: &mut AnyConnection,
    id: &str,
    disabled: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = match disabled {
        Some(reason) => {
            sqlx::query(
                "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3, updated_at = $2 \
                 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .bind(reason)
            .execute(conn)
            .await?
        }
        None => {
            sqlx::query(
                "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL, \
                 consecutive_failures = 0, updated_at = $2 WHERE id = $1 AND disabled_at IS NOT NULL",
            )
            .bind(id)
            .bind(now)
            .execute(conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// A new secret; the current one (`current`, as read) becomes the previous one until `previous_until`. Nothing when
/// the secret changed since it was read (a concurrent rotation): whether it rotated.
pub async fn rotate_secret(
    conn: &mut AnyConnection,
    id: &str,
    current: &str,
    sealed_new: &str,
    sealed_previous: &str,
    previous_until: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET secret = $2, previous_secret = $3, previous_secret_until = $4, updated_at = $5 \
         WHERE id = $1 AND secret = $6",
    )
    .bind(id)
    .bind(sealed_new)
    .bind(sealed_previous)
    .bind(previous_until)
    .bind(now)
    .bind(current)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the sealed secrets of one endpoint (key rotation), only if they are still the ones read.
pub async fn replace_sealed(
    pool: &AnyPool,
    row: &EndpointRow,
    secret: &str,
    previous: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET secret = $2, previous_secret = $3 WHERE id = $1 AND secret = $4 \
         AND (previous_secret = $5 OR (previous_secret IS NULL AND $5 IS NULL))",
    )
    .bind(&row.id)
    .bind(secret)
    .bind(previous)
    .bind(&row.secret)
    .bind(row.previous_secret.as_deref())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

// --- ordering ----------------------------------------------------------------------------------------------------

/// The `next_attempt_at` of a delivery that waits for an earlier pending one of its endpoint and ordering key: never
/// due by time. So only the first pending delivery of a key (its head) is ever due, and a claim looks at heads only,
/// never at the backlog behind them (thousands of rows behind a slow receiver, or a burst of changes to one
/// account). When a head is over (delivered or failed), the recorder makes the next one due in the same transaction
/// ([`promote_next`]). The fan-out trigger (migration `…_webhook_fan_out.sql`) writes the same number.
pub const WAITING: i64 = i64::MAX;

/// SQL for a new delivery's first `next_attempt_at`: `now` when nothing of its endpoint and key is pending, else
/// [`WAITING`]. Its writer holds the key's lock ([`lock_order`]).
fn first_attempt(endpoint: &str, key: &str, now: &str) -> String {
    format!(
        "CASE WHEN EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = {endpoint} \
         AND p.ordering_key = {key} AND p.state = 'pending') THEN {WAITING} ELSE {now} END"
    )
}

/// Takes the transaction's lock of each ordering key, in key order (so two writers never deadlock): held by whoever
/// adds a delivery behind a key's head (the fan-out trigger takes it too, by the same name) and by the recorder
/// ending a head, so that the one cannot decide "waiting" while the other, not yet seeing its row, promotes nothing
/// — and a later change's delivery of a key gets the higher id. On PostgreSQL, an advisory lock; SQLite has one
/// writer at a time already (and a write transaction that read before another's commit is refused, not run on its
/// stale view).
pub async fn lock_order<'k>(
    conn: &mut AnyConnection,
    keys: impl IntoIterator<Item = &'k str>,
) -> Result<(), sqlx::Error> {
    if conn.backend_name() != POSTGRES {
        return Ok(());
    }
    let keys: std::collections::BTreeSet<&str> = keys.into_iter().collect();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("webhook-order:{key}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// What sqlx's `Any` driver calls PostgreSQL.
const POSTGRES: &str = "PostgreSQL";

/// Adds one delivery of an event to an endpoint (a test event, a redelivery, a replay), behind any pending one of
/// its key; the caller holds the key's lock. Returns its id.
pub async fn insert_delivery(
    conn: &mut AnyConnection,
    event_id: &str,
    endpoint_id: &str,
    key: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, ordering_key, state, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, 'pending', {}, $4) RETURNING id",
        first_attempt("$2", "$3", "$4")
    ))
    .bind(event_id)
    .bind(endpoint_id)
    .bind(key)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Makes the first pending delivery of an endpoint's key due, if it waits: its head is over.
async fn promote_next(conn: &mut AnyConnection, endpoint_id: &str, key: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE webhook_deliveries SET next_attempt_at = $3 WHERE next_attempt_at = {WAITING} AND id = \
         (SELECT MIN(id) FROM webhook_deliveries WHERE endpoint_id = $1 AND ordering_key = $2 AND state = 'pending')"
    ))
    .bind(endpoint_id)
    .bind(key)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

// --- claiming and recording ---------------------------------------------------------------------------------------

/// A delivery this instance holds the lease of, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub ordering_key: String,
    /// This claim's attempt number (1 for the first).
    pub attempt: i64,
    pub created_at: i64,
    pub occurred_at: i64,
    pub payload: String,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
}

/// Takes the lease of up to `limit` due deliveries: pending, not leased (or the lease expired), to an enabled
/// endpoint, and the first pending one of their (endpoint, ordering key) — a later change never overtakes an earlier
/// one still in flight or waiting for a retry. Each claim counts as an attempt. Deliveries behind a head are
/// [`WAITING`], out of the due index's range, so a claim reads the heads only; the `NOT EXISTS` still guards the
/// order of deliveries written before that rule, or by two transactions that both found their key idle.
///
/// Safe between instances: the update re-checks the lease on the row it locks (PostgreSQL re-evaluates the `WHERE`
/// on the newest version of a row another claim just updated), so two instances never hold one delivery. On
/// PostgreSQL the candidates are picked `FOR UPDATE SKIP LOCKED`, so concurrent claims take different rows instead of
/// queueing on the same ones.
pub async fn claim(db: &Db, owner: &str, now: i64, lease_until: i64, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    // The due heads; `$1` is now.
    let due = "FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
               WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
                 AND (d.lease_until IS NULL OR d.lease_until < $1) AND e.disabled_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id \
                                 AND p.ordering_key = d.ordering_key AND p.state = 'pending' AND p.id < d.id)";
    // A read first: the claimer looks after every local commit, mostly finding nothing, and an `UPDATE` takes
    // SQLite's one write lock even when it changes no row (the link callbacks and refreshes would queue behind it).
    let any: Option<i64> = sqlx::query_scalar(&format!("SELECT d.id {due} LIMIT 1"))
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
    if any.is_none() {
        return Ok(Vec::new());
    }
    let skip_locked = match db.backend {
        Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_owner = $2, lease_until = $3, attempts = attempts + 1 \
         WHERE id IN (SELECT d.id {due} ORDER BY d.next_attempt_at, d.id LIMIT $4 {skip_locked}) \
           AND state = 'pending' AND (lease_until IS NULL OR lease_until < $1) \
         RETURNING id"
    );
    let ids: Vec<i64> = sqlx::query_scalar(&sql)
        .bind(now)
        .bind(owner)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    // The ids are integers from the database, so the list is safe to inline.
    let rows = sqlx::query(&format!(
        "SELECT d.id, d.event_id, d.endpoint_id, d.ordering_key, d.attempts, d.created_at, v.occurred_at, v.payload, e.url, \
         e.secret, e.previous_secret, e.previous_secret_until \
         FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id IN ({list}) AND d.lease_owner = $1 ORDER BY d.id"
    ))
    .bind(owner)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get("id")?,
                event_id: r.try_get("event_id")?,
                endpoint_id: r.try_get("endpoint_id")?,
                ordering_key: r.try_get("ordering_key")?,
                attempt: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                occurred_at: r.try_get("occurred_at")?,
                payload: r.try_get("payload")?,
                url: r.try_get("url")?,
                secret: r.try_get("secret")?,
                previous_secret: r.try_get("previous_secret")?,
                previous_secret_until: r.try_get("previous_secret_until")?,
            })
        })
        .collect()
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub delivery_id: i64,
    pub endpoint_id: String,
    pub ordering_key: String,
    pub attempt: i64,
    pub sent_at: i64,
    pub webhook_timestamp: i64,
    pub latency_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    /// Where the delivery goes next.
    pub next: Next,
    /// Whether the attempt says something about the receiver (not when this instance could not sign: a key it
    /// lacks is no fault of the endpoint's).
    pub counts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAt(i64),
    Failed,
    /// 410 Gone: the delivery fails and the endpoint is disabled.
    Gone,
}

impl Next {
    /// Whether the delivery is over (its key's next one may go).
    pub fn ends(self) -> bool {
        !matches!(self, Next::RetryAt(_))
    }
}

/// Records one attempt, fenced by the claim (owner and attempt number): a result that comes back after its lease
/// passed to another claim — another instance's, or this one's again — changes nothing; that claim's attempt
/// decides. Returns whether it was recorded. A delivery that is over makes the next one of its key due; the caller
/// holds the key's lock ([`lock_order`]). The endpoint's health is recorded apart ([`record_health`]).
pub async fn record(conn: &mut AnyConnection, owner: &str, r: &AttemptResult, now: i64) -> Result<bool, sqlx::Error> {
    let (state, next_at, delivered_at) = match r.next {
        Next::Delivered => ("delivered", r.sent_at, Some(now)),
        Next::RetryAt(at) => ("pending", at, None),
        Next::Failed | Next::Gone => ("failed", r.sent_at, None),
    };
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = $3, next_attempt_at = $4, delivered_at = $5, lease_owner = NULL, \
         lease_until = NULL, last_attempt_at = $6, last_status = $7, last_error = $8, last_latency_ms = $9 \
         WHERE id = $1 AND lease_owner = $2 AND attempts = $10",
    )
    .bind(r.delivery_id)
    .bind(owner)
    .bind(state)
    .bind(next_at)
    .bind(delivered_at)
    .bind(r.sent_at)
    .bind(r.status.map(i64::from))
    .bind(r.error.as_deref())
    .bind(r.latency_ms)
    .bind(r.attempt)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, sent_by, sent_at, webhook_timestamp, latency_ms, status, \
         error, response_headers, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(r.delivery_id)
    .bind(r.attempt)
    .bind(owner)
    .bind(r.sent_at)
    .bind(r.webhook_timestamp)
    .bind(r.latency_ms)
    .bind(r.status.map(i64::from))
    .bind(r.error.as_deref())
    .bind(r.response_headers.as_deref())
    .bind(r.response_body.as_deref())
    .execute(&mut *conn)
    .await?;
    if r.next.ends() {
        promote_next(conn, &r.endpoint_id, &r.ordering_key, now).await?;
    }
    Ok(true)
}

/// What a batch of attempts says about one endpoint, folded in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// The last success in the batch.
    pub success_at: Option<i64>,
    /// Failures after that success (or in the whole batch, without one), and the first of them.
    pub failures: i64,
    pub first_failure_at: Option<i64>,
}

impl Health {
    /// Folds attempts `(sent_at, succeeded)` in any order.
    pub fn of(mut attempts: Vec<(i64, bool)>) -> Self {
        attempts.sort_unstable();
        let mut health = Health::default();
        for (at, ok) in attempts {
            if ok {
                health = Health {
                    success_at: Some(at),
                    ..Health::default()
                };
            } else {
                health.failures += 1;
                health.first_failure_at.get_or_insert(at);
            }
        }
        health
    }
}

/// Applies a batch's [`Health`] to one endpoint. Callers apply several in endpoint id order, so two instances'
/// batches lock endpoint rows in the same order and never deadlock.
pub async fn record_health(conn: &mut AnyConnection, endpoint_id: &str, health: &Health) -> Result<(), sqlx::Error> {
    let query = match health.success_at {
        Some(at) => sqlx::query(
            "UPDATE webhook_endpoints SET last_success_at = $2, failing_since = $3, consecutive_failures = $4 \
             WHERE id = $1",
        )
        .bind(endpoint_id)
        .bind(at)
        .bind(health.first_failure_at)
        .bind(health.failures),
        None => sqlx::query(
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2), \
             consecutive_failures = consecutive_failures + $3 WHERE id = $1",
        )
        .bind(endpoint_id)
        .bind(health.first_failure_at)
        .bind(health.failures),
    };
    query.execute(conn).await?;
    Ok(())
}

/// Endpoints that have failed without a success since before `since`, still enabled.
pub async fn failing_since_before(conn: &mut AnyConnection, since: i64) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE disabled_at IS NULL AND failing_since < $1"
    ))
    .bind(since)
    .fetch_all(conn)
    .await?
    .iter()
    .map(endpoint_from_row)
    .collect()
}

/// Disables an endpoint only if it is still failing since before `before` (a success recorded meanwhile, by any
/// instance, keeps it enabled); whether it did.
pub async fn disable_if_failing(
    conn: &mut AnyConnection,
    id: &str,
    before: i64,
    reason: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3, updated_at = $2 \
         WHERE id = $1 AND disabled_at IS NULL AND failing_since < $4",
    )
    .bind(id)
    .bind(now)
    .bind(reason)
    .bind(before)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// --- replay ------------------------------------------------------------------------------------------------------

/// The most deliveries one replay queues (the rest: replay again from the last one's time).
pub const MAX_REPLAY: i64 = 10_000;

/// A new delivery of an event already delivered (or tried) to this endpoint: the event keeps its id (receivers
/// de-duplicate on it) and its place in its key's order. `None` when the endpoint never had that event.
pub async fn redeliver(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    event_id: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let key: Option<String> = sqlx::query_scalar(
        "SELECT ordering_key FROM webhook_deliveries WHERE event_id = $1 AND endpoint_id = $2 ORDER BY id LIMIT 1",
    )
    .bind(event_id)
    .bind(endpoint_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(key) = key else {
        return Ok(None);
    };
    lock_order(conn, [key.as_str()]).await?;
    insert_delivery(conn, event_id, endpoint_id, &key, now).await.map(Some)
}

/// New deliveries to one endpoint of the events since `since` of the types it subscribes to, in the order they
/// occurred, at most [`MAX_REPLAY`]; how many. Events of one millisecond (a burst) keep the order in which they were
/// written, which their first delivery's id records (the fan-out trigger inserts those with the event); their ids
/// are random and say nothing of it.
pub async fn redeliver_since(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    since: i64,
    now: i64,
) -> Result<u64, sqlx::Error> {
    // Subscribed as the fan-out trigger decides it (`_` escaped for LIKE).
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT v.id, v.ordering_key FROM webhook_events v JOIN webhook_endpoints e ON e.id = $1 \
         WHERE v.occurred_at >= $2 AND v.type <> 'webhook.test' \
           AND (e.events IS NULL OR (' ' || e.events || ' ') LIKE ('% ' || replace(v.type, '_', '\\_') || ' %') ESCAPE '\\') \
         ORDER BY v.occurred_at, (SELECT MIN(d.id) FROM webhook_deliveries d WHERE d.event_id = v.id), v.id LIMIT $3",
    )
    .bind(endpoint_id)
    .bind(since)
    .bind(MAX_REPLAY)
    .fetch_all(&mut *conn)
    .await?;
    lock_order(conn, events.iter().map(|(_, key)| key.as_str())).await?;
    // One by one, so each sees the ones before it: the first of a key idle at this endpoint is due, the rest wait.
    for (event_id, key) in &events {
        insert_delivery(conn, event_id, endpoint_id, key, now).await?;
    }
    Ok(events.len() as u64)
}

// --- the admin's view ---------------------------------------------------------------------------------------------

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, v.type, d.endpoint_id, d.state, d.attempts, v.occurred_at, \
                                d.next_attempt_at, d.last_status, d.last_error, d.last_latency_ms, d.delivered_at";

fn delivery_from_row(r: &AnyRow) -> Result<DeliveryView, sqlx::Error> {
    let state: String = r.try_get("state")?;
    let next: i64 = r.try_get("next_attempt_at")?;
    let waiting = state == "pending" && next == WAITING;
    Ok(DeliveryView {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("type")?,
        endpoint_id: r.try_get("endpoint_id")?,
        next_attempt_at: (state == "pending" && !waiting).then_some(next),
        waiting,
        state,
        attempts: r.try_get("attempts")?,
        occurred_at: r.try_get("occurred_at")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        last_latency_ms: r.try_get("last_latency_ms")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

/// An endpoint's most recent deliveries, newest first.
pub async fn recent_deliveries(
    pool: &AnyPool,
    endpoint_id: &str,
    limit: i64,
) -> Result<Vec<DeliveryView>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id \
         WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT $2"
    ))
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(delivery_from_row)
    .collect()
}

pub async fn delivery(pool: &AnyPool, id: i64) -> Result<Option<(DeliveryView, String)>, sqlx::Error> {
    let Some(r) = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS}, v.payload FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id \
         WHERE d.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((delivery_from_row(&r)?, r.try_get("payload")?)))
}

/// The recorded attempts of a delivery; `request_headers` is filled by the caller (it knows the event's id).
pub async fn attempts(pool: &AnyPool, delivery_id: i64) -> Result<Vec<AttemptView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT attempt, sent_at, webhook_timestamp, latency_ms, status, error, response_headers, response_body \
         FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt, id",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let headers: Option<String> = r.try_get("response_headers")?;
            let timestamp: i64 = r.try_get("webhook_timestamp")?;
            Ok(AttemptView {
                attempt: r.try_get("attempt")?,
                sent_at: r.try_get("sent_at")?,
                latency_ms: r.try_get("latency_ms")?,
                request_headers: vec![("webhook-timestamp".into(), timestamp.to_string())],
                status: r.try_get("status")?,
                error: r.try_get("error")?,
                response_headers: headers.and_then(|h| serde_json::from_str(&h).ok()).unwrap_or_default(),
                response_body: r.try_get("response_body")?,
            })
        })
        .collect()
}

/// Deletes events older than `before` whose deliveries are all over (their deliveries and attempts go with them).
pub async fn delete_finished_before(pool: &AnyPool, before: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM webhook_events WHERE occurred_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id AND d.state = 'pending')",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn a_batch_folds_into_one_health_per_endpoint() {
        assert_eq!(
            Health::of(vec![(3, false), (1, false), (2, true)]),
            Health {
                success_at: Some(2),
                failures: 1,
                first_failure_at: Some(3)
            },
            "the failure after the success counts, the one before does not"
        );
        assert_eq!(
            Health::of(vec![(5, false), (4, false)]),
            Health {
                success_at: None,
                failures: 2,
                first_failure_at: Some(4)
            }
        );
        assert_eq!(
            Health::of(vec![(1, true), (2, true)]),
            Health {
                success_at: Some(2),
                ..Health::default()
            }
        );
    }
}
