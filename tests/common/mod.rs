//! Test harness: the real application on 127.0.0.1:0 with a fresh database, SQLite or PostgreSQL.
//!
//! PostgreSQL is expected at `TEST_POSTGRES_URL` (deliberately outside the `ONBEHALF_` namespace, which is the
//! app's configuration and refuses unknown keys) (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each test creates its own database there, named `onbehalf_test_<uuid>`.

#![allow(dead_code)]

pub mod oauth;
pub mod oidc_provider;
pub mod private_postgres;

use onbehalf::{config::Settings, error::AppError, startup::Application, state::AppState};
use reqwest::{Response, StatusCode, header};
use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection};

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares `sqlite::<name>` and `postgres::<name>` tests that run `async fn <name>(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Backend::Postgres).await } )*
        }
    };
}

/// Every test app runs on this one runtime, which lives as long as the test process, as the server's one
/// runtime does in production.
static SERVER_RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime")
});

/// One test app at a time per test process. With several apps alive in one process, a page render now and then
/// waited forever (about one run in four of tests/http.rs in parallel; never in 20 serial runs, and never for one
/// server under ~450k concurrent renders with wrk). Production runs one app per process; until the cause inside
/// the shared Leptos runtime state is found, the tests do too. Held by [`TestApp`] for its lifetime.
static ONE_APP_AT_A_TIME: std::sync::LazyLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Default::default);

pub const SESSION_COOKIE: &str = "onbehalf_session";
/// base64url of 32 bytes; only ever used by tests.
pub const TEST_VAULT_KEY: &str = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0";

/// The vault `onbehalf keys rotate` would switch to: the test key still readable, a new key `next` current.
pub fn rotated_vault() -> onbehalf::tokens::vault::Vault {
    let old = onbehalf::tokens::vault::decode_key(&TEST_VAULT_KEY.to_owned().into()).unwrap();
    let keys = std::collections::BTreeMap::from([("test".to_owned(), old), ("next".to_owned(), [9u8; 32])]);
    onbehalf::tokens::vault::Vault::new("next", keys).unwrap()
}
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub state: AppState,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A new, empty PostgreSQL database (its URL, as the admin user).
pub async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is unreachable at {admin} ({e}). The suite runs on SQLite and PostgreSQL: start PostgreSQL \
             or point TEST_POSTGRES_URL at one."
        )
    });
    let name = format!("onbehalf_test_{}", uuid::Uuid::new_v4().simple());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with settings adjusted by `tweak` (after the test defaults are applied).
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let turn = ONE_APP_AT_A_TIME.clone().lock_owned().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::default();
        settings.server.bind = "127.0.0.1:0".parse().unwrap();
        settings.database.url = SecretString::from(match backend {
            Backend::Sqlite => format!("sqlite://{}/onbehalf.db", dir.path().display()),
            Backend::Postgres => fresh_postgres_database().await,
        });
        // Test apps live until their test binary ends, each holding its pool's connections and the reachability
        // watch's own (`Db::watch_reachability`): 3 + 1 keeps a binary's twenty-odd PostgreSQL apps under the
        // server's default max_connections of 100.
        settings.database.max_connections = 3;
        // One fixed test key on both backends (PostgreSQL refuses to run without one).
        settings
            .vault
            .keys
            .insert("test".to_owned(), SecretString::from(TEST_VAULT_KEY));
        settings.demo.bind = "127.0.0.1:0".parse().unwrap();
        settings.outbound.timeout = std::time::Duration::from_secs(2);
        // Every test signs up its users from 127.0.0.1; the sign-up throttle has its own test.
        settings.auth.throttle.sign_ups_per_client = 100_000;
        // Static files from the source tree, so these tests do not depend on a cargo-leptos build.
        settings.server.site_root = concat!(env!("CARGO_MANIFEST_DIR"), "/public").to_owned();
        tweak(&mut settings);
        // Built and served on the one server runtime (see SERVER_RUNTIME); the test talks to it from its own.
        let (tx, rx) = tokio::sync::oneshot::channel();
        SERVER_RUNTIME.spawn(async move {
            let app = Application::build(settings).await.expect("application builds");
            let _ = tx.send((app.port(), app.state().clone()));
            app.run().await
        });
        let (port, state) = rx.await.expect("the application started");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            state,
            client,
            _dir: dir,
            _turn: turn,
        }
    }

    /// The built-in demo provider this app started.
    pub fn demo(&self) -> &onbehalf::demo::DemoProvider {
        self.state.demo.as_ref().expect("the demo provider runs in tests")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The origin our origin check accepts (the public URL, by default the bound address).
    pub fn origin(&self) -> String {
        self.state.settings.server.public_origin()
    }

    /// Calls a server function the way the hydrated page does (fetch, JSON answer).
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)], cookie: Option<&str>) -> Response {
        let mut req = self
            .client
            .post(self.url(&format!("/api/{endpoint}")))
            .header(header::ORIGIN, self.origin())
            .header(header::ACCEPT, "application/json")
            .form(form);
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"));
        }
        req.send().await.expect("request sent")
    }

    /// Posts a form the way a browser without JavaScript does (Accept: text/html, Referer, redirect answer).
    pub async fn post_plain_form(&self, endpoint: &str, referer: &str, form: &[(&str, &str)]) -> Response {
        self.post_plain_form_as(endpoint, referer, form, None).await
    }

    /// [`Self::post_plain_form`] with a session.
    pub async fn post_plain_form_as(
        &self,
        endpoint: &str,
        referer: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> Response {
        let mut req = self
            .client
            .post(self.url(&format!("/api/{endpoint}")))
            .header(header::ORIGIN, self.origin())
            .header(header::REFERER, self.url(referer))
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .form(form);
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"));
        }
        req.send().await.expect("request sent")
    }

    /// Loads a page the way a browser does (it asks for HTML).
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let mut req = self
            .client
            .get(self.url(path))
            .header(header::ACCEPT, "text/html,application/xhtml+xml");
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"));
        }
        req.send().await.expect("request sent")
    }

    /// The answer to signing up `email` with [`PASSWORD`].
    pub async fn sign_up_response(&self, email: &str) -> Response {
        let form = [
            ("email", email),
            ("display_name", ""),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ];
        self.call("sign_up", &form, None).await
    }

    /// Signs up `email` with [`PASSWORD`] and returns the session cookie value.
    pub async fn sign_up(&self, email: &str) -> String {
        let res = self.sign_up_response(email).await;
        assert_eq!(res.status(), StatusCode::OK, "sign-up of {email} failed");
        session_cookie(&res).expect("sign-up sets the session cookie").value
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.call("sign_in", &[("email", email), ("password", password)], None)
            .await
    }

    /// The email of the signed-in user of `cookie`, or None.
    pub async fn whoami(&self, cookie: &str) -> Option<String> {
        let res = self.call("get_current_user", &[], Some(cookie)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value = res.json().await.unwrap();
        body.get("email").and_then(|e| e.as_str()).map(str::to_owned)
    }
}

/// The session cookie a response sets: its value and its attributes, lower-cased.
#[derive(Debug)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attributes: Vec<String>,
}

impl SetCookie {
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|a| a == &attribute.to_lowercase())
    }
}

pub fn session_cookie(res: &Response) -> Option<SetCookie> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|raw| {
            let mut parts = raw.split(';').map(str::trim);
            let (name, value) = parts.next()?.split_once('=')?;
            name.ends_with(SESSION_COOKIE).then(|| SetCookie {
                name: name.to_owned(),
                value: value.to_owned(),
                attributes: parts.map(str::to_lowercase).collect(),
            })
        })
}

/// An error response: its status, the `kind` of its `AppError`, and the message the page shows for it.
pub async fn error_kind(res: Response) -> (StatusCode, String, String) {
    let status = res.status();
    let text = res.text().await.expect("error body");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is JSON: {text}"));
    let kind = body["kind"].as_str().unwrap_or_default().to_owned();
    let error: AppError = serde_json::from_value(body).expect("error body is an AppError");
    (status, kind, error.to_string())
}

/// Every log line of this test process (all levels), captured so tests can prove no token is ever logged.
static LOGS: std::sync::LazyLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::LazyLock::new(|| {
    let buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>> = Default::default();
    let sink = buffer.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_ansi(false)
        .with_writer(move || LogSink(sink.clone()))
        .try_init();
    buffer
});

struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing logs (idempotent); call before the app starts.
pub fn capture_logs() {
    std::sync::LazyLock::force(&LOGS);
}

/// Everything logged so far by this process.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// A signed-in admin: (session cookie, user id).
pub async fn admin(app: &TestApp) -> (String, i64) {
    let email = unique_email("admin");
    let user = onbehalf::auth::service::create_user(
        &app.state.db,
        &email,
        "Ada Admin",
        PASSWORD,
        onbehalf::auth::Role::Admin,
    )
    .await
    .unwrap();
    let res = app.sign_in(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    (session_cookie(&res).unwrap().value, user.id)
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.org", &uuid::Uuid::new_v4().simple().to_string()[..8])
}
