//! Platform users and connect sessions, as a platform's backend and its user's browser use them, against the demo
//! provider, on SQLite and PostgreSQL: the link is single use, expires, and cannot be forged; `return_to` stays under
//! the key's prefixes; the session it opens reaches only its user's linked-accounts pages and ends at "Back to";
//! platform users are made once and cannot sign in with a password; the service API disconnects and reads history.

use crate::support::{
    Backend, PASSWORD, SESSION_COOKIE, TestApp,
    oauth::{self, DEMO, count, identity, linked, location, query_value},
    session_cookie,
};
use onbehalf::{auth::Role, service_api::keys};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

const PLATFORM: &str = "http://platform.example/";
const RETURN_TO: &str = "http://platform.example/transfer";

/// A key for `providers` (none: every provider) that may return to [`PLATFORM`], called "Example Platform".
async fn key(app: &TestApp, name: &str, providers: &[&str]) -> String {
    let providers: Vec<String> = providers.iter().map(|p| (*p).to_owned()).collect();
    let known = vec!["demo".to_owned(), "github".to_owned()];
    let new = keys::NewKey {
        name,
        providers: &providers,
        return_urls: &[PLATFORM.to_owned()],
        platform_name: Some("Example Platform"),
    };
    keys::create(&app.state.db.pool, new, &known).await.unwrap().1
}

async fn create(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/connect_sessions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A connect link for `external_id`; panics unless it is made.
async fn link_for(app: &TestApp, key: &str, body: Value) -> String {
    let res = create(app, key, body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let url = body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&app.url("/connect/")), "{url}");
    url
}

/// Opens a link as a fresh browser: the answer, and the session cookie it set.
/// Opens a link as a fresh browser does: its page (which spends nothing and names whose session it starts), then
/// Continue, a same-origin form post. The answer, and the session cookie it set. A link that cannot be used answers
/// its page at once.
async fn open(app: &TestApp, url: &str) -> (reqwest::Response, Option<String>) {
    let page = app.client.get(url).send().await.unwrap();
    if page.status() != StatusCode::OK {
        assert!(session_cookie(&page).is_none(), "looking at a link starts no session");
        return (page, None);
    }
    assert!(session_cookie(&page).is_none(), "looking at a link starts no session");
    let html = page.text().await.unwrap();
    let path = url.strip_prefix(&app.base).unwrap();
    assert!(
        html.contains(&format!("<form method=\"post\" action=\"{path}\">")) && html.contains("Continue"),
        "{html}"
    );
    let res = post_link(app, url).await;
    let cookie = session_cookie(&res).map(|c| c.value);
    (res, cookie)
}

/// Continue on a link's page: the same-origin form post that opens it.
async fn post_link(app: &TestApp, url: &str) -> reqwest::Response {
    app.client
        .post(url)
        .header(header::ORIGIN, app.origin())
        .send()
        .await
        .unwrap()
}

/// A request with its path exactly as given (an HTTP client would resolve `..` and `%2e%2e` first): the status.
async fn raw_get(app: &TestApp, path: &str, cookie: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nCookie: {SESSION_COOKIE}={cookie}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"))
}

/// Where a page of ours sends the browser back to the platform: a 200 page with a `refresh` and a link (a redirect
/// would be blocked after a form post by `form-action`), never a redirect.
async fn forwarded(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::OK, "a forwarding page, not a redirect");
    assert_eq!(res.headers()[header::REFERRER_POLICY], "no-referrer");
    let html = res.text().await.unwrap();
    let marker = "http-equiv=\"refresh\" content=\"0; url=";
    let at = html.find(marker).unwrap_or_else(|| panic!("a refresh: {html}")) + marker.len();
    let url = html[at..at + html[at..].find('"').unwrap()].replace("&amp;", "&");
    assert!(
        html.contains(&format!("href=\"{}\"", url.replace('&', "&amp;"))),
        "and a link: {html}"
    );
    url
}

