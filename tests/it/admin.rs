//! The admin area: who may use it (every server function and route, table-driven), what it shows, force
//! disconnect, disable / enable, the audit log's filters and paging, and its export equal to the filtered list.
//! Also: no user reaches another user's accounts through any server function (IDOR, table-driven).

use crate::support::{
    Backend, PASSWORD, TestApp, admin,
    oauth::{count, identity, linked, location, start},
};
use reqwest::StatusCode;
use serde_json::Value;

/// A webhook endpoint (to a loopback port nothing listens on); its id.
async fn webhook_endpoint(app: &TestApp) -> String {
    let mut settings = app.state.settings.webhooks.clone();
    settings.allow_http_loopback = true;
    let new = onbehalf::webhooks::endpoints::NewWebhook {
        url: "http://127.0.0.1:9/hook",
        events: &[],
        description: None,
    };
    let by = onbehalf::webhooks::endpoints::ChangedBy::default();
    let (endpoint, _) = onbehalf::webhooks::endpoints::add(&app.state.db, &app.state.vault, &settings, new, by)
        .await
        .unwrap();
    endpoint.id
}

async fn json(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// A list's cursor: the field an answer names the next page by, and the parameter that asks for that page.
struct Cursor {
    rows: &'static str,
    next: &'static str,
    param: &'static str,
}

const ACCOUNTS: Cursor = Cursor {
    rows: "rows",
    next: "next",
    param: "query[after]",
};
const AUDIT: Cursor = Cursor {
    rows: "entries",
    next: "older",
    param: "query[before]",
};

/// Every row of an admin list, page after page through server function `endpoint` with `filters` (`query[k]=v`),
/// checking that no page exceeds the page size.
async fn all_pages(
    app: &TestApp,
    cookie: &str,
    endpoint: &str,
    cursor: &Cursor,
    filters: &[(&str, String)],
) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut form: Vec<(String, String)> = filters
            .iter()
            .map(|(k, v)| (format!("query[{k}]"), v.clone()))
            .collect();
        if let Some(n) = &next {
            form.push((cursor.param.into(), n.clone()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let page = json(app.call(endpoint, &form, Some(cookie)).await).await;
        let page_rows = page[cursor.rows].as_array().unwrap();
        assert!(page_rows.len() <= 50, "{endpoint}: {} rows on a page", page_rows.len());
        rows.extend(page_rows.iter().cloned());
        match page[cursor.next].as_str() {
            Some(n) => next = Some(n.to_owned()),
            None => return rows,
        }
    }
}

async fn is_disabled(app: &TestApp, user_id: i64) -> bool {
    sqlx::query_scalar::<_, Option<i64>>("SELECT disabled_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
        .is_some()
}

async fn admin_area_refuses_visitors_and_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let mallory = linked(&app, 1).await;
    let (admin_cookie, _) = admin(&app).await;
    let ada_id = ada.user_id.to_string();
    let endpoint = webhook_endpoint(&app).await;
    // Every admin server function, with arguments that would act on Ada.
    let functions: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("admin_dashboard", vec![]),
        ("admin_accounts", vec![("query[sort]", "created")]),
        ("admin_account", vec![("account", &ada.account_id)]),
        ("admin_users", vec![("query[q]", "")]),
        ("admin_audit", vec![("query[action]", "")]),
        (
            "admin_disconnect",
            vec![("account", &ada.account_id), ("reason", "audit")],
        ),
        ("admin_set_user_disabled", vec![("user", &ada_id), ("disabled", "true")]),
        ("admin_webhooks", vec![]),
        ("admin_webhook", vec![("endpoint", &endpoint)]),
        (
            "admin_webhook_action",
            vec![("endpoint", &endpoint), ("action", "disable")],
        ),
    ];
    for (endpoint, form) in &functions {
        let res = app.call(endpoint, form, None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{endpoint} as a visitor");
        let res = app.call(endpoint, form, Some(&mallory.cookie)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{endpoint} as a user");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["kind"], "forbidden", "{endpoint}");
    }
    // Nothing happened on the way.
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 2);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM webhook_endpoints WHERE disabled_at IS NULL").await,
        1
    );
    assert!(!is_disabled(&app, ada.user_id).await);
    assert_eq!(app.demo().counters().revocations, 0);
    // Every admin page and the export.
    let pages = [
        "/admin".to_owned(),
        "/admin/accounts".to_owned(),
        format!("/admin/accounts/{}", ada.account_id),
        "/admin/users".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/webhooks".to_owned(),
        format!("/admin/webhooks/{endpoint}"),
    ];
    for page in &pages {
        let res = app.get(page, None).await;
        assert!(res.status().is_redirection(), "{page} as a visitor: {}", res.status());
        assert!(
            location(&res).starts_with("/sign-in?next=%2Fadmin"),
            "{page}: {}",
            location(&res)
        );
        let res = app.get(page, Some(&mallory.cookie)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{page} as a user");
        let html = res.text().await.unwrap();
        assert!(html.contains("Administrators only"), "{page}");
        assert!(!html.contains(identity(0)), "{page} shows nothing of Ada's");
        let res = app.get(page, Some(&admin_cookie)).await;
        assert_eq!(res.status(), StatusCode::OK, "{page} as an admin");
    }
    for format in ["csv", "jsonl"] {
        let path = format!("/admin/audit/export?format={format}");
        assert_eq!(app.get(&path, None).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.get(&path, Some(&mallory.cookie)).await.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(app.get(&path, Some(&admin_cookie)).await.status(), StatusCode::OK);
    }
    // The header shows admins (only) the way in.
    let html = app.get("/account", Some(&admin_cookie)).await.text().await.unwrap();
    assert!(html.contains("href=\"/admin\""));
    let html = app.get("/account", Some(&mallory.cookie)).await.text().await.unwrap();
    assert!(!html.contains("href=\"/admin\""));
}

/// Mallory names Ada's account in every server function that takes an account: none answers with Ada's data or
/// acts on it, and nothing reaches the provider with Ada's tokens.
async fn no_user_reaches_another_users_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let mallory = linked(&app, 1).await;
    let ada_account = ada.account_id.as_str();
    let endpoint_id = "0b0f5d3c-1f4e-4c7a-9a84-7b43c1e2f3a4";
    let before = app.demo().counters();
    let calls: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("globus_task", vec![("account", ada_account), ("task_id", endpoint_id)]),
        (
            "globus_cancel_task",
            vec![("account", ada_account), ("task_id", endpoint_id)],
        ),
        (
            "globus_submit_transfer",
            vec![
                ("account", ada_account),
                ("source_endpoint", endpoint_id),
                ("source_path", "/~/a"),
                ("destination_endpoint", endpoint_id),
                ("destination_path", "/~/b"),
            ],
        ),
        (
            "actions_page",
            vec![("query[account]", ada_account), ("query[params][none]", "")],
        ),
        ("disconnect_account", vec![("account", ada_account)]),
    ];
    for (endpoint, form) in &calls {
        let res = app.call(endpoint, form, Some(&mallory.cookie)).await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{endpoint}: {status} {body}"
        );
        assert!(!body.contains(identity(0)), "{endpoint} leaks Ada's identity: {body}");
        assert!(
            !body.contains(ada_account) || *endpoint == "actions_page",
            "{endpoint} echoes Ada's account: {body}"
        );
        if *endpoint == "actions_page" {
            assert!(
                body.contains(&mallory.account_id),
                "the page shows Mallory's own account: {body}"
            );
        } else if status == StatusCode::OK {
            let value: Value = serde_json::from_str(&body).unwrap();
            // These answer `Result<T, ActionProblem>`: a refusal is an `Err` naming no account of Ada's.
            assert!(
                value.get("Err").is_some() && value.get("Ok").is_none(),
                "{endpoint} succeeded on Ada's account: {body}"
            );
        }
    }
    // Her own lists do not show Ada's.
    let list = app
        .call("list_linked_accounts", &[], Some(&mallory.cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains(ada_account) && !list.contains(identity(0)));
    let activity = app
        .call("user_activity", &[("query[kind]", "all")], Some(&mallory.cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !activity.contains(ada_account) && !activity.contains(identity(0)),
        "{activity}"
    );
    // Reconnect and grant name an account too: refused for another user's.
    for intent in ["reconnect", "grant"] {
        let res = start(
            &app,
            &mallory.cookie,
            "demo",
            &[("intent", intent), ("account", ada_account)],
        )
        .await;
        let to = location(&res);
        assert!(to.starts_with("/linked-accounts?error="), "{intent}: {to}");
    }
    // Nothing was done with Ada's tokens (the actions page fell back to Mallory's own account), and her account is
    // whole.
    let after = app.demo().counters();
    assert_eq!(after.token_requests, before.token_requests);
    let used: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE account_id = $1 AND action <> 'account_linked'")
            .bind(ada_account)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(used, 0, "no event about Ada's account but its linking");
    assert_eq!(after.revocations, 0);
    let still: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_sets WHERE account_id = $1")
        .bind(ada_account)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(still > 0);
}

async fn accounts_are_filtered_sorted_and_paged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, _) = admin(&app).await;
    let ada = linked(&app, 0).await;
    let bob = linked(&app, 1).await;
    // 120 more accounts for one user, straight into the table: enough for three pages of 50.
    let pool = &app.state.db.pool;
    for i in 0..120i64 {
        sqlx::query(
            "INSERT INTO linked_accounts (id, user_id, provider, subject, username, status, last_used_at, created_at, \
             updated_at, token_expires_at) VALUES ($1, $2, 'demo', $3, $4, $5, $6, $7, $7, $8)",
        )
        .bind(format!("seed-{i:03}"))
        .bind(bob.user_id)
        .bind(format!("subject-{i}"))
        .bind(format!("user{i}"))
        .bind(if i % 3 == 0 { "needs_reconnect" } else { "active" })
        .bind(if i % 2 == 0 { Some(1_000_000 + i) } else { None })
        .bind(1_000 + i)
        .bind(if i % 5 == 0 { None } else { Some(4_000_000_000_000 - i) })
        .execute(pool)
        .await
        .unwrap();
    }
    let all_pages = |filters: Vec<(&'static str, String)>| {
        let (app, cookie) = (&app, &cookie);
        async move {
            let rows = all_pages(app, cookie, "admin_accounts", &ACCOUNTS, &filters).await;
            rows.iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // Newest first over everything: 122 accounts, three pages, no repeats.
    let ids = all_pages(vec![("sort", "created".into())]).await;
    assert_eq!(ids.len(), 122);
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 122);
    assert_eq!(&ids[2], "seed-119");
    // Filter by status and user: exactly the seeded needs_reconnect rows.
    let ids = all_pages(vec![
        ("status", "needs_reconnect".into()),
        ("user", bob.user_id.to_string()),
    ])
    .await;
    assert_eq!(ids.len(), 40);
    // Last used: most recent first, never-used last; ties broken by id, stable across pages.
    let ids = all_pages(vec![("sort", "last_used".into())]).await;
    assert_eq!(ids.len(), 122);
    assert_eq!(&ids[0], "seed-118");
    // Expiry: soonest first; the real links (expiring within the hour) before the seeded far-off ones, no expiry last.
    let ids = all_pages(vec![("sort", "expiry".into())]).await;
    assert_eq!(ids.len(), 122);
    assert!(
        ids[..2].contains(&ada.account_id) && ids[..2].contains(&bob.account_id),
        "{:?}",
        &ids[..3]
    );
    assert_eq!(&ids[2], "seed-119");
    assert!(ids[ids.len() - 24..].iter().all(|id| {
        id.strip_prefix("seed-")
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|n| n % 5 == 0)
    }));
    // Identity: subject, username or email, exact.
    let by_subject = all_pages(vec![("identity", identity(0).into())]).await;
    assert_eq!(by_subject, vec![ada.account_id.clone()]);
    let by_username = all_pages(vec![("identity", "user7".into())]).await;
    assert_eq!(by_username, vec!["seed-007".to_owned()]);
    // Bad filters say what is wrong.
    for (key, value, field) in [
        ("status", "zombie", "status"),
        ("user", "nobody@example.org", "user"),
        ("user", "not an email", "user"),
        ("sort", "random", "sort"),
        ("after", "garbage", "after"),
    ] {
        let res = app
            .call("admin_accounts", &[(&format!("query[{key}]"), value)], Some(&cookie))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{key}={value}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["field"], field);
    }
    // The page renders filters from the URL and links to the next page with them.
    let html = app
        .get(
            &format!("/admin/accounts?user={}&sort=last_used", bob.user_id),
            Some(&cookie),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!(
            "/admin/accounts?user={}&amp;sort=last_used&amp;after=",
            bob.user_id
        )),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"last_used\" selected"),
        "the form keeps the order"
    );
    let res = app
        .get("/admin/accounts?user=nobody%40example.org", Some(&cookie))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("No user is “nobody@example.org” (an id, an email or an external id).")
    );
}

