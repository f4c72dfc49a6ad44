//! The linking legs as a browser drives them (start, consent page, callback), for tests that need linked accounts.

use onbehalf::demo::DemoProvider;
use reqwest::StatusCode;

pub use super::browser::location;
use super::{TestApp, unique_email};

pub const DEMO: &str = "demo";

pub fn identity(n: usize) -> &'static str {
    DemoProvider::identities()[n].sub
}

/// POST /oauth/{provider}/start as the signed-in browser does.
pub async fn start(app: &TestApp, cookie: &str, provider: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.browser().start(cookie, provider, form).await
}

/// The consent page: open the authorize URL, choose `identity`, press Allow or Deny; returns the callback URL.
pub async fn consent(app: &TestApp, authorize_url: &str, identity: &str, decision: &str) -> String {
    app.browser().consent(authorize_url, identity, decision).await
}

pub async fn callback(app: &TestApp, cookie: &str, url: &str) -> reqwest::Response {
    app.browser().callback(cookie, url).await
}

/// Start → consent (Allow as `identity`) → callback; returns where the callback sent the browser.
pub async fn link_with(app: &TestApp, cookie: &str, form: &[(&str, &str)], identity: &str) -> String {
    link_at(app, cookie, DEMO, form, identity).await
}

/// [`link_with`] at the configured provider `provider` (one of [`demo_as`]'s entries).
pub async fn link_at(app: &TestApp, cookie: &str, provider: &str, form: &[(&str, &str)], identity: &str) -> String {
    let res = start(app, cookie, provider, form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = consent(app, &location(&res), identity, "allow").await;
    let res = callback(app, cookie, &back).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    location(&res)
}

/// A `TestApp::spawn_with` tweak: the demo provider on a port chosen now, configured once more as each of `entries`
/// — an ordinary `globus` provider entry at the demo's issuer, with the entry's own settings merged in — for a
/// provider quirk the built-in demo entry does not have (`revocation_ends_grant`, `rotates_refresh_tokens`, …).
pub fn demo_as(entries: Vec<(&'static str, serde_json::Value)>) -> impl FnOnce(&mut onbehalf::config::Settings) {
    let port = super::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    move |s| {
        s.demo.bind = format!("127.0.0.1:{port}").parse().unwrap();
        for (id, extra) in entries {
            let mut entry = serde_json::json!({
                "kind": "globus", "client_id": "onbehalf-demo", "client_secret": "demo-secret", "issuer": issuer,
                "api_base_urls": {"transfer.api.globus.org": [format!("{issuer}/v0.10/")],
                                  "auth.globus.org": [format!("{issuer}/v2/")]},
            });
            entry
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().cloned().unwrap_or_default());
            s.providers
                .insert(id.to_owned(), serde_json::from_value(entry).unwrap());
        }
    }
}

pub async fn link(app: &TestApp, cookie: &str, identity: &str) -> String {
    link_with(app, cookie, &[("intent", "link")], identity).await
}

/// The callback URL for a started flow, consented as `identity`, without following it.
pub async fn callback_url(app: &TestApp, cookie: &str, identity: &str) -> String {
    let res = start(app, cookie, DEMO, &[]).await;
    consent(app, &location(&res), identity, "allow").await
}

pub fn query_value(location: &str, key: &str) -> Option<String> {
    reqwest::Url::parse(&format!("http://x{location}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

pub async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

/// A signed-up user with one linked demo account.
#[derive(Clone)]
pub struct Linked {
    pub cookie: String,
    pub user_id: i64,
    pub account_id: String,
}

/// Signs a new user up and links demo identity `n`.
pub async fn linked(app: &TestApp, n: usize) -> Linked {
    let cookie = app.sign_up(&unique_email("linked")).await;
    let back = link(app, &cookie, identity(n)).await;
    let account_id = query_value(&back, "linked").unwrap_or_else(|| panic!("linked, got {back}"));
    let user_id = sqlx::query_scalar("SELECT user_id FROM linked_accounts WHERE id = $1")
        .bind(&account_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    Linked {
        cookie,
        user_id,
        account_id,
    }
}
