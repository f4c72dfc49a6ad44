//! The actions page and server functions over HTTP, as a browser (with and without JavaScript) uses them, against
//! the demo provider's Transfer API, on SQLite and PostgreSQL.

use crate::support::{
    Backend, TestApp,
    oauth::{Linked, identity, linked},
};
use reqwest::{StatusCode, header};
use serde_json::Value;
use std::time::Duration;

pub(crate) async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let res = app.get(path, Some(cookie)).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.text().await.unwrap()
}

pub(crate) fn location(res: &reqwest::Response) -> String {
    res.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

/// The user's own endpoint ids, through the server function of the Actions page's data.
pub(crate) async fn endpoint_ids(app: &TestApp, who: &Linked) -> Vec<String> {
    let res = app
        .call(
            "actions_page",
            &[("query[account]", &who.account_id)],
            Some(&who.cookie),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    body["endpoints"]["Ok"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn endpoints_are_listed_paged_filtered_and_searched(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let html = page(&app, &ada.cookie, "/actions").await;
    assert!(
        html.contains("Acting as <strong>ada@demo.globus.org</strong>"),
        "{html}"
    );
    assert!(html.contains("Endpoints 1–25"), "first page");
    assert!(html.contains("rel=\"next\""), "a next page");
    let second = page(
        &app,
        &ada.cookie,
        &format!("/actions?account={}&scope=my-endpoints&offset=25", ada.account_id),
    )
    .await;
    assert!(second.contains("Endpoints 26–50") && second.contains("rel=\"prev\""));
    // Full-text search over every visible endpoint; the filter and text stay in the form (and the URL).
    let found = page(
        &app,
        &ada.cookie,
        &format!("/actions?account={}&scope=all&q=tutorial", ada.account_id),
    )
    .await;
    assert!(found.contains("value=\"tutorial\""));
    assert!(found.contains("<option value=\"all\" selected"), "{found}");
    // Bad input: a clear message, no call.
    let missing = page(
        &app,
        &ada.cookie,
        &format!("/actions?account={}&scope=all", ada.account_id),
    )
    .await;
    assert!(missing.contains("Searching all endpoints needs search text."));
    let capped = page(
        &app,
        &ada.cookie,
        &format!("/actions?account={}&offset=1000", ada.account_id),
    )
    .await;
    assert!(capped.contains("at most 1,000 results"), "{capped}");
}

async fn transfers_submit_from_a_plain_form_with_clear_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let referer = format!("/actions?account={}", ada.account_id);
    let submit = |form: Vec<(&'static str, String)>| {
        let (app, cookie, referer) = (&app, ada.cookie.clone(), referer.clone());
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_plain_form_as("globus_submit_transfer", &referer, &form, Some(&cookie))
                .await
        }
    };
    let bad = submit(vec![
        ("account", ada.account_id.clone()),
        ("source_endpoint", "not-a-uuid".into()),
        ("source_path", "/~/".into()),
        ("destination_endpoint", "0b0f5d3c-1f4e-4c7a-9a84-7b43c1e2f3a4".into()),
        ("destination_path", "/~/".into()),
    ])
    .await;
    assert!(bad.status().is_redirection(), "{}", bad.status());
    let back = location(&bad);
    assert!(back.ends_with("&invalid=source_endpoint#transfer"), "{back}");
    let html = page(&app, &ada.cookie, &back).await;
    assert!(html.contains("An endpoint id is a UUID"), "{html}");
    let ids = endpoint_ids(&app, &ada).await;
    let good = submit(vec![
        ("account", ada.account_id.clone()),
        ("source_endpoint", ids[0].clone()),
        ("source_path", "/~/in/".into()),
        ("destination_endpoint", ids[1].clone()),
        ("destination_path", "/~/out/".into()),
        ("label", "Nightly copy".into()),
        ("sync_level", "mtime".into()),
        ("recursive", "on".into()),
    ])
    .await;
    let back = location(&good);
    assert!(back.contains("&transfer="), "{back}");
    let html = page(&app, &ada.cookie, &back).await;
    assert!(html.contains("Transfer submitted: task"), "{html}");
    assert!(html.contains("Nightly copy"), "the task list shows it");
}

/// A running transfer has a Cancel button; the plain form cancels it and comes back saying so; a task that has
/// ended, or is not the user's, says that instead.
async fn a_running_transfer_is_cancelled_from_the_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    app.demo()
        .set_task_duration(Some(identity(0)), Duration::from_secs(3600));
    let ids = endpoint_ids(&app, &ada).await;
    let referer = app.url(&format!("/actions?account={}", ada.account_id));
    let form = [
        ("account", ada.account_id.as_str()),
        ("source_endpoint", ids[0].as_str()),
        ("source_path", "/~/in/"),
        ("destination_endpoint", ids[1].as_str()),
        ("destination_path", "/~/out/"),
        ("label", "Long copy"),
    ];
    let submitted = app
        .post_plain_form_as("globus_submit_transfer", &referer, &form, Some(&ada.cookie))
        .await;
    let html = page(&app, &ada.cookie, &location(&submitted)).await;
    assert!(html.contains("aria-label=\"Cancel transfer Long copy\""), "{html}");
    let task_id: String = sqlx::query_scalar("SELECT task_id FROM transfer_submissions WHERE account_id = $1")
        .bind(&ada.account_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let cancel = |task_id: String| {
        let (app, cookie, referer, account) = (&app, ada.cookie.clone(), referer.clone(), ada.account_id.clone());
        async move {
            let form = [("account", account.as_str()), ("task_id", task_id.as_str())];
            let res = app
                .post_plain_form_as("globus_cancel_task", &referer, &form, Some(&cookie))
                .await;
            assert!(res.status().is_redirection(), "{}", res.status());
            location(&res)
        }
    };
    let back = cancel(task_id.clone()).await;
    assert!(back.ends_with("&cancel=cancelled#tasks"), "{back}");
    let html = page(&app, &ada.cookie, &back).await;
    assert!(html.contains("Transfer cancelled."), "{html}");
    assert!(html.contains(">FAILED<"), "the task shows as ended: {html}");
    assert!(
        !html.contains("Cancel transfer Long copy"),
        "an ended task has no Cancel button"
    );
    let back = cancel(task_id).await;
    assert!(back.ends_with("&cancel=finished#tasks"), "{back}");
    assert!(
        page(&app, &ada.cookie, &back)
            .await
            .contains("That transfer had already finished")
    );
    for (task_id, outcome) in [
        ("0b0f5d3c-1f4e-4c7a-9a84-7b43c1e2f3a4", "not_found"),
        ("not-a-task", "failed"),
    ] {
        let back = cancel(task_id.to_owned()).await;
        assert!(back.ends_with(&format!("&cancel={outcome}#tasks")), "{back}");
    }
    // The grant revoked meanwhile: the cancel says what to do first, and the page offers it.
    app.demo().revoke_grants(Some(identity(0)));
    crate::support::expire_transfer_token(&app, &ada.account_id).await;
    let back = cancel("0b0f5d3c-1f4e-4c7a-9a84-7b43c1e2f3a4".to_owned()).await;
    assert!(back.ends_with("&cancel=needs_access#tasks"), "{back}");
    let html = page(&app, &ada.cookie, &back).await;
    assert!(
        html.contains("Globus needs you to reconnect this account or grant access") && html.contains(">Reconnect<"),
        "{html}"
    );
}

async fn a_revoked_grant_shows_reconnect_and_consent_shows_grant_access(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    // Consent: the submission waits, the page offers Grant access and a retry.
    let ids = endpoint_ids(&app, &ada).await;
    app.demo().require_consent(&ids[0]);
    let form = [
        ("account", ada.account_id.as_str()),
        ("source_endpoint", ids[0].as_str()),
        ("source_path", "/~/a"),
        ("destination_endpoint", ids[1].as_str()),
        ("destination_path", "/~/b"),
    ];
    let res = app.call("globus_submit_transfer", &form, Some(&ada.cookie)).await;
    let body: Value = res.json().await.unwrap();
    assert!(
        body["Err"]["NeedsConsent"]["scopes"][0]
            .as_str()
            .unwrap()
            .contains("data_access"),
        "{body}"
    );
    let row = body["Err"]["NeedsConsent"]["transfer"].as_str().unwrap().to_owned();
    let html = page(
        &app,
        &ada.cookie,
        &format!("/actions?account={}&transfer={row}", ada.account_id),
    )
    .await;
    assert!(
        html.contains("Grant access") && html.contains("Retry submission") && html.contains("Needs consent"),
        "{html}"
    );
    assert!(
        html.contains("name=\"return_to\" value=\"/actions?account="),
        "Grant access comes back here"
    );
    // A revoked grant: the page shows the reason and Reconnect instead of a 500.
    app.demo().revoke_grants(Some(identity(0)));
    crate::support::expire_transfer_token(&app, &ada.account_id).await;
    let html = page(&app, &ada.cookie, "/actions").await;
    assert!(
        html.contains("no longer accepts this link") && html.contains(">Reconnect<"),
        "{html}"
    );
}

async fn nobody_acts_with_someone_elses_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let grace = linked(&app, 1).await;
    let before = app.demo().counters().transfer_requests;
    for (endpoint, form) in [
        (
            "globus_task",
            vec![
                ("account", ada.account_id.as_str()),
                ("task_id", "0b0f5d3c-1f4e-4c7a-9a84-7b43c1e2f3a4"),
            ],
        ),
        (
            "globus_cancel_task",
            vec![
                ("account", ada.account_id.as_str()),
                ("task_id", "0b0f5d3c-1f4e-4c7a-9a84-7b43c1e2f3a4"),
            ],
        ),
        (
            "globus_submit_transfer",
            vec![("account", ada.account_id.as_str()), ("resume", "x")],
        ),
    ] {
        let res = app.call(endpoint, &form, Some(&grace.cookie)).await;
        assert_eq!(res.status(), StatusCode::OK, "{endpoint}");
        let body: Value = res.json().await.unwrap();
        assert!(body["Err"]["NotFound"].is_object(), "{endpoint}: {body}");
        // Signed out: refused before anything runs.
        let res = app.call(endpoint, &form, None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{endpoint}");
    }
    // The page falls back to Grace's own account.
    let html = page(&app, &grace.cookie, &format!("/actions?account={}", ada.account_id)).await;
    assert!(html.contains("grace@demo.globus.org") && !html.contains("ada@demo.globus.org"));
    assert_eq!(
        app.demo().counters().transfer_requests - before,
        2,
        "only Grace's own page load reached Transfer (endpoint search and task list)"
    );
}

on_both_backends!(
    endpoints_are_listed_paged_filtered_and_searched,
    transfers_submit_from_a_plain_form_with_clear_errors,
    a_running_transfer_is_cancelled_from_the_page,
    a_revoked_grant_shows_reconnect_and_consent_shows_grant_access,
    nobody_acts_with_someone_elses_account,
);
