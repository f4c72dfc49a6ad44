//! Webhook delivery (issue 18): 10,000 events to a healthy local receiver.
//!
//! - **Throughput**: the events are enqueued first (each in its own transaction, as status changes are) with no
//!   dispatcher running; then one dispatcher (one instance) starts and the time until the receiver has every event
//!   is measured. Budget: ≥ 1,000 deliveries/s.
//! - **Latency**: with the dispatcher running, events are enqueued at 500/s (several accounts, as a burst of
//!   changes would be); for each, the time from its commit (`occurred_at`) to its arrival. Budget: p99 ≤ 1 s.
//!
//!   cargo bench --features ssr --bench webhooks            # SQLite (the embedded default)
//!   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo bench --features ssr --bench webhooks
//!
//! Exits non-zero when a budget is missed.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{body::Bytes, http::StatusCode};
use onbehalf::{
    db::now_ms,
    webhooks::{
        EventType,
        dispatcher::Dispatcher,
        endpoints::{self, ChangedBy, NewWebhook},
        outbox,
        payload::EventData,
    },
};

mod common;

const EVENTS: usize = 10_000;
const RATE_BUDGET: f64 = 1_000.0;
const P99_BUDGET: Duration = Duration::from_secs(1);
const LATENCY_EVENTS: usize = 2_000;
const LATENCY_RATE: u64 = 500;

fn main() {
    let (rate, (p50, p99)) = common::block_on(run());
    println!(
        "webhooks: {rate:.0} deliveries/s (budget {RATE_BUDGET:.0}); enqueue → delivered p50 {p50:?}, p99 {p99:?} (budget {P99_BUDGET:?})"
    );
    common::fail_if(rate < RATE_BUDGET, "webhook deliveries per second under budget");
    common::fail_if(p99 > P99_BUDGET, "webhook enqueue-to-delivery p99 over budget");
}

/// (arrival time in Unix ms, the event's occurred_at) of each request.
type Arrivals = Arc<Mutex<Vec<(i64, i64)>>>;

async fn receiver(arrivals: Arrivals) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let arrivals = arrivals.clone();
            async move {
                let at = now_ms();
                let occurred = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["occurred_at"]
                    .as_i64()
                    .unwrap();
                arrivals.lock().unwrap().push((at, occurred));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn enqueue(bench: &common::Bench, user: &onbehalf::auth::UserRef, n: usize) {
    let mut tx = bench.state.db.begin_write().await.unwrap();
    let mut data = EventData::new_for(Some(user.clone()), None);
    data.account_id = Some(format!("bench-account-{}", n % 100));
    data.reason = Some(n.to_string());
    outbox::enqueue(&mut tx, EventType::AccountRecovered, data, now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    outbox::committed();
}

async fn wait_for(arrivals: &Arrivals, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} arrived",
            arrivals.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run() -> (f64, (Duration, Duration)) {
    let bench = common::start(|s| {
        s.demo.enabled = false;
        s.webhooks.allow_http_loopback = true;
        s.webhooks.dispatch = false; // started below, when the outbox is full
    })
    .await;
    let arrivals: Arrivals = Arc::default();
    let url = receiver(arrivals.clone()).await;
    let new = NewWebhook {
        url: &url,
        events: &[],
        description: Some("bench receiver"),
    };
    endpoints::add(
        &bench.state.db,
        &bench.state.vault,
        &bench.state.settings.webhooks,
        new,
        ChangedBy::default(),
    )
    .await
    .unwrap();
    let user = onbehalf::auth::service::create_user(
        &bench.state.db,
        "bench@example.org",
        "Bench",
        "bench bench bench",
        onbehalf::auth::Role::User,
    )
    .await
    .unwrap();
    let user = onbehalf::auth::UserRef {
        id: user.id,
        external_id: None,
        email: Some("bench@example.org".into()),
    };

    // Throughput: a full outbox, one dispatcher.
    let started = Instant::now();
    for n in 0..EVENTS {
        enqueue(&bench, &user, n).await;
    }
    println!(
        "enqueued {EVENTS} events in {:?} (one transaction each)",
        started.elapsed()
    );
    let dispatcher = Dispatcher::new(
        bench.state.db.clone(),
        bench.state.vault.clone(),
        bench.state.settings.webhooks.clone(),
        "bench",
    );
    let started = Instant::now();
    tokio::spawn(dispatcher.run());
    wait_for(&arrivals, EVENTS).await;
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();

    // Latency: a steady stream while the dispatcher runs.
    let before = arrivals.lock().unwrap().len();
    let gap = Duration::from_micros(1_000_000 / LATENCY_RATE);
    let mut tick = tokio::time::interval(gap);
    for n in 0..LATENCY_EVENTS {
        tick.tick().await;
        enqueue(&bench, &user, EVENTS + n).await;
    }
    wait_for(&arrivals, before + LATENCY_EVENTS).await;
    let mut latencies: Vec<i64> = arrivals.lock().unwrap()[before..]
        .iter()
        .map(|(at, occurred)| at - occurred)
        .collect();
    latencies.sort_unstable();
    let pick = |q: f64| {
        Duration::from_millis(latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)] as u64)
    };
    (rate, (pick(0.50), pick(0.99)))
}