async fn error_of(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// The platform's user links a demo account from a connect link: returns (account id, where the browser landed,
/// the connect session's cookie).
async fn connect_and_link(app: &TestApp, key: &str, external_id: &str, n: usize) -> (String, String, String) {
    let url = link_for(
        app,
        key,
        json!({"user": {"external_id": external_id}, "mode": "connect", "provider": DEMO, "return_to": RETURN_TO}),
    )
    .await;
    let (res, cookie) = open(app, &url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "straight to the provider");
    assert_eq!(res.headers()[header::REFERRER_POLICY], "no-referrer");
    let cookie = cookie.expect("the link starts a session");
    let back = oauth::consent(app, &location(&res), identity(n), "allow").await;
    let res = oauth::callback(app, &cookie, &back).await;
    let landed = forwarded(res).await;
    let account = query_value(&landed.replace(PLATFORM, "/"), "account").unwrap_or_default();
    (account, landed, cookie)
}

async fn connect_links_an_account_and_goes_back_to_the_platform(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &["demo"]).await;
    let (account, landed, cookie) = connect_and_link(&app, &key, "user-42", 0).await;
    assert_eq!(landed, format!("{RETURN_TO}?result=linked&account={account}"));
    let owner: i64 = sqlx::query_scalar("SELECT user_id FROM linked_accounts WHERE id = $1")
        .bind(&account)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let external: Option<String> = sqlx::query_scalar("SELECT external_id FROM users WHERE id = $1")
        .bind(owner)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(
        external.as_deref(),
        Some("user-42"),
        "linked to the platform user, who has no password"
    );
    // The session ended when the browser went back.
    let res = app.get("/linked-accounts", Some(&cookie)).await;
    assert_ne!(res.status(), StatusCode::OK, "the connect session is over");
    // The platform sees the account by its own id of the user.
    let res = app
        .client
        .get(app.url("/api/v1/accounts"))
        .query(&[("external_id", "user-42")])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["external_id"], "user-42");
    assert_eq!(body["user"]["email"], Value::Null);
    assert_eq!(body["accounts"][0]["id"], account.as_str());
    assert_eq!(body["accounts"][0]["status"], "active");
    // Linking is audited as the user's, with the key's name on the link's making and opening.
    let created = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'connect_session_created' AND details LIKE '%invenio%'",
    )
    .await;
    let opened = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'connect_session_opened' AND outcome = 'success'",
    )
    .await;
    assert_eq!((created, opened), (1, 1));
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'account_linked'"
        )
        .await,
        1
    );
}

/// Makes a link with `body`, opens it, answers the provider's consent as demo identity `n` with `decision`, and
/// follows the callback: where the browser lands.
async fn through(app: &TestApp, key: &str, body: Value, n: usize, decision: &str) -> String {
    let url = link_for(app, key, body).await;
    let (res, cookie) = open(app, &url).await;
    let back = oauth::consent(app, &location(&res), identity(n), decision).await;
    let res = oauth::callback(app, &cookie.expect("the link starts a session"), &back).await;
    forwarded(res).await
}

async fn denied_consent_and_reconnect_come_back_with_their_result(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &[]).await;
    // Deny: back at the platform with result=denied.
    let link = json!({"user": {"external_id": "u1"}, "mode": "connect", "provider": DEMO, "return_to": RETURN_TO});
    let landed = through(&app, &key, link, 1, "deny").await;
    assert_eq!(landed, format!("{RETURN_TO}?result=denied&reason=access_denied"));

    // Link, then reconnect that account from a link naming it: the same account comes back.
    let (account, _, _) = connect_and_link(&app, &key, "u1", 1).await;
    let reconnect =
        json!({"user": {"external_id": "u1"}, "mode": "connect", "account": account, "return_to": RETURN_TO});
    let landed = through(&app, &key, reconnect.clone(), 1, "allow").await;
    assert_eq!(landed, format!("{RETURN_TO}?result=linked&account={account}"));
    let relinked = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'account_relinked'",
    )
    .await;
    assert_eq!(relinked, 1, "a reconnect, not a new account");

    // Reconnecting as another identity fails with its reason, and changes nothing.
    let landed = through(&app, &key, reconnect, 2, "allow").await;
    assert_eq!(landed, format!("{RETURN_TO}?result=failed&reason=subject_mismatch"));

    // Without a provider: the chooser of the key's providers.
    let url = link_for(
        &app,
        &key,
        json!({"user": {"external_id": "u1"}, "mode": "connect", "return_to": RETURN_TO}),
    )
    .await;
    let (res, cookie) = open(&app, &url).await;
    assert_eq!(location(&res), "/connect");
    let page = app.get("/connect", cookie.as_deref()).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Connect Demo Globus"), "{html}");
    assert!(html.contains("Back to Example Platform"), "{html}");
}

