//! Server-rendered page throughput (issue 5: the linked-accounts page of a user with 10 linked accounts at
//! ≥ 3,000 pages/s on 2 cores), measured side by side with the sign-in page (no database work) as the baseline.
//! The accounts are seeded through the same repository functions the callback uses (2 token sets each, sealed),
//! so the page does its real work: session, accounts, token-set metadata, pending revocations, rendering.
//! The load comes from this process (64 requests in flight on the same 2 cores), so the figures are a floor.
//!
//!   cargo bench --features ssr --bench pages
//!   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo bench --features ssr --bench pages
//!
//! Exits non-zero when the linked-accounts rate is under the budget.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use onbehalf::{
    db::now_ms,
    providers::identity::ExternalIdentity,
    tokens::{IssuedTokenSet, repo as tokens},
};
use reqwest::header;
use secrecy::SecretString;

mod common;

const BUDGET_PER_SEC: f64 = 3000.0;
const ACCOUNTS: usize = 10;
const IN_FLIGHT: usize = 64;
const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(8);

fn main() {
    let linked = common::block_on(run());
    common::fail_if(
        linked < BUDGET_PER_SEC,
        &format!("linked-accounts page under {BUDGET_PER_SEC:.0} pages/s"),
    );
}

async fn run() -> f64 {
    let bench = common::start(|_| {}).await;
    let cookie = bench.sign_up().await;
    seed(&bench, &cookie).await;
    let page = get(&bench, &cookie, "/linked-accounts").await;
    assert_eq!(
        page.matches("class=\"card account-card\"").count(),
        ACCOUNTS,
        "every seeded account renders"
    );
    let mut linked = 0.0;
    // Baselines: no database work (sign-in), then the signed-in shell around a small page (account).
    for path in ["/sign-in", "/account", "/linked-accounts"] {
        rate(&bench, &cookie, path, WARM_UP).await;
        let per_sec = rate(&bench, &cookie, path, MEASURE).await;
        println!("{path:<17} {per_sec:>7.0} pages/s");
        if path == "/linked-accounts" {
            linked = per_sec;
        }
    }
    println!("budget: /linked-accounts with {ACCOUNTS} accounts >= {BUDGET_PER_SEC:.0} pages/s");
    linked
}

async fn get(bench: &common::Bench, cookie: &str, path: &str) -> String {
    let res = bench
        .client
        .get(format!("{}{path}", bench.base))
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

/// Pages per second of `path` with `IN_FLIGHT` requests in flight for `duration`.
async fn rate(bench: &common::Bench, cookie: &str, path: &str, duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, url, cookie, done) = (
            bench.client.clone(),
            format!("{}{path}", bench.base),
            cookie.to_owned(),
            done.clone(),
        );
        workers.spawn(async move {
            while started.elapsed() < duration {
                let res = client
                    .get(&url)
                    .header(header::COOKIE, &cookie)
                    .header(header::ACCEPT, "text/html")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    workers.join_all().await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// `ACCOUNTS` linked accounts for the signed-up user, each with a Globus-shaped pair of token sets.
async fn seed(bench: &common::Bench, cookie: &str) {
    let user_id: i64 = sqlx::query_scalar("SELECT id FROM users ORDER BY id DESC LIMIT 1")
        .fetch_one(&bench.state.db.pool)
        .await
        .unwrap();
    assert!(!cookie.is_empty());
    let now = now_ms();
    let mut tx = bench.state.db.begin_write().await.unwrap();
    for n in 0..ACCOUNTS {
        let id = uuid::Uuid::new_v4().to_string();
        let identity = ExternalIdentity {
            subject: uuid::Uuid::new_v4().to_string(),
            username: Some(format!("researcher{n}@demo.globus.org")),
            name: Some(format!("Researcher {n}")),
            email: Some(format!("researcher{n}@example.org")),
        };
        onbehalf::accounts::repo::insert_account(&mut tx, &id, user_id, "demo", &identity, now)
            .await
            .unwrap();
        let set = |resource_server: &str, scopes: &[&str]| IssuedTokenSet {
            resource_server: resource_server.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            token_type: "Bearer".to_owned(),
            access_token: SecretString::from(format!("access-{n}-{resource_server}")),
            refresh_token: Some(SecretString::from(format!("refresh-{n}-{resource_server}"))),
            expires_in: Some(172_800),
        };
        let sets = [
            set("auth.globus.org", &["openid", "profile", "email"]),
            set(
                "transfer.api.globus.org",
                &["urn:globus:auth:scope:transfer.api.globus.org:all"],
            ),
        ];
        tokens::store_issued(&mut tx, &bench.state.vault, &id, &sets, now)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}
