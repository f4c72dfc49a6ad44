//! Callback throughput (issue 3: ≥ 500 links/s on 2 cores): the whole callback — state consumption, code exchange
//! with the demo provider over loopback, ID-token verification, identity, sealed writes and audit in one
//! transaction — driven over HTTP with 32 callbacks in flight. The consent leg (start, consent page, Allow) is
//! prepared outside the timed part.
//!
//!   cargo bench --features ssr --bench link_callbacks            # SQLite (the embedded default)
//!   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo bench --features ssr --bench link_callbacks
//!
//! Exits non-zero when the rate is under the budget.

use std::time::{Duration, Instant};

use onbehalf::{config::Settings, demo::DemoProvider, startup::Application};
use reqwest::header;
use secrecy::SecretString;

const BUDGET_PER_SEC: f64 = 500.0;
const ROUNDS: usize = 4;
const PER_ROUND: usize = 500;
const IN_FLIGHT: usize = 32;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rate = runtime.block_on(run());
    println!("link callbacks: {rate:.0} links/s (budget {BUDGET_PER_SEC:.0})");
    if rate < BUDGET_PER_SEC {
        eprintln!("FAIL: callback throughput under budget");
        std::process::exit(1);
    }
}

async fn run() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.demo.bind = "127.0.0.1:0".parse().unwrap();
    settings.server.site_root = concat!(env!("CARGO_MANIFEST_DIR"), "/public").to_owned();
    settings.database.url = SecretString::from(
        std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display())),
    );
    settings.vault.keys.insert(
        "bench".into(),
        SecretString::from(onbehalf::tokens::vault::generate_key()),
    );
    let app = Application::build(settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let demo = app.state().demo.clone().expect("demo provider");
    tokio::spawn(app.run());

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let email = format!("bench-{}@example.org", uuid::Uuid::new_v4().simple());
    let res = client
        .post(format!("{base}/api/sign_up"))
        .header(header::ORIGIN, &base)
        .header(header::ACCEPT, "application/json")
        .form(&[
            ("email", email.as_str()),
            ("display_name", "Bench"),
            ("password", "bench bench bench"),
            ("password_confirm", "bench bench bench"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .find_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .expect("session cookie");

    let mut timed = Duration::ZERO;
    let mut done = 0usize;
    for _ in 0..ROUNDS {
        // Codes live 60 s at the provider: prepare one round at a time.
        let urls = prepare(&client, &base, &cookie, &demo, PER_ROUND).await;
        let started = Instant::now();
        let results = futures_in_flight(&client, &cookie, urls).await;
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

async fn prepare(client: &reqwest::Client, base: &str, cookie: &str, demo: &DemoProvider, n: usize) -> Vec<String> {
    let mut urls = Vec::with_capacity(n);
    for i in 0..n {
        let start = client
            .post(format!("{base}/oauth/demo/start"))
            .header(header::ORIGIN, base)
            .header(header::COOKIE, cookie)
            .form(&[("intent", "link")])
            .send()
            .await
            .unwrap();
        let authorize = start.headers()[header::LOCATION].to_str().unwrap().to_owned();
        let html = client.get(&authorize).send().await.unwrap().text().await.unwrap();
        let marker = "name=\"request_id\" value=\"";
        let at = html.find(marker).unwrap() + marker.len();
        let request_id = html[at..at + html[at..].find('"').unwrap()].to_owned();
        let identity = DemoProvider::identities()[i % DemoProvider::identities().len()].sub;
        let decision = client
            .post(format!("{}/v2/oauth2/authorize/decision", demo.issuer_str()))
            .form(&[
                ("request_id", request_id.as_str()),
                ("identity", identity),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap();
        urls.push(decision.headers()[header::LOCATION].to_str().unwrap().to_owned());
    }
    urls
}

/// Runs the callbacks with at most `IN_FLIGHT` at once; returns where each one redirected.
async fn futures_in_flight(client: &reqwest::Client, cookie: &str, urls: Vec<String>) -> Vec<String> {
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(urls));
    let mut workers = Vec::new();
    for _ in 0..IN_FLIGHT {
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
