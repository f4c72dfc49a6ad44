//! Delegated calls (issue 4), measured side by side in one run against the demo provider's Transfer API on
//! loopback, with the app, the provider and the load generator sharing the machine's cores:
//!
//! 1. **Overhead at 1,000 requests/s**: the same `GET /v0.10/endpoint/{id}` sent directly with the bearer token and
//!    through `Delegator::call` (bearer lookup, open, allow-list check, audit), paced open-loop, alternating one
//!    second of each. Budget: delegated − direct ≤ 0.5 ms at p50 and ≤ 2 ms at p99.
//! 2. **Throughput**: delegated calls with 64 in flight for 5 s. Budget: ≥ 5,000 calls/s.
//! 3. **Refresh storms**: five times, 1,000 concurrent callers with an expired token (the demo's token endpoint
//!    answering in `STORM_TOKEN_DELAY`); each time all have a bearer within one token round trip + 50 ms, and the
//!    provider saw one refresh.
//!
//!   cargo bench --features ssr --bench delegated_calls            # SQLite (the embedded default)
//!   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo bench --features ssr --bench delegated_calls
//!
//! Exits non-zero when a budget is missed.

use std::time::{Duration, Instant};

use onbehalf::{
    actions::TRANSFER_RESOURCE_SERVER, db::now_ms, delegation::ApiRequest, demo::DemoProvider, state::AppState,
};

mod common;

const RATE: u64 = 1_000;
const PACED_SECONDS: u64 = 10;
const THROUGHPUT_SECONDS: u64 = 5;
const IN_FLIGHT: usize = 64;
const STORM: usize = 1_000;
const STORMS: usize = 5;
const STORM_TOKEN_DELAY: Duration = Duration::from_millis(100);

fn main() {
    let failed = common::block_on(run());
    common::fail_if(failed, "a delegated-call budget was missed");
}

#[derive(Clone)]
struct Setup {
    state: AppState,
    user_id: i64,
    account_id: String,
    url: reqwest::Url,
    token: String,
}

async fn run() -> bool {
    let setup = setup().await;
    let mut failed = false;
    let backend = if std::env::var("BENCH_DATABASE_URL").is_ok() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("delegated calls ({backend}), upstream GET {}", setup.url.path());

    // 1. Overhead at a fixed rate, alternating one-second blocks so both sides see the same machine.
    let client = reqwest::Client::new();
    let (mut direct, mut delegated) = (Vec::new(), Vec::new());
    for second in 0..PACED_SECONDS {
        let through_app = second % 2 == 1;
        let latencies = paced(&setup, &client, through_app).await;
        if through_app {
            delegated.extend(latencies)
        } else {
            direct.extend(latencies)
        }
    }
    let (d50, d99) = (percentile(&mut direct, 0.50), percentile(&mut direct, 0.99));
    let (g50, g99) = (percentile(&mut delegated, 0.50), percentile(&mut delegated, 0.99));
    println!(
        "  at {RATE}/s: direct p50 {d50:.3} ms p99 {d99:.3} ms | delegated p50 {g50:.3} ms p99 {g99:.3} ms | \
         overhead p50 {:.3} ms (budget 0.5) p99 {:.3} ms (budget 2)",
        g50 - d50,
        g99 - d99
    );
    failed |= over_budget("overhead", g50 - d50 > 0.5 || g99 - d99 > 2.0);

    // 2. Throughput, direct for reference, then delegated.
    let direct_rate = closed_loop(&setup, &client, false).await;
    let delegated_rate = closed_loop(&setup, &client, true).await;
    println!(
        "  throughput with {IN_FLIGHT} in flight: direct {direct_rate:.0}/s, delegated {delegated_rate:.0}/s (budget 5000)"
    );
    failed |= over_budget("throughput", delegated_rate < 5_000.0);
    setup.state.delegation.calls.flush().await;

    // 3. Refresh storms, one per expiry: the first pays for the SQLite checkpoint of the writes above.
    let demo = setup.state.demo.clone().expect("demo provider");
    demo.set_token_delay(STORM_TOKEN_DELAY);
    let round_trip = token_round_trip(&client, &demo).await;
    let budget = round_trip + Duration::from_millis(50);
    let mut times = Vec::new();
    for _ in 0..STORMS {
        let (took, served, grants) = storm(&setup, &demo).await;
        failed |= over_budget("refresh storm", served != STORM || grants != 1 || took > budget);
        if served != STORM || grants != 1 {
            eprintln!("  storm: {served} served, {grants} grants");
        }
        times.push(ms(took));
    }
    let shown: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    println!(
        "  refresh storms ({STORM} callers each, 1 refresh grant each): {} ms; token round trip {:.1} ms + 50 ms = budget {:.1} ms",
        shown.join(", "),
        ms(round_trip),
        ms(budget)
    );
    failed
}

