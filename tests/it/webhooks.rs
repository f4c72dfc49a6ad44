//! Webhooks end to end: the real app (or its dispatcher) sending to real HTTP receivers on loopback, on SQLite and
//! PostgreSQL. The receivers record what arrived and answer as each test scripts; signatures are checked with the
//! Standard Webhooks algorithm here and by the `standardwebhooks` package in the Python tests.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::support::{
    Backend, TestApp,
    oauth::{count, identity, linked},
};
use axum::{
    body::Bytes,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};
use onbehalf::{
    accounts::status::{self, Problem, Seen},
    config::Settings,
    db::{Db, now_ms},
    webhooks::{
        EventType,
        dispatcher::Dispatcher,
        endpoints::{self, ChangedBy, NewWebhook, Replay},
        outbox,
        payload::EventData,
        repo, signing,
    },
};
use serde_json::Value;

/// What a receiver got.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn id(&self) -> String {
        self.header("webhook-id").to_owned()
    }
}

/// How a receiver answers its n-th request (from 0).
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Waits, then answers 200.
    Slow(Duration),
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// 200 with NUL bytes in the body (PostgreSQL keeps no NUL in text).
    Nul,
}

type Script = Arc<dyn Fn(usize, &Received) -> Reply + Send + Sync>;

/// A webhook receiver: a real HTTP server on 127.0.0.1.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script: Script = Arc::new(script);
        let state = (seen.clone(), script);
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |axum::extract::State((seen, script)): axum::extract::State<(
                        Arc<Mutex<Vec<Received>>>,
                        Script,
                    )>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let received = Received {
                            at: Instant::now(),
                            headers,
                            body,
                        };
                        let n = {
                            let mut seen = seen.lock().unwrap();
                            seen.push(received.clone());
                            seen.len() - 1
                        };
                        match script(n, &received) {
                            Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
                            Reply::Slow(wait) => {
                                tokio::time::sleep(wait).await;
                                StatusCode::OK.into_response()
                            }
                            Reply::Huge(bytes) => (StatusCode::OK, vec![b'x'; bytes]).into_response(),
                            Reply::Nul => (StatusCode::OK, b"ok\0\0ok".to_vec()).into_response(),
                        }
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen }
    }

    async fn ok() -> Self {
        Self::start(|_, _| Reply::Status(204)).await
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived (at most `within`); what arrived.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.seen();
            if seen.len() >= n || Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The requests of event type `kind`.
    fn of_type(&self, kind: &str) -> Vec<Received> {
        self.seen().into_iter().filter(|r| r.json()["type"] == kind).collect()
    }
}

/// Quick retries and polls, loopback receivers allowed.
fn fast(s: &mut Settings) {
    s.webhooks.allow_http_loopback = true;
    s.webhooks.retry_base = Duration::from_millis(100);
    s.webhooks.poll_interval = Duration::from_millis(50);
    s.webhooks.timeout = Duration::from_secs(1);
    s.webhooks.lease = Duration::from_secs(3);
}

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, fast).await
}

/// Adds an endpoint for `url` (every event type unless `events`); its id and secret.
async fn add(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let new = NewWebhook {
        url,
        events: &events,
        description: Some("test receiver"),
    };
    let (endpoint, secret) = endpoints::add(
        &app.state.db,
        &app.state.vault,
        &app.state.settings.webhooks,
        new,
        ChangedBy::default(),
    )
    .await
    .unwrap();
    (endpoint.id, secret)
}

fn verifies(received: &Received, secret: &str) -> bool {
    let key = signing::key_of(secret).unwrap();
    let timestamp: i64 = received.header("webhook-timestamp").parse().unwrap();
    signing::verify(
        &key,
        received.header("webhook-id"),
        timestamp,
        received.header("webhook-signature"),
        &received.body,
        now_ms() / 1000,
    )
    .is_ok()
}

async fn transfer_bearer(
    app: &TestApp,
    who: &crate::support::oauth::Linked,
) -> Result<onbehalf::delegation::Bearer, onbehalf::delegation::Unavailable> {
    app.state
        .delegation
        .bearer(
            who.user_id,
            &who.account_id,
            onbehalf::actions::TRANSFER_RESOURCE_SERVER,
        )
        .await
}

/// The body carries what its type promises (`EventType::required_data`, also the OpenAPI schema per type).
fn carries_required(received: &Received) {
    let body = received.json();
    let kind = EventType::parse(body["type"].as_str().unwrap()).unwrap();
    for field in kind.required_data() {
        assert!(!body["data"][field].is_null(), "{kind} without data.{field}: {body}");
    }
}

async fn delivery_states(app: &TestApp) -> HashMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    rows.into_iter().collect()
}

/// Enqueues `kind` for the account (as `accounts::status` would, in its own transaction), with `reason` to tell the
/// events apart.
async fn enqueue(db: &Db, user_id: i64, account_id: &str, reason: &str) -> String {
    enqueue_at(db, user_id, account_id, reason, now_ms()).await
}

