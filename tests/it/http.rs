//! Pages, probes and response headers, on SQLite and PostgreSQL.

use std::sync::Arc;

use crate::support::{Backend, TestApp};
use reqwest::{StatusCode, header};

on_both_backends!(
    pages_render_on_the_server,
    unknown_paths_are_404_pages,
    every_response_has_security_headers_and_a_request_id,
    csp_nonce_matches_the_inline_scripts,
    health_and_readiness_probes_answer,
);

async fn pages_render_on_the_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, text) in [
        ("/", "Act on behalf of your users"),
        ("/sign-in", "Sign in"),
        ("/sign-up", "Create an account"),
    ] {
        let res = app.get(path, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = res.text().await.unwrap();
        assert!(html.contains(text), "{path} lacks {text:?}");
        assert!(html.contains(r#"<html lang="en""#));
    }
    let sign_in = app.get("/sign-in", None).await.text().await.unwrap();
    for label in [
        r#"<label for="field-email">Email</label>"#,
        r#"<label for="field-password">Password</label>"#,
    ] {
        assert!(sign_in.contains(label), "missing {label}");
    }
    assert!(
        sign_in.contains(r#"action="/api/sign_in""#),
        "the form must post without JavaScript"
    );
    // The islands loader, and the form as an island: with the whole-page loader the forms never become live.
    assert!(
        sign_in.contains("hydrateIslands"),
        "the page must load the islands loader"
    );
    assert!(
        sign_in.contains(r#"<leptos-island data-component="SignInForm_"#),
        "the form must be an island"
    );
}

async fn unknown_paths_are_404_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/no/such/page", None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("Page not found"));
}

async fn every_response_has_security_headers_and_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/", "/healthz", "/favicon.ico"] {
        let res = app.get(path, None).await;
        let h = res.headers();
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
            "{path}: {csp}"
        );
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert_eq!(h["x-request-id"].len(), 36, "{path}: a UUID request id");
        assert!(
            !h.contains_key(header::STRICT_TRANSPORT_SECURITY),
            "no HSTS over plain http"
        );
    }
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"],
        "trace-me-123",
        "an incoming request id is kept"
    );
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a user_id=1 forged")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"].len(),
        36,
        "an id unsafe to log is replaced by a fresh one"
    );

    // Pages are per user and must not be kept by browsers or proxies; static files may be.
    let page = app.get("/sign-in", None).await;
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    let asset = app.get("/favicon.svg", None).await;
    assert_ne!(
        asset.headers().get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
}