async fn links_are_single_use_expire_and_cannot_be_forged(backend: Backend) {
    crate::support::capture_logs();
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &[]).await;
    let body = json!({"user": {"external_id": "u2"}, "mode": "manage", "return_to": RETURN_TO});
    let url = link_for(&app, &key, body.clone()).await;
    let (first, cookie) = open(&app, &url).await;
    assert_eq!(location(&first), "/linked-accounts");
    assert!(cookie.is_some());
    for _ in 0..2 {
        let (again, cookie) = open(&app, &url).await;
        assert_eq!(again.status(), StatusCode::GONE, "a link works once");
        assert!(cookie.is_none(), "no session from a spent link");
        let html = again.text().await.unwrap();
        assert!(
            html.contains("This link has expired — go back to Example Platform and try again"),
            "{html}"
        );
        assert!(html.contains(&format!("href=\"{RETURN_TO}\"")), "a way back: {html}");
    }
    // Continue pressed on a page loaded before the link was spent.
    let reused = post_link(&app, &url).await;
    assert_eq!(reused.status(), StatusCode::GONE);
    assert!(session_cookie(&reused).is_none());
    // Continue pressed in several browsers at once: exactly one gets a session.
    let url = link_for(&app, &key, body.clone()).await;
    let racing = futures::future::join_all((0..8).map(|_| post_link(&app, &url))).await;
    let sessions = racing.iter().filter(|res| session_cookie(res).is_some()).count();
    let statuses: Vec<u16> = racing.iter().map(|res| res.status().as_u16()).collect();
    assert_eq!(sessions, 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 7, "{statuses:?}");
    // Expired before use.
    let url = link_for(&app, &key, body.clone()).await;
    sqlx::query("UPDATE connect_sessions SET expires_at = $1 WHERE used_at IS NULL")
        .bind(onbehalf::db::now_ms() - 1)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let (res, cookie) = open(&app, &url).await;
    assert_eq!(res.status(), StatusCode::GONE);
    assert!(cookie.is_none());
    assert_eq!(post_link(&app, &url).await.status(), StatusCode::GONE);
    // Tampered: one character changed, a token never made, and things that are not tokens at all.
    let url = link_for(&app, &key, body).await;
    let last = url.chars().last().unwrap();
    let tampered = format!("{}{}", &url[..url.len() - 1], if last == 'A' { 'B' } else { 'A' });
    for bad in [
        tampered,
        app.url(&format!("/connect/{}", "A".repeat(43))),
        app.url("/connect/short"),
        app.url(&format!("/connect/{}", "%00".repeat(20))),
    ] {
        let (res, cookie) = open(&app, &bad).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{bad}");
        assert!(cookie.is_none());
        assert!(res.text().await.unwrap().contains("This link has expired"));
    }
    // The untampered link still works: a forged one spent nothing.
    let (res, _) = open(&app, &url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Refusals are audited with the key's name.
    let refused = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'connect_session_opened' AND outcome = 'rejected'",
    )
    .await;
    assert_eq!(
        refused,
        2 + 7,
        "using a spent link, the seven losers of the race and an expired one (looking at them is not using them)"
    );
    let token = url.rsplit('/').next().unwrap();
    let logs = crate::support::captured_logs();
    assert!(logs.contains("connect link refused"), "the refusals are logged");
    assert!(
        logs.contains("/connect/[token]"),
        "with the request's path, its token left out"
    );
    assert!(!logs.contains(token), "a link's token never reaches the logs");
}

