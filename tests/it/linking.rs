//! Linking accounts end to end over real HTTP: the app and the built-in demo provider on loopback, on SQLite and
//! PostgreSQL. Every error a user or provider can cause has a test here that checks the message code, that nothing
//! was linked, and (where a user is known) the `link_rejected` audit event.

use crate::support::{
    Backend, TestApp,
    oauth::{
        DEMO, callback, callback_url, consent, count, demo_as, identity, link, link_at, link_with, location,
        query_value, start,
    },
    unique_email,
};
use onbehalf::{
    delegation::{Delegator, Unavailable},
    demo::{DemoProvider, IdTokenFault, TokenFault},
    tokens::{
        repo::{SetKey, access_slot},
        rotation,
        vault::Vault,
    },
};
use reqwest::{StatusCode, header};
use sqlx::Row;

async fn rejected_reasons(app: &TestApp) -> Vec<String> {
    sqlx::query("SELECT details FROM audit_events WHERE action = 'link_rejected' ORDER BY id")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let details: String = r.get("details");
            let v: serde_json::Value = serde_json::from_str(&details).unwrap();
            format!("{}:{}", v["error"].as_str().unwrap(), v["reason"].as_str().unwrap())
        })
        .collect()
}

async fn full_link_stores_one_token_set_per_resource_server(backend: Backend) {
    crate::support::capture_logs();
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("link")).await;
    let start_res = start(&app, &cookie, DEMO, &[]).await;
    let authorize = reqwest::Url::parse(&location(&start_res)).unwrap();
    let params: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43, "a SHA-256 PKCE challenge");
    assert_eq!(params["redirect_uri"], app.url("/oauth/demo/callback"));
    assert_eq!(params["access_type"], "offline");
    assert!(params["nonce"].len() >= 22 && params["state"].len() == 43);
    let back = consent(&app, authorize.as_str(), identity(0), "allow").await;
    assert!(back.contains("iss="), "the demo sends RFC 9207 iss");
    let res = callback(&app, &cookie, &back).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::REFERRER_POLICY], "no-referrer");
    let landed = location(&res);
    assert!(landed.starts_with("/linked-accounts?linked="), "{landed}");
    assert!(!landed.contains("code="), "the code never reaches the address bar");

    let rows = sqlx::query(
        "SELECT t.id, t.account_id, t.resource_server, t.scopes, t.access_token, t.refresh_token, t.expires_at, \
         a.subject, a.status \
         FROM token_sets t JOIN linked_accounts a ON a.id = t.account_id ORDER BY t.resource_server",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    let sets: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.get::<String, _>("resource_server"), r.get::<String, _>("scopes")))
        .collect();
    assert_eq!(
        sets,
        vec![
            ("auth.globus.org".to_owned(), "openid profile email".to_owned()),
            (
                "transfer.api.globus.org".to_owned(),
                "urn:globus:auth:scope:transfer.api.globus.org:all".to_owned()
            ),
        ]
    );
    let issued = app.demo().issued_token_values();
    for row in &rows {
        assert_eq!(row.get::<String, _>("subject"), identity(0));
        assert_eq!(row.get::<String, _>("status"), "active");
        assert!(row.get::<Option<i64>, _>("expires_at").unwrap() > onbehalf::db::now_ms());
        let sealed: String = row.get("access_token");
        let refresh: Option<String> = row.get("refresh_token");
        assert!(sealed.starts_with("v2.test.") && refresh.as_deref().unwrap().starts_with("v2.test."));
        for token in &issued {
            assert!(!sealed.contains(token.as_str()) && !refresh.as_deref().unwrap().contains(token.as_str()));
        }
        // It opens to a token the provider really issued.
        let opened = app.state.vault.open(&sealed, access_slot(set_key(row))).unwrap();
        assert!(issued.contains(&secrecy::ExposeSecret::expose_secret(&opened).to_owned()));
    }

    let page = app.get(&landed, Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let who = DemoProvider::identities()[0].username;
    assert!(
        html.contains(who) && html.contains("transfer.api.globus.org") && html.contains("Active"),
        "{html}"
    );
    assert!(html.contains("Linked Demo Globus account"), "the success notice");
    let json = app
        .call("list_linked_accounts", &[], Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(json.contains(who));
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'account_linked'"
        )
        .await,
        1
    );

    // No token in any response or log line of this flow (the provider knows every value it issued).
    let logs = crate::support::captured_logs();
    for token in &issued {
        for (what, text) in [
            ("page", &html),
            ("server function", &json),
            ("logs", &logs),
            ("redirect", &landed),
        ] {
            assert!(!text.contains(token.as_str()), "a token leaked into the {what}");
        }
    }
}