async fn detail_shows_metadata_and_history_never_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, _) = admin(&app).await;
    let ada = linked(&app, 0).await;
    let detail = json(
        app.call("admin_account", &[("account", &ada.account_id)], Some(&cookie))
            .await,
    )
    .await;
    assert_eq!(detail["account"]["subject"], identity(0));
    let sets = detail["token_sets"].as_array().unwrap();
    assert!(!sets.is_empty());
    assert!(
        sets.iter()
            .all(|s| s["version"].as_i64().unwrap() >= 1 && s["expires_at"].is_i64())
    );
    assert_eq!(detail["history"][0]["action"], "account_linked");
    // No token value anywhere: the stored ones, opened, appear in neither the answer nor the page.
    let html = app
        .get(&format!("/admin/accounts/{}", ada.account_id), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Token sets (metadata only"));
    let rows = sqlx::query_as::<_, (String, String, String)>(
        "SELECT id, resource_server, access_token FROM token_sets WHERE account_id = $1",
    )
    .bind(&ada.account_id)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    for (id, resource_server, sealed) in rows {
        let key = onbehalf::tokens::repo::SetKey {
            id: &id,
            account_id: &ada.account_id,
            resource_server: &resource_server,
        };
        let token = app
            .state
            .vault
            .open(&sealed, onbehalf::tokens::repo::access_slot(key))
            .unwrap();
        let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
        assert!(!html.contains(&token) && !detail.to_string().contains(&token));
        assert!(!html.contains(&sealed));
    }
    let res = app
        .call("admin_account", &[("account", "no-such-account")], Some(&cookie))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn force_disconnect_revokes_and_is_audited_with_the_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, admin_id) = admin(&app).await;
    let ada = linked(&app, 0).await;
    let referer = format!("/admin/accounts/{}", ada.account_id);
    // Without a reason: refused, back on the account with the problem, nothing done.
    for reason in ["", "   ", &"x".repeat(501)] {
        let res = app
            .post_plain_form_as(
                "admin_disconnect",
                &referer,
                &[("account", &ada.account_id), ("reason", reason)],
                Some(&cookie),
            )
            .await;
        assert_eq!(location(&res), format!("{referer}?error=reason"));
    }
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 1);
    let html = app
        .get(&format!("{referer}?error=reason"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Give a reason on one line"));
    // With one: gone here, revoked at the provider, the user told why.
    let res = app
        .post_plain_form_as(
            "admin_disconnect",
            &referer,
            &[("account", &ada.account_id), ("reason", "Compromised laptop")],
            Some(&cookie),
        )
        .await;
    let to = location(&res);
    assert!(
        to.starts_with(&format!(
            "/admin/accounts?user={}&disconnected=demo&revoked=",
            ada.user_id
        )),
        "{to}"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 0);
    assert!(app.demo().counters().revocations > 0);
    let html = app.get(&to, Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("Disconnected. Demo Globus revoked "), "{html}");
    let events = onbehalf::audit::repo::for_subject(&app.state.db.pool, ada.user_id, 10)
        .await
        .unwrap();
    let gone = events.iter().find(|e| e.action == "account_disconnected").unwrap();
    assert_eq!(gone.actor_user_id, Some(admin_id));
    assert_eq!(gone.details["reason"], "Compromised laptop");
    let revoked = events.iter().find(|e| e.action == "tokens_revoked").unwrap();
    assert_eq!(revoked.actor_user_id, Some(admin_id));
    // Ada reads it in her activity; the admin finds it in the audit log by actor.
    let activity = app.get("/activity", Some(&ada.cookie)).await.text().await.unwrap();
    assert!(activity.contains("An administrator disconnected"), "{activity}");
    assert!(activity.contains("Compromised laptop"));
    let log = json(
        app.call(
            "admin_audit",
            &[
                ("query[actor]", &admin_id.to_string()),
                ("query[action]", "account_disconnected"),
            ],
            Some(&cookie),
        )
        .await,
    )
    .await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 1);
    // Again: the account is gone.
    let res = app
        .post_plain_form_as(
            "admin_disconnect",
            &referer,
            &[("account", &ada.account_id), ("reason", "again")],
            Some(&cookie),
        )
        .await;
    assert_eq!(location(&res), format!("{referer}?error=gone"));
}