async fn bad_requests_name_their_field_and_create_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &["demo"]).await;
    let github_only = self::key(&app, "github-only", &["github"]).await;
    let no_returns = keys::create(
        &app.state.db.pool,
        keys::NewKey {
            name: "no-returns",
            ..Default::default()
        },
        &["demo".to_owned()],
    )
    .await
    .unwrap()
    .1;
    let ok = || json!({"user": {"external_id": "u3"}, "mode": "connect", "provider": DEMO, "return_to": RETURN_TO});
    let with = |pointer: &str, value: Value| {
        let mut body = ok();
        let mut target = &mut body;
        for part in pointer.split('/').skip(1) {
            target = &mut target[part];
        }
        *target = value;
        body
    };
    let cases: Vec<(&str, Value, StatusCode, &str, Option<&str>)> = vec![
        (
            &key,
            with("/return_to", json!("http://evil.example/")),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("return_to"),
        ),
        (
            &key,
            with("/return_to", json!("http://platform.example.evil.example/")),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("return_to"),
        ),
        (
            &key,
            with("/return_to", json!("/transfer")),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("return_to"),
        ),
        (&no_returns, ok(), StatusCode::BAD_REQUEST, "invalid", Some("return_to")),
        (
            &key,
            with("/mode", json!("admin")),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("mode"),
        ),
        (
            &key,
            with("/provider", json!("gitlab")),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("provider"),
        ),
        (&github_only, ok(), StatusCode::FORBIDDEN, "provider_not_allowed", None),
        (
            &key,
            with("/user/external_id", json!("")),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("user.external_id"),
        ),
        (
            &key,
            with("/user/external_id", json!("x".repeat(256))),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("user.external_id"),
        ),
        (
            &key,
            with("/user/external_id", json!("a\u{7}b")),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("user.external_id"),
        ),
        (
            &key,
            with("/user", json!({"external_id": "u3", "email": "not an email"})),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("user.email"),
        ),
        (
            &key,
            with("/account", json!("no-such-account")),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            &key,
            json!({"mode": "connect"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            None,
        ),
        ("obk_wrong", ok(), StatusCode::UNAUTHORIZED, "unauthorized", None),
    ];
    for (key, body, status, code, field) in cases {
        let (got, error) = error_of(create(&app, key, body.clone()).await).await;
        assert_eq!(
            (got, error["error"].as_str().unwrap()),
            (status, code),
            "{body}: {error}"
        );
        assert_eq!(error["field"].as_str(), field, "{body}: {error}");
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    // Nothing was made by any of them but the user the not_found case named (it exists to own accounts).
    assert_eq!(count(&app, "SELECT COUNT(*) FROM connect_sessions").await, 0);
    assert!(count(&app, "SELECT COUNT(*) FROM users").await <= 1);
    // 255 bytes is the limit, counted in bytes: 85 three-byte characters fit.
    let res = create(&app, &key, with("/user/external_id", json!("€".repeat(85)))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // Another user's email.
    let local = app.sign_up("taken@example.org").await;
    drop(local);
    let (status, error) = error_of(
        create(
            &app,
            &key,
            with("/user", json!({"external_id": "u4", "email": "Taken@Example.org"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );
    assert_eq!(error["field"], "user.email");
}

async fn a_connect_session_reaches_only_its_users_linked_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &["demo"]).await;
    let other = linked(&app, 3).await;
    let (mine, _, _) = connect_and_link(&app, &key, "u5", 0).await;
    let url = link_for(
        &app,
        &key,
        json!({"user": {"external_id": "u5", "display_name": "Ada Lovelace"}, "mode": "manage", "return_to": RETURN_TO}),
    )
    .await;
    let (_, cookie) = open(&app, &url).await;
    let cookie = cookie.unwrap();
    // Its own pages.
    let page = app.get("/linked-accounts", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Back to Example Platform") && html.contains("Ada Lovelace"),
        "{html}"
    );
    assert!(html.contains(&mine), "its account is listed");
    assert!(!html.contains(&other.account_id), "never another user's");
    assert_eq!(app.get("/activity", Some(&cookie)).await.status(), StatusCode::OK);
    // Nothing else, whatever the path.
    let home = app.get("/", Some(&cookie)).await;
    assert_eq!(
        location(&home),
        "/linked-accounts",
        "home is the linked-accounts page here"
    );
    for path in [
        "/admin",
        "/admin/users",
        &format!("/admin/accounts/{}", other.account_id),
        "/admin/audit/export?format=csv",
        "/account",
        "/actions",
        "/sign-in",
        "/sign-up",
    ] {
        let res = app.get(path, Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(res.text().await.unwrap().contains("Back to Example Platform"), "{path}");
    }
    for (endpoint, form) in [
        (
            "change_password",
            vec![
                ("current_password", PASSWORD),
                ("new_password", "x"),
                ("new_password_confirm", "x"),
            ],
        ),
        ("admin_users", vec![]),
        ("globus_task", vec![("account", mine.as_str()), ("task_id", "x")]),
        ("sign_out", vec![]),
    ] {
        let res = app.call(endpoint, &form, Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{endpoint}");
    }
    // Paths that a router behind the gate would resolve to other pages.
    for path in [
        "/pkg/../actions",
        "/pkg/%2e%2e/account",
        "/pkg/%2E%2E/admin",
        "/pkg/..%2factions",
        "/linked-accounts/../account",
    ] {
        assert_eq!(raw_get(&app, path, &cookie).await, 403, "{path}");
    }
    // Another user's account cannot be disconnected from here; its own can.
    let res = app
        .call("disconnect_account", &[("account", &other.account_id)], Some(&cookie))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM linked_accounts WHERE id = '{}'", other.account_id)
        )
        .await,
        1
    );
    // The forms of the session keep the Origin rule.
    let res = app
        .client
        .post(app.url("/connect/end"))
        .header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"))
        .header(header::ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "cross-site Back to");
    let res = app
        .call("disconnect_account", &[("account", &mine)], Some(&cookie))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // "Back to Example Platform" ends the session at return_to.
    let res = app
        .client
        .post(app.url("/connect/end"))
        .header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"))
        .header(header::ORIGIN, app.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded(res).await, RETURN_TO);
    let res = app.get("/linked-accounts", Some(&cookie)).await;
    assert_ne!(res.status(), StatusCode::OK, "ended");
    // A signed-in user's own session is untouched by all this.
    assert_eq!(app.get("/account", Some(&other.cookie)).await.status(), StatusCode::OK);
}

async fn a_connect_session_lasts_at_most_its_maximum(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.connect.session_max = std::time::Duration::from_secs(60)).await;
    let key = key(&app, "invenio", &[]).await;
    let url = link_for(
        &app,
        &key,
        json!({"user": {"external_id": "u6"}, "mode": "manage", "return_to": RETURN_TO}),
    )
    .await;
    let (res, cookie) = open(&app, &url).await;
    let set = session_cookie(&res).unwrap();
    let max_age = set
        .attributes
        .iter()
        .find_map(|a| a.strip_prefix("max-age="))
        .and_then(|v| v.parse::<i64>().ok())
        .expect("the cookie ends");
    assert!(
        (55..=60).contains(&max_age),
        "the session ends with its maximum: {max_age}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT MAX(expires_at) FROM sessions")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(stored <= onbehalf::db::now_ms() + 60_000);
    assert_eq!(
        app.get("/linked-accounts", cookie.as_deref()).await.status(),
        StatusCode::OK
    );
}

async fn platform_users_are_made_once_and_have_no_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &[]).await;
    let body = json!({"user": {"external_id": "concurrent", "email": "grace@example.org"}, "mode": "manage",
                      "return_to": RETURN_TO});
    let calls = (0..50).map(|_| {
        let app = &app;
        let key = &key;
        let body = body.clone();
        async move { create(app, key, body).await.status() }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED), "{statuses:?}");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM users WHERE external_id = 'concurrent'").await,
        1,
        "50 first calls at once make one user"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM connect_sessions").await, 50);
    // No password opens it: not an empty one, not any.
    for password in ["", PASSWORD, "x"] {
        let res = app.sign_in("grace@example.org", password).await;
        assert_ne!(res.status(), StatusCode::OK, "{password:?}");
        assert!(session_cookie(&res).is_none_or(|c| c.value.is_empty()));
    }
    // The email and name follow what the platform says; absent fields keep what is stored.
    create(
        &app,
        &key,
        json!({"user": {"external_id": "concurrent", "display_name": "Grace H."}, "mode": "manage",
                              "return_to": RETURN_TO}),
    )
    .await;
    let (email, name): (Option<String>, String) =
        sqlx::query_as("SELECT email, display_name FROM users WHERE external_id = 'concurrent'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (email.as_deref(), name.as_str()),
        (Some("grace@example.org"), "Grace H.")
    );
}

async fn the_platform_disconnects_and_reads_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &["demo"]).await;
    let (account, _, _) = connect_and_link(&app, &key, "u7", 0).await;
    let delete = |account: String| {
        let app = &app;
        let key = &key;
        async move {
            app.client
                .delete(app.url(&format!("/api/v1/accounts/{account}")))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    let github_only = self::key(&app, "github-only", &["github"]).await;
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/accounts/{account}")))
        .bearer_auth(&github_only)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1["error"], "provider_not_allowed");
    let res = delete(account.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["revocation"], "complete", "{body}");
    assert!(body["revoked"].as_u64().unwrap() >= 1);
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM linked_accounts WHERE id = '{account}'")
        )
        .await,
        0
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM token_sets").await, 0);
    let (status, error) = error_of(delete(account.clone()).await).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // History, newest first, paged.
    let events = |query: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            app.client
                .get(app.url(&format!("/api/v1/users/u7/events{query}")))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    let res = events("?limit=2").await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["user"]["external_id"], "u7");
    let first = page["events"].as_array().unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["action"], "tokens_revoked", "{first:?}");
    assert_eq!(first[1]["action"], "account_disconnected", "{first:?}");
    assert!(
        first[1]["summary"]
            .as_str()
            .unwrap()
            .contains("(key invenio) disconnected"),
        "{}",
        first[1]
    );
    let before = page["next_before"].as_i64().expect("more pages");
    let res = app
        .client
        .get(app.url(&format!("/api/v1/users/u7/events?before={before}&limit=100")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let rest: Value = res.json().await.unwrap();
    let actions: Vec<&str> = rest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"account_linked") && actions.contains(&"connect_session_created"),
        "{actions:?}"
    );
    assert!(
        rest["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"].as_i64().unwrap() < before)
    );
    assert_eq!(rest["next_before"], Value::Null);
    for (bad, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=x", "limit"),
        ("?before=x", "before"),
    ] {
        let (status, error) = error_of(events(bad).await).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{bad}"
        );
    }
    let res = app
        .client
        .get(app.url("/api/v1/users/nobody/events"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(res).await.1["error"],
        "user_not_found",
        "reads never create users"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM users WHERE external_id = 'nobody'").await,
        0
    );
}