async fn two_accounts_at_one_provider_and_relinking_one_updates_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("two")).await;
    assert!(link(&app, &cookie, identity(0)).await.contains("?linked="));
    assert!(link(&app, &cookie, identity(1)).await.contains("?linked="));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 2);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM token_sets").await, 4);
    // The same identity again: still one account, its tokens replaced (version 2), audited as relinked.
    let again = link(&app, &cookie, identity(0)).await;
    assert!(again.contains("?relinked="), "{again}");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 2);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM token_sets WHERE version = 2").await,
        2
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'account_relinked'"
        )
        .await,
        1
    );
}

async fn an_identity_linked_by_another_user_is_refused_and_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up(&unique_email("alice")).await;
    let bob = app.sign_up(&unique_email("bob")).await;
    link(&app, &alice, identity(0)).await;
    let before: String = sqlx::query_scalar("SELECT access_token FROM token_sets ORDER BY id LIMIT 1")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let landed = link(&app, &bob, identity(0)).await;
    assert_eq!(query_value(&landed, "error").as_deref(), Some("identity_taken"));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 1);
    let after: String = sqlx::query_scalar("SELECT access_token FROM token_sets ORDER BY id LIMIT 1")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "Alice's tokens are untouched");
    // The tokens issued for Bob's refused attempt were given back to the provider (2 refresh + 2 access).
    assert_eq!(
        rejected_reasons(&app).await,
        vec!["identity_taken:identity_owned_by_another_user (tokens revoked: 4)"]
    );
    // The provider counts what it actually ended: revoking each refresh token ended its resource server's tokens.
    assert_eq!(app.demo().counters().revocations, 2);
    let html = app.get(&landed, Some(&bob)).await.text().await.unwrap();
    assert!(html.contains("already linked to another user"), "{html}");
}

/// At a provider where one revocation ends the user's whole grant to the client (Google), a refused link's tokens
/// are not given back while another link of that identity lives on the grant; otherwise they are.
async fn a_refused_link_keeps_the_grant_another_link_lives_on(backend: Backend) {
    let tweak = demo_as(vec![("grantwide", serde_json::json!({"revocation_ends_grant": true}))]);
    let app = TestApp::spawn_with(backend, tweak).await;
    let link_at = |cookie: String, form: Vec<(&'static str, String)>, who: &'static str| {
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            link_at(app, &cookie, "grantwide", &form, who).await
        }
    };
    let alice = app.sign_up(&unique_email("alice")).await;
    let bob = app.sign_up(&unique_email("bob")).await;
    let landed = link_at(alice.clone(), vec![], identity(0)).await;
    let account = query_value(&landed, "linked").expect(&landed);
    let landed = link_at(bob, vec![], identity(0)).await;
    assert_eq!(query_value(&landed, "error").as_deref(), Some("identity_taken"));
    assert_eq!(
        rejected_reasons(&app).await,
        vec![
            "identity_taken:identity_owned_by_another_user (tokens not revoked: that would end the grant another \
             link of this identity uses)"
        ]
    );
    assert_eq!(app.demo().counters().revocations, 0, "Alice's grant is untouched");
    // An identity linked nowhere: its tokens are given back as usual.
    let form = vec![("intent", "reconnect".to_owned()), ("account", account)];
    let landed = link_at(alice, form, identity(1)).await;
    assert_eq!(query_value(&landed, "error").as_deref(), Some("subject_mismatch"));
    assert!(
        rejected_reasons(&app).await[1].ends_with("(tokens revoked: 4)"),
        "{:?}",
        rejected_reasons(&app).await
    );
    assert_eq!(app.demo().counters().revocations, 2);
}

