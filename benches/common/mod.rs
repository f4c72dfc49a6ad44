//! What the benches share: the app with the demo provider on loopback, a signed-up user, and the link flow up to
//! the callback URL (start → consent page → Allow), driven over HTTP as a browser would.

#![allow(dead_code)]

use onbehalf::{config::Settings, demo::DemoProvider, startup::Application, state::AppState};
use reqwest::header;
use secrecy::SecretString;

/// Runs a bench to its end on the runtime the server has in production (two workers: the machine's two cores).
pub fn block_on<T>(bench: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench)
}

/// Ends the bench process with a failure when `missed`, naming the budget.
pub fn fail_if(missed: bool, budget: &str) {
    if missed {
        eprintln!("FAIL: {budget}");
        std::process::exit(1);
    }
}

/// A running app: its state, its base URL and a client that does not follow redirects.
pub struct Bench {
    pub state: AppState,
    pub base: String,
    pub client: reqwest::Client,
}

/// Starts the app on 127.0.0.1:0 with the demo provider, on SQLite in a temporary directory or on the database
/// `BENCH_DATABASE_URL` names; `tweak` adjusts the settings first.
pub async fn start(tweak: impl FnOnce(&mut Settings)) -> Bench {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.demo.bind = "127.0.0.1:0".parse().unwrap();
    // Benches sign up their users from 127.0.0.1.
    settings.auth.throttle.sign_ups_per_client = 100_000;
    settings.server.site_root = concat!(env!("CARGO_MANIFEST_DIR"), "/public").to_owned();
    settings.database.url = SecretString::from(
        std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display())),
    );
    settings.vault.keys.insert(
        "bench".into(),
        SecretString::from(onbehalf::tokens::vault::generate_key()),
    );
    let webhook = std::env::var("BENCH_WEBHOOK").ok();
    settings.webhooks.allow_http_loopback |= webhook.is_some();
    if webhook.as_deref() == Some("outbox") {
        // Events and deliveries written, never sent: the outbox's own cost, without the dispatcher and the receiver
        // sharing the bench's two cores.
        settings.webhooks.dispatch = false;
    }
    tweak(&mut settings);
    let app = Application::build(settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run());
    if webhook.is_some() {
        receive_every_event(&state).await;
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    Bench { state, base, client }
}

/// `BENCH_WEBHOOK=1`: a webhook endpoint for every event type, a receiver on loopback answering 204, so that what a
/// bench measures includes the outbox (the event and its delivery written in the change's transaction) and the
/// dispatcher sending them (issue 18: the outbox adds at most 10 % to the link callback and the refresh storm).
/// `BENCH_WEBHOOK=outbox`: the same endpoint, but no dispatcher (the writes alone).
async fn receive_every_event(state: &AppState) {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let new = onbehalf::webhooks::endpoints::NewWebhook {
        url: &url,
        events: &[],
        description: Some("bench receiver"),
    };
    onbehalf::webhooks::endpoints::add(
        &state.db,
        &state.vault,
        &state.settings.webhooks,
        new,
        Default::default(),
    )
    .await
    .expect("the bench's webhook endpoint");
    eprintln!("BENCH_WEBHOOK: every event is delivered to {url}");
}

impl Bench {
    pub fn demo(&self) -> &DemoProvider {
        self.state.demo.as_ref().expect("demo provider")
    }

    /// Signs a new user up; returns the `name=value` session cookie.
    pub async fn sign_up(&self) -> String {
        let email = format!("bench-{}@example.org", uuid::Uuid::new_v4().simple());
        let res = self
            .client
            .post(format!("{}/api/sign_up", self.base))
            .header(header::ORIGIN, &self.base)
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
        res.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .find_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .expect("session cookie")
    }

    /// Starts a link and allows it at the demo's consent page as demo identity `n`; returns the callback URL.
    pub async fn authorized(&self, cookie: &str, n: usize) -> String {
        let start = self
            .client
            .post(format!("{}/oauth/demo/start", self.base))
            .header(header::ORIGIN, &self.base)
            .header(header::COOKIE, cookie)
            .form(&[("intent", "link")])
            .send()
            .await
            .unwrap();
        let authorize = start.headers()[header::LOCATION].to_str().unwrap().to_owned();
        let html = self.client.get(&authorize).send().await.unwrap().text().await.unwrap();
        let marker = "name=\"request_id\" value=\"";
        let at = html.find(marker).unwrap() + marker.len();
        let request_id = html[at..at + html[at..].find('"').unwrap()].to_owned();
        let identity = DemoProvider::identities()[n % DemoProvider::identities().len()].sub;
        let decision = self
            .client
            .post(format!("{}/v2/oauth2/authorize/decision", self.demo().issuer_str()))
            .form(&[
                ("request_id", request_id.as_str()),
                ("identity", identity),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap();
        decision.headers()[header::LOCATION].to_str().unwrap().to_owned()
    }

    /// Follows a callback URL; returns where the app sent the browser.
    pub async fn callback(&self, cookie: &str, url: &str) -> String {
        let res = self
            .client
            .get(url)
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        res.headers()[header::LOCATION].to_str().unwrap().to_owned()
    }
}