async fn admins_see_and_find_platform_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &[]).await;
    let (account, _, _) = connect_and_link(&app, &key, "Invenio-User-77", 0).await;
    let email = crate::support::unique_email("admin");
    onbehalf::auth::service::create_user(&app.state.db, &email, "Ada Admin", PASSWORD, Role::Admin)
        .await
        .unwrap();
    let cookie = session_cookie(&app.sign_in(&email, PASSWORD).await).unwrap().value;
    let users = app
        .get("/admin/users?q=Invenio-User", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(users.contains("Invenio-User-77"), "{users}");
    let accounts = app
        .get("/admin/accounts?user=Invenio-User-77", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        accounts.contains(&account) && accounts.contains("platform user Invenio-User-77"),
        "{accounts}"
    );
    // A connect session of a user is never an admin's, even with an admin's account id in hand.
    let url = link_for(
        &app,
        &key,
        json!({"user": {"external_id": "Invenio-User-77"}, "mode": "manage",
                                           "return_to": RETURN_TO}),
    )
    .await;
    let (_, connect) = open(&app, &url).await;
    assert_eq!(
        app.call("admin_users", &[], connect.as_deref()).await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn looking_at_a_link_spends_nothing_and_opening_it_is_a_same_origin_post(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &[]).await;
    let url = link_for(
        &app,
        &key,
        json!({"user": {"external_id": "u8", "display_name": "Ada Lovelace", "email": "ada@example.org"},
               "mode": "connect", "provider": DEMO, "return_to": RETURN_TO}),
    )
    .await;
    // A mail scanner's HEAD, a preview's GET: the link still works afterwards.
    let head = app.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let page = app.client.get(&url).send().await.unwrap();
    // Not `no-referrer`: a browser would then send `Origin: null` with Continue, and be refused.
    assert_eq!(page.headers()[header::REFERRER_POLICY], "same-origin");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(
            "Example Platform sends you here to link your Demo Globus account for <strong>Ada Lovelace \
                       (ada@example.org)</strong>"
        ),
        "the page says whose session it starts: {html}"
    );
    // Another site cannot open it in this browser's name.
    let forged = app
        .client
        .post(&url)
        .header(header::ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(session_cookie(&forged).is_none());
    let (res, cookie) = open(&app, &url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&res).starts_with(app.demo().issuer_str()),
        "{}",
        location(&res)
    );
    assert!(cookie.is_some());
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'connect_session_opened'"
        )
        .await,
        1
    );
}