/// `offline_access` is asked for with `prompt=consent` (OIDC Core §11) unless the provider entry sets its own
/// `prompt`; a link that got no refresh token says on its card when it stops working.
async fn offline_access_asks_for_consent_and_a_link_without_refresh_token_says_when_it_ends(backend: Backend) {
    let scopes = serde_json::json!(["openid", "profile", "email", "offline_access"]);
    let tweak = demo_as(vec![
        ("offline", serde_json::json!({"scopes": scopes.clone()})),
        (
            "chosen",
            serde_json::json!({"scopes": scopes, "authorize_params": {"prompt": "login"}}),
        ),
        (
            "online",
            serde_json::json!({"authorize_params": {"access_type": "online"}}),
        ),
    ]);
    let app = TestApp::spawn_with(backend, tweak).await;
    let cookie = app.sign_up(&unique_email("offline")).await;
    let prompts = |provider: &'static str| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let url = reqwest::Url::parse(&location(&start(app, &cookie, provider, &[]).await)).unwrap();
            url.query_pairs()
                .filter(|(k, _)| k == "prompt")
                .map(|(_, v)| v.into_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(prompts("offline").await, vec!["consent"]);
    assert_eq!(prompts("chosen").await, vec!["login"], "the operator's prompt wins");
    assert!(prompts("online").await.is_empty(), "no offline_access, no prompt");
    assert!(prompts(DEMO).await.is_empty());

    // The demo issues no refresh token for access_type=online.
    let landed = link_at(&app, &cookie, "online", &[], identity(0)).await;
    assert!(query_value(&landed, "linked").is_some(), "{landed}");
    let html = app.get("/linked-accounts", Some(&cookie)).await.text().await.unwrap();
    assert!(
        html.contains("No refresh token was issued for this link: it stops working at"),
        "{html}"
    );
    assert!(html.contains("Reconnect to keep access."));
    assert!(!html.contains("renewed automatically"), "{html}");
}

async fn reconnect_as_another_subject_is_refused_and_keeps_the_old_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("recon")).await;
    let linked = link(&app, &cookie, identity(0)).await;
    let account = query_value(&linked, "linked").unwrap();
    let tokens_before: Vec<String> = sqlx::query_scalar("SELECT access_token FROM token_sets ORDER BY id")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    let form = [("intent", "reconnect"), ("account", account.as_str())];
    let landed = link_with(&app, &cookie, &form, identity(1)).await;
    assert_eq!(query_value(&landed, "error").as_deref(), Some("subject_mismatch"));
    let tokens_after: Vec<String> = sqlx::query_scalar("SELECT access_token FROM token_sets ORDER BY id")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(tokens_before, tokens_after);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 1);
    assert_eq!(
        rejected_reasons(&app).await,
        vec!["subject_mismatch:different_subject (tokens revoked: 4)"]
    );
    // A form cannot make the user grant what the site never asks for: only required, granted or consent-required
    // scopes may be named, and nothing is started otherwise.
    let extra = "urn:globus:auth:scope:auth.globus.org:view_identity_set";
    let flows = count(&app, "SELECT COUNT(*) FROM oauth_flows").await;
    for intent in ["link", "grant"] {
        let res = start(
            &app,
            &cookie,
            DEMO,
            &[("intent", intent), ("account", &account), ("scopes", extra)],
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{intent}");
        assert!(res.text().await.unwrap().contains("is not one this site asks for"));
    }
    assert_eq!(count(&app, "SELECT COUNT(*) FROM oauth_flows").await, flows);
    // Once the provider asked for it (needs_consent), Grant access asks for required ∪ granted ∪ consent-required.
    sqlx::query("UPDATE linked_accounts SET consent_scopes = $1 WHERE id = $2")
        .bind(extra)
        .bind(&account)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let res = start(
        &app,
        &cookie,
        DEMO,
        &[("intent", "grant"), ("account", &account), ("scopes", extra)],
    )
    .await;
    let authorize = reqwest::Url::parse(&location(&res)).unwrap();
    let scope = authorize
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .unwrap()
        .1
        .into_owned();
    assert!(
        scope.starts_with("openid profile email urn:globus:auth:scope:transfer.api.globus.org:all"),
        "{scope}"
    );
    assert!(scope.ends_with(extra), "{scope}");
    let back = consent(&app, authorize.as_str(), identity(0), "allow").await;
    let landed = location(&callback(&app, &cookie, &back).await);
    assert_eq!(query_value(&landed, "relinked"), Some(account.clone()));
    // Another user's account id cannot be reconnected.
    let mallory = app.sign_up(&unique_email("mallory")).await;
    let res = start(&app, &mallory, DEMO, &[("intent", "reconnect"), ("account", &account)]).await;
    assert_eq!(query_value(&location(&res), "error").as_deref(), Some("account_gone"));
}

/// One session keeps at most `MAX_PENDING_FLOWS_PER_SESSION` pending flows: starting more forgets the oldest, whose
/// callback is then an unknown state; the newest still links.
async fn pending_flows_per_session_are_capped(backend: Backend) {
    use onbehalf::accounts::repo::MAX_PENDING_FLOWS_PER_SESSION as CAP;
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("flows")).await;
    let mut authorize_urls = Vec::new();
    for _ in 0..CAP + 5 {
        let res = start(&app, &cookie, DEMO, &[]).await;
        authorize_urls.push(location(&res));
    }
    assert_eq!(count(&app, "SELECT COUNT(*) FROM oauth_flows").await, CAP);
    let oldest = consent(&app, &authorize_urls[0], identity(0), "allow").await;
    let landed = location(&callback(&app, &cookie, &oldest).await);
    assert_eq!(
        query_value(&landed, "error").as_deref(),
        Some("state_unknown"),
        "{landed}"
    );
    let newest = consent(&app, authorize_urls.last().unwrap(), identity(0), "allow").await;
    let landed = location(&callback(&app, &cookie, &newest).await);
    assert!(query_value(&landed, "linked").is_some(), "{landed}");
    // Another session's flows are its own.
    let other = app.sign_up(&unique_email("flows-other")).await;
    start(&app, &other, DEMO, &[]).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM oauth_flows").await, CAP + 1);
}

