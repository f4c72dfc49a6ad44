//! A hostile or broken provider on loopback (an `oauth2` provider whose token endpoint and API answer as told):
//! 10 MB bodies, bodies that never end, invalid UTF-8, JSON nested 100,000 deep, and answers that never come. Each
//! gets a clear error within the outbound timeout, nothing is linked or stored, no panic, and the process's memory
//! does not grow with what the provider sends (RSS measured).

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::support::{Backend, TestApp, oauth::query_value, unique_email};
use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use onbehalf::delegation::{ApiRequest, CallError};
use serde_json::json;

/// How the fake provider answers, at the token endpoint and at its API alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Good,
    /// 200 with a 10 MB JSON string, `Content-Length` announced.
    Huge,
    /// 200, chunked, 64 KiB chunks forever.
    Endless,
    /// 200 `application/json` whose bytes are not UTF-8.
    InvalidUtf8,
    /// 200 with `[` nested 100,000 deep.
    DeepJson,
    /// Headers never come.
    Stall,
}

type Switch = Arc<Mutex<Answer>>;

/// A 10 MB JSON string, made once: the provider's own memory must not blur what the app's is measured to be.
fn huge() -> Bytes {
    static HUGE: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    HUGE.get_or_init(|| {
        let mut body = vec![b'"'; 1];
        body.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
        body.push(b'"');
        Bytes::from(body)
    })
    .clone()
}

fn answer(switch: &Switch, good: serde_json::Value) -> Response {
    let json = |body: Body| {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap()
    };
    match *switch.lock().unwrap() {
        Answer::Good => axum::Json(good).into_response(),
        Answer::Huge => json(Body::from(huge())),
        Answer::Endless => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            json(Body::from_stream(futures::stream::repeat_with(move || {
                Ok::<_, Infallible>(chunk.clone())
            })))
        }
        Answer::InvalidUtf8 => json(Body::from(&b"{\"access_token\": \"\xff\xfe\xfd\"}"[..])),
        Answer::DeepJson => json(Body::from("[".repeat(100_000))),
        Answer::Stall => {
            let body = futures::stream::once(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, Infallible>(Bytes::new())
            });
            json(Body::from_stream(body))
        }
    }
}