async fn enqueue_at(db: &Db, user_id: i64, account_id: &str, reason: &str, now: i64) -> String {
    let mut tx = db.begin_write().await.unwrap();
    let mut data = EventData::new_for(onbehalf::webhooks::payload::user(&mut tx, user_id).await.unwrap(), None);
    data.account_id = Some(account_id.to_owned());
    data.reason = Some(reason.to_owned());
    let id = outbox::enqueue(&mut tx, EventType::AccountRecovered, data, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    outbox::committed();
    id
}

async fn a_link_is_delivered_at_once_signed_and_without_tokens(backend: Backend) {
    const METRICS_TOKEN: &str = "scrape-me-0123456789";
    let app = TestApp::spawn_with(backend, |s| {
        fast(s);
        s.metrics.token = Some(METRICS_TOKEN.to_owned().into());
    })
    .await;
    let receiver = Receiver::ok().await;
    let (_, secret) = add(&app, &receiver.url, &[]).await;
    let started = Instant::now();
    let ada = linked(&app, 0).await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "one event: the link");
    let linked_event = &got[0];
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "sent at once, not at a poll"
    );
    assert!(verifies(linked_event, &secret), "Standard Webhooks signature");
    assert_eq!(linked_event.header("content-type"), "application/json");
    let body = linked_event.json();
    assert_eq!(body["type"], "account.linked");
    assert_eq!(body["id"], linked_event.header("webhook-id"));
    assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(body["data"]["user"]["id"], ada.user_id);
    let account = &body["data"]["account"];
    assert_eq!(account["id"], ada.account_id.as_str());
    assert_eq!(account["provider_id"], "demo");
    assert_eq!(account["status"], "active");
    assert!(
        account["resource_servers"].as_array().is_some_and(|rs| !rs.is_empty()),
        "consent status per resource server: {body}"
    );
    // Never a token: the account's live access token is nowhere in the body.
    let bearer = transfer_bearer(&app, &ada).await.unwrap();
    let text = String::from_utf8_lossy(&linked_event.body);
    assert!(!text.contains(secrecy::ExposeSecret::expose_secret(bearer.secret())));
    fn keys(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                out.push(k.clone());
                keys(v, out);
            }),
            Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }
    let mut names = Vec::new();
    keys(&body, &mut names);
    assert!(
        !names
            .iter()
            .any(|k| k == "access_token" || k == "refresh_token" || k == "token"),
        "{names:?}"
    );

    // Delivered, recorded, and the endpoint healthy.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(delivery_states(&app).await.get("delivered"), Some(&1));
    let endpoint = &endpoints::list(&app.state.db).await.unwrap()[0];
    assert!(endpoint.last_success_at.is_some());
    assert_eq!(endpoint.consecutive_failures, 0);
    // Counted in /metrics: the delivery by outcome, and its latency from the change.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        sample("onbehalf_webhook_deliveries_total{outcome=\"delivered\"}") >= 1.0,
        "{metrics}"
    );
    assert!(
        sample("onbehalf_webhook_delivery_latency_seconds_count") >= 1.0,
        "{metrics}"
    );
}

async fn a_revoked_grant_is_told_as_needs_reconnect_after_the_link(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::ok().await;
    let (_, secret) = add(&app, &receiver.url, &["account.linked", "account.needs_reconnect"]).await;
    let ada = linked(&app, 0).await;
    app.demo().revoke_grants(Some(identity(0)));
    crate::support::expire_transfer_token(&app, &ada.account_id).await;
    let err = transfer_bearer(&app, &ada).await.unwrap_err();
    assert_eq!(err.code(), "needs_reconnect");
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    let types: Vec<Value> = got.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(types, ["account.linked", "account.needs_reconnect"]);
    got.iter().for_each(carries_required);
    let event = got[1].json();
    assert!(verifies(&got[1], &secret));
    assert_eq!(event["data"]["account"]["status"], "needs_reconnect");
    assert!(event["data"]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    // The same refusal seen again is no change: no second event.
    let _ = transfer_bearer(&app, &ada).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.of_type("account.needs_reconnect").len(), 1);
    // The status change, its audit event and its webhook event are one fact each.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'account_status_changed'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_events WHERE type = 'account.needs_reconnect'"
        )
        .await,
        1
    );
}

async fn five_hundreds_then_ok_is_delivered_once_on_the_fourth_attempt(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start(|n, _| Reply::Status(if n < 3 { 500 } else { 200 })).await;
    let (endpoint, secret) = add(&app, &receiver.url, &[]).await;
    let (event, _) = endpoints::send_test(&app.state.db, &endpoint).await.unwrap();
    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.seen().len(), 4, "nothing after the 2xx");
    assert!(got.iter().all(|r| r.id() == event), "one webhook-id on every attempt");
    assert!(got.iter().all(|r| verifies(r, &secret)), "each attempt signed afresh");
    // Full-jitter backoff: attempt n waits up to 100 ms · 2^(n-1) (plus the poll and scheduling slack).
    for (n, pair) in got.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let ceiling = Duration::from_millis(100 << n) + Duration::from_millis(300);
        assert!(gap <= ceiling, "gap {n}: {gap:?} > {ceiling:?}");
    }
    let (state, attempts): (String, i64) =
        sqlx::query_as("SELECT state, attempts FROM webhook_deliveries WHERE event_id = $1")
            .bind(&event)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("delivered", 4));
    let statuses: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT a.status FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
                            WHERE d.event_id = $1 ORDER BY a.attempt",
    )
    .bind(&event)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(statuses, [Some(500), Some(500), Some(500), Some(200)]);
}