async fn declined_consent_and_provider_errors_link_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("deny")).await;
    let res = start(&app, &cookie, DEMO, &[]).await;
    let back = consent(&app, &location(&res), identity(0), "deny").await;
    let landed = location(&callback(&app, &cookie, &back).await);
    assert_eq!(landed, "/linked-accounts?error=access_denied&provider=demo");
    let html = app.get(&landed, Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("You declined access at Demo Globus"), "{html}");
    // Another provider error, with text an attacker chose: only the closed code and message reach the page.
    let res = start(&app, &cookie, DEMO, &[]).await;
    let authorize = reqwest::Url::parse(&location(&res)).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let url = app.url(&format!(
        "/oauth/demo/callback?state={state}&error=server_error&error_description=%3Cscript%3Ealert(1)%3C/script%3E"
    ));
    let landed = location(&callback(&app, &cookie, &url).await);
    assert_eq!(query_value(&landed, "error").as_deref(), Some("provider_error"));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 0);
    assert_eq!(
        rejected_reasons(&app).await,
        vec![
            "access_denied:access_denied",
            "provider_error:provider_error:server_error"
        ]
    );
}

async fn bad_states_are_refused_each_with_its_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("state")).await;
    let other = app.sign_up(&unique_email("other")).await;
    let error_of = |res: reqwest::Response| query_value(&location(&res), "error").unwrap();

    let missing = callback(&app, &cookie, &app.url("/oauth/demo/callback?code=abc")).await;
    assert_eq!(error_of(missing), "state_missing");
    let unknown = callback(&app, &cookie, &app.url("/oauth/demo/callback?code=abc&state=forged")).await;
    assert_eq!(error_of(unknown), "state_unknown");

    let back = callback_url(&app, &cookie, identity(0)).await;
    assert!(location(&callback(&app, &cookie, &back).await).contains("linked="));
    assert_eq!(error_of(callback(&app, &cookie, &back).await), "state_replayed");

    // Started by one user, completed in another's session: refused, and the owner's flow is left intact.
    let back = callback_url(&app, &cookie, identity(1)).await;
    assert_eq!(error_of(callback(&app, &other, &back).await), "state_other_session");
    assert!(location(&callback(&app, &cookie, &back).await).contains("linked="));
    assert_eq!(error_of(callback(&app, &cookie, &back).await), "state_replayed");

    let back = callback_url(&app, &cookie, identity(1)).await;
    sqlx::query("UPDATE oauth_flows SET expires_at = 0 WHERE consumed_at IS NULL")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(error_of(callback(&app, &cookie, &back).await), "state_expired");

    let back = callback_url(&app, &cookie, identity(1)).await;
    let without_code = back
        .split(['?', '&'])
        .filter(|p| !p.starts_with("code="))
        .collect::<Vec<_>>();
    let url = format!("{}?{}", without_code[0], without_code[1..].join("&"));
    assert_eq!(error_of(callback(&app, &cookie, &url).await), "code_missing");

    let html = app
        .get("/linked-accounts?error=state_expired&provider=demo", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("took longer than 10 minutes"));
    let html = app
        .get("/linked-accounts?error=%3Cb%3Ehi", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<b>hi"), "unknown codes are never echoed");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 2);
}

async fn token_endpoint_failures_are_told_apart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("faults")).await;
    let cases = [
        (TokenFault::InvalidClient, "client_rejected"),
        (TokenFault::ServerError, "provider_unavailable"),
        // A proxy's 502 page: the provider is down, not confused.
        (TokenFault::HtmlErrorPage, "provider_unavailable"),
        (TokenFault::MalformedJson, "provider_bad_response"),
        (TokenFault::Timeout, "provider_unavailable"),
    ];
    for (fault, expected) in cases {
        let back = callback_url(&app, &cookie, identity(0)).await;
        app.demo().set_token_fault(fault, Some(1));
        let landed = location(&callback(&app, &cookie, &back).await);
        assert_eq!(query_value(&landed, "error").as_deref(), Some(expected), "{fault:?}");
    }
    // A code the provider does not know (invalid_grant, which Globus sends as 401).
    let back = callback_url(&app, &cookie, identity(0)).await;
    let forged = back.replace("code=", "code=x");
    let landed = location(&callback(&app, &cookie, &forged).await);
    assert_eq!(query_value(&landed, "error").as_deref(), Some("code_rejected"));
    // PKCE: the provider checks the verifier we send; a wrong one is refused.
    let back = callback_url(&app, &cookie, identity(0)).await;
    sqlx::query("UPDATE oauth_flows SET pkce_verifier = 'wrong-verifier-wrong-verifier-wrong-verifier' WHERE consumed_at IS NULL")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let landed = location(&callback(&app, &cookie, &back).await);
    assert_eq!(query_value(&landed, "error").as_deref(), Some("code_rejected"));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 0);
    let reasons = rejected_reasons(&app).await;
    assert_eq!(reasons.len(), 7, "{reasons:?}");
    assert!(reasons[2].contains("HTTP 502 (an HTML error page)"), "{reasons:?}");
    assert!(reasons[3].contains("not JSON"), "{reasons:?}");
    assert!(reasons[4].contains("timed out"), "{reasons:?}");
}

