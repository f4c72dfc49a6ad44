//! What the benches share: the app with the demo provider on loopback, a signed-up user, and the link flow up to
//! the callback URL (start → consent page → Allow), driven over HTTP as a browser would — by the tests' own
//! [`browser`] module, so the benches and the tests sign up and link the same way.

#![allow(dead_code)]

#[path = "../../tests/support/browser.rs"]
pub mod browser;

use browser::{Browser, SESSION_COOKIE, location};
use onbehalf::{config::Settings, demo::DemoProvider, startup::Application, state::AppState};
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
    origin: String,
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
    let origin = state.settings.server.public_origin();
    Bench {
        state,
        base,
        client,
        origin,
    }
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

    pub fn browser(&self) -> Browser<'_> {
        Browser::new(&self.client, &self.base, &self.origin, self.demo())
    }

    /// Signs a new user up; returns the session cookie's value.
    pub async fn sign_up(&self) -> String {
        let email = format!("bench-{}@example.org", uuid::Uuid::new_v4().simple());
        self.browser().sign_up(&email).await
    }

    /// Starts a link and allows it at the demo's consent page as demo identity `n`; returns the callback URL.
    pub async fn authorized(&self, session: &str, n: usize) -> String {
        let start = self.browser().start(session, "demo", &[("intent", "link")]).await;
        let identity = DemoProvider::identities()[n % DemoProvider::identities().len()].sub;
        self.browser().consent(&location(&start), identity, "allow").await
    }

    /// Follows a callback URL; returns where the app sent the browser.
    pub async fn callback(&self, session: &str, url: &str) -> String {
        location(&self.browser().callback(session, url).await)
    }
}

/// The `Cookie` header of a session (its value, from [`Bench::sign_up`]).
pub fn cookie_header(session: &str) -> String {
    format!("{SESSION_COOKIE}={session}")
}