async fn disabled_users_cannot_sign_in_nor_be_acted_for(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, admin_id) = admin(&app).await;
    let ada = linked(&app, 0).await;
    let ada_id = ada.user_id.to_string();
    // An admin cannot disable themselves.
    let res = app
        .call(
            "admin_set_user_disabled",
            &[("user", &admin_id.to_string()), ("disabled", "true")],
            Some(&cookie),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!is_disabled(&app, admin_id).await);
    let res = app
        .post_plain_form_as(
            "admin_set_user_disabled",
            "/admin/users",
            &[
                ("user", &admin_id.to_string()),
                ("disabled", "true"),
                ("next", "/admin/users?q=ad"),
            ],
            Some(&cookie),
        )
        .await;
    assert_eq!(location(&res), "/admin/users?q=ad&error=self");
    // Disable Ada (plain form): her session ends, she cannot sign in, nothing is done for her.
    let res = app
        .post_plain_form_as(
            "admin_set_user_disabled",
            "/admin/users",
            &[("user", &ada_id), ("disabled", "true"), ("next", "/admin/users")],
            Some(&cookie),
        )
        .await;
    assert_eq!(location(&res), format!("/admin/users?changed={ada_id}"));
    assert!(is_disabled(&app, ada.user_id).await);
    assert_eq!(app.whoami(&ada.cookie).await, None, "her session ended");
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(ada.user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let res = app.sign_in(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let bearer = app
        .state
        .delegation
        .bearer(ada.user_id, &ada.account_id, "transfer.api.globus.org")
        .await;
    assert_eq!(bearer.unwrap_err(), onbehalf::delegation::Unavailable::UserDisabled);
    // Two admins at once: one change, one event (the other finds the user already disabled).
    let other = linked(&app, 2).await;
    let by = onbehalf::auth::service::ChangedBy {
        actor_user_id: Some(admin_id),
        request_id: None,
    };
    let db = &app.state.db;
    let (a, b) = tokio::join!(
        onbehalf::auth::service::set_disabled(db, other.user_id, true, by),
        onbehalf::auth::service::set_disabled(db, other.user_id, true, by),
    );
    assert!(a.unwrap().disabled && b.unwrap().disabled);
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'user_disabled' AND subject_user_id = $1")
            .bind(other.user_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(events, 1);
    // Audited once; asking again changes nothing and records nothing.
    app.call(
        "admin_set_user_disabled",
        &[("user", &ada_id), ("disabled", "true")],
        Some(&cookie),
    )
    .await;
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM audit_events WHERE action = 'user_disabled' AND subject_user_id = {ada_id}")
        )
        .await,
        1
    );
    let users = json(
        app.call("admin_users", &[("query[q]", &email[..5])], Some(&cookie))
            .await,
    )
    .await;
    assert_eq!(users["users"][0]["disabled"], true);
    // Enabled again: she signs in and her account works.
    let res = app
        .call(
            "admin_set_user_disabled",
            &[("user", &ada_id), ("disabled", "false")],
            Some(&cookie),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.sign_in(&email, PASSWORD).await.status(), StatusCode::OK);
    assert!(
        app.state
            .delegation
            .bearer(ada.user_id, &ada.account_id, "transfer.api.globus.org")
            .await
            .is_ok()
    );
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE subject_user_id = $1 AND actor_user_id = $2 ORDER BY id",
    )
    .bind(ada.user_id)
    .bind(admin_id)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(actions, ["user_disabled", "user_enabled"]);
    let res = app
        .call(
            "admin_set_user_disabled",
            &[("user", "999999"), ("disabled", "true")],
            Some(&cookie),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// 2026-11-20T00:00Z, the first day of the seeded events.
fn day_one() -> i64 {
    onbehalf::datetime::parse_time("2026-11-20").unwrap().0
}

/// The ids of an export in JSON Lines, in its order.
fn jsonl_ids(jsonl: &str) -> Vec<i64> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_i64().unwrap())
        .collect()
}