async fn id_token_and_issuer_defects_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("idtoken")).await;
    let cases = [
        (IdTokenFault::BadSignature, "id_token_bad_signature"),
        (IdTokenFault::WrongAudience, "id_token_wrong_audience"),
        (IdTokenFault::WrongNonce, "id_token_wrong_nonce"),
        (IdTokenFault::Expired, "id_token_expired"),
        (IdTokenFault::WrongIssuer, "id_token_wrong_issuer"),
        (IdTokenFault::WrongAuthorizedParty, "id_token_wrong_azp"),
        (IdTokenFault::IssuedInTheFuture, "id_token_bad_iat"),
        (IdTokenFault::IssuedLongAgo, "id_token_bad_iat"),
    ];
    for (fault, reason) in cases {
        app.demo().set_id_token_fault(Some(fault));
        let back = callback_url(&app, &cookie, identity(0)).await;
        let landed = location(&callback(&app, &cookie, &back).await);
        assert_eq!(
            query_value(&landed, "error").as_deref(),
            Some("id_token_invalid"),
            "{fault:?}"
        );
        assert!(
            rejected_reasons(&app).await.last().unwrap().ends_with(reason),
            "{fault:?}"
        );
    }
    app.demo().set_id_token_fault(None);
    app.demo().set_callback_iss_fault(true);
    let back = callback_url(&app, &cookie, identity(0)).await;
    let landed = location(&callback(&app, &cookie, &back).await);
    assert_eq!(query_value(&landed, "error").as_deref(), Some("issuer_mismatch"));
    app.demo().set_callback_iss_fault(false);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM linked_accounts").await, 0);
    // The provider rotates its signing key: the cached JWKS misses the new key id, is fetched again, and linking works.
    assert!(link(&app, &cookie, identity(0)).await.contains("linked="));
    app.demo().rotate_signing_key();
    assert!(link(&app, &cookie, identity(1)).await.contains("linked="));
}

async fn unknown_providers_are_404_and_start_needs_a_post_from_a_signed_in_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("unknown")).await;
    assert_eq!(start(&app, &cookie, "nope", &[]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        callback(&app, &cookie, &app.url("/oauth/nope/callback?state=x"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/oauth/demo/start", Some(&cookie)).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    let signed_out = app
        .client
        .post(app.url("/oauth/demo/start"))
        .header(header::ORIGIN, app.origin())
        .form(&[("intent", "link")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&signed_out), "/sign-in?next=/linked-accounts");
    let cross_site = app
        .client
        .post(app.url("/oauth/demo/start"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, format!("{}={cookie}", crate::support::SESSION_COOKIE))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM oauth_flows").await, 0);
}

async fn undecryptable_tokens_mark_the_account_error_and_keys_rotate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_up(&unique_email("vault")).await;
    let first = query_value(&link(&app, &cookie, identity(0)).await, "linked").unwrap();
    let second = query_value(&link(&app, &cookie, identity(1)).await, "linked").unwrap();

    // A rotation that does not know a key in use refuses before writing anything.
    let only_next = Vault::new(
        "next",
        std::collections::BTreeMap::from([("next".to_owned(), [9u8; 32])]),
    )
    .unwrap();
    let err = rotation::rotate(&app.state.db, &only_next, &app.state.catalog)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`test`, which is not in vault.keys"), "{err}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM token_sets WHERE access_token LIKE 'v2.next.%'"
        )
        .await,
        0
    );

    // Rotation: a vault with the old key and a new current one re-seals every access and refresh token.
    let rotated = crate::support::rotated_vault();
    let report = rotation::rotate(&app.state.db, &rotated, &app.state.catalog)
        .await
        .unwrap();
    assert_eq!((report.rows, report.resealed, report.current), (4, 4, 0));
    let rows = sqlx::query("SELECT id, account_id, resource_server, access_token, refresh_token FROM token_sets")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    for row in &rows {
        let access: String = row.get("access_token");
        let refresh: String = row.get::<Option<String>, _>("refresh_token").unwrap();
        assert!(
            access.starts_with("v2.next.") && refresh.starts_with("v2.next."),
            "{access} {refresh}"
        );
        assert!(rotated.open(&access, access_slot(set_key(row))).is_ok());
        assert!(
            app.state.vault.open(&access, access_slot(set_key(row))).is_err(),
            "the old-key-only vault cannot open it"
        );
    }
    assert_eq!(
        rotation::rotate(&app.state.db, &rotated, &app.state.catalog)
            .await
            .unwrap()
            .current,
        4,
        "a second run has nothing to do"
    );
    // An instance that was not given the new key yet: an error for the caller, but the account is not marked.
    let owner = |account: String| {
        let pool = app.state.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT user_id FROM linked_accounts WHERE id = $1")
                .bind(account)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let (first_user, second_user) = (owner(first.clone()).await, owner(second.clone()).await);
    let err = app
        .state
        .delegation
        .bearer(first_user, &first, "transfer.api.globus.org")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Unavailable::KeyNotConfigured(ref k) if k == "next"),
        "{err:?}"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM linked_accounts WHERE status = 'error'").await,
        0
    );

    // A ciphertext moved to another account's row does not open; that account is marked error, not a panic.
    let moved: String = sqlx::query_scalar("SELECT access_token FROM token_sets WHERE account_id = $1 LIMIT 1")
        .bind(&first)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE token_sets SET access_token = $1 WHERE account_id = $2 AND resource_server = 'transfer.api.globus.org'",
    )
    .bind(&moved)
    .bind(&second)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    // An instance that has the new key.
    let updated = std::sync::Arc::new(Delegator::new(
        &app.state.settings,
        app.state.db.clone(),
        std::sync::Arc::new(rotated),
        app.state.catalog.clone(),
        app.state.http.clone(),
    ));
    let err = updated
        .bearer(second_user, &second, "transfer.api.globus.org")
        .await
        .unwrap_err();
    assert!(matches!(err, Unavailable::NeedsReconnect { .. }), "{err:?}");
    let (status, reason): (String, String) =
        sqlx::query_as("SELECT status, status_reason FROM linked_accounts WHERE id = $1")
            .bind(&second)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "error");
    assert!(reason.contains("cannot be decrypted"), "{reason}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'token_undecryptable'"
        )
        .await,
        1
    );
    assert!(
        updated
            .bearer(first_user, &first, "transfer.api.globus.org")
            .await
            .is_ok()
    );
    let html = app.get("/linked-accounts", Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("Error") && html.contains("cannot be decrypted"));
}

