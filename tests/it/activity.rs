//! The activity page: a user's own history in words, filtered by kind and provider, paged by a cursor kept in
//! the URL, never showing another user's events. SQLite and PostgreSQL.

use crate::support::{
    Backend, TestApp,
    oauth::{Linked, linked},
};
use reqwest::StatusCode;

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let res = app.get(path, Some(cookie)).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.text().await.unwrap()
}

/// `n` loads of the Actions page for `who` (each two delegated calls: the endpoint search and the task list),
/// recorded in the audit trail.
async fn load_actions(app: &TestApp, who: &Linked, n: usize) {
    for _ in 0..n {
        let res = app
            .call(
                "actions_page",
                &[("query[account]", who.account_id.as_str())],
                Some(&who.cookie),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    app.state.delegation.calls.flush().await;
}

fn rows(html: &str) -> usize {
    html.matches("<tr>").count().saturating_sub(1)
}

async fn history_reads_as_sentences_and_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let bob = linked(&app, 1).await;
    load_actions(&app, &ada, 1).await;
    let res = app
        .call("disconnect_account", &[("account", &ada.account_id)], Some(&ada.cookie))
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let all = page(&app, &ada.cookie, "/activity").await;
    for line in [
        "Linked Demo Globus account ada@demo.globus.org.",
        "Listed your collections at Demo Globus.",
        "Listed your transfers at Demo Globus.",
        "Disconnected Demo Globus account ada@demo.globus.org.",
        "Demo Globus revoked 4 token(s) of ada@demo.globus.org.",
    ] {
        assert!(all.contains(line), "{line} in {all}");
    }
    assert!(!all.contains("grace") && !all.contains("bob"), "only Ada's own events");
    assert!(
        all.find("Disconnected").unwrap() < all.find("Linked Demo").unwrap(),
        "newest first"
    );

    let actions = page(&app, &ada.cookie, "/activity?kind=actions").await;
    assert_eq!(rows(&actions), 2, "the endpoint search and the task list: {actions}");
    assert!(actions.contains("<option value=\"actions\" selected"));
    let disconnects = page(&app, &ada.cookie, "/activity?kind=disconnects&provider=demo").await;
    assert_eq!(rows(&disconnects), 2);
    assert!(disconnects.contains("<option value=\"demo\" selected"));
    let none = page(&app, &ada.cookie, "/activity?kind=problems").await;
    assert!(none.contains("No events match these filters."));
    // Unknown values fall back to the defaults rather than failing.
    let fallback = page(&app, &ada.cookie, "/activity?kind=bogus&provider=nope&before=x").await;
    assert_eq!(rows(&fallback), rows(&all));

    let bobs = page(&app, &bob.cookie, "/activity").await;
    assert_eq!(rows(&bobs), 1, "Bob sees his own link only: {bobs}");
    assert!(!bobs.contains("ada@demo.globus.org"));
    let signed_out = app.get("/activity", None).await;
    assert!(signed_out.url().path().starts_with("/sign-in") || signed_out.status().is_redirection());
}

async fn history_is_paged_by_a_cursor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    load_actions(&app, &ada, 15).await;
    let first = page(&app, &ada.cookie, "/activity?kind=actions").await;
    assert_eq!(rows(&first), 25);
    assert!(!first.contains(">Newest<"));
    let older = first
        .split("href=\"")
        .find_map(|s| {
            s.split_once("\" rel=\"next\"")
                .map(|(href, _)| href.replace("&amp;", "&"))
        })
        .expect("an Older link");
    assert!(older.starts_with("/activity?kind=actions&before="), "{older}");
    let second = page(&app, &ada.cookie, &older).await;
    assert_eq!(rows(&second), 5);
    assert!(second.contains(">Newest<") && !second.contains("rel=\"next\""));
}

on_both_backends!(history_reads_as_sentences_and_filters, history_is_paged_by_a_cursor);
