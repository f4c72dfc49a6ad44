//! The GitHub and ORCID presets against stand-ins for their token and user endpoints on loopback: each
//! provider's quirks (GitHub's `200 {"error"}` answers, comma-separated scopes and numeric ids from `GET /user`;
//! ORCID's iD in the token response) through the real callback.

use crate::support::{Backend, TestApp, unique_email};
use axum::{
    Form, Json, Router,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use reqwest::header;
use serde_json::{Value, json};

/// Revocation requests the fake provider received, as `<what> <credentials> <token>` lines.
type Revocations = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A GitHub `DELETE /applications/{client_id}/…` endpoint that records `<what> <credentials> <token>`.
fn github_deletion(what: &'static str, log: Revocations) -> axum::routing::MethodRouter {
    axum::routing::delete(move |headers: HeaderMap, Json(body): Json<Value>| async move {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        log.lock()
            .unwrap()
            .push(format!("{what} {auth} {}", body["access_token"]));
        StatusCode::NO_CONTENT
    })
}

/// A GitHub- and ORCID-like server: code `good` is accepted (once per request; these tests send each once).
async fn fake_provider() -> (String, Revocations) {
    let revocations = Revocations::default();
    let (github_grants, github_tokens, orcid_revocations) =
        (revocations.clone(), revocations.clone(), revocations.clone());
    let app = Router::new()
        .route(
            "/github/token",
            post(|Form(form): Form<Vec<(String, String)>>| async move {
                let code = form.iter().find(|(k, _)| k == "code").map(|(_, v)| v.as_str());
                let has_verifier = form.iter().any(|(k, v)| k == "code_verifier" && v.len() >= 43);
                // GitHub answers a bad code with 200 and an error member.
                Json(match (code, has_verifier) {
                    (Some("good"), true) => json!({"access_token": "gho_secret", "token_type": "bearer",
                                                   "scope": "read:user,repo"}),
                    _ => json!({"error": "bad_verification_code", "error_description": "The code is wrong."}),
                })
            }),
        )
        .route(
            "/github/user",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer gho_secret") => (
                        StatusCode::OK,
                        Json(json!({"id": 583231, "login": "octocat", "name": "The Octocat", "email": null})),
                    ),
                    _ => (StatusCode::UNAUTHORIZED, Json(json!({"message": "Bad credentials"}))),
                }
            }),
        )
        .route(
            "/github/user/repos",
            get(|headers: HeaderMap, query: axum::extract::RawQuery| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer gho_secret") => (
                        StatusCode::OK,
                        Json(json!([{"full_name": "octocat/hello-world", "query": query.0}])),
                    ),
                    _ => (StatusCode::UNAUTHORIZED, Json(json!({"message": "Bad credentials"}))),
                }
            }),
        )
        .route(
            "/orcid/{orcid}/record",
            get(
                |headers: HeaderMap, axum::extract::Path(orcid): axum::extract::Path<String>| async move {
                    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                        Some("Bearer orcid_secret") => (
                            StatusCode::OK,
                            Json(json!({"orcid-identifier": {"path": orcid}, "person": {"name": "Josiah Carberry"}})),
                        ),
                        _ => (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_token"}))),
                    }
                },
            ),
        )
        // GitHub ends a grant with the app's basic credentials and one of its tokens in a JSON body; the token
        // route ends that one token only: what a refused link gives back (the grant may serve another link).
        .route(
            "/github/applications/gh/grant",
            github_deletion("github-grant", github_grants),
        )
        .route(
            "/github/applications/gh/token",
            github_deletion("github-token", github_tokens),
        )
        .route(
            "/orcid/revoke",
            post(move |Form(form): Form<Vec<(String, String)>>| async move {
                let field = |name: &str| {
                    form.iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                orcid_revocations.lock().unwrap().push(format!(
                    "orcid-revoke {}:{} {}",
                    field("client_id"),
                    field("client_secret"),
                    field("token")
                ));
                // As Google does: the access token died with its refresh token, and revoking it again is a 400.
                if field("token") == "orcid_secret" {
                    (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_token"})))
                } else {
                    (StatusCode::OK, Json(json!({})))
                }
            }),
        )
        .route(
            "/orcid/token",
            post(|| async {
                Json(
                    json!({"access_token": "orcid_secret", "token_type": "bearer", "refresh_token": "orcid_refresh",
                            "expires_in": 631138518, "scope": "/authenticate", "name": "Josiah Carberry",
                            "orcid": "0000-0002-1825-0097"}),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, revocations)
}

/// provider, subject, username, display name, resource server, scopes
type LinkedRow = (String, String, Option<String>, Option<String>, String, String);

fn entry(value: Value) -> onbehalf::providers::settings::ProviderSettings {
    serde_json::from_value(value).unwrap()
}

/// Starts a link at `provider` and returns the state the authorize URL carries.
async fn start_state(app: &TestApp, cookie: &str, provider: &str) -> String {
    let res = app
        .client
        .post(app.url(&format!("/oauth/{provider}/start")))
        .header(header::ORIGIN, app.origin())
        .header(header::COOKIE, format!("{}={cookie}", crate::support::SESSION_COOKIE))
        .form(&[("intent", "link")])
        .send()
        .await
        .unwrap();
    let authorize = reqwest::Url::parse(res.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    assert!(
        authorize.query_pairs().all(|(k, _)| k != "nonce"),
        "no nonce for a non-OIDC provider"
    );
    authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

async fn callback(app: &TestApp, cookie: &str, provider: &str, query: &str) -> String {
    let res = app
        .client
        .get(app.url(&format!("/oauth/{provider}/callback?{query}")))
        .header(header::COOKIE, format!("{}={cookie}", crate::support::SESSION_COOKIE))
        .send()
        .await
        .unwrap();
    res.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

async fn github_and_orcid_quirks_are_handled(backend: Backend) {
    let (fake, revocations) = fake_provider().await;
    let base = fake.clone();
    let app = TestApp::spawn_with(backend, move |s| {
        s.providers.insert(
            "github".into(),
            entry(
                json!({"kind": "github", "client_id": "gh", "client_secret": "gh-secret",
                         "authorization_endpoint": format!("{base}/github/authorize"),
                         "token_endpoint": format!("{base}/github/token"),
                         "userinfo_endpoint": format!("{base}/github/user"),
                         "revocation_endpoint": format!("{base}/github/applications/gh/grant"),
                         "api_base_urls": [format!("{base}/github/")]}),
            ),
        );
        s.providers.insert(
            "orcid".into(),
            entry(
                json!({"kind": "orcid", "client_id": "APP-1", "client_secret": "orcid-secret",
                         "client_auth": "client_secret_post",
                         "authorization_endpoint": format!("{base}/orcid/authorize"),
                         "token_endpoint": format!("{base}/orcid/token"),
                         "revocation_endpoint": format!("{base}/orcid/revoke"),
                         "api_base_urls": [format!("{base}/orcid/")]}),
            ),
        );
    })
    .await;
    let cookie = app.sign_up(&unique_email("presets")).await;

    // GitHub: a wrong code comes back as 200 {"error": "bad_verification_code"}, which is invalid_grant.
    let state = start_state(&app, &cookie, "github").await;
    let landed = callback(&app, &cookie, "github", &format!("code=bad&state={state}")).await;
    assert_eq!(landed, "/linked-accounts?error=code_rejected&provider=github");
    let state = start_state(&app, &cookie, "github").await;
    let landed = callback(&app, &cookie, "github", &format!("code=good&state={state}")).await;
    assert!(landed.starts_with("/linked-accounts?linked="), "{landed}");

    // The same GitHub identity for another local user is refused; the token it got is given back by itself
    // (`…/token`), never by ending the grant the first user's link lives on.
    let other = app.sign_up(&unique_email("presets-other")).await;
    let state = start_state(&app, &other, "github").await;
    let landed = callback(&app, &other, "github", &format!("code=good&state={state}")).await;
    assert_eq!(landed, "/linked-accounts?error=identity_taken&provider=github");

    let state = start_state(&app, &cookie, "orcid").await;
    let landed = callback(&app, &cookie, "orcid", &format!("code=any&state={state}")).await;
    assert!(landed.starts_with("/linked-accounts?linked="), "{landed}");

    let rows: Vec<LinkedRow> = sqlx::query_as(
        "SELECT a.provider, a.subject, a.username, a.display_name, t.resource_server, t.scopes \
         FROM linked_accounts a JOIN token_sets t ON t.account_id = a.id ORDER BY a.provider",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "github".into(),
                "583231".into(),
                Some("octocat".into()),
                Some("The Octocat".into()),
                "api.github.com".into(),
                "read:user repo".into()
            ),
            (
                "orcid".into(),
                "0000-0002-1825-0097".into(),
                None,
                Some("Josiah Carberry".into()),
                "orcid.org".into(),
                "/authenticate".into()
            ),
        ]
    );
    let html = app.get("/linked-accounts", Some(&cookie)).await.text().await.unwrap();
    assert!(
        html.contains("octocat") && html.contains("Josiah Carberry") && html.contains("Connect another GitHub account")
    );
    assert!(!html.contains("gho_secret") && !html.contains("orcid_secret"));

    // The presets' read actions, run from the actions page with the user's tokens.
    let account = |provider: &str| {
        let provider = provider.to_owned();
        let pool = app.state.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT id FROM linked_accounts WHERE provider = $1")
                .bind(provider)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let github = account("github").await;
    // A page load that asks to run an action acts only when it comes from one of our pages (a GET must not act for
    // another site's link): as the browser's `Sec-Fetch-Site` says, or `Referer` without it.
    let open = |path: String, site: Option<&'static str>, referer: Option<String>| {
        let mut req = app
            .client
            .get(app.url(&path))
            .header(header::COOKIE, format!("{}={cookie}", crate::support::SESSION_COOKIE));
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        if let Some(referer) = referer {
            req = req.header(header::REFERER, referer);
        }
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let run_repositories = format!("/actions?account={github}&run=repositories&p_sort=created");
    for (site, referer) in [
        (None, None),
        (Some("cross-site"), None),
        (Some("none"), None),
        (Some("cross-site"), Some(app.url("/actions"))),
        (None, Some("https://evil.example/".to_owned())),
    ] {
        let page = open(run_repositories.clone(), site, referer.clone()).await;
        assert!(
            page.contains("so the action was not run") && !page.contains("octocat/hello-world"),
            "{site:?} {referer:?}: {page}"
        );
        assert!(
            page.contains(r#"value="created""#),
            "the form shows what the link asked for"
        );
    }
    app.state.delegation.calls.flush().await;
    let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'delegated_call'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(calls, 0, "nothing reached the provider");
    let page = open(run_repositories.clone(), None, Some(app.url("/actions"))).await;
    assert!(
        page.contains("octocat/hello-world"),
        "a referer from our own page: {page}"
    );
    let page = open(run_repositories, Some("same-origin"), None).await;
    assert!(
        page.contains("My repositories") && page.contains("octocat/hello-world"),
        "{page}"
    );
    assert!(
        page.contains("sort=created&amp;per_page=30"),
        "parameters and defaults reach the query: {page}"
    );
    let orcid = account("orcid").await;
    let page = open(
        format!("/actions?account={orcid}&run=record"),
        Some("same-origin"),
        None,
    )
    .await;
    assert!(
        page.contains("My ORCID record") && page.contains("0000-0002-1825-0097"),
        "{page}"
    );
    let page = open(format!("/actions?account={orcid}&run=nope"), Some("same-origin"), None).await;
    assert!(page.contains("No such action."), "{page}");
    app.state.delegation.calls.flush().await;
    let paths: Vec<String> =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'delegated_call' ORDER BY id")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(
        paths[0].contains("\"path\":\"/user/repos\"") && paths[2].contains("{subject}/record"),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("gho_secret") && !p.contains("sort=created"))
    );

    // Disconnect: GitHub's grant deletion (basic credentials, the access token in JSON; no refresh token to send)
    // and ORCID's RFC 7009 endpoint (client_secret_post; refresh token first, then the access token, whose 400
    // `invalid_token` means it is already dead).
    for (account, revoked) in [(&github, 1), (&orcid, 2)] {
        let res = app
            .call("disconnect_account", &[("account", account)], Some(&cookie))
            .await;
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["revoked"], revoked, "{outcome}");
        assert_eq!(outcome["failed"], 0, "{outcome}");
    }
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("gh:gh-secret");
    assert_eq!(
        *revocations.lock().unwrap(),
        vec![
            format!("github-token Basic {basic} \"gho_secret\""),
            format!("github-grant Basic {basic} \"gho_secret\""),
            "orcid-revoke APP-1:orcid-secret orcid_refresh".to_owned(),
            "orcid-revoke APP-1:orcid-secret orcid_secret".to_owned(),
        ]
    );
}

on_both_backends!(github_and_orcid_quirks_are_handled);