/// `n` refreshes about `user_id` from day one on, seven to each millisecond, so that equal times straddle list pages
/// (50) and export batches (1,000).
async fn seed_refreshes(app: &TestApp, user_id: i64, n: i64) {
    for i in 0..n {
        sqlx::query("INSERT INTO audit_events (at, subject_user_id, action, outcome, details) VALUES ($1, $2, 'token_refreshed', 'success', '{}')")
            .bind(day_one() + i / 7)
            .bind(user_id)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    }
}

async fn audit_export_holds_the_filtered_list_in_both_formats(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, _) = admin(&app).await;
    let ada = linked(&app, 0).await;
    // 130 calls for Ada, some failures, over three days.
    let day = 86_400_000i64;
    for i in 0..130i64 {
        let outcome = if i % 4 == 0 { "failure" } else { "success" };
        sqlx::query(
            "INSERT INTO audit_events (at, actor_user_id, subject_user_id, action, outcome, provider, account_id, details) \
             VALUES ($1, NULL, $2, 'delegated_call', $3, 'demo', $4, $5)",
        )
        .bind(day_one() + (i % 3) * day + i * 1000)
        .bind(ada.user_id)
        .bind(outcome)
        .bind(&ada.account_id)
        .bind(format!("{{\"method\":\"GET\",\"host\":\"h\",\"path\":\"/p,{i}\",\"status\":200,\"latency_ms\":1}}"))
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    }
    let filters = [
        ("subject", ada.user_id.to_string()),
        ("action", "delegated_call".to_owned()),
        ("outcome", "success".to_owned()),
        ("from", "2026-11-21".to_owned()),
        ("to", "2026-11-22".to_owned()),
    ];
    let entries = all_pages(&app, &cookie, "admin_audit", &AUDIT, &filters).await;
    let listed: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let order: Vec<(i64, i64)> = entries
        .iter()
        .map(|e| (e["at"].as_i64().unwrap(), e["id"].as_i64().unwrap()))
        .collect();
    // Days 2 and 3 of three, successes only: 130 * 2/3 * 3/4, give or take the rounding of the pattern.
    let expected: i64 = (0..130).filter(|i| i % 4 != 0 && i % 3 != 0).count() as i64;
    assert_eq!(listed.len() as i64, expected);
    assert!(
        order.windows(2).all(|w| w[0] > w[1]),
        "newest first by time, then id; no repeats"
    );
    // The export of the same filters holds exactly the same events, in the same order, in both formats.
    let qs: String = filters.iter().map(|(k, v)| format!("&{k}={v}")).collect();
    let csv = app
        .get(&format!("/admin/audit/export?format=csv{qs}"), Some(&cookie))
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"onbehalf-audit-")
    );
    let csv = csv.text().await.unwrap();
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    assert!(lines.next().unwrap().starts_with("id,at,actor_user_id,"));
    let csv_ids: Vec<i64> = lines.map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(csv_ids, listed);
    assert!(csv.contains("\"{\"\"method\"\":\"\"GET\"\""), "details quoted as CSV");
    let jsonl = app
        .get(&format!("/admin/audit/export?format=jsonl{qs}"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(jsonl_ids(&jsonl), listed);
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["details"]["method"], "GET");
    assert_eq!(first["subject_user_id"], ada.user_id);
}