async fn gone_disables_the_endpoint(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start(|_, _| Reply::Status(410)).await;
    let (endpoint, _) = add(&app, &receiver.url, &[]).await;
    endpoints::send_test(&app.state.db, &endpoint).await.unwrap();
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while endpoints::list(&app.state.db).await.unwrap()[0].enabled && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let view = &endpoints::list(&app.state.db).await.unwrap()[0];
    assert!(!view.enabled);
    assert!(
        view.disabled_reason.as_deref().unwrap().contains("410 Gone"),
        "{view:?}"
    );
    assert_eq!(delivery_states(&app).await.get("failed"), Some(&1));
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'webhook_endpoint_disabled'"
        )
        .await,
        1
    );
    // Nothing more is made for it, or sent.
    linked(&app, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM webhook_deliveries").await, 1);
}

async fn an_accounts_events_arrive_in_order_under_a_burst_and_failures(backend: Backend) {
    let app = spawn(backend).await;
    // Every third request fails: a retried event must hold back its account's later ones.
    let receiver = Receiver::start(|n, _| Reply::Status(if n % 3 == 1 { 503 } else { 200 })).await;
    add(&app, &receiver.url, &[]).await;
    let ada = linked(&app, 0).await;
    let grace = linked(&app, 1).await;
    receiver.wait_for(2, Duration::from_secs(5)).await;
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..20 {
        for who in [&ada, &grace] {
            let reason = format!("{i:02}");
            enqueue(&app.state.db, who.user_id, &who.account_id, &reason).await;
            expected.entry(who.account_id.clone()).or_default().push(reason);
        }
    }
    let total = 2 + 40;
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(
        &app,
        "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'delivered'",
    )
    .await
        < total
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivery_states(&app).await.get("delivered"), Some(&total));
    // Per account, the requests (retries included) never go back in the sequence, and the accepted ones are exactly
    // the sequence.
    let mut accepted: HashMap<String, Vec<String>> = HashMap::new();
    let mut last_sent: HashMap<String, String> = HashMap::new();
    for (n, r) in receiver.seen().iter().enumerate() {
        let body = r.json();
        if body["type"] != "account.recovered" {
            continue;
        }
        let account = body["data"]["account_id"].as_str().unwrap().to_owned();
        let reason = body["data"]["reason"].as_str().unwrap().to_owned();
        if let Some(previous) = last_sent.get(&account) {
            assert!(previous <= &reason, "{account}: {reason} sent after {previous}");
        }
        last_sent.insert(account.clone(), reason.clone());
        if n % 3 != 1 {
            accepted.entry(account).or_default().push(reason);
        }
    }
    assert_eq!(accepted, expected);
}

