//! Disconnecting a linked account over HTTP, with and without JavaScript, against the demo provider's revocation
//! endpoint, on SQLite and PostgreSQL: every token revoked and gone locally, the owner check, a failed revocation
//! kept (sealed) for a retry, and concurrent disconnects revoking once.

use crate::support::{
    Backend, TestApp,
    oauth::{Linked, count, linked},
};
use onbehalf::actions::TRANSFER_RESOURCE_SERVER;
use reqwest::{StatusCode, header};
use serde_json::Value;

async fn disconnect(app: &TestApp, who: &Linked, account: &str) -> reqwest::Response {
    app.call("disconnect_account", &[("account", account)], Some(&who.cookie))
        .await
}

/// The confirmation page's form, posted by a browser without JavaScript.
async fn disconnect_without_js(app: &TestApp, who: &Linked) -> reqwest::Response {
    app.post_plain_form_as(
        "disconnect_account",
        "/linked-accounts/disconnect",
        &[("account", &who.account_id)],
        Some(&who.cookie),
    )
    .await
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let res = app.get(path, Some(cookie)).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.text().await.unwrap()
}

/// The account's live Transfer token (what an attacker holding our database copy would have).
async fn transfer_token(app: &TestApp, who: &Linked) -> String {
    let bearer = app
        .state
        .delegation
        .bearer(who.user_id, &who.account_id, TRANSFER_RESOURCE_SERVER)
        .await
        .expect("a usable token");
    bearer.authorization()
}

/// Whether the demo Transfer API still honours `authorization`.
async fn honoured(app: &TestApp, authorization: &str) -> bool {
    let url = app
        .demo()
        .issuer()
        .join("/v0.10/endpoint_search?filter_scope=my-endpoints")
        .unwrap();
    let res = reqwest::Client::new()
        .get(url)
        .header(header::AUTHORIZATION, authorization)
        .send()
        .await
        .unwrap();
    res.status() == StatusCode::OK
}

async fn disconnect_revokes_every_token_and_forgets_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let token = transfer_token(&app, &ada).await;
    assert!(honoured(&app, &token).await);
    let sets = count(&app, "SELECT COUNT(*) FROM token_sets").await;
    assert_eq!(sets, 2, "Globus issues a token set per resource server");

    let res = disconnect(&app, &ada, &ada.account_id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let outcome: Value = res.json().await.unwrap();
    // A refresh and an access token per set, each sent once.
    assert_eq!(outcome["revoked"], 4, "{outcome}");
    assert_eq!(outcome["failed"], 0);
    assert_eq!(outcome["provider_name"], "Demo Globus");
    assert_eq!(outcome["account_label"], "ada@demo.globus.org");

    assert!(
        !honoured(&app, &token).await,
        "the provider no longer honours the token"
    );
    assert_eq!(
        app.demo().counters().revocations,
        2,
        "one effective revocation per grant's resource server (the refresh token takes its access tokens along)"
    );
    for table in ["linked_accounts", "token_sets", "pending_revocations"] {
        assert_eq!(
            count(&app, &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    let events = |action: &str, outcome: &str| {
        format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}' AND outcome = '{outcome}'")
    };
    assert_eq!(count(&app, &events("account_disconnected", "success")).await, 1);
    assert_eq!(count(&app, &events("tokens_revoked", "success")).await, 1);
    // Acting for the account now fails as for any unknown account.
    let html = page(&app, &ada.cookie, "/linked-accounts").await;
    assert!(!html.contains("ada@demo.globus.org"), "the card is gone");
    assert!(html.contains("Connect Demo Globus"));
}

async fn only_the_owner_can_disconnect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let mallory = linked(&app, 1).await;
    let res = disconnect(&app, &mallory, &ada.account_id).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["kind"], "not_found");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 2);
    assert_eq!(app.demo().counters().revocations, 0, "nothing reached the provider");
    // The confirmation page does not reveal another user's account either.
    let html = page(
        &app,
        &mallory.cookie,
        &format!("/linked-accounts/disconnect?account={}", ada.account_id),
    )
    .await;
    assert!(html.contains("That account is not linked (any more)."));
    assert!(!html.contains("ada@demo.globus.org"));
    // Signed out: refused, nothing deleted.
    let res = app
        .call("disconnect_account", &[("account", &ada.account_id)], None)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 2);
}

