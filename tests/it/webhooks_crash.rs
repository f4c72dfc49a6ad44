//! At least once across a crash: the real server binary is killed (`SIGKILL`) while a webhook delivery is in
//! flight, after the change it reports committed; a new server on the same database delivers it once the dead
//! one's lease runs out. On SQLite and PostgreSQL.

use std::{
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::support::{Backend, TEST_VAULT_KEY, fresh_postgres_database};
use axum::{body::Bytes, http::HeaderMap};

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(database: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onbehalf"));
    command
        .args(args)
        .env("ONBEHALF_DATABASE__URL", database)
        .env("ONBEHALF_VAULT__KEYS__TEST", TEST_VAULT_KEY)
        .env("ONBEHALF_DEMO__ENABLED", "false")
        .env("ONBEHALF_WEBHOOKS__ALLOW_HTTP_LOOPBACK", "true")
        .env("ONBEHALF_WEBHOOKS__POLL_INTERVAL", "50ms")
        .env("ONBEHALF_WEBHOOKS__TIMEOUT", "5s")
        .env("ONBEHALF_WEBHOOKS__LEASE", "10s")
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir());
    command
}

fn run(database: &str, args: &[&str]) -> String {
    let out = command(database, args).output().expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "onbehalf {args:?}: {text}");
    text
}

async fn serve(database: &str) -> Server {
    let port = crate::support::free_port();
    let child = command(database, &["serve"])
        .env("ONBEHALF_SERVER__BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reqwest::get(&ready).await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server { child }
}

async fn a_delivery_in_flight_when_the_server_is_killed_is_delivered_after_a_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = match backend {
        Backend::Sqlite => format!("sqlite://{}/onbehalf.db", dir.path().display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    // The receiver holds the first request open (the dying server never hears back), then answers 204.
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: HeaderMap, _body: Bytes| async move {
                let id = headers.get("webhook-id").unwrap().to_str().unwrap().to_owned();
                let first = {
                    let mut seen = seen.lock().unwrap();
                    seen.push((Instant::now(), id));
                    seen.len() == 1
                };
                if first {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });

    run(&database, &["migrate"]);
    run(
        &database,
        &["webhook", "add", "--url", &url, "--event", "user.disabled"],
    );
    run(&database, &["user", "add", "--email", "crash@example.org"]);
    let mut first = serve(&database).await;
    // The change commits (with its event in the same transaction); the running server picks it up at its next poll.
    run(&database, &["user", "disable", "--email", "crash@example.org"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the first server never sent the event");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.child.kill().unwrap(); // SIGKILL: no shutdown, the delivery's lease stays taken
    first.child.wait().unwrap();
    let killed_at = Instant::now();

    let _second = serve(&database).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the restarted server never delivered the event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = seen.lock().unwrap().clone();
    assert_eq!(got[0].1, got[1].1, "the same event (webhook-id) again");
    assert!(got[0].1.starts_with("evt_"));
    // Not before the dead server's lease (10 s from its claim) ran out.
    assert!(
        got[1].0 - got[0].0 >= Duration::from_secs(9),
        "{:?}",
        got[1].0 - got[0].0
    );
    assert!(got[1].0 > killed_at);
    // Recorded as delivered, and not sent a third time.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state: String = sqlx::query_scalar("SELECT state FROM webhook_deliveries")
            .fetch_one(&pool)
            .await
            .unwrap();
        if state == "delivered" {
            break;
        }
        assert!(Instant::now() < deadline, "still {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), 2, "not sent a third time");
}

on_both_backends!(a_delivery_in_flight_when_the_server_is_killed_is_delivered_after_a_restart);