/// How many of an endpoint's pending deliveries wait behind an earlier one of their key (and so are never claimed).
async fn waiting(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at = $1")
        .bind(repo::WAITING)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

async fn deliveries_behind_a_pending_one_wait_and_go_in_turn(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        fast(s);
        s.webhooks.timeout = Duration::from_secs(5); // the slow answer below is an answer, not a timeout
    })
    .await;
    // The link's event holds the account's head in flight for a while.
    let receiver = Receiver::start(|n, _| {
        if n == 0 {
            Reply::Slow(Duration::from_secs(2))
        } else {
            Reply::Status(204)
        }
    })
    .await;
    let (endpoint, _) = add(&app, &receiver.url, &[]).await;
    let ada = linked(&app, 0).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    for reason in ["a", "b", "c"] {
        enqueue(&app.state.db, ada.user_id, &ada.account_id, reason).await;
    }
    assert_eq!(waiting(&app).await, 3, "the three behind the one in flight wait");
    let shown = repo::recent_deliveries(&app.state.db.pool, &endpoint, 10)
        .await
        .unwrap();
    let waiting_shown: Vec<bool> = shown.iter().map(|d| d.waiting).collect();
    assert_eq!(
        waiting_shown,
        [true, true, true, false],
        "newest first, as the admin page lists them"
    );
    assert!(shown.iter().filter(|d| d.waiting).all(|d| d.next_attempt_at.is_none()));
    // Another account is not held back by Ada's.
    let grace = linked(&app, 1).await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        got[1].json()["data"]["account"]["id"],
        grace.account_id.as_str(),
        "Grace's link goes at once"
    );
    let got = receiver.wait_for(5, Duration::from_secs(10)).await;
    let ada_reasons: Vec<String> = got
        .iter()
        .filter(|r| r.json()["type"] == "account.recovered")
        .map(|r| r.json()["data"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ada_reasons, ["a", "b", "c"]);
    assert_eq!(waiting(&app).await, 0);
    // The last answer arrived; its result is recorded a moment later.
    let deadline = Instant::now() + Duration::from_secs(5);
    while delivery_states(&app).await.get("delivered") != Some(&5) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(delivery_states(&app).await.get("delivered"), Some(&5));
    // A replay queues behind what is pending of each key, and is sent in order too.
    let before = receiver.seen().len();
    let queued = endpoints::replay(&app.state.db, &endpoint, Replay::Since(0), ChangedBy::default())
        .await
        .unwrap();
    assert_eq!(queued, 5);
    let got = receiver.wait_for(before + 5, Duration::from_secs(10)).await;
    let replayed: Vec<String> = got[before..]
        .iter()
        .filter(|r| r.json()["type"] == "account.recovered")
        .map(|r| r.json()["data"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(replayed, ["a", "b", "c"]);
    assert_eq!(waiting(&app).await, 0);
}

/// The race the order locks close: an event is enqueued behind its key's head (so it waits) while the head's result
/// is being recorded. Without the lock, the recorder (not seeing the uncommitted row) would promote nothing and the
/// event would wait for ever; with it, the recorder waits for the enqueue's commit and promotes it.
async fn an_event_enqueued_as_its_head_ends_is_never_stranded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        fast(s);
        s.webhooks.dispatch = false; // this test claims and records as a dispatcher does
    })
    .await;
    let receiver = Receiver::ok().await;
    add(&app, &receiver.url, &[]).await;
    let ada = linked(&app, 0).await;
    let db = app.state.db.clone();
    let now = now_ms();
    let head = repo::claim(&db, "test/webhooks", now, now + 60_000, 10).await.unwrap();
    assert_eq!(head.len(), 1, "the link's event, the account's head");
    let head = head.into_iter().next().unwrap();

    // The change: its event goes behind the head (in flight), so it waits; not committed yet.
    let mut change = db.begin_write().await.unwrap();
    let mut data = EventData::new_for(
        onbehalf::webhooks::payload::user(&mut change, ada.user_id)
            .await
            .unwrap(),
        None,
    );
    data.account_id = Some(ada.account_id.clone());
    let event = outbox::enqueue(&mut change, EventType::AccountRecovered, data, now_ms())
        .await
        .unwrap();

    // Meanwhile the head's result is recorded, as the recorder does: the key's lock first, then the result.
    let recording = tokio::spawn({
        let db = db.clone();
        let head = head.clone();
        async move {
            let mut tx = db.begin_write().await.unwrap();
            repo::lock_order(&mut tx, [head.ordering_key.as_str()]).await.unwrap();
            let result = repo::AttemptResult {
                delivery_id: head.id,
                endpoint_id: head.endpoint_id.clone(),
                ordering_key: head.ordering_key.clone(),
                attempt: head.attempt,
                sent_at: now_ms(),
                webhook_timestamp: now_ms() / 1000,
                latency_ms: 1,
                status: Some(204),
                error: None,
                response_headers: None,
                response_body: None,
                next: repo::Next::Delivered,
                counts: true,
            };
            assert!(repo::record(&mut tx, "test/webhooks", &result, now_ms()).await.unwrap());
            tx.commit().await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !recording.is_finished(),
        "the recorder waits for the enqueue holding the key"
    );
    change.commit().await.unwrap();
    recording.await.unwrap();

    let next: i64 = sqlx::query_scalar("SELECT next_attempt_at FROM webhook_deliveries WHERE event_id = $1")
        .bind(&event)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(
        next <= now_ms(),
        "the event became due when its head ended (next attempt {next})"
    );
    let claimed = repo::claim(&db, "test/webhooks", now_ms(), now_ms() + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.event_id.as_str()).collect::<Vec<_>>(),
        [event.as_str()]
    );
}

async fn a_slow_or_huge_receiver_never_stalls_the_others(backend: Backend) {
    let app = spawn(backend).await;
    let slow = Receiver::start(|_, _| Reply::Slow(Duration::from_secs(5))).await;
    let huge = Receiver::start(|_, _| Reply::Huge(10 * 1024 * 1024)).await;
    let healthy = Receiver::ok().await;
    let nul = Receiver::start(|_, _| Reply::Nul).await;
    let (slow_id, _) = add(&app, &slow.url, &[]).await;
    let (huge_id, _) = add(&app, &huge.url, &[]).await;
    let (healthy_id, _) = add(&app, &healthy.url, &[]).await;
    let (nul_id, _) = add(&app, &nul.url, &[]).await;
    for id in [&slow_id, &huge_id, &nul_id] {
        for _ in 0..5 {
            endpoints::send_test(&app.state.db, id).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    endpoints::send_test(&app.state.db, &healthy_id).await.unwrap();
    let got = healthy.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0].at - started < Duration::from_millis(900),
        "the healthy receiver waited {:?}",
        got[0].at - started
    );
    // The slow one timed out (1 s) and waits for a retry; the huge answer was read for 4 KB only.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let timed_out: i64 = count(
        &app,
        &format!(
            "SELECT COUNT(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
             WHERE d.endpoint_id = '{slow_id}' AND a.status IS NULL AND a.error IS NOT NULL \
             AND a.latency_ms BETWEEN 900 AND 2000"
        ),
    )
    .await;
    assert!(timed_out >= 1, "the slow receiver's attempts end at the timeout");
    let bodies: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT a.response_body FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
         WHERE d.endpoint_id = $1",
    )
    .bind(&huge_id)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert!(!bodies.is_empty());
    assert!(
        bodies.iter().all(|b| b.as_ref().is_some_and(|b| b.len() == 4096)),
        "4 KB kept"
    );
    // An answer the database could not store as it is (NUL bytes) is recorded all the same, and so are the others
    // of its batch.
    let nul_delivered = count(
        &app,
        &format!("SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = '{nul_id}' AND state = 'delivered'"),
    )
    .await;
    assert_eq!(nul_delivered, 5);
    assert_eq!(
        nul.seen().len(),
        5,
        "each sent once: recorded, not re-sent after the lease"
    );
}