async fn plain_form_confirms_then_disconnects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let confirm = page(
        &app,
        &ada.cookie,
        &format!("/linked-accounts/disconnect?account={}", ada.account_id),
    )
    .await;
    assert!(confirm.contains("Disconnect Demo Globus account ada@demo.globus.org?"));
    assert!(confirm.contains("action=\"/api/disconnect_account\""));
    assert!(confirm.contains(&format!("value=\"{}\"", ada.account_id)));

    let res = disconnect_without_js(&app, &ada).await;
    assert_eq!(res.status(), StatusCode::FOUND, "a plain form is redirected");
    let back = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(back, "/linked-accounts?disconnected=demo&revoked=4&failed=0");
    let html = page(&app, &ada.cookie, &back).await;
    assert!(html.contains("Disconnected. Demo Globus revoked 4 tokens."), "{html}");

    // Posting again (a double click, a stale tab): a clear message, nothing else happens.
    let res = disconnect_without_js(&app, &ada).await;
    let back = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(back, "/linked-accounts?error=account_gone");
    let html = page(&app, &ada.cookie, &back).await;
    assert!(html.contains("role=\"alert\""), "{html}");
}

/// The demo's fault for one identity (what parallel browser tests use) refuses that identity's tokens only.
async fn a_revocation_fault_for_one_identity_spares_the_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ada, grace) = (linked(&app, 0).await, linked(&app, 1).await);
    let ada_sub = crate::support::oauth::identity(0);
    app.demo().set_revocation_fault_for(Some(ada_sub), true);
    let spared: Value = disconnect(&app, &grace, &grace.account_id).await.json().await.unwrap();
    assert_eq!(
        (spared["revoked"].as_u64(), spared["failed"].as_u64()),
        (Some(4), Some(0)),
        "{spared}"
    );
    let refused: Value = disconnect(&app, &ada, &ada.account_id).await.json().await.unwrap();
    assert_eq!(
        (refused["revoked"].as_u64(), refused["failed"].as_u64()),
        (Some(0), Some(4)),
        "{refused}"
    );
    app.demo().set_revocation_fault_for(Some(ada_sub), false);
    let res = app.call("retry_revocations", &[], Some(&ada.cookie)).await;
    let outcomes: Value = res.json().await.unwrap();
    assert_eq!(outcomes[0]["revoked"], 4, "{outcomes}");
}

async fn failed_revocation_is_kept_sealed_shown_and_retried(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let token = transfer_token(&app, &ada).await;
    app.demo().set_revocation_fault(true);
    let outcome: Value = disconnect(&app, &ada, &ada.account_id).await.json().await.unwrap();
    assert_eq!(outcome["revoked"], 0, "{outcome}");
    assert_eq!(outcome["failed"], 4);
    assert!(outcome["error"].as_str().unwrap().contains("503"), "{outcome}");
    // Gone locally all the same: nothing can act with the tokens.
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM token_sets").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM pending_revocations").await, 4);
    let sealed: Vec<String> = sqlx::query_scalar("SELECT token FROM pending_revocations")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    for value in app.demo().issued_token_values() {
        assert!(sealed.iter().all(|s| !s.contains(&value)), "kept tokens are sealed");
    }
    assert!(honoured(&app, &token).await, "the provider did not revoke");
    let failed = "SELECT COUNT(*) FROM audit_events WHERE action = 'tokens_revoked' AND outcome = 'failure'";
    assert_eq!(count(&app, failed).await, 1, "one event per attempt, not per token");

    let html = page(
        &app,
        &ada.cookie,
        "/linked-accounts?disconnected=demo&revoked=0&failed=4",
    )
    .await;
    assert!(html.contains("did not confirm revoking 4 tokens"), "{html}");
    assert!(html.contains("Revocation pending"));
    assert!(html.contains("Demo Globus account ada@demo.globus.org"));
    assert!(html.contains("action=\"/api/retry_revocations\""));

    // Still down: the rows stay, attempts counted.
    let res = app.call("retry_revocations", &[], Some(&ada.cookie)).await;
    let outcomes: Value = res.json().await.unwrap();
    assert_eq!(outcomes[0]["failed"], 4);
    let attempts: i64 = sqlx::query_scalar("SELECT MIN(attempts) FROM pending_revocations")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2);

    // Back up: a plain-form retry revokes everything and clears the panel.
    app.demo().set_revocation_fault(false);
    let res = app
        .post_plain_form_as("retry_revocations", "/linked-accounts", &[], Some(&ada.cookie))
        .await;
    let back = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(back, "/linked-accounts?retried=1&revoked=4&failed=0");
    assert!(!honoured(&app, &token).await);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM pending_revocations").await, 0);
    let html = page(&app, &ada.cookie, &back).await;
    assert!(html.contains("Revocation done: 4 tokens revoked."));
    assert!(!html.contains("Revocation pending"));
}

