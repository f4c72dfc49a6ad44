//! Test harness: the real application on 127.0.0.1:0 with a fresh database, SQLite or PostgreSQL.
//!
//! PostgreSQL is expected at `TEST_POSTGRES_URL` (deliberately outside the `ONBEHALF_` namespace, which is the
//! app's configuration and refuses unknown keys) (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each test creates its own database there, named `onbehalf_test_<uuid>`.

pub mod browser;
pub mod oauth;
pub mod oidc_provider;
pub mod private_postgres;

pub use browser::{Browser, PASSWORD, SESSION_COOKIE, session_cookie};
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
               async fn $name() { super::$name($crate::support::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::support::Backend::Postgres).await } )*
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

/// Held by each [`TestApp`] for its lifetime when its binary runs one app at a time (`crate::ONE_APP_AT_A_TIME`):
/// the tests of `tests/process/` observe what is the whole process's (metrics counters, memory), which another app
/// would move. `tests/it/` runs its apps side by side.
static TURN: std::sync::LazyLock<std::sync::Arc<tokio::sync::Mutex<()>>> = std::sync::LazyLock::new(Default::default);

/// base64url of 32 bytes; only ever used by tests.
pub const TEST_VAULT_KEY: &str = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0";

/// The vault `onbehalf keys rotate` would switch to: the test key still readable, a new key `next` current.
pub fn rotated_vault() -> onbehalf::tokens::vault::Vault {
    let old = onbehalf::tokens::vault::decode_key(&TEST_VAULT_KEY.to_owned().into()).unwrap();
    let keys = std::collections::BTreeMap::from([("test".to_owned(), old), ("next".to_owned(), [9u8; 32])]);
    onbehalf::tokens::vault::Vault::new("next", keys).unwrap()
}

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub state: AppState,
    pub client: reqwest::Client,
    /// The origin its same-origin check accepts (the public URL's, by default the bound address).
    origin: String,
    /// Stops the app when the test ends (dropped with it): its background work, its pool and so its database
    /// connections go, however many apps the process has run.
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
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

/// Drops the database at `url` (made by [`fresh_postgres_database`]) unless something is connected to it.
async fn drop_postgres_database(url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut conn) = PgConnection::connect(&postgres_admin_url()).await {
        let _ = conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str()).await;
        let _ = conn.close().await;
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with settings adjusted by `tweak` (after the test defaults are applied).
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let turn = match crate::ONE_APP_AT_A_TIME {
            true => Some(TURN.clone().lock_owned().await),
            false => None,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::default();
        settings.server.bind = "127.0.0.1:0".parse().unwrap();
        let created = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres_database().await),
        };
        settings.database.url = SecretString::from(match &created {
            None => format!("sqlite://{}/onbehalf.db", dir.path().display()),
            Some(url) => url.clone(),
        });
        // Each app holds its pool's connections and the reachability watch's own (`Db::watch_reachability`) until
        // its test ends: 3 + 1 keeps the apps of the tests running at once, and the instances some of them start,
        // well under PostgreSQL's default max_connections of 100.
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
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        SERVER_RUNTIME.spawn(async move {
            let app = Application::build(settings).await.expect("application builds");
            let _ = tx.send((app.port(), app.state().clone()));
            // Ends when the TestApp is dropped (the sender with it).
            let served = app
                .run_until(async move {
                    let _ = stopped.await;
                })
                .await;
            // Its PostgreSQL database goes with it, as its SQLite file does with its directory. Where something else
            // is still connected (a process the test started), PostgreSQL refuses and `.ci/test` drops it later.
            if let Some(url) = created {
                drop_postgres_database(&url).await;
            }
            served
        });
        let (port, state) = rx.await.expect("the application started");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A request that is never answered fails its test with its URL rather than hanging the run.
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        Self {
            origin: state.settings.server.public_origin(),
            base: format!("http://127.0.0.1:{port}"),
            port,
            state,
            client,
            _stop: stop,
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
        self.origin.clone()
    }

    /// This app as a browser reaches it (shared with the benches).
    pub fn browser(&self) -> Browser<'_> {
        Browser::new(&self.client, &self.base, &self.origin, self.demo())
    }

    /// Calls a server function the way the hydrated page does (fetch, JSON answer).
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)], cookie: Option<&str>) -> Response {
        self.browser().call(endpoint, form, cookie).await
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
        self.browser().sign_up_response(email).await
    }

    /// Signs up `email` with [`PASSWORD`] and returns the session cookie value.
    pub async fn sign_up(&self, email: &str) -> String {
        self.browser().sign_up(email).await
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

/// A port free on 127.0.0.1 now, for a listener or process started next (the kernel hands out ports in turn, so
/// another taking it in between is unlikely, not impossible).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Moves the stored expiry of the account's Transfer token into the past (the provider's copy is untouched): its
/// next use refreshes it.
pub async fn expire_transfer_token(app: &TestApp, account_id: &str) {
    let changed = sqlx::query("UPDATE token_sets SET expires_at = $1 WHERE account_id = $2 AND resource_server = $3")
        .bind(onbehalf::db::now_ms() - 1_000)
        .bind(account_id)
        .bind(onbehalf::actions::TRANSFER_RESOURCE_SERVER)
        .execute(&app.state.db.pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1, "account {account_id} has a Transfer token");
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.org", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Every `.rs` file of the server's source, as (path relative to the crate root with `/` separators, its text): the
/// tests that read the source (`layering`, `status_owner`) walk the same files.
pub fn server_sources() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    walk(&root.join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            (relative, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}