async fn bad_endpoints_are_refused_with_a_clear_message(backend: Backend) {
    let app = TestApp::spawn(backend).await; // the production policy: https and public addresses only
    let webhooks = &app.state.settings.webhooks;
    let cases = [
        ("http://hooks.example.org/x", vec![], "Webhook URLs must use https://"),
        ("https://10.0.0.7/x", vec![], "10.0.0.7 is not a public address"),
        ("https://169.254.169.254/latest", vec![], "not a public address"),
        ("https://localhost:8443/x", vec![], "localhost is not a public address"),
        ("https://[::1]/x", vec![], "not a public address"),
        ("https://user:pw@hooks.example.org/", vec![], "user name or password"),
        ("hooks.example.org", vec![], "not a URL"),
        (
            "https://hooks.example.org/x",
            vec!["account.linkd".to_owned()],
            "unknown event type `account.linkd`",
        ),
        (
            "https://hooks.example.org/x",
            vec!["webhook.test".to_owned()],
            "unknown event type `webhook.test`",
        ),
    ];
    for (url, events, message) in cases {
        let new = NewWebhook {
            url,
            events: &events,
            description: None,
        };
        let err = endpoints::add(&app.state.db, &app.state.vault, webhooks, new, ChangedBy::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{url} {events:?}: {err}");
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM webhook_endpoints").await,
        0,
        "nothing stored"
    );
}

async fn two_dispatchers_deliver_every_event_exactly_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        fast(s);
        s.webhooks.dispatch = false; // the two below are the only senders
    })
    .await;
    let receiver = Receiver::ok().await;
    add(&app, &receiver.url, &[]).await;
    let ada = linked(&app, 0).await;
    for instance in ["one", "two"] {
        let db = Db::connect(&app.state.settings.database).await.unwrap();
        let dispatcher = Dispatcher::new(
            db,
            app.state.vault.clone(),
            app.state.settings.webhooks.clone(),
            instance,
        );
        tokio::spawn(dispatcher.run());
    }
    let accounts: Vec<String> = (0..50).map(|i| format!("{}-{i}", ada.account_id)).collect();
    let mut enqueued = HashSet::new();
    for i in 0..1000 {
        enqueued.insert(
            enqueue(
                &app.state.db,
                ada.user_id,
                &accounts[i % accounts.len()],
                &format!("{i}"),
            )
            .await,
        );
    }
    let total = enqueued.len() + 1; // and the link's
    let got = receiver.wait_for(total, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_ids: Vec<String> = receiver.seen().iter().map(Received::id).collect();
    let unique: HashSet<&String> = got_ids.iter().collect();
    assert_eq!(got.len(), total, "every event arrived");
    assert_eq!(unique.len(), got_ids.len(), "none twice");
    assert!(enqueued.iter().all(|id| unique.contains(id)));
    let by_instance: Vec<(String, i64)> =
        sqlx::query_as("SELECT sent_by, COUNT(*) FROM webhook_attempts GROUP BY sent_by ORDER BY sent_by")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(by_instance.len(), 2, "both instances sent: {by_instance:?}");
    assert_eq!(
        by_instance.iter().map(|(_, n)| n).sum::<i64>(),
        total as i64,
        "one attempt each"
    );
    assert_eq!(
        delivery_states(&app).await.get("delivered"),
        Some(&(total as i64)),
        "{by_instance:?}"
    );
}

async fn a_rotated_secret_signs_alongside_the_previous_one(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::ok().await;
    let (endpoint, old) = add(&app, &receiver.url, &[]).await;
    let new = endpoints::rotate_secret(
        &app.state.db,
        &app.state.vault,
        &app.state.settings.webhooks,
        &endpoint,
        ChangedBy::default(),
    )
    .await
    .unwrap();
    assert_ne!(old, new);
    endpoints::send_test(&app.state.db, &endpoint).await.unwrap();
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(
        verifies(&got[0], &old) && verifies(&got[0], &new),
        "both secrets verify during the overlap"
    );
    // After the overlap, only the new one.
    sqlx::query("UPDATE webhook_endpoints SET previous_secret_until = $1")
        .bind(now_ms() - 1)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    endpoints::send_test(&app.state.db, &endpoint).await.unwrap();
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        got[1].header("webhook-signature").split(' ').count(),
        1,
        "{:?}",
        got[1].headers
    );
    assert!(verifies(&got[1], &new), "the new secret verifies");
    assert!(!verifies(&got[1], &old), "the previous one no longer does");
}