async fn concurrent_disconnects_revoke_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = reqwest::Client::new()
            .post(app.url("/api/disconnect_account"))
            .header(header::ORIGIN, app.origin())
            .header(header::ACCEPT, "application/json")
            .header(
                header::COOKIE,
                format!("{}={}", crate::support::SESSION_COOKIE, ada.cookie),
            )
            .form(&[("account", ada.account_id.as_str())]);
        tasks.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = tasks.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(app.demo().counters().revocations, 2);
    let events = "SELECT COUNT(*) FROM audit_events WHERE action = 'account_disconnected'";
    assert_eq!(count(&app, events).await, 1);
}

async fn the_card_shows_consent_status_and_grant_access(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let html = page(&app, &ada.cookie, "/linked-accounts").await;
    assert!(
        html.contains("Use Globus Transfer: list your collections"),
        "a human description"
    );
    assert!(html.contains("Granted"));
    assert!(!html.contains("Missing"), "everything required is granted");
    assert!(!html.contains("Grant access for"));
    assert!(html.contains("class=\"countdown\""), "a live expiry");
    assert!(html.contains(&format!(
        "href=\"/linked-accounts/disconnect?account={}\"",
        ada.account_id
    )));
    // The provider asked for a collection's consent: the scope shows as missing, with the button to grant it.
    let dependent = "urn:globus:auth:scope:transfer.api.globus.org:all\
                     [*https://auth.globus.org/scopes/c0ffee00-0000-0000-0000-000000000001/data_access]";
    sqlx::query("UPDATE linked_accounts SET status = 'needs_consent', consent_scopes = $1 WHERE id = $2")
        .bind(dependent)
        .bind(&ada.account_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let html = page(&app, &ada.cookie, "/linked-accounts").await;
    assert!(html.contains("Missing"));
    assert_eq!(
        html.matches("class=\"scope missing\"").count(),
        1,
        "only the collection's consent is missing"
    );
    assert!(html.contains("including the data on collection c0ffee00-0000-0000-0000-000000000001"));
    assert!(html.contains("Needs consent"));
    assert!(html.contains("aria-label=\"Grant access for ada@demo.globus.org\""));
    // Granted (Globus writes the dependent scope inside the scope it depends on): the plain scope is covered too.
    sqlx::query("UPDATE linked_accounts SET status = 'active', consent_scopes = NULL WHERE id = $1")
        .bind(&ada.account_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE token_sets SET scopes = $1 WHERE resource_server = 'transfer.api.globus.org'")
        .bind(dependent)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let html = page(&app, &ada.cookie, "/linked-accounts").await;
    assert!(!html.contains("Missing"), "a dependent grant covers its scope");
    assert!(!html.contains("Grant access for"));
}

async fn queued_tokens_are_resealed_by_key_rotation_and_kept_without_their_key(backend: Backend) {
    use onbehalf::tokens::rotation;
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    app.demo().set_revocation_fault(true);
    disconnect(&app, &ada, &ada.account_id).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM pending_revocations").await, 4);

    // `keys rotate` to a key this running app does not have: the queue is re-sealed like token sets.
    let rotated = crate::support::rotated_vault();
    let report = rotation::rotate(&app.state.db, &rotated, &app.state.catalog)
        .await
        .unwrap();
    assert_eq!((report.resealed, report.left_on_old_keys), (4, 0));
    let on_next = "SELECT COUNT(*) FROM pending_revocations WHERE token LIKE 'v2.next.%'";
    assert_eq!(count(&app, on_next).await, 4);

    // This instance lacks the new key: a retry cannot open them, says so, and keeps them for an instance that can.
    app.demo().set_revocation_fault(false);
    let outcomes: Value = app
        .call("retry_revocations", &[], Some(&ada.cookie))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcomes[0]["failed"], 4, "{outcomes}");
    assert!(outcomes[0]["error"].as_str().unwrap().contains("cannot be opened"));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM pending_revocations").await, 4);
}

/// Tokens sealed with a key this instance was not given (another instance rotated first) are queued for revocation
/// as they are, not dropped: an instance with the key revokes them.
async fn a_disconnect_queues_tokens_sealed_under_a_key_this_instance_lacks(backend: Backend) {
    use onbehalf::{accounts::disconnect, tokens::rotation};
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let rotated = crate::support::rotated_vault();
    rotation::rotate(&app.state.db, &rotated, &app.state.catalog)
        .await
        .unwrap();
    let res = disconnect(&app, &ada, &ada.account_id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(outcome["failed"], 4, "{outcome}");
    assert!(
        outcome["error"].as_str().unwrap().contains("cannot be opened"),
        "{outcome}"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM linked_accounts").await,
        0,
        "the account is gone"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM pending_revocations WHERE sealed_for LIKE 'token_sets/%'"
        )
        .await,
        4,
        "queued still sealed, with what they were sealed for"
    );
    let details: String = sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'account_disconnected'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(
        details.contains("\"tokens\":4") && details.contains("\"undecryptable\":0"),
        "{details}"
    );

    // An instance with the key revokes them.
    let mut other = app.state.clone();
    other.vault = std::sync::Arc::new(crate::support::rotated_vault());
    let before = app.demo().counters().revocations;
    let outcomes = disconnect::retry(other.revoker(), ada.user_id, None, None)
        .await
        .unwrap();
    assert_eq!((outcomes[0].revoked, outcomes[0].failed), (4, 0), "{outcomes:?}");
    assert!(app.demo().counters().revocations > before);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM pending_revocations").await, 0);
}

/// Waits (a few seconds at most) until `account`'s queue of tokens to revoke is empty.
async fn queue_drained(app: &TestApp, account: &str) {
    for _ in 0..100 {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_revocations WHERE account_id = $1")
            .bind(account)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the replaced tokens were not revoked");
}

/// Linking an account again (or reconnecting, or granting more) replaces its tokens; the replaced ones are revoked
/// right after, alone, so no older refresh token outlives the link. Not where one revocation ends the whole grant.
async fn a_reconnect_revokes_the_tokens_it_replaced(backend: Backend) {
    use crate::support::oauth::{demo_as, identity, link, link_at};
    let app = TestApp::spawn_with(
        backend,
        demo_as(vec![("grantwide", serde_json::json!({"revocation_ends_grant": true}))]),
    )
    .await;
    let ada = linked(&app, 0).await;
    let old = transfer_token(&app, &ada).await;
    let before = app.demo().counters().revocations;
    let again = link(&app, &ada.cookie, identity(0)).await;
    assert!(again.contains("relinked="), "{again}");
    queue_drained(&app, &ada.account_id).await;
    assert_eq!(
        app.demo().counters().revocations - before,
        2,
        "both replaced refresh tokens (their access tokens end with them)"
    );
    assert!(!honoured(&app, &old).await, "the replaced access token is dead");
    let new = transfer_token(&app, &ada).await;
    assert_ne!(new, old);
    assert!(honoured(&app, &new).await, "the new tokens live");
    let revoked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'tokens_revoked' AND account_id = $1 AND outcome = 'success'",
    )
    .bind(&ada.account_id)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(revoked, 1);

    // Where revoking one token ends the whole grant, the replaced tokens are left to expire.
    let landed = link_at(&app, &ada.cookie, "grantwide", &[], identity(1)).await;
    let account = crate::support::oauth::query_value(&landed, "linked").expect(&landed);
    let before = app.demo().counters().revocations;
    let again = link_at(&app, &ada.cookie, "grantwide", &[], identity(1)).await;
    assert!(again.contains("relinked="), "{again}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM pending_revocations WHERE account_id = '{account}'")
        )
        .await,
        0
    );
    assert_eq!(app.demo().counters().revocations, before);
}

on_both_backends!(
    a_reconnect_revokes_the_tokens_it_replaced,
    a_disconnect_queues_tokens_sealed_under_a_key_this_instance_lacks,
    queued_tokens_are_resealed_by_key_rotation_and_kept_without_their_key,
    disconnect_revokes_every_token_and_forgets_the_account,
    only_the_owner_can_disconnect,
    plain_form_confirms_then_disconnects,
    failed_revocation_is_kept_sealed_shown_and_retried,
    a_revocation_fault_for_one_identity_spares_the_others,
    concurrent_disconnects_revoke_once,
    the_card_shows_consent_status_and_grant_access,
);