async fn revoking_the_key_ends_its_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &[]).await;
    let url = link_for(
        &app,
        &key,
        json!({"user": {"external_id": "u9"}, "mode": "manage", "return_to": RETURN_TO}),
    )
    .await;
    let (_, cookie) = open(&app, &url).await;
    let cookie = cookie.unwrap();
    assert_eq!(
        app.get("/linked-accounts", Some(&cookie)).await.status(),
        StatusCode::OK
    );
    let spare = link_for(
        &app,
        &key,
        json!({"user": {"external_id": "u9"}, "mode": "manage", "return_to": RETURN_TO}),
    )
    .await;
    keys::revoke(&app.state.db.pool, "invenio").await.unwrap();
    let res = app.get("/linked-accounts", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::GONE);
    assert!(res.text().await.unwrap().contains("This session has ended"));
    assert_ne!(
        app.get("/linked-accounts", Some(&cookie)).await.status(),
        StatusCode::OK,
        "and stays ended"
    );
    let (res, cookie) = open(&app, &spare).await;
    assert_eq!(res.status(), StatusCode::GONE, "its unused links are spent too");
    assert!(cookie.is_none());
}

async fn the_platform_reads_only_the_result_onbehalf_adds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = key(&app, "invenio", &[]).await;
    let planted = "http://platform.example/transfer?result=linked&account=planted&x=1#top";
    let link = json!({"user": {"external_id": "u10"}, "mode": "connect", "provider": DEMO, "return_to": planted});
    let landed = through(&app, &key, link, 4, "deny").await;
    assert_eq!(
        landed,
        format!("{PLATFORM}transfer?x=1&result=denied&reason=access_denied#top")
    );
    // Ids that can name nothing are 404s, not database errors (PostgreSQL refuses a NUL byte in text).
    for path in [
        "/api/v1/accounts?external_id=%00".to_owned(),
        "/api/v1/users/%00/events".to_owned(),
        format!("/api/v1/users/{}/events", "x".repeat(300)),
    ] {
        let res = app.client.get(app.url(&path)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(error_of(res).await.1["error"], "user_not_found", "{path}");
    }
    for path in ["/api/v1/accounts/%00", "/api/v1/accounts/a%01b"] {
        let res = app.client.delete(app.url(path)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(error_of(res).await.1["error"], "not_found", "{path}");
    }
    // An id that is not even UTF-8 is refused in the API's JSON too.
    let res = app
        .client
        .delete(app.url("/api/v1/accounts/%FF"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (status, error) = error_of(
        create(
            &app,
            &key,
            json!({"user": {"external_id": "u10"}, "mode": "connect", "account": "\u{0}",
                                   "return_to": RETURN_TO}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // One external id may not display as another.
    let (status, error) = error_of(
        create(
            &app,
            &key,
            json!({"user": {"external_id": "admin\u{202e}1"}, "mode": "manage", "return_to": RETURN_TO}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("user.external_id"))
    );
    let long = format!("{RETURN_TO}?q={}", "x".repeat(2100));
    let (status, error) = error_of(
        create(
            &app,
            &key,
            json!({"user": {"external_id": "u10"}, "mode": "manage", "return_to": long}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("return_to"))
    );
}

on_both_backends!(
    looking_at_a_link_spends_nothing_and_opening_it_is_a_same_origin_post,
    revoking_the_key_ends_its_sessions,
    the_platform_reads_only_the_result_onbehalf_adds,
    connect_links_an_account_and_goes_back_to_the_platform,
    denied_consent_and_reconnect_come_back_with_their_result,
    links_are_single_use_expire_and_cannot_be_forged,
    bad_requests_name_their_field_and_create_nothing,
    a_connect_session_reaches_only_its_users_linked_accounts,
    a_connect_session_lasts_at_most_its_maximum,
    platform_users_are_made_once_and_have_no_password,
    the_platform_disconnects_and_reads_history,
    admins_see_and_find_platform_users,
);