async fn replays_resend_with_the_same_event_ids(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::ok().await;
    let (endpoint, _) = add(&app, &receiver.url, &[]).await;
    let since = now_ms();
    let ada = linked(&app, 0).await;
    enqueue(&app.state.db, ada.user_id, &ada.account_id, "later").await;
    let first = receiver.wait_for(2, Duration::from_secs(5)).await;
    let one = first[0].id();
    let queued = endpoints::replay(&app.state.db, &endpoint, Replay::Event(&one), ChangedBy::default())
        .await
        .unwrap();
    assert_eq!(queued, 1);
    let got = receiver.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(got[2].id(), one);
    let queued = endpoints::replay(&app.state.db, &endpoint, Replay::Since(since), ChangedBy::default())
        .await
        .unwrap();
    assert_eq!(queued, 2);
    let got = receiver.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(got[3].id(), first[0].id());
    assert_eq!(got[4].id(), first[1].id());
    let err = endpoints::replay(
        &app.state.db,
        &endpoint,
        Replay::Event("evt_nope"),
        ChangedBy::default(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("never had an event with the id `evt_nope`"),
        "{err}"
    );
}

/// Events of one millisecond (a burst) are replayed in the order they happened, not in the order of their random ids.
async fn events_of_one_millisecond_replay_in_the_order_they_happened(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::ok().await;
    let (endpoint, _) = add(&app, &receiver.url, &[]).await;
    let ada = linked(&app, 0).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let at = now_ms();
    let reasons: Vec<String> = (0..8).map(|n| format!("r{n}")).collect();
    for reason in &reasons {
        enqueue_at(&app.state.db, ada.user_id, &ada.account_id, reason, at).await;
    }
    let reasons_of = |got: &[Received]| -> Vec<String> {
        got.iter()
            .map(|r| r.json()["data"]["reason"].as_str().unwrap().to_owned())
            .collect()
    };
    let sent = receiver.wait_for(9, Duration::from_secs(5)).await;
    assert_eq!(reasons_of(&sent[1..]), reasons, "sent in order");
    let queued = endpoints::replay(&app.state.db, &endpoint, Replay::Since(at), ChangedBy::default())
        .await
        .unwrap();
    assert_eq!(queued, 8);
    let replayed = receiver.wait_for(17, Duration::from_secs(5)).await;
    assert_eq!(reasons_of(&replayed[9..]), reasons, "replayed in the same order");
}

async fn a_consent_demand_never_hides_a_dead_link(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::ok().await;
    add(&app, &receiver.url, &[]).await;
    let ada = linked(&app, 0).await;
    let catalog = &app.state.catalog;
    let report = |problem: Problem<'static>| {
        let db = app.state.db.clone();
        let account = ada.account_id.clone();
        let catalog = catalog.clone();
        async move {
            let mut tx = db.begin_write().await.unwrap();
            let changed = status::report(&mut tx, &catalog, &account, problem, Seen::default(), now_ms())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            outbox::committed();
            changed
        }
    };
    static SCOPES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| vec!["urn:x:more".to_owned()]);
    let consent = Problem::NeedsConsent {
        reason: "more consent",
        scopes: &SCOPES,
    };
    let dead = Problem::NeedsReconnect {
        reason: "dead",
        cause: "invalid_grant",
    };
    assert!(report(consent).await.is_some(), "active → needs_consent");
    assert!(report(consent).await.is_none(), "the same again is no change");
    assert!(report(dead).await.is_some(), "needs_consent → needs_reconnect");
    assert!(
        report(consent).await.is_none(),
        "a consent demand does not hide the dead link"
    );
    let got = receiver.wait_for(3, Duration::from_secs(5)).await;
    let types: Vec<Value> = got.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(
        types,
        ["account.linked", "account.needs_consent", "account.needs_reconnect"]
    );
    assert_eq!(got[1].json()["data"]["scopes"], serde_json::json!(["urn:x:more"]));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.seen().len(), 3);
}

