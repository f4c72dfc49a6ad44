//! The service API (`/api/v1`) as a platform backend uses it, with real keys, against the demo provider, on SQLite
//! and PostgreSQL: keys required and checked, scoped to providers; a token obtained through it works upstream and is
//! refreshed exactly like any other; every call audited with the key's name; clear JSON errors.

use crate::support::{
    Backend, TestApp,
    oauth::{Linked, identity, linked},
};
use onbehalf::{actions::TRANSFER_RESOURCE_SERVER, db::now_ms, service_api::keys};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

/// A live key for `providers` (none: every provider).
pub(crate) async fn key(app: &TestApp, name: &str, providers: &[&str]) -> String {
    let providers: Vec<String> = providers.iter().map(|p| (*p).to_owned()).collect();
    let known = vec!["demo".to_owned(), "github".to_owned()];
    keys::create(
        &app.state.db.pool,
        keys::NewKey {
            name,
            providers: &providers,
            ..Default::default()
        },
        &known,
    )
    .await
    .unwrap()
    .1
}

async fn list(app: &TestApp, key: Option<&str>, user: &str) -> reqwest::Response {
    let mut req = app.client.get(app.url("/api/v1/accounts")).query(&[("user", user)]);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

async fn token(app: &TestApp, key: &str, account: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/accounts/{account}/token")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn transfer_token(app: &TestApp, key: &str, who: &Linked) -> reqwest::Response {
    token(
        app,
        key,
        &who.account_id,
        json!({ "resource_server": TRANSFER_RESOURCE_SERVER }),
    )
    .await
}

/// The JSON error of a response, after checking its status.
async fn error(res: reqwest::Response, status: StatusCode) -> (String, Value) {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    (body["error"].as_str().unwrap().to_owned(), body)
}

async fn email_of(app: &TestApp, user_id: i64) -> String {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

/// The events of `action`: outcome, account, details, actor and subject.
type Event = (String, Option<String>, String, Option<i64>, Option<i64>);

async fn events(app: &TestApp, action: &str) -> Vec<Event> {
    sqlx::query_as(
        "SELECT outcome, account_id, details, actor_user_id, subject_user_id FROM audit_events WHERE action = $1 \
         ORDER BY id",
    )
    .bind(action)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}

async fn keys_are_required_and_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let user = ada.user_id.to_string();
    let (code, _) = error(list(&app, None, &user).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "unauthorized");
    let res = list(&app, Some("obk_not-a-key"), &user).await;
    assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"onbehalf\"");
    error(res, StatusCode::UNAUTHORIZED).await;
    let live = key(&app, "backend", &[]).await;
    error(
        list(&app, Some(&format!("{live}x")), &user).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    error(
        list(&app, Some(&live["obk_".len()..]), &user).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(list(&app, Some(&live), &user).await.status(), StatusCode::OK);
    let res = app
        .client
        .get(app.url(&format!("/api/v1/accounts?user={user}")))
        .header(header::AUTHORIZATION, format!("bearer {live}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the scheme is case-insensitive (RFC 7235)"
    );
    let res = app
        .client
        .get(app.url(&format!("/api/v1/accounts?user={user}")))
        .header(header::AUTHORIZATION, format!("Basic {live}"))
        .send()
        .await
        .unwrap();
    error(res, StatusCode::UNAUTHORIZED).await;
    keys::revoke(&app.state.db.pool, "backend").await.unwrap();
    let (code, _) = error(list(&app, Some(&live), &user).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "unauthorized", "a revoked key stops working at once");
    error(transfer_token(&app, &live, &ada).await, StatusCode::UNAUTHORIZED).await;
    assert!(
        events(&app, "service_token_issued").await.is_empty(),
        "nothing done, nothing issued"
    );
    assert_eq!(
        events(&app, "service_accounts_listed").await.len(),
        2,
        "only the calls with a live key"
    );
}

async fn a_token_obtained_through_the_api_works_upstream_and_is_refreshed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let live = key(&app, "invenio", &["demo"]).await;

    // Listed by id and by email, with status and consent per resource server, never a token.
    let res = list(&app, Some(&live), &email_of(&app, ada.user_id).await.to_uppercase()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    for issued in app.demo().issued_token_values() {
        assert!(!text.contains(&issued), "a listing never holds a token");
    }
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed["user"]["id"], ada.user_id);
    assert_eq!(listed["accounts"][0]["id"], ada.account_id.as_str());
    assert_eq!(listed["accounts"][0]["status"], "active");
    assert!(text.contains(TRANSFER_RESOURCE_SERVER));

    let res = transfer_token(&app, &live, &ada).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let issued: Value = res.json().await.unwrap();
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["provider"], "demo");
    assert!(issued["expires_at"].as_i64().unwrap() > now_ms());
    let first = issued["access_token"].as_str().unwrap().to_owned();
    let upstream = format!(
        "{}/v0.10/endpoint_search?filter_scope=my-endpoints&limit=5",
        app.demo().issuer_str()
    );
    let res = app.client.get(&upstream).bearer_auth(&first).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the provider accepts the token");

    // Due for refresh: the API refreshes first (one refresh grant), and the new token works.
    crate::support::expire_transfer_token(&app, &ada.account_id).await;
    let refreshes = |app: &TestApp| app.demo().counters().grants.get("refresh_token").copied().unwrap_or(0);
    let before = refreshes(&app);
    let mut asks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let ask = app
            .client
            .post(app.url(&format!("/api/v1/accounts/{}/token", ada.account_id)))
            .bearer_auth(&live)
            .json(&json!({ "resource_server": TRANSFER_RESOURCE_SERVER }));
        asks.spawn(async move { ask.send().await.unwrap() });
    }
    let answers = asks.join_all().await;
    let mut tokens = Vec::new();
    for res in answers {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(refreshes(&app) - before, 1, "eight callers at once, one refresh");
    assert!(
        tokens.iter().all(|t| *t == tokens[0] && *t != first),
        "all got the one new token"
    );
    let res = app.client.get(&upstream).bearer_auth(&tokens[0]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Audited as events of the user, by the key (no user acted), with the key's name.
    let issued_events = events(&app, "service_token_issued").await;
    assert_eq!(issued_events.len(), 9);
    let (outcome, account, details, actor, subject) = &issued_events[0];
    assert_eq!(outcome, "success");
    assert_eq!((*actor, *subject), (None, Some(ada.user_id)), "about ada, by no user");
    assert_eq!(account.as_deref(), Some(ada.account_id.as_str()));
    assert_eq!(serde_json::from_str::<Value>(details).unwrap()["key"], "invenio");
    assert_eq!(events(&app, "service_accounts_listed").await.len(), 1);
    let with_request_id: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE action LIKE 'service_%' AND request_id IS NOT NULL",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(
        with_request_id, 10,
        "each event carries its request's id, as the logs do"
    );
    let activity = app.get("/activity", Some(&ada.cookie)).await.text().await.unwrap();
    assert!(
        activity.contains("(key invenio) obtained"),
        "the user sees it: {activity}"
    );

    // The provider revokes the grant: the API says the account needs reconnecting, and audits the failure.
    app.demo().revoke_grants(Some(identity(0)));
    crate::support::expire_transfer_token(&app, &ada.account_id).await;
    let (code, _) = error(transfer_token(&app, &live, &ada).await, StatusCode::CONFLICT).await;
    assert_eq!(code, "needs_reconnect");
    let last = events(&app, "service_token_issued").await.pop().unwrap();
    assert_eq!(last.0, "failure");
    assert_eq!(
        serde_json::from_str::<Value>(&last.2).unwrap()["error"],
        "needs_reconnect"
    );
}

async fn a_key_scoped_to_one_provider_cannot_touch_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let github_only = key(&app, "github-sync", &["github"]).await;
    let res = list(&app, Some(&github_only), &ada.user_id.to_string()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let listed: Value = res.json().await.unwrap();
    assert_eq!(
        listed["accounts"],
        json!([]),
        "the demo account is not shown to a GitHub-only key"
    );
    let (code, body) = error(transfer_token(&app, &github_only, &ada).await, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "provider_not_allowed", "{body}");
    let refused = events(&app, "service_token_issued").await;
    assert_eq!(refused.len(), 1, "the refusal is audited");
    assert_eq!(refused[0].0, "rejected");
    let details: Value = serde_json::from_str(&refused[0].2).unwrap();
    assert_eq!(details["error"], "provider_not_allowed");
    assert_eq!(details["key"], "github-sync");
}

async fn bad_requests_get_clear_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let live = key(&app, "backend", &[]).await;
    let cases = [
        (json!({}), StatusCode::BAD_REQUEST, "bad_request"),
        (json!({ "resource_server": 7 }), StatusCode::BAD_REQUEST, "bad_request"),
        (
            json!({ "resource_server": "x", "extra": 1 }),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({ "resource_server": "nowhere.example.org" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (body, status, expected) in cases {
        let (code, _) = error(token(&app, &live, &ada.account_id, body.clone()).await, status).await;
        assert_eq!(code, expected, "{body}");
    }
    let res = app
        .client
        .post(app.url(&format!("/api/v1/accounts/{}/token", ada.account_id)))
        .bearer_auth(&live)
        .body("resource_server=transfer")
        .send()
        .await
        .unwrap();
    error(res, StatusCode::BAD_REQUEST).await;
    let body = json!({ "resource_server": TRANSFER_RESOURCE_SERVER });
    let (code, _) = error(token(&app, &live, "no-such-account", body).await, StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
    let (code, _) = error(
        list(&app, Some(&live), "nobody@example.org").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "user_not_found");
    let (code, _) = error(list(&app, Some(&live), "999999").await, StatusCode::NOT_FOUND).await;
    assert_eq!(code, "user_not_found");

    // A disabled user: nothing is done on their behalf.
    let email = email_of(&app, ada.user_id).await;
    onbehalf::auth::service::set_disabled_by_email(&app.state.db, &email, true)
        .await
        .unwrap();
    let (code, _) = error(list(&app, Some(&live), &email).await, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "user_disabled");
    let (code, _) = error(transfer_token(&app, &live, &ada).await, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "user_disabled");
    for action in ["service_accounts_listed", "service_token_issued"] {
        let last = events(&app, action).await.pop().unwrap();
        assert_eq!(last.0, "rejected", "{action}: refusals are audited");
    }
    let res = app
        .client
        .get(app.url("/api/v1/accounts"))
        .bearer_auth(&live)
        .send()
        .await
        .unwrap();
    let (code, _) = error(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_request", "no user named");
}

/// A key for every provider.
fn named(name: &str) -> keys::NewKey<'_> {
    keys::NewKey {
        name,
        ..Default::default()
    }
}

async fn key_names_are_checked_and_never_reused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let pool = &app.state.db.pool;
    let known = vec!["demo".to_owned()];
    for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
        let err = keys::create(pool, named(bad), &known).await.unwrap_err();
        assert!(matches!(err, keys::KeyError::BadName), "{bad:?}: {err}");
    }
    let err = keys::create(
        pool,
        keys::NewKey {
            name: "k",
            providers: &["gitlab".to_owned()],
            ..Default::default()
        },
        &known,
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown provider \"gitlab\" (configured: demo)");
    let (created, secret) = keys::create(pool, named("k"), &known).await.unwrap();
    assert!(secret.starts_with("obk_") && secret.len() == 4 + 43, "{secret}");
    assert_eq!(created.providers, None);
    let stored: String = sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE name = 'k'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(!stored.contains(&secret[4..]), "only a hash is stored");
    keys::revoke(pool, "k").await.unwrap();
    let err = keys::create(pool, named("k"), &known).await.unwrap_err();
    assert!(matches!(err, keys::KeyError::NameTaken(_)), "{err}");
    assert!(matches!(
        keys::revoke(pool, "k").await,
        Err(keys::KeyError::AlreadyRevoked(_))
    ));
    assert!(matches!(
        keys::revoke(pool, "nope").await,
        Err(keys::KeyError::NotFound(_))
    ));
}

pub(crate) async fn action(
    app: &TestApp,
    key: Option<&str>,
    account: &str,
    name: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/accounts/{account}/actions/{name}")));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn actions_run_globus_and_configured_actions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let portal = key(&app, "portal", &[]).await;
    let github_only = key(&app, "github-sync", &["github"]).await;
    let id = ada.account_id.as_str();
    // Search the user's endpoints, read one, list tasks (no body at all is fine).
    let found = ok(action(
        &app,
        Some(&portal),
        id,
        "endpoint_search",
        Some(json!({"params": {"scope": "my-endpoints"}})),
    )
    .await)
    .await;
    assert_eq!(found["action"], "endpoint_search");
    let endpoints: Vec<String> = found["result"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(endpoints.len() >= 3, "{found}");
    let one = ok(action(
        &app,
        Some(&portal),
        id,
        "endpoint",
        Some(json!({"params": {"endpoint_id": endpoints[0]}})),
    )
    .await)
    .await;
    assert_eq!(one["result"]["id"], endpoints[0].as_str());
    let tasks = ok(action(&app, Some(&portal), id, "tasks", None).await).await;
    assert!(tasks["result"].is_array());
    // Start a transfer, then read its task: it reached the provider with the user's token.
    let before = app.demo().counters().transfer_requests;
    let params = |from: &str, to: &str| {
        json!({"params": {"source_endpoint": from, "source_path": "/~/data/", "destination_endpoint": to,
                          "destination_path": "/~/copy/", "label": "from the portal", "recursive": "true"}})
    };
    let submitted = ok(action(
        &app,
        Some(&portal),
        id,
        "transfer",
        Some(params(&endpoints[0], &endpoints[1])),
    )
    .await)
    .await;
    let task_id = submitted["result"]["task_id"].as_str().expect("a task id").to_owned();
    assert_eq!(submitted["result"]["form"]["label"], "from the portal");
    assert!(app.demo().counters().transfer_requests > before);
    let task = ok(action(
        &app,
        Some(&portal),
        id,
        "task",
        Some(json!({"params": {"task_id": task_id}})),
    )
    .await)
    .await;
    assert_eq!(task["result"]["task_id"], task_id.as_str());
    // A collection that demands consent: 409 with the scopes and the submission to resume after.
    app.demo().require_consent(&endpoints[2]);
    let (code, body) = error(
        action(
            &app,
            Some(&portal),
            id,
            "transfer",
            Some(params(&endpoints[2], &endpoints[1])),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(code, "needs_consent");
    assert!(!body["scopes"].as_array().unwrap().is_empty());
    assert!(body["transfer"].is_string(), "{body}");
    // Bad input: which parameter is wrong, said before anything reaches the provider.
    let before = app.demo().counters().transfer_requests;
    for (name, params, field) in [
        ("endpoint_search", json!({"scope": "everything"}), "scope"),
        ("endpoint_search", json!({"offset": "-1"}), "offset"),
        ("transfer", json!({"source_endpoint": "not-a-uuid"}), "source_endpoint"),
        ("transfer", json!({"recursve": "true"}), "recursve"),
        ("cancel", json!({"task_id": "not-a-task"}), "task_id"),
        ("cancel", json!({}), "task_id"),
        ("cancel", json!({"taskid": task_id}), "taskid"),
        ("tasks", json!({"limit": "0"}), "limit"),
        ("tasks", json!({"limit": "101"}), "limit"),
        ("task", json!({"task_id": task_id, "verbose": "true"}), "verbose"),
        ("endpoint", json!({"endpoint_id": "x"}), "endpoint_id"),
    ] {
        let (code, body) = error(
            action(&app, Some(&portal), id, name, Some(json!({ "params": params }))).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            (code.as_str(), body["field"].as_str()),
            ("invalid", Some(field)),
            "{body}"
        );
    }
    assert_eq!(app.demo().counters().transfer_requests, before);
    let (code, _) = error(
        action(&app, Some(&portal), id, "no_such_action", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "not_found");
    for bad in [json!({"params": 5}), json!({"parameters": {}}), json!([1])] {
        let (code, _) = error(
            action(&app, Some(&portal), id, "tasks", Some(bad)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(code, "bad_request");
    }
    // The key: required, and scoped.
    let (code, _) = error(action(&app, None, id, "tasks", None).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "unauthorized");
    let (code, _) = error(
        action(&app, Some(&github_only), id, "tasks", None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(code, "provider_not_allowed");
    let (code, _) = error(
        action(&app, Some(&portal), "no-such-account", "tasks", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "not_found");
    // A dead link: 409, reconnect.
    app.demo().revoke_grants(Some(identity(0)));
    crate::support::expire_transfer_token(&app, &ada.account_id).await;
    let (code, _) = error(
        action(&app, Some(&portal), id, "tasks", None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(code, "needs_reconnect");
    // Every call audited as the user's event, by the key, with the action and the outcome.
    let runs = events(&app, "service_action_run").await;
    let successes: Vec<&Event> = runs.iter().filter(|e| e.0 == "success").collect();
    assert_eq!(successes.len(), 5);
    for (outcome, account, details, actor, subject) in &runs {
        let details: Value = serde_json::from_str(details).unwrap();
        assert_eq!(*actor, None);
        assert_eq!(*subject, Some(ada.user_id), "{outcome} {details}");
        assert_eq!(account.as_deref(), Some(id));
        assert!(
            details["key"] == "portal" || details["key"] == "github-sync",
            "{details}"
        );
    }
    assert!(
        runs.iter()
            .any(|e| e.0 == "rejected" && e.2.contains("provider_not_allowed"))
    );
    assert!(runs.iter().any(|e| e.0 == "failure" && e.2.contains("needs_consent")));
    let activity = app
        .get("/activity?kind=actions", Some(&ada.cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        activity.contains("The platform&#x27;s backend (key portal) ran transfer with")
            || activity.contains("(key portal) ran transfer with"),
        "{activity}"
    );
}

/// `cancel` cancels a running task once; a second cancel says it had ended; `tasks` takes a `limit`.
async fn a_running_task_is_cancelled_through_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let portal = key(&app, "portal", &[]).await;
    let id = ada.account_id.as_str();
    app.demo()
        .set_task_duration(Some(identity(0)), std::time::Duration::from_secs(3600));
    let found = ok(action(&app, Some(&portal), id, "endpoint_search", None).await).await;
    let endpoint = |n: usize| found["result"]["endpoints"][n]["id"].as_str().unwrap().to_owned();
    let params = json!({"params": {"source_endpoint": endpoint(0), "source_path": "/~/a", "destination_endpoint":
                                    endpoint(1), "destination_path": "/~/b"}});
    let submitted = ok(action(&app, Some(&portal), id, "transfer", Some(params)).await).await;
    let task_id = submitted["result"]["task_id"].as_str().unwrap().to_owned();
    let cancel = |task: &str| {
        action(
            &app,
            Some(&portal),
            id,
            "cancel",
            Some(json!({"params": {"task_id": task}})),
        )
    };
    let cancelled = ok(cancel(&task_id).await).await;
    assert_eq!(cancelled["action"], "cancel");
    assert_eq!(cancelled["result"]["task_id"], task_id.as_str());
    assert_eq!(cancelled["result"]["cancelled"], true);
    let task = ok(action(
        &app,
        Some(&portal),
        id,
        "task",
        Some(json!({"params": {"task_id": task_id}})),
    )
    .await)
    .await;
    assert_eq!(task["result"]["status"], "FAILED");
    let events = ok(action(
        &app,
        Some(&portal),
        id,
        "task_events",
        Some(json!({"params": {"task_id": task_id}})),
    )
    .await)
    .await;
    let codes: Vec<&str> = events["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["CANCELED", "STARTED"], "{events}");
    let again = ok(cancel(&task_id).await).await;
    assert_eq!(again["result"]["cancelled"], false, "{again}");
    assert!(
        again["result"]["message"].as_str().unwrap().contains("completed"),
        "{again}"
    );
    let (code, _) = error(
        cancel("0b0f5d3c-1f4e-4c7a-9a84-7b43c1e2f3a4").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "not_found");
    let listed = ok(action(
        &app,
        Some(&portal),
        id,
        "tasks",
        Some(json!({"params": {"limit": "1"}})),
    )
    .await)
    .await;
    assert_eq!(listed["result"].as_array().map(Vec::len), Some(1));
}

/// The OpenAPI document describes exactly the routes that answer: each documented operation exists (it asks for a
/// key rather than answering 404 or 405), no other method is routed on its path, and unknown paths answer 404 in
/// JSON.
async fn openapi_document_matches_the_routes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    let actions = &doc["paths"]["/api/v1/accounts/{account}/actions/{action}"]["post"];
    assert_ne!(actions["requestBody"]["required"], true, "an action's body is optional");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            documented.push((method.clone(), path.clone()));
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                ["200", "201", "202"].iter().any(|ok| responses.contains_key(*ok)) && responses.contains_key("401"),
                "{method} {path}"
            );
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path}"
            );
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        [
            ("delete", "/api/v1/accounts/{account}"),
            ("get", "/api/v1/accounts"),
            ("get", "/api/v1/users/{external_id}/events"),
            ("get", "/api/v1/webhooks"),
            ("post", "/api/v1/accounts/{account}/actions/{action}"),
            ("post", "/api/v1/accounts/{account}/token"),
            ("post", "/api/v1/connect_sessions"),
            ("post", "/api/v1/webhooks/{endpoint}/replay"),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
    );
    for (path, item) in paths {
        let concrete = path
            .replace("{account}", "some-account")
            .replace("{action}", "tasks")
            .replace("{external_id}", "someone")
            .replace("{endpoint}", "ep_x");
        for method in ["get", "post", "put", "patch", "delete"] {
            let res = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            if item.get(method).is_some() {
                assert_eq!(
                    res.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} is routed and wants a key"
                );
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"], "unauthorized");
            } else {
                assert_eq!(
                    res.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not routed"
                );
            }
        }
    }
    // Every schema a response or request names is in the document.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "schema {name} is missing"
        );
    }
    let res = app.client.get(app.url("/api/v1/no/such/path")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

on_both_backends!(
    keys_are_required_and_checked,
    a_token_obtained_through_the_api_works_upstream_and_is_refreshed,
    a_key_scoped_to_one_provider_cannot_touch_another,
    bad_requests_get_clear_errors,
    key_names_are_checked_and_never_reused,
    actions_run_globus_and_configured_actions,
    a_running_task_is_cancelled_through_the_api,
    openapi_document_matches_the_routes,
);