/// More than one export batch (1,000 events): everything, once, in the order of the pages, ties included.
async fn audit_export_spans_batches_in_the_order_of_the_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, _) = admin(&app).await;
    let bob = linked(&app, 1).await;
    seed_refreshes(&app, bob.user_id, 1_100).await;
    let all = app
        .get(
            &format!("/admin/audit/export?format=jsonl&subject={}", bob.user_id),
            Some(&cookie),
        )
        .await
        .text()
        .await
        .unwrap();
    let bob_events = count(
        &app,
        &format!(
            "SELECT COUNT(*) FROM audit_events WHERE subject_user_id = {}",
            bob.user_id
        ),
    )
    .await;
    assert_eq!(all.lines().count() as i64, bob_events);
    let exported = jsonl_ids(&all);
    let paged: Vec<i64> = all_pages(
        &app,
        &cookie,
        "admin_audit",
        &AUDIT,
        &[("subject", bob.user_id.to_string())],
    )
    .await
    .iter()
    .map(|e| e["id"].as_i64().unwrap())
    .collect();
    assert_eq!(paged, exported, "paging and the export agree, ties included");
    assert_eq!(
        paged.iter().collect::<std::collections::HashSet<_>>().len(),
        paged.len()
    );
    // With the range's end too (each batch's scan is bounded by the tighter of it and the cursor): the same events,
    // without those after the end (Bob's link, made today).
    let expected: Vec<i64> = all
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["at"].as_str().unwrap() < "2026-11-21")
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(expected.len(), 1_100);
    let ranged = app
        .get(
            &format!("/admin/audit/export?format=jsonl&subject={}&to=2026-11-20", bob.user_id),
            Some(&cookie),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(jsonl_ids(&ranged), expected);
}