async fn the_admin_page_shows_deliveries_and_its_buttons_work(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start(|n, _| if n == 0 { Reply::Status(500) } else { Reply::Status(200) }).await;
    let (endpoint, secret) = add(&app, &receiver.url, &[]).await;
    let (cookie, _) = crate::support::admin(&app).await;
    let page = format!("/admin/webhooks/{endpoint}");
    let press = |form: Vec<(&'static str, String)>| {
        let app = &app;
        let cookie = cookie.clone();
        let page = page.clone();
        let endpoint = endpoint.clone();
        async move {
            let mut fields = vec![("endpoint", endpoint.clone())];
            fields.extend(form);
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = app
                .post_plain_form_as("admin_webhook_action", &page, &fields, Some(&cookie))
                .await;
            assert!(res.status().is_redirection(), "{}", res.status());
            crate::support::oauth::location(&res)
        }
    };
    // Send test event: a 500 first, then the retry's 200.
    let back = press(vec![("action", "test".into())]).await;
    assert_eq!(back, format!("{page}?done=test"));
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let html = app.get("/admin/webhooks", Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains(&receiver.url) && html.contains("Healthy"), "{html}");
    let html = app.get(&page, Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("webhook.test") && html.contains("Delivered"), "{html}");
    let delivery: i64 = sqlx::query_scalar("SELECT id FROM webhook_deliveries")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    // One delivery in full: the request with the signature redacted, each attempt's answer.
    let html = app
        .get(&format!("{page}?delivery={delivery}"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("v1,… (redacted)"), "{html}");
    assert!(
        !html.contains(got[0].header("webhook-signature")),
        "the real signature is not shown"
    );
    assert!(!html.contains(&secret));
    assert!(
        html.contains("Attempt 1: HTTP 500") && html.contains("Attempt 2: HTTP 200"),
        "{html}"
    );
    // Redeliver it, then disable: nothing more is sent; enable: what waited goes out.
    let event = got[0].id();
    assert_eq!(
        press(vec![("action", "redeliver".into()), ("event", event.clone())]).await,
        format!("{page}?done=queued-1")
    );
    let got = receiver.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(got[2].id(), event);
    assert_eq!(
        press(vec![("action", "disable".into())]).await,
        format!("{page}?done=disabled")
    );
    let html = app.get(&page, Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("disabled by an admin"), "{html}");
    press(vec![("action", "test".into())]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), 3, "nothing goes to a disabled endpoint");
    assert_eq!(
        press(vec![("action", "enable".into())]).await,
        format!("{page}?done=enabled")
    );
    receiver.wait_for(4, Duration::from_secs(5)).await;
    // Replay since a time (the form's datetime-local, UTC): every event since (test events aside), in order.
    linked(&app, 0).await;
    receiver.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(
        press(vec![("action", "replay".into()), ("since", "2000-01-01T00:00".into())]).await,
        format!("{page}?done=queued-1")
    );
    receiver.wait_for(6, Duration::from_secs(5)).await;
    // Bad input: a clear problem on the page, nothing queued.
    assert_eq!(
        press(vec![("action", "replay".into()), ("since", "yesterday".into())]).await,
        format!("{page}?error=since")
    );
    let html = app
        .get(&format!("{page}?error=since"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Give a date and time (UTC) to replay from."));
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM audit_events WHERE action LIKE 'webhook_%'").await,
        5,
        "added, redelivered, disabled, enabled, replayed: each audited"
    );
}

async fn the_service_api_lists_endpoints_and_replays_for_an_unrestricted_key(backend: Backend) {
    use onbehalf::service_api::keys;
    let app = spawn(backend).await;
    let receiver = Receiver::ok().await;
    let (endpoint, _) = add(&app, &receiver.url, &[]).await;
    let known = vec!["demo".to_owned()];
    let full = keys::create(
        &app.state.db.pool,
        keys::NewKey {
            name: "platform",
            ..Default::default()
        },
        &known,
    )
    .await
    .unwrap()
    .1;
    let demo_only = ["demo".to_owned()];
    let limited = keys::create(
        &app.state.db.pool,
        keys::NewKey {
            name: "demo-only",
            providers: &demo_only,
            ..Default::default()
        },
        &known,
    )
    .await
    .unwrap()
    .1;
    let ada = linked(&app, 0).await;
    let first = receiver.wait_for(1, Duration::from_secs(5)).await;
    let list = |key: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/webhooks"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    let res = list(full.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["endpoints"][0]["id"], endpoint.as_str());
    assert_eq!(body["endpoints"][0]["enabled"], true);
    assert!(!body.to_string().contains("whsec_"), "never a secret");
    let res = list(limited.clone()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let replay = |key: String, body: Value| {
        let app = &app;
        let endpoint = endpoint.clone();
        async move {
            app.client
                .post(app.url(&format!("/api/v1/webhooks/{endpoint}/replay")))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = replay(full.clone(), serde_json::json!({ "event_id": first[0].id() })).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["queued"], 1);
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].id(), first[0].id());
    assert_eq!(got[1].json()["data"]["account"]["id"], ada.account_id.as_str());
    // Bad input: a clear error, nothing queued.
    for (body, status, error) in [
        (serde_json::json!({}), StatusCode::BAD_REQUEST, "bad_request"),
        (
            serde_json::json!({ "event_id": "evt_x", "since": 1 }),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (serde_json::json!({ "since": -1 }), StatusCode::BAD_REQUEST, "invalid"),
        (
            serde_json::json!({ "event_id": "evt_never" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            serde_json::json!({ "sinse": 1 }),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let res = replay(full.clone(), body.clone()).await;
        assert_eq!(res.status(), status, "{body}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], error, "{body}");
    }
    assert_eq!(
        replay(limited, serde_json::json!({ "since": 0 })).await.status(),
        StatusCode::FORBIDDEN
    );
    let res = app
        .client
        .post(app.url("/api/v1/webhooks/ep_nope/replay"))
        .bearer_auth(&full)
        .json(&serde_json::json!({ "since": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), 2);

    // The OpenAPI document describes each event type's body.
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["WebhookEvent"].is_object());
    for kind in EventType::ALL {
        let schema = &schemas[kind.schema_name()];
        let this = &schema["allOf"][1];
        assert_eq!(
            this["properties"]["type"]["enum"],
            serde_json::json!([kind.as_str()]),
            "{kind}"
        );
        let required: Vec<&str> = this["properties"]["data"]["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(required, kind.required_data(), "{kind}");
    }
}

async fn an_endpoint_failing_for_too_long_is_disabled_and_audited(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        fast(s);
        s.webhooks.disable_after = Duration::from_secs(1);
    })
    .await;
    let receiver = Receiver::start(|_, _| Reply::Status(503)).await;
    let healthy = Receiver::ok().await;
    let (failing, _) = add(&app, &receiver.url, &[]).await;
    let (fine, _) = add(&app, &healthy.url, &[]).await;
    endpoints::send_test(&app.state.db, &failing).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let list = endpoints::list(&app.state.db).await.unwrap();
        let view = list.into_iter().find(|e| e.id == failing).unwrap();
        if !view.enabled || Instant::now() > deadline {
            break view;
        }
        // Something to record now and then, as traffic would bring (the check runs after each batch).
        endpoints::send_test(&app.state.db, &fine).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!view.enabled, "still enabled after failing for over a second: {view:?}");
    let reason = view.disabled_reason.clone().unwrap();
    assert!(
        reason.starts_with("failing: no delivery succeeded for 1 second ("),
        "{reason}"
    );
    assert!(view.consecutive_failures >= 2, "{view:?}");
    assert!(
        receiver.seen().len() >= 2,
        "retried meanwhile: {}",
        receiver.seen().len()
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'webhook_endpoint_disabled'"
        )
        .await,
        1
    );
    // The healthy one stays enabled.
    assert!(
        endpoints::list(&app.state.db)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == fine && e.enabled)
    );
}

/// The fan-out trigger: an event goes to the enabled endpoints subscribed to its type (`_` in a type matches only
/// `_`), and an event without an ordering key — written by a binary from before the trigger, which writes its own
/// deliveries — gets none from it.
async fn the_fan_out_follows_subscriptions_and_leaves_old_binaries_events_alone(backend: Backend) {
    let app = spawn(backend).await;
    let url = "http://127.0.0.1:9/hook";
    let (every, _) = add(&app, url, &[]).await;
    let (recovered, _) = add(&app, url, &["account.recovered"]).await;
    let (reconnect, _) = add(&app, url, &["account.needs_reconnect"]).await;
    let (disabled, _) = add(&app, url, &[]).await;
    endpoints::set_disabled(&app.state.db, &disabled, Some("paused"), ChangedBy::default())
        .await
        .unwrap();
    let to = |event: String| {
        let pool = app.state.db.pool.clone();
        async move {
            let mut got: Vec<String> =
                sqlx::query_scalar("SELECT endpoint_id FROM webhook_deliveries WHERE event_id = $1")
                    .bind(&event)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let event = enqueue(&app.state.db, 1, "acct-1", "fan-out").await;
    assert_eq!(to(event).await, sorted(vec![every.clone(), recovered.clone()]));
    // Types the app never writes, straight into the table: `_` is not a wildcard, and no key means no fan-out.
    let raw = |id: &str, kind: &str, key: Option<&str>| {
        let sql = match key {
            Some(_) => {
                "INSERT INTO webhook_events (id, type, occurred_at, payload, ordering_key) \
                        VALUES ($1, $2, $3, '{}', $4)"
            }
            None => "INSERT INTO webhook_events (id, type, occurred_at, payload) VALUES ($1, $2, $3, '{}')",
        };
        let query = sqlx::query(sql)
            .bind(id.to_owned())
            .bind(kind.to_owned())
            .bind(now_ms());
        let query = match key {
            Some(key) => query.bind(key.to_owned()),
            None => query,
        };
        let pool = app.state.db.pool.clone();
        async move {
            query.execute(&pool).await.unwrap();
        }
    };
    raw("evt_lookalike", "account.needsXreconnect", Some("account:acct-2")).await;
    assert_eq!(to("evt_lookalike".into()).await, vec![every.clone()], "not {reconnect}");
    raw("evt_old_binary", "account.needs_reconnect", None).await;
    assert_eq!(to("evt_old_binary".into()).await, Vec::<String>::new());
    raw("evt_new_binary", "account.needs_reconnect", Some("account:acct-3")).await;
    assert_eq!(to("evt_new_binary".into()).await, sorted(vec![every, reconnect]));
}

on_both_backends!(
    the_fan_out_follows_subscriptions_and_leaves_old_binaries_events_alone,
    an_endpoint_failing_for_too_long_is_disabled_and_audited,
    the_service_api_lists_endpoints_and_replays_for_an_unrestricted_key,
    the_admin_page_shows_deliveries_and_its_buttons_work,
    a_link_is_delivered_at_once_signed_and_without_tokens,
    a_revoked_grant_is_told_as_needs_reconnect_after_the_link,
    five_hundreds_then_ok_is_delivered_once_on_the_fourth_attempt,
    gone_disables_the_endpoint,
    an_accounts_events_arrive_in_order_under_a_burst_and_failures,
    deliveries_behind_a_pending_one_wait_and_go_in_turn,
    an_event_enqueued_as_its_head_ends_is_never_stranded,
    a_slow_or_huge_receiver_never_stalls_the_others,
    bad_endpoints_are_refused_with_a_clear_message,
    two_dispatchers_deliver_every_event_exactly_once,
    a_rotated_secret_signs_alongside_the_previous_one,
    replays_resend_with_the_same_event_ids,
    events_of_one_millisecond_replay_in_the_order_they_happened,
    a_consent_demand_never_hides_a_dead_link,
);