async fn the_generic_oidc_kind_links_through_discovery(backend: Backend) {
    use onbehalf::demo::{DemoConfig, Flavor};
    // A second demo server, as a plain OpenID Connect provider, configured only by its issuer.
    let oidc = DemoProvider::start(DemoConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        flavor: Flavor::PlainOidc,
        client_id: "plain".into(),
        client_secret: "plain-secret".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let issuer = oidc.issuer_str().to_owned();
    let app = TestApp::spawn_with(backend, move |s| {
        let entry = serde_json::json!({
            "kind": "oidc", "issuer": issuer, "client_id": "plain", "client_secret": "plain-secret",
            "client_auth": "client_secret_post", "scopes": ["openid", "profile", "email"],
        });
        s.providers
            .insert("plain".into(), serde_json::from_value(entry).unwrap());
    })
    .await;
    let cookie = app.sign_up(&unique_email("oidc")).await;
    let res = start(&app, &cookie, "plain", &[]).await;
    let authorize = location(&res);
    assert!(
        authorize.starts_with(&format!("{}/v2/oauth2/authorize?", oidc.issuer_str())),
        "{authorize}"
    );
    let page = app.client.get(&authorize).send().await.unwrap().text().await.unwrap();
    let marker = "name=\"request_id\" value=\"";
    let at = page.find(marker).unwrap() + marker.len();
    let request_id = &page[at..at + page[at..].find('"').unwrap()];
    let res = app
        .client
        .post(format!("{}/v2/oauth2/authorize/decision", oidc.issuer_str()))
        .form(&[
            ("request_id", request_id),
            ("identity", identity(2)),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let landed = location(&callback(&app, &cookie, &location(&res)).await);
    assert!(landed.contains("linked="), "{landed}");
    let (provider, subject): (String, String) = sqlx::query_as("SELECT provider, subject FROM linked_accounts")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!((provider.as_str(), subject.as_str()), ("plain", identity(2)));
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM token_sets WHERE resource_server = '127.0.0.1'"
        )
        .await,
        1
    );
}

on_both_backends!(
    full_link_stores_one_token_set_per_resource_server,
    two_accounts_at_one_provider_and_relinking_one_updates_it,
    an_identity_linked_by_another_user_is_refused_and_audited,
    reconnect_as_another_subject_is_refused_and_keeps_the_old_tokens,
    declined_consent_and_provider_errors_link_nothing,
    bad_states_are_refused_each_with_its_message,
    token_endpoint_failures_are_told_apart,
    id_token_and_issuer_defects_are_refused,
    pending_flows_per_session_are_capped,
    a_refused_link_keeps_the_grant_another_link_lives_on,
    offline_access_asks_for_consent_and_a_link_without_refresh_token_says_when_it_ends,
    unknown_providers_are_404_and_start_needs_a_post_from_a_signed_in_user,
    undecryptable_tokens_mark_the_account_error_and_keys_rotate,
    the_generic_oidc_kind_links_through_discovery,
);

/// What a `token_sets` row selected with `id`, `account_id` and `resource_server` has its values bound to.
fn set_key(row: &sqlx::any::AnyRow) -> SetKey<'_> {
    SetKey {
        id: row.try_get_unchecked::<&str, _>("id").unwrap(),
        account_id: row.try_get_unchecked::<&str, _>("account_id").unwrap(),
        resource_server: row.try_get_unchecked::<&str, _>("resource_server").unwrap(),
    }
}