/// The provider: `/token` (code exchange), `/userinfo`, `/api/things`; `Stall` delays the headers too.
async fn provider(switch: Switch) -> String {
    async fn maybe_stall(switch: &Switch) {
        if *switch.lock().unwrap() == Answer::Stall {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
    let app = Router::new()
        .route(
            "/token",
            post(|State(s): State<Switch>| async move {
                maybe_stall(&s).await;
                answer(
                    &s,
                    json!({"access_token": "at", "token_type": "bearer", "expires_in": 3600, "scope": "read"}),
                )
            }),
        )
        .route(
            "/api/userinfo",
            get(|| async { axum::Json(json!({"sub": "hostile-user", "name": "H"})) }),
        )
        .route(
            "/api/things",
            get(|State(s): State<Switch>| async move {
                maybe_stall(&s).await;
                answer(&s, json!({"things": []}))
            }),
        )
        .with_state(switch);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

async fn hostile_answers_get_clear_errors_in_bounded_time_and_memory(backend: Backend) {
    // The memory check reads the whole process's RSS: this binary runs one app at a time (tests/process/main.rs),
    // so no other run streams beside this one (CI saw 26 MiB over twenty rounds with both backends at once).
    let switch: Switch = Arc::new(Mutex::new(Answer::Good));
    let base = provider(switch.clone()).await;
    let entry = json!({
        "kind": "oauth2", "client_id": "c", "client_secret": "s",
        "authorization_endpoint": format!("{base}/authorize"), "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/api/userinfo"), "api_base_urls": [format!("{base}/api/")],
        "scopes": ["read"],
    });
    let app = TestApp::spawn_with(backend, |s| {
        s.providers
            .insert("hostile".into(), serde_json::from_value(entry).unwrap());
    })
    .await;
    let cookie = app.sign_up(&unique_email("hostile")).await;
    let link = |cookie: String| {
        let app = &app;
        async move {
            let res = crate::support::oauth::start(app, &cookie, "hostile", &[]).await;
            let authorize = reqwest::Url::parse(&crate::support::oauth::location(&res)).unwrap();
            let state = authorize
                .query_pairs()
                .find(|(k, _)| k == "state")
                .unwrap()
                .1
                .into_owned();
            let url = app.url(&format!("/oauth/hostile/callback?code=c&state={state}"));
            crate::support::oauth::location(&crate::support::oauth::callback(app, &cookie, &url).await)
        }
    };
    // The code exchange: every hostile answer is refused with a reason, in about the outbound timeout (2 s) at most.
    for (answer, reason) in [
        (Answer::Huge, "larger than 256 KiB"),
        (Answer::Endless, "larger than 256 KiB"),
        (Answer::InvalidUtf8, "not JSON"),
        (Answer::DeepJson, "not JSON"),
        (Answer::Stall, "timed out"),
    ] {
        *switch.lock().unwrap() = answer;
        let started = Instant::now();
        let landed = link(cookie.clone()).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{answer:?} took {:?}",
            started.elapsed()
        );
        let error = query_value(&landed, "error");
        assert!(
            matches!(error.as_deref(), Some("provider_bad_response" | "provider_unavailable")),
            "{answer:?}: {landed}"
        );
        let reason_stored: String = sqlx::query_scalar(
            "SELECT details FROM audit_events WHERE action = 'link_rejected' ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert!(reason_stored.contains(reason), "{answer:?}: {reason_stored}");
    }
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM linked_accounts")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0, "nothing linked");

    // A good link, then its API calls: the same answers are refused (or, for bytes that are not JSON, passed on
    // as bytes for the caller to judge), never buffered whole.
    *switch.lock().unwrap() = Answer::Good;
    let landed = link(cookie.clone()).await;
    let account = query_value(&landed, "linked").unwrap_or_else(|| panic!("linked: {landed}"));
    let user_id: i64 = sqlx::query_scalar("SELECT user_id FROM linked_accounts WHERE id = $1")
        .bind(&account)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let provider = app.state.catalog.get("hostile").unwrap();
    let call = |answer: Answer| {
        *switch.lock().unwrap() = answer;
        let delegation = app.state.delegation.clone();
        let url = reqwest::Url::parse(&format!("{base}/api/things")).unwrap();
        let account = account.clone();
        let resource_server = provider.default_resource_server.clone();
        async move {
            delegation
                .call(ApiRequest {
                    user_id,
                    account_id: &account,
                    resource_server: &resource_server,
                    method: reqwest::Method::GET,
                    url,
                    path_template: "/things",
                    json: None,
                    request_id: None,
                    about: Vec::new(),
                    keep: &[],
                })
                .await
        }
    };
    assert_eq!(call(Answer::Good).await.unwrap().status, 200);
    assert!(matches!(call(Answer::Huge).await, Err(CallError::TooLarge(_))));
    for _ in 0..5 {
        let started = Instant::now();
        let result = call(Answer::Endless).await;
        assert!(matches!(result, Err(CallError::TooLarge(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    let stalled = call(Answer::Stall).await;
    assert_eq!(
        stalled.as_ref().err().map(|e| e.code()),
        Some("unreachable"),
        "{stalled:?}"
    );
    let bytes = call(Answer::InvalidUtf8).await.unwrap();
    assert!(
        bytes.json::<serde_json::Value>().is_err(),
        "the caller sees bytes that are not JSON"
    );
    let deep = call(Answer::DeepJson).await.unwrap();
    assert!(
        deep.json::<serde_json::Value>().is_err(),
        "serde_json's depth limit, not a stack overflow"
    );

    // Memory does not grow with what the provider sends. A round streams an endless answer (cut at the API's 8 MiB
    // cap), a 10 MB one (refused by its length) and an endless token response (cut at 256 KiB) at the app. The first
    // rounds fill the allocator's per-thread arenas (measured: RSS rises by about 40 MiB over three rounds, then
    // flattens); after ten, twenty more — some 170 MB streamed — must not make it grow round by round. Without the caps the
    // endless answers alone would be buffered until memory ran out.
    let round = || async {
        assert!(matches!(call(Answer::Endless).await, Err(CallError::TooLarge(_))));
        assert!(matches!(call(Answer::Huge).await, Err(CallError::TooLarge(_))));
        *switch.lock().unwrap() = Answer::Endless;
        let landed = link(cookie.clone()).await;
        assert_eq!(query_value(&landed, "error").as_deref(), Some("provider_bad_response"));
    };
    for _ in 0..10 {
        round().await;
    }
    let before = rss_kib();
    for _ in 0..20 {
        round().await;
    }
    // Not a tight bound: the allocator maps memory in steps (measured over sixty rounds: level, then one step of
    // 16 MiB around round 45, then level again), and CI once saw 26 MiB here. What the caps prevent is growth with
    // every round (an uncapped endless answer alone is hundreds of MiB), which 64 MiB over twenty rounds still catches.
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB over twenty rounds");
}

on_both_backends!(hostile_answers_get_clear_errors_in_bounded_time_and_memory);