/// Expires the stored token and has `STORM` tasks ask for a bearer at once: (time until the last has one, how many
/// got one, refresh grants the provider saw).
async fn storm(setup: &Setup, demo: &DemoProvider) -> (Duration, usize, u64) {
    sqlx::query("UPDATE token_sets SET expires_at = $1 WHERE account_id = $2 AND resource_server = $3")
        .bind(now_ms() - 1_000)
        .bind(&setup.account_id)
        .bind(TRANSFER_RESOURCE_SERVER)
        .execute(&setup.state.db.pool)
        .await
        .unwrap();
    let grants_before = demo.counters().grants.get("refresh_token").copied().unwrap_or(0);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..STORM {
        let (delegation, user, account) = (setup.state.delegation.clone(), setup.user_id, setup.account_id.clone());
        tasks.spawn(async move {
            delegation
                .bearer(user, &account, TRANSFER_RESOURCE_SERVER)
                .await
                .is_ok()
        });
    }
    let mut served = 0;
    while let Some(done) = tasks.join_next().await {
        served += usize::from(done.unwrap());
    }
    let took = started.elapsed();
    let grants = demo.counters().grants.get("refresh_token").copied().unwrap_or(0) - grants_before;
    (took, served, grants)
}

/// One second of requests at `RATE`/s, each on its own task (open loop: a slow answer does not delay the next).
async fn paced(setup: &Setup, client: &reqwest::Client, through_app: bool) -> Vec<f64> {
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..RATE {
        ticker.tick().await;
        let call = one_call(setup, client, through_app);
        tasks.spawn(async move {
            let started = Instant::now();
            call.await;
            ms(started.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(RATE as usize);
    while let Some(done) = tasks.join_next().await {
        latencies.push(done.unwrap());
    }
    latencies
}

async fn closed_loop(setup: &Setup, client: &reqwest::Client, through_app: bool) -> f64 {
    let until = Instant::now() + Duration::from_secs(THROUGHPUT_SECONDS);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, setup) = (client.clone(), setup.clone());
        workers.spawn(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                one_call(&setup, &client, through_app).await;
                done += 1;
            }
            done
        });
    }
    let mut total = 0;
    while let Some(done) = workers.join_next().await {
        total += done.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// One call, directly or through the app; panics on anything but 200 (a benchmark of failures measures nothing).
fn one_call(setup: &Setup, client: &reqwest::Client, through_app: bool) -> impl Future<Output = ()> + Send + 'static {
    let (client, state, user_id, account_id, url, token) = (
        client.clone(),
        setup.state.clone(),
        setup.user_id,
        setup.account_id.clone(),
        setup.url.clone(),
        setup.token.clone(),
    );
    async move {
        let status = if through_app {
            state
                .delegation
                .call(ApiRequest {
                    user_id,
                    account_id: &account_id,
                    resource_server: TRANSFER_RESOURCE_SERVER,
                    method: reqwest::Method::GET,
                    url,
                    path_template: "/endpoint/{endpoint_id}",
                    json: None,
                    request_id: None,
                    about: Vec::new(),
                    keep: &[],
                })
                .await
                .expect("delegated call")
                .status
        } else {
            let res = client.get(url).bearer_auth(&token).send().await.expect("direct call");
            let status = res.status().as_u16();
            res.bytes().await.expect("body");
            status
        };
        assert_eq!(status, 200);
    }
}

/// The median of 20 token requests straight to the provider (client credentials: the same endpoint and server).
async fn token_round_trip(client: &reqwest::Client, demo: &DemoProvider) -> Duration {
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let res = client
            .post(format!("{}/v2/oauth2/token", demo.issuer_str()))
            .basic_auth("onbehalf-demo", Some("demo-secret"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", onbehalf::providers::presets::GLOBUS_TRANSFER_SCOPE),
            ])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        res.bytes().await.unwrap();
        times.push(ms(started.elapsed()));
    }
    Duration::from_secs_f64(percentile(&mut times, 0.5) / 1000.0)
}

fn over_budget(what: &str, missed: bool) -> bool {
    if missed {
        eprintln!("  FAIL: {what} over budget");
    }
    missed
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The app with the demo provider, one user, one linked demo account; the upstream URL and its plain token.
async fn setup() -> Setup {
    let bench = common::start(|s| s.delegation.background.enabled = false).await;
    let cookie = bench.sign_up().await;
    let callback = bench.authorized(&cookie, 0).await;
    let landed = bench.callback(&cookie, &callback).await;
    let (state, client, demo) = (bench.state.clone(), bench.client.clone(), bench.demo().clone());
    let account_id = landed.split("linked=").nth(1).expect("linked").to_owned();
    let user_id: i64 = sqlx::query_scalar("SELECT user_id FROM linked_accounts WHERE id = $1")
        .bind(&account_id)
        .fetch_one(&state.db.pool)
        .await
        .unwrap();
    let bearer = state
        .delegation
        .bearer(user_id, &account_id, TRANSFER_RESOURCE_SERVER)
        .await
        .expect("a bearer");
    let token = secrecy::ExposeSecret::expose_secret(bearer.secret()).to_owned();
    // One of the user's endpoints: a small, cheap upstream answer.
    let search = client
        .get(format!(
            "{}/v0.10/endpoint_search?filter_scope=my-endpoints&limit=1",
            demo.issuer_str()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let endpoint = search["DATA"][0]["id"].as_str().unwrap();
    let url = reqwest::Url::parse(&format!("{}/v0.10/endpoint/{endpoint}", demo.issuer_str())).unwrap();
    Setup {
        state,
        user_id,
        account_id,
        url,
        token,
    }
}