/// Conformance against an independent, OpenID Certified provider (panva's `oidc-provider`, `tests/support/
/// oidc_provider.rs`), beside the demo: linking, refresh rotation with reuse detection, strict client
/// authentication, `offline_access` in strict and lenient modes, revocation, consent denial. One backend: what is
/// tested is the protocol.
mod conformance {
    use crate::support::{
        Backend, TestApp,
        oauth::{callback, location, query_value, start},
        oidc_provider::{CLIENT_ID, CLIENT_SECRET, Mode, OidcProvider},
        unique_email,
    };
    use onbehalf::{
        delegation::ApiRequest,
        tokens::repo::{SetKey, refresh_slot},
    };
    use reqwest::StatusCode;
    use secrecy::ExposeSecret;

    /// The app on a port chosen first (the provider must know its callback URLs) with each of `providers` an `oidc`
    /// entry at the provider, its own settings merged in.
    async fn app_at(mode: Mode, providers: &[(&str, serde_json::Value)]) -> (TestApp, OidcProvider) {
        let port = crate::support::free_port();
        let callbacks: Vec<String> = providers
            .iter()
            .map(|(id, _)| format!("http://127.0.0.1:{port}/oauth/{id}/callback"))
            .collect();
        let op = OidcProvider::start(mode, &callbacks);
        let issuer = op.issuer.clone();
        let providers: Vec<(String, serde_json::Value)> = providers
            .iter()
            .map(|(id, extra)| ((*id).to_owned(), extra.clone()))
            .collect();
        let app = TestApp::spawn_with(Backend::Sqlite, move |s| {
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            for (id, extra) in providers {
                let mut entry = serde_json::json!({
                    "kind": "oidc", "issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                    "scopes": ["openid", "email", "offline_access"], "api_base_urls": [format!("{issuer}/me")],
                });
                entry
                    .as_object_mut()
                    .unwrap()
                    .extend(extra.as_object().cloned().unwrap_or_default());
                s.providers.insert(id, serde_json::from_value(entry).unwrap());
            }
        })
        .await;
        (app, op)
    }

    /// Start at `provider`, sign in at the provider as `login` and allow or deny; where the callback sent the browser.
    async fn link(app: &TestApp, op: &OidcProvider, cookie: &str, provider: &str, decision: &str) -> String {
        let res = start(app, cookie, provider, &[]).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let back = op.authorize(&location(&res), "ada", decision).await;
        let res = callback(app, cookie, &back).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        location(&res)
    }

    struct Stored {
        id: String,
        user_id: i64,
        resource_server: String,
        scopes: String,
        refresh_token: Option<String>,
    }

    async fn stored(app: &TestApp, account_id: &str) -> Stored {
        let (id, user_id, resource_server, scopes, sealed): (String, i64, String, String, Option<String>) =
            sqlx::query_as(
                "SELECT t.id, a.user_id, t.resource_server, t.scopes, t.refresh_token FROM token_sets t \
                 JOIN linked_accounts a ON a.id = t.account_id WHERE t.account_id = $1",
            )
            .bind(account_id)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        let key = SetKey {
            id: &id,
            account_id,
            resource_server: &resource_server,
        };
        let refresh_token = sealed.map(|s| {
            let token = app.state.vault.open(&s, refresh_slot(key)).unwrap();
            token.expose_secret().to_owned()
        });
        Stored {
            id,
            user_id,
            resource_server,
            scopes,
            refresh_token,
        }
    }

    /// The provider's userinfo, asked for the account as a delegated call.
    async fn userinfo(app: &TestApp, op: &OidcProvider, account_id: &str, set: &Stored) -> serde_json::Value {
        let response = app
            .state
            .delegation
            .call(ApiRequest {
                user_id: set.user_id,
                account_id,
                resource_server: &set.resource_server,
                method: reqwest::Method::GET,
                url: reqwest::Url::parse(&format!("{}/me", op.issuer)).unwrap(),
                path_template: "/me",
                json: None,
                request_id: None,
                about: Vec::new(),
                keep: &[],
            })
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{:?}", String::from_utf8_lossy(&response.body));
        serde_json::from_slice(&response.body).unwrap()
    }

    async fn expire(app: &TestApp, set: &Stored) {
        sqlx::query("UPDATE token_sets SET expires_at = $1 WHERE id = $2")
            .bind(onbehalf::db::now_ms() - 1_000)
            .bind(&set.id)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    }