/// A filter that names nothing real is a clear error on its field, in the list and the export alike.
async fn audit_filters_refuse_bad_values_on_their_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, _) = admin(&app).await;
    for (key, value, field) in [
        ("from", "yesterday", "from"),
        ("to", "2026-02-30", "to"),
        ("action", "deleted_everything", "action"),
        ("outcome", "maybe", "outcome"),
        ("actor", "ghost@example.org", "actor"),
        ("before", "12.x", "before"),
    ] {
        let res = app
            .call("admin_audit", &[(&format!("query[{key}]"), value)], Some(&cookie))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{key}={value}");
        assert_eq!(res.json::<Value>().await.unwrap()["field"], field);
        if key == "before" {
            continue; // the export has no cursor: it is the whole filtered set
        }
        let res = app
            .get(&format!("/admin/audit/export?{key}={value}"), Some(&cookie))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    let res = app
        .call(
            "admin_audit",
            &[("query[from]", "2026-11-22"), ("query[to]", "2026-11-21")],
            Some(&cookie),
        )
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "The end of the time range is before its start."
    );
    assert_eq!(
        app.get("/admin/audit/export?format=xml", Some(&cookie)).await.status(),
        StatusCode::BAD_REQUEST
    );
}

/// A cursor at the end of time is not an error (nor an overflow): everything is older than it.
async fn audit_cursor_at_the_end_of_time_pages_from_the_newest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, admin_id) = admin(&app).await;
    seed_refreshes(&app, admin_id, 60).await;
    let res = app
        .call(
            "admin_audit",
            &[
                ("query[subject]", admin_id.to_string().as_str()),
                ("query[before]", "9223372036854775807.9223372036854775807"),
            ],
            Some(&cookie),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["entries"].as_array().unwrap().len(),
        50
    );
}

