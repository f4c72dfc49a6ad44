//! `/metrics`: off unless a token is configured, read only by a scraper that sends it, and counting what happened
//! (refresh attempts, delegated calls and their durations, audit events, linked accounts by state), on SQLite and
//! PostgreSQL. The counters are the process's: the apps of this file run one at a time (`TestApp` holds a lock for
//! its lifetime), so each test compares a scrape before and after what it does.

use std::collections::BTreeMap;

use crate::support::{
    Backend, TestApp,
    oauth::{identity, linked},
};
use reqwest::{StatusCode, header};
use secrecy::SecretString;

const TOKEN: &str = "scrape-me-0123456789";

async fn app_with_metrics(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| s.metrics.token = Some(SecretString::from(TOKEN))).await
}

async fn scrape_with(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(value) = authorization {
        req = req.header(header::AUTHORIZATION, value);
    }
    req.send().await.unwrap()
}

/// Every sample of a scrape, by its series (`name{labels}`).
async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    let res = scrape_with(app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(
        body.ends_with("# EOF\n"),
        "an OpenMetrics exposition ends with # EOF:\n{body}"
    );
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {line}"));
            (
                series.to_owned(),
                value.parse().unwrap_or_else(|_| panic!("a number: {line}")),
            )
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// How much `series` grew from `before` to `after`.
fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, series: &str) -> f64 {
    value(after, series) - value(before, series)
}

/// Loads the Actions page's data: two calls to the demo Transfer API (the endpoint search and the task list).
async fn load_actions(app: &TestApp, cookie: &str, account: &str) -> serde_json::Value {
    let res = app
        .call("actions_page", &[("query[account]", account)], Some(cookie))
        .await;
    res.json().await.unwrap()
}

async fn metrics_are_off_without_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = scrape_with(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "no token configured: no endpoint");
}

async fn only_a_scraper_with_the_token_reads_them(backend: Backend) {
    let app = app_with_metrics(backend).await;
    for presented in [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer{TOKEN}")),
        Some(TOKEN.to_owned()),
    ] {
        let res = scrape_with(&app, presented.as_deref()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{presented:?}");
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"metrics\"");
        let body = res.text().await.unwrap();
        assert!(!body.contains("onbehalf_"), "nothing leaks to {presented:?}: {body}");
    }
    let res = scrape_with(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
}

async fn they_count_what_happened(backend: Backend) {
    let app = app_with_metrics(backend).await;
    let before = scrape(&app).await;
    let active = "onbehalf_linked_accounts{provider=\"demo\",status=\"active\"}";
    let needs_reconnect = "onbehalf_linked_accounts{provider=\"demo\",status=\"needs_reconnect\"}";
    assert_eq!(
        before.get(active),
        Some(&0.0),
        "every status of a configured provider is there, at 0"
    );
    assert_eq!(before.get(needs_reconnect), Some(&0.0));

    let ada = linked(&app, 0).await;
    let linked_event = "onbehalf_audit_events_total{action=\"account_linked\",outcome=\"success\"}";
    let after_link = scrape(&app).await;
    assert_eq!(value(&after_link, active), 1.0);
    assert_eq!(delta(&before, &after_link, linked_event), 1.0);

    // Calls with a valid token: each upstream request counted with its status and its duration.
    let transfer_before = app.demo().counters().transfer_requests;
    let listed = load_actions(&app, &ada.cookie, &ada.account_id).await;
    assert!(listed["endpoints"]["Ok"]["endpoints"].is_array(), "{listed}");
    // An expired token: one refresh attempt, successful, then the call.
    crate::support::expire_transfer_token(&app, &ada.account_id).await;
    let listed = load_actions(&app, &ada.cookie, &ada.account_id).await;
    assert!(listed["endpoints"]["Ok"]["endpoints"].is_array(), "{listed}");
    let upstream = (app.demo().counters().transfer_requests - transfer_before) as f64;
    let after_calls = scrape(&app).await;
    let ok_calls = "onbehalf_delegated_calls_total{provider=\"demo\",status=\"200\"}";
    assert!(upstream >= 2.0);
    assert_eq!(
        delta(&after_link, &after_calls, ok_calls),
        upstream,
        "one count per upstream request"
    );
    assert_eq!(
        delta(
            &after_link,
            &after_calls,
            "onbehalf_delegated_call_duration_seconds_count{provider=\"demo\"}"
        ),
        upstream
    );
    let refreshed = "onbehalf_refresh_attempts_total{provider=\"demo\",outcome=\"success\"}";
    assert_eq!(delta(&after_link, &after_calls, refreshed), 1.0);
    let refreshed_event = "onbehalf_audit_events_total{action=\"token_refreshed\",outcome=\"success\"}";
    assert_eq!(delta(&after_link, &after_calls, refreshed_event), 1.0);

    // The provider revokes the grant: the refresh is rejected, the call is not made, the link needs reconnecting.
    app.demo().revoke_grants(Some(identity(0)));
    crate::support::expire_transfer_token(&app, &ada.account_id).await;
    let refused = load_actions(&app, &ada.cookie, &ada.account_id).await;
    assert!(refused["endpoints"]["Err"].is_object(), "{refused}");
    let after_revoke = scrape(&app).await;
    let rejected = "onbehalf_refresh_attempts_total{provider=\"demo\",outcome=\"rejected\"}";
    assert_eq!(delta(&after_calls, &after_revoke, rejected), 1.0);
    assert_eq!(
        delta(
            &after_calls,
            &after_revoke,
            "onbehalf_delegated_calls_total{provider=\"demo\",status=\"needs_reconnect\"}"
        ),
        2.0,
        "each call that could not be made (the page's two) is counted by why"
    );
    assert_eq!(delta(&after_calls, &after_revoke, ok_calls), 0.0);
    assert_eq!(value(&after_revoke, active), 0.0);
    assert_eq!(value(&after_revoke, needs_reconnect), 1.0);
}

on_both_backends!(
    metrics_are_off_without_a_token,
    only_a_scraper_with_the_token_reads_them,
    they_count_what_happened,
);
