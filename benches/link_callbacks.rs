//! Callback throughput (issue 3: ≥ 500 links/s on 2 cores): the whole callback — state consumption, code exchange
//! with the demo provider over loopback, ID-token verification, identity, sealed writes and audit in one
//! transaction — driven over HTTP with 32 callbacks in flight (`BENCH_IN_FLIGHT=1`: one at a time, so the rate is
//! one callback's own time, and the budget is not checked). The consent leg (start, consent page, Allow) is prepared
//! outside the timed part.
//!
//!   cargo bench --features ssr --bench link_callbacks            # SQLite (the embedded default)
//!   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo bench --features ssr --bench link_callbacks
//!
//! Exits non-zero when the rate is under the budget.

use std::time::{Duration, Instant};

use reqwest::header;

mod common;

const BUDGET_PER_SEC: f64 = 500.0;
const ROUNDS: usize = 4;
const PER_ROUND: usize = 500;
/// Callbacks in flight at once unless `BENCH_IN_FLIGHT` says otherwise; the budget holds for this many.
const DEFAULT_IN_FLIGHT: usize = 32;
/// Callbacks in flight at once: [`DEFAULT_IN_FLIGHT`], or `BENCH_IN_FLIGHT` (1: one callback's own time, nothing
/// queueing for the database's write lock).
static IN_FLIGHT: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    std::env::var("BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_IN_FLIGHT)
});

fn main() {
    let rate = common::block_on(run());
    if *IN_FLIGHT == DEFAULT_IN_FLIGHT {
        println!("link callbacks: {rate:.0} links/s (budget {BUDGET_PER_SEC:.0})");
        common::fail_if(rate < BUDGET_PER_SEC, "callback throughput under budget");
    } else {
        println!(
            "link callbacks, {} in flight: {rate:.0} links/s ({:.2} ms each)",
            *IN_FLIGHT,
            1000.0 / rate * *IN_FLIGHT as f64
        );
    }
}

async fn run() -> f64 {
    let bench = common::start(|_| {}).await;
    let session = bench.sign_up().await;
    let cookie = common::cookie_header(&session);
    let mut timed = Duration::ZERO;
    let mut done = 0usize;
    for _ in 0..ROUNDS {
        // Codes live 60 s at the provider: prepare one round at a time.
        let mut urls = Vec::with_capacity(PER_ROUND);
        for i in 0..PER_ROUND {
            urls.push(bench.authorized(&session, i).await);
        }
        let started = Instant::now();
        let results = futures_in_flight(&bench.client, &cookie, urls).await;
        timed += started.elapsed();
        let linked = results.iter().filter(|l| l.contains("linked=")).count();
        assert_eq!(
            linked,
            PER_ROUND,
            "every callback links: {:?}",
            results.iter().find(|l| !l.contains("linked="))
        );
        done += linked;
    }
    done as f64 / timed.as_secs_f64()
}

/// Runs the callbacks with at most `IN_FLIGHT` at once; returns where each one redirected.
async fn futures_in_flight(client: &reqwest::Client, cookie: &str, urls: Vec<String>) -> Vec<String> {
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(urls));
    let mut workers = Vec::new();
    for _ in 0..*IN_FLIGHT {
        let (client, cookie, queue) = (client.clone(), cookie.to_owned(), queue.clone());
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let Some(url) = queue.lock().await.pop() else { break };
                let res = client.get(&url).header(header::COOKIE, &cookie).send().await.unwrap();
                out.push(res.headers()[header::LOCATION].to_str().unwrap().to_owned());
            }
            out
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all
}