async fn csp_nonce_matches_the_inline_scripts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/sign-in", None).await;
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("CSP has a nonce")
        .to_owned();
    let html = res.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(
        html.matches(&format!(r#"nonce="{nonce}""#)).count(),
        scripts,
        "every script carries this response's nonce"
    );
    let again = app.get("/sign-in", None).await;
    assert!(
        !again.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains(&nonce),
        "nonces are per response"
    );
}

async fn health_and_readiness_probes_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/healthz", None).await;
    assert_eq!(
        (res.status(), res.text().await.unwrap().as_str()),
        (StatusCode::OK, "ok")
    );
    let res = app.get("/readyz", None).await;
    assert_eq!(
        (res.status(), res.text().await.unwrap().as_str()),
        (StatusCode::OK, "ready")
    );
    app.state.db.pool.close().await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Issue 19, Prove it: PostgreSQL restarted (`pg_ctl stop -m fast`, down 3 s, started again) while eight clients
/// keep asking for pages, delegated calls and the readiness probe. None gets a 500; while the database is away a
/// request that reaches the gate is refused at once with 503 (`http::database_gate`), and those caught as it went
/// away are served when it is back; afterwards everything works again by itself, and the link and its tokens are as
/// they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_under_load_answers_503_fast_then_recovers_by_itself() {
    use crate::support::{oauth::linked, private_postgres::PrivatePostgres};
    use std::time::{Duration, Instant};
    let postgres = PrivatePostgres::start();
    let url = postgres.url();
    // The production pool size.
    let app = TestApp::spawn_with(Backend::Postgres, move |s| {
        s.database.url = url.into();
        s.database.max_connections = 8;
    })
    .await;
    let ada = linked(&app, 0).await;
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..8 {
        let (base, ada, stop) = (app.base.clone(), ada.clone(), stop.clone());
        clients.spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let cookie = format!("{}={}", crate::support::SESSION_COOKIE, ada.cookie);
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let asked = Instant::now();
                let request = match client % 3 {
                    0 => http
                        .get(format!("{base}/linked-accounts"))
                        .header(header::COOKIE, &cookie),
                    1 => http
                        .post(format!("{base}/api/actions_page"))
                        .header(header::ORIGIN, &base)
                        .header(header::ACCEPT, "application/json")
                        .header(header::COOKIE, &cookie)
                        .form(&[("query[account]", ada.account_id.as_str())]),
                    _ => http.get(format!("{base}/readyz")),
                };
                let answer = request.send().await.map(|r| r.status());
                let error = answer.as_ref().err().map(|e| format!("{e:?}"));
                answers.push((asked - started, asked.elapsed(), client, answer.ok(), error));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down_at = started.elapsed();
    // pg_ctl waits for the server: off this runtime's workers, which the clients need meanwhile.
    tokio::task::block_in_place(|| postgres.stop());
    let stopped_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarting_at = started.elapsed();
    tokio::task::block_in_place(|| postgres.start_again());
    let up_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers: Vec<_> = clients.join_all().await.into_iter().flatten().collect();

    type Answer = (Duration, Duration, i32, Option<StatusCode>, Option<String>);
    let asked = |from: Duration, to: Duration| answers.iter().filter(move |a: &&Answer| a.0 >= from && a.0 < to);
    let slowest = answers.iter().map(|a| a.1).max().unwrap();
    let errors_500 = answers
        .iter()
        .filter(|a| a.3 == Some(StatusCode::INTERNAL_SERVER_ERROR))
        .count();
    let unanswered: Vec<_> = answers.iter().filter(|a| a.3.is_none()).collect();
    // Once the watch has seen it go (it asks every 100 ms), until the restart begins: refused at once.
    let refused: Vec<_> = asked(stopped_at + Duration::from_millis(200), restarting_at).collect();
    let slowest_refusal = refused.iter().map(|a| a.1).max().unwrap_or_default();
    // Asked as it went away, before the watch saw it.
    let caught: Vec<_> = asked(down_at, stopped_at + Duration::from_millis(200)).collect();
    let slowest_caught = caught.iter().map(|a| a.1).max().unwrap_or_default();
    // Recovered by itself: everything asked from 2 s after the restart on was answered as before.
    let after: Vec<_> = asked(up_at + Duration::from_secs(2), Duration::MAX).collect();
    eprintln!(
        "PostgreSQL restarted under load: {} requests; {} while it was away, all 503 (slowest {slowest_refusal:?}); \
         {} asked as it went away (slowest {slowest_caught:?}); {errors_500} answered 500, {} unanswered, \
         slowest answer {slowest:?}; {} after recovery, all 200; PostgreSQL stopped {down_at:?}–{stopped_at:?}, \
         restarted {restarting_at:?}–{up_at:?}",
        answers.len(),
        refused.len(),
        caught.len(),
        unanswered.len(),
        after.len()
    );
    assert_eq!(errors_500, 0, "no 500 while the database restarts");
    assert!(
        unanswered.is_empty(),
        "every request is answered (asked at, waited, client: 0 page, 1 server function, 2 readyz): {unanswered:?}"
    );
    assert!(
        refused.len() >= 100,
        "every client is refused again and again while it is away: {} refusals",
        refused.len()
    );
    assert!(
        refused.iter().all(|a| a.3 == Some(StatusCode::SERVICE_UNAVAILABLE)),
        "while it is away every request that needs it is refused with 503: {refused:?}"
    );
    assert!(
        slowest_refusal < Duration::from_millis(500),
        "refused at once: {slowest_refusal:?}"
    );
    // Those already past the gate as it went away: their connection is cut, or they need a new one, which fails at
    // once while the watch finds it away (they used to wait in sqlx's connect loop, 4.6 s, until it was back).
    assert!(
        caught
            .iter()
            .all(|a| matches!(a.3, Some(StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE))),
        "those asked as it went away are served, or refused: {caught:?}"
    );
    assert!(
        slowest_caught < Duration::from_secs(1),
        "those asked as it went away fail fast too: {slowest_caught:?}"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "nothing waits for the database to come back: {slowest:?}"
    );
    assert!(
        after.len() > 50 && after.iter().all(|a| a.3 == Some(StatusCode::OK)),
        "recovered by itself"
    );
    // No lost link: the account and both its token sets are there, and a delegated call works.
    let (status, sets): (String, i64) = sqlx::query_as(
        "SELECT a.status, (SELECT COUNT(*) FROM token_sets t WHERE t.account_id = a.id) FROM linked_accounts a \
         WHERE a.id = $1",
    )
    .bind(&ada.account_id)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), sets), ("active", 2));
}