/// The page keeps its filters in the form, and its export links carry them.
async fn audit_page_export_links_carry_the_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, _) = admin(&app).await;
    let ada = linked(&app, 0).await;
    let html = app
        .get(
            &format!("/admin/audit?subject={}&action=delegated_call", ada.user_id),
            Some(&cookie),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!(
            "/admin/audit/export?format=csv&amp;subject={}&amp;action=delegated_call",
            ada.user_id
        )),
        "{html}"
    );
}

async fn dashboard_counts_links_and_attention(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, _) = admin(&app).await;
    let ada = linked(&app, 0).await;
    linked(&app, 1).await;
    sqlx::query(
        "UPDATE linked_accounts SET status = 'needs_reconnect', status_reason = 'Refresh token revoked' WHERE id = $1",
    )
    .bind(&ada.account_id)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let d = json(app.call("admin_dashboard", &[], Some(&cookie)).await).await;
    assert_eq!(d["attention_total"], 1);
    assert_eq!(d["attention"][0]["id"], ada.account_id.as_str());
    let links = d["links"].as_array().unwrap();
    assert_eq!(links.iter().map(|l| l["count"].as_i64().unwrap()).sum::<i64>(), 2);
    assert_eq!(d["users"], 3);
    let html = app.get("/admin", Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("Refresh token revoked"));
    assert!(html.contains("/admin/accounts?provider=demo&amp;status=needs_reconnect"));
}