    /// Strict mode: `offline_access` with `prompt=consent` brings a refresh token; each refresh sends the newest
    /// refresh token (the provider revokes the whole grant when a rotated one comes back, so three working calls
    /// across two expiries prove it); disconnect revokes what is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn strict_links_refreshes_with_rotation_and_disconnect_revokes() {
        let (app, op) = app_at(Mode::Strict, &[("conf", serde_json::json!({}))]).await;
        let cookie = app.sign_up(&unique_email("conf")).await;
        let landed = link(&app, &op, &cookie, "conf", "allow").await;
        let account = query_value(&landed, "linked").unwrap_or_else(|| panic!("linked, got {landed}"));
        let first = stored(&app, &account).await;
        assert!(
            first.scopes.split(' ').any(|s| s == "offline_access"),
            "{}",
            first.scopes
        );
        let first_refresh = first.refresh_token.clone().expect("a refresh token");
        let html = app.get("/linked-accounts", Some(&cookie)).await.text().await.unwrap();
        assert!(
            !html.contains("Missing") && !html.contains("No refresh token was issued"),
            "{html}"
        );

        assert_eq!(userinfo(&app, &op, &account, &first).await["sub"], "ada");
        for _ in 0..2 {
            expire(&app, &stored(&app, &account).await).await;
            assert_eq!(userinfo(&app, &op, &account, &first).await["sub"], "ada");
        }
        let now = stored(&app, &account).await.refresh_token.unwrap();
        assert_ne!(now, first_refresh, "rotated");
        assert!(!op.is_active(&first_refresh).await, "the first refresh token was spent");
        assert!(op.is_active(&now).await, "the stored one is the live one");

        let res = app
            .call("disconnect_account", &[("account", &account)], Some(&cookie))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(!op.is_active(&now).await, "disconnect revoked it at the provider");
    }

    /// Lenient mode: a refresh token without `offline_access` in the granted scope. It counts as offline access:
    /// the card shows nothing missing, and the token refreshes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lenient_refresh_token_without_offline_access_in_scope_is_offline_access() {
        let (app, op) = app_at(
            Mode::Lenient,
            &[("conf", serde_json::json!({"authorize_params": {"prompt": "login"}}))],
        )
        .await;
        let cookie = app.sign_up(&unique_email("lenient")).await;
        let landed = link(&app, &op, &cookie, "conf", "allow").await;
        let account = query_value(&landed, "linked").unwrap_or_else(|| panic!("linked, got {landed}"));
        let set = stored(&app, &account).await;
        assert!(!set.scopes.contains("offline_access"), "{}", set.scopes);
        assert!(set.refresh_token.is_some());
        let html = app.get("/linked-accounts", Some(&cookie)).await.text().await.unwrap();
        assert!(
            !html.contains("Missing") && !html.contains("No refresh token was issued"),
            "{html}"
        );
        expire(&app, &set).await;
        assert_eq!(userinfo(&app, &op, &account, &set).await["sub"], "ada");
    }

    /// Strict mode with the operator's own `prompt` (no consent asked): no refresh token, and the card says when
    /// the link stops working; client authentication the provider does not accept and a denied consent are refused
    /// with their own message codes, and link nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn strict_without_consent_client_auth_refused_and_consent_denied() {
        let (app, op) = app_at(
            Mode::Strict,
            &[
                ("login", serde_json::json!({"authorize_params": {"prompt": "login"}})),
                ("post", serde_json::json!({"client_auth": "client_secret_post"})),
                ("conf", serde_json::json!({})),
            ],
        )
        .await;
        let cookie = app.sign_up(&unique_email("strict")).await;
        let landed = link(&app, &op, &cookie, "login", "allow").await;
        let account = query_value(&landed, "linked").unwrap_or_else(|| panic!("linked, got {landed}"));
        let set = stored(&app, &account).await;
        assert_eq!(set.refresh_token, None);
        assert!(!set.scopes.contains("offline_access"), "{}", set.scopes);
        let html = app.get("/linked-accounts", Some(&cookie)).await.text().await.unwrap();
        assert!(
            html.contains("No refresh token was issued for this link: it stops working at"),
            "{html}"
        );
        assert!(
            !html.contains("Missing"),
            "offline_access is not an API scope to grant: {html}"
        );

        let accounts = |app: &TestApp| {
            let pool = app.state.db.pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM linked_accounts")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let before = accounts(&app).await;
        let landed = link(&app, &op, &cookie, "post", "allow").await;
        assert_eq!(
            query_value(&landed, "error").as_deref(),
            Some("client_rejected"),
            "{landed}"
        );
        let landed = link(&app, &op, &cookie, "conf", "deny").await;
        assert_eq!(
            query_value(&landed, "error").as_deref(),
            Some("access_denied"),
            "{landed}"
        );
        assert_eq!(accounts(&app).await, before, "nothing linked");
    }
}