/// An account's soonest token expiry (the admin list's "expiring soonest" order) is kept by the database whenever
/// a token set is stored, refreshed or deleted, and a user's deletion cascades through it cleanly.
async fn token_expiry_follows_token_sets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let pool = &app.state.db.pool;
    let kept = || async {
        let (kept, soonest): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT a.token_expires_at, (SELECT MIN(expires_at) FROM token_sets t WHERE t.account_id = a.id) \
             FROM linked_accounts a WHERE a.id = $1",
        )
        .bind(&ada.account_id)
        .fetch_one(pool)
        .await
        .unwrap();
        (kept, soonest)
    };
    let (kept_now, soonest) = kept().await;
    assert!(soonest.is_some());
    assert_eq!(kept_now, soonest, "set when the tokens were stored");
    // A refresh: expire the Transfer token, use it, and the new expiry is the account's.
    sqlx::query(
        "UPDATE token_sets SET expires_at = 1000 WHERE account_id = $1 AND resource_server = 'transfer.api.globus.org'",
    )
    .bind(&ada.account_id)
    .execute(pool)
    .await
    .unwrap();
    assert_eq!(kept().await.0, Some(1000), "an update of expires_at");
    app.state
        .delegation
        .bearer(ada.user_id, &ada.account_id, "transfer.api.globus.org")
        .await
        .unwrap();
    let (kept_now, soonest) = kept().await;
    assert!(kept_now.unwrap() > 1000);
    assert_eq!(kept_now, soonest, "after the refresh");
    // One token set deleted: the next soonest; all deleted: none.
    sqlx::query("DELETE FROM token_sets WHERE account_id = $1 AND resource_server = 'transfer.api.globus.org'")
        .bind(&ada.account_id)
        .execute(pool)
        .await
        .unwrap();
    let (kept_now, soonest) = kept().await;
    assert_eq!(kept_now, soonest);
    sqlx::query("DELETE FROM token_sets WHERE account_id = $1")
        .bind(&ada.account_id)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(kept().await, (None, None));
    // Deleting the user cascades to the account and its token sets without the trigger getting in the way.
    let bob = linked(&app, 1).await;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(bob.user_id)
        .execute(pool)
        .await
        .unwrap();
    let left = format!(
        "SELECT COUNT(*) FROM token_sets WHERE account_id = '{}'",
        bob.account_id
    );
    assert_eq!(count(&app, &left).await, 0);
}

on_both_backends!(
    admin_area_refuses_visitors_and_users,
    no_user_reaches_another_users_account,
    accounts_are_filtered_sorted_and_paged,
    detail_shows_metadata_and_history_never_tokens,
    force_disconnect_revokes_and_is_audited_with_the_reason,
    disabled_users_cannot_sign_in_nor_be_acted_for,
    audit_export_holds_the_filtered_list_in_both_formats,
    audit_export_spans_batches_in_the_order_of_the_pages,
    audit_filters_refuse_bad_values_on_their_field,
    audit_cursor_at_the_end_of_time_pages_from_the_newest,
    audit_page_export_links_carry_the_filters,
    dashboard_counts_links_and_attention,
    token_expiry_follows_token_sets,
);
