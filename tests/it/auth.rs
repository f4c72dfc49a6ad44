//! Sign-up, sign-in, sessions and their attacks, against the real app on SQLite and on PostgreSQL.

use std::time::Duration;

use crate::support::{Backend, PASSWORD, TestApp, error_kind, session_cookie, unique_email};
use onbehalf::auth::{Role, service};
use reqwest::{StatusCode, header};

on_both_backends!(
    sign_up_then_sign_in_then_sign_out_invalidates_the_old_cookie,
    session_cookie_is_http_only_lax_and_secure_only_over_https,
    sessions_are_stored_only_as_digests,
    sign_in_issues_a_new_session_id_and_kills_the_planted_one,
    wrong_password_and_unknown_email_get_the_same_answer,
    repeated_failures_are_slowed_then_refused_without_locking_out_the_real_user,
    duplicate_email_is_refused_whatever_its_case,
    bad_input_gets_a_clear_error_and_never_a_500,
    cross_origin_posts_are_refused,
    disabled_user_cannot_sign_in_and_loses_open_sessions,
    change_password_needs_the_current_one_and_ends_other_sessions,
    sign_up_can_be_turned_off,
    forms_work_without_javascript_and_errors_come_back_to_the_page,
    sign_in_never_redirects_off_site,
    errors_in_the_url_show_only_when_the_server_signed_them,
    sign_ups_are_throttled_per_client,
    account_page_sends_visitors_to_sign_in,
    parallel_guesses_get_no_more_tries_than_sequential_ones,
    guessing_the_current_password_is_throttled,
    idle_sessions_slide_with_use_and_end_without_it,
    sessions_end_at_the_absolute_timeout_however_active,
);

async fn sign_up_then_sign_in_then_sign_out_invalidates_the_old_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("ada");
    let first = app.sign_up(&email).await;
    assert_eq!(app.whoami(&first).await.as_deref(), Some(email.as_str()));

    let res = app.call("sign_out", &[], Some(&first)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.whoami(&first).await,
        None,
        "the cookie of a signed-out session must be dead"
    );

    let res = app.sign_in(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = session_cookie(&res).expect("sign-in sets a cookie").value;
    assert_ne!(second, first);
    assert_eq!(app.whoami(&second).await.as_deref(), Some(email.as_str()));
    assert_eq!(res.json::<String>().await.unwrap(), "/account");
}

/// A database or backup that leaks holds no live session: only digests of session ids are stored, and a digest
/// presented as a cookie is no session.
async fn sessions_are_stored_only_as_digests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("digest");
    let cookie = app.sign_up(&email).await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert!(!stored.contains(&cookie), "the cookie's id is in the database");
    assert!(stored.contains(&onbehalf::digest::sha256_hex(&cookie)), "{stored:?}");
    assert_eq!(app.whoami(&cookie).await.as_deref(), Some(email.as_str()));
    for leaked in &stored {
        assert_eq!(app.whoami(leaked).await, None, "a stored value works as a cookie");
    }
}

async fn session_cookie_is_http_only_lax_and_secure_only_over_https(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.sign_up_response("c@example.org").await;
    let cookie = session_cookie(&res).unwrap();
    assert_eq!(cookie.name, "onbehalf_session");
    assert!(cookie.has("HttpOnly"), "{cookie:?}");
    assert!(cookie.has("SameSite=Lax"), "{cookie:?}");
    assert!(cookie.has("Path=/"), "{cookie:?}");
    assert!(!cookie.has("Secure"), "plain http must not set Secure: {cookie:?}");
    assert!(
        cookie
            .attributes
            .iter()
            .any(|a| a.starts_with("max-age=") || a.starts_with("expires=")),
        "bounded lifetime: {cookie:?}"
    );

    drop(app);
    let app = TestApp::spawn_with(backend, |s| {
        s.server.public_url = Some("https://onbehalf.example.org".parse().unwrap());
    })
    .await;
    let res = app.sign_up_response("c@example.org").await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = session_cookie(&res).unwrap();
    assert_eq!(cookie.name, "__Host-onbehalf_session");
    assert!(cookie.has("Secure") && cookie.has("HttpOnly"), "{cookie:?}");
    assert!(res.headers().contains_key(header::STRICT_TRANSPORT_SECURITY));
}

async fn sign_in_issues_a_new_session_id_and_kills_the_planted_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let victim = unique_email("victim");
    let planted = app.sign_up(&unique_email("attacker")).await;
    app.sign_up(&victim).await;

    // The attacker's session id is planted in the victim's browser; the victim signs in with it.
    let res = app
        .client
        .post(app.url("/api/sign_in"))
        .header(header::ORIGIN, app.origin())
        .header(header::COOKIE, format!("onbehalf_session={planted}"))
        .form(&[("email", victim.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let fresh = session_cookie(&res).expect("a new cookie").value;
    assert_ne!(fresh, planted, "the session id must change at sign-in");
    assert_eq!(app.whoami(&fresh).await.as_deref(), Some(victim.as_str()));
    assert_ne!(
        app.whoami(&planted).await.as_deref(),
        Some(victim.as_str()),
        "the planted id must not see the victim"
    );

    // A made-up id is not adopted either.
    let res = app
        .client
        .post(app.url("/api/sign_in"))
        .header(header::ORIGIN, app.origin())
        .header(header::COOKIE, "onbehalf_session=AAAAAAAAAAAAAAAAAAAAAA")
        .form(&[("email", victim.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_ne!(session_cookie(&res).unwrap().value, "AAAAAAAAAAAAAAAAAAAAAA");
}

async fn wrong_password_and_unknown_email_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("known");
    app.sign_up(&email).await;
    let wrong = app.sign_in(&email, "not the password").await;
    let unknown = app.sign_in(&unique_email("nobody"), "not the password").await;
    assert!(session_cookie(&wrong).is_none() && session_cookie(&unknown).is_none());
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let (b1, b2) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(b1, b2, "the two answers must be identical");
    let wrong: serde_json::Value = serde_json::from_str(&b1).unwrap();
    assert_eq!(wrong["kind"], "invalid_credentials");
}

/// Two clients, told apart by the proxy header the test app trusts (`server.client_ip_header`).
const ATTACKER: &str = "203.0.113.66";
const USER: &str = "198.51.100.7";

async fn repeated_failures_are_slowed_then_refused_without_locking_out_the_real_user(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.server.client_ip_header = Some("x-test-client".into());
        let t = &mut s.auth.throttle;
        t.account_free_failures = 3;
        t.account_base_delay = Duration::from_millis(1500);
        t.account_max_delay = Duration::from_millis(1500);
        t.client_account_lockout_failures = 5;
        t.lockout = Duration::from_secs(600);
    })
    .await;
    let email = unique_email("target");
    app.sign_up(&email).await;
    let attempt = |client: &'static str, password: &'static str| {
        let app = &app;
        let email = email.clone();
        async move {
            app.client
                .post(app.url("/api/sign_in"))
                .header(header::ORIGIN, app.origin())
                .header("x-test-client", client)
                .form(&[("email", email.as_str()), ("password", password)])
                .send()
                .await
                .unwrap()
        }
    };

    for _ in 0..3 {
        assert_eq!(attempt(ATTACKER, "guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    // Slowed: the 3rd (last free) attempt made every attempt on the account wait, even with the right password.
    let refused = attempt(ATTACKER, "guess").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "2");
    let (_, kind, body) = error_kind(refused).await;
    assert_eq!(kind, "throttled", "{body}");
    assert_eq!(attempt(USER, PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // ... but only for a while: the real user gets in once the delay has passed.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(attempt(USER, PASSWORD).await.status(), StatusCode::OK);

    // The attacker's 5th failure on this account locks out the attacker's client, not the real user.
    assert_eq!(attempt(ATTACKER, "guess").await.status(), StatusCode::UNAUTHORIZED);
    let locked = attempt(ATTACKER, PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = locked.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(wait > 500, "refused for the lockout period, got {wait}s");
    assert_eq!(attempt(USER, PASSWORD).await.status(), StatusCode::OK);
}

async fn duplicate_email_is_refused_whatever_its_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("dup");
    app.sign_up(&email).await;
    let res = app
        .call(
            "sign_up",
            &[
                ("email", &format!("  {}  ", email.to_uppercase())),
                ("display_name", ""),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
            None,
        )
        .await;
    assert!(session_cookie(&res).is_none());
    let (status, kind, body) = error_kind(res).await;
    assert_eq!((status, kind.as_str()), (StatusCode::CONFLICT, "email_taken"), "{body}");
    assert!(body.contains("already exists"));
}

async fn bad_input_gets_a_clear_error_and_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big = "x".repeat(10 * 1024);
    let big_email = format!("{big}@example.org");
    /// (server function, form fields, words the message must contain)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "sign_up",
            vec![
                ("email", ""),
                ("display_name", ""),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
            "Enter your email",
        ),
        (
            "sign_up",
            vec![
                ("email", &big_email),
                ("display_name", ""),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
            "at most 254",
        ),
        (
            "sign_up",
            vec![
                ("email", "e@example.org"),
                ("display_name", &big),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
            "at most 100",
        ),
        (
            "sign_up",
            vec![
                ("email", "e@example.org"),
                ("display_name", "a\u{1b}[31mb"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
            "control characters",
        ),
        (
            "sign_up",
            vec![
                ("email", "e@example.org"),
                ("display_name", ""),
                ("password", &big),
                ("password_confirm", &big),
            ],
            "at most 1024",
        ),
        (
            "sign_up",
            vec![
                ("email", "e@example.org"),
                ("display_name", ""),
                ("password", "short"),
                ("password_confirm", "short"),
            ],
            "at least 8",
        ),
        (
            "sign_up",
            vec![
                ("email", "e@example.org"),
                ("display_name", ""),
                ("password", PASSWORD),
                ("password_confirm", "other one"),
            ],
            "do not match",
        ),
        (
            "sign_up",
            vec![
                ("email", "e@example.org"),
                ("display_name", ""),
                ("password", "pass\u{0}word1"),
                ("password_confirm", "pass\u{0}word1"),
            ],
            "control characters",
        ),
        (
            "sign_up",
            vec![
                ("email", "not-an-email"),
                ("display_name", ""),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
            "like name@example.org",
        ),
        (
            "sign_in",
            vec![("email", ""), ("password", PASSWORD)],
            "Enter your email",
        ),
        (
            "sign_in",
            vec![("email", "e@example.org"), ("password", "")],
            "Enter your password",
        ),
        (
            "sign_in",
            vec![("email", "e@example.org"), ("password", &big)],
            "at most 1024",
        ),
        ("sign_in", vec![("email", "e@example.org")], "form could not be read"),
    ];
    for (endpoint, form, expected) in cases {
        let res = app.call(endpoint, &form, None).await;
        let (status, kind, body) = error_kind(res).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{endpoint} {body}");
        assert!(kind == "invalid" || kind == "bad_request", "{body}");
        assert!(body.contains(expected), "{endpoint}: expected {expected:?} in {body}");
    }

    // Bodies that are not UTF-8, raw or percent-encoded.
    for body in [
        b"email=\xff\xfe&password=x".to_vec(),
        b"email=%FF%FE&password=secretsecret".to_vec(),
    ] {
        let res = app
            .client
            .post(app.url("/api/sign_in"))
            .header(header::ORIGIN, app.origin())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, kind, message) = error_kind(res).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{message}"
        );
        assert_eq!(message, "The form could not be read: it is not valid UTF-8 text");
    }
    let huge = format!("email=e%40example.org&password={}", "x".repeat(100 * 1024));
    let res = app
        .client
        .post(app.url("/api/sign_in"))
        .header(header::ORIGIN, app.origin())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was created by any of it, and the server is still well.
    assert_eq!(service::list_users(&app.state.db).await.unwrap().len(), 0);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

async fn cross_origin_posts_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = [
        ("email", "x@example.org"),
        ("display_name", ""),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ];
    let evil = app
        .client
        .post(app.url("/api/sign_up"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    let (status, kind, message) = error_kind(evil).await;
    assert_eq!((status, kind.as_str()), (StatusCode::FORBIDDEN, "cross_origin"));
    assert!(
        message.contains(&app.origin()),
        "the message names where to go: {message}"
    );
    let evil_referer = app
        .client
        .post(app.url("/api/sign_up"))
        .header(header::REFERER, "https://evil.example/page")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(evil_referer.status(), StatusCode::FORBIDDEN);
    let anonymous = app
        .client
        .post(app.url("/api/sign_up"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        service::list_users(&app.state.db).await.unwrap().len(),
        0,
        "nothing may have been created"
    );
    // Same-origin by Referer alone is fine (some browsers strip Origin).
    let ok = app
        .client
        .post(app.url("/api/sign_up"))
        .header(header::REFERER, app.url("/sign-up"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

async fn disabled_user_cannot_sign_in_and_loses_open_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("dis");
    service::create_user(&app.state.db, &email, "Dis", PASSWORD, Role::User)
        .await
        .unwrap();
    let cookie = session_cookie(&app.sign_in(&email, PASSWORD).await).unwrap().value;
    assert!(app.whoami(&cookie).await.is_some());

    service::set_disabled_by_email(&app.state.db, &email, true)
        .await
        .unwrap();
    assert_eq!(
        app.whoami(&cookie).await,
        None,
        "an open session of a disabled user must end"
    );
    let (status, kind, _) = error_kind(app.sign_in(&email, PASSWORD).await).await;
    assert_eq!((status, kind.as_str()), (StatusCode::FORBIDDEN, "account_disabled"));
    // A wrong password still gets the generic answer: being disabled is not revealed to a guesser.
    let (_, kind, _) = error_kind(app.sign_in(&email, "wrong password").await).await;
    assert_eq!(kind, "invalid_credentials");

    service::set_disabled_by_email(&app.state.db, &email, false)
        .await
        .unwrap();
    assert_eq!(app.sign_in(&email, PASSWORD).await.status(), StatusCode::OK);
}

async fn change_password_needs_the_current_one_and_ends_other_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("pw");
    let laptop = app.sign_up(&email).await;
    let phone = session_cookie(&app.sign_in(&email, PASSWORD).await).unwrap().value;
    let new = "a brand new passphrase";

    let wrong = app
        .call(
            "change_password",
            &[
                ("current_password", "nope nope"),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
            Some(&laptop),
        )
        .await;
    let (status, _, body) = error_kind(wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("current password is not correct"), "{body}");

    let anonymous = app
        .call(
            "change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
            None,
        )
        .await;
    assert_eq!(error_kind(anonymous).await.1, "not_signed_in");

    let res = app
        .call(
            "change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
            Some(&laptop),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let laptop_now = session_cookie(&res).expect("the session id is cycled").value;
    assert_eq!(app.whoami(&laptop_now).await.as_deref(), Some(email.as_str()));
    assert_eq!(app.whoami(&phone).await, None, "other sessions end");
    assert_eq!(app.whoami(&laptop).await, None, "the old id of this session ends too");
    assert_eq!(app.sign_in(&email, PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.sign_in(&email, new).await.status(), StatusCode::OK);
}

async fn sign_up_can_be_turned_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.auth.allow_sign_up = false).await;
    let res = app
        .call(
            "sign_up",
            &[
                ("email", "x@example.org"),
                ("display_name", ""),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
            None,
        )
        .await;
    let (status, kind, _) = error_kind(res).await;
    assert_eq!((status, kind.as_str()), (StatusCode::FORBIDDEN, "sign_up_disabled"));
}

async fn forms_work_without_javascript_and_errors_come_back_to_the_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("nojs");
    let form = [
        ("email", email.as_str()),
        ("display_name", "No JS"),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ];
    let res = app.post_plain_form("sign_up", "/sign-up", &form).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/account");
    assert!(session_cookie(&res).is_some());

    let res = app
        .post_plain_form(
            "sign_in",
            "/sign-in",
            &[("email", email.as_str()), ("password", "wrong password")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&app.url("/sign-in?")) && location.contains("__err="),
        "{location}"
    );
    // The page the browser is sent back to shows the error.
    let page = app.client.get(&location).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("That email and password do not match an account."),
        "error not rendered"
    );
    assert!(page.contains(r#"role="alert""#));
}

/// A link that puts an error in the page's URL (`?__err=`) cannot make our page say anything: only errors the server
/// signed on the way back from a form are shown, unaltered and for their own form.
async fn errors_in_the_url_show_only_when_the_server_signed_them(backend: Backend) {
    use base64::{Engine, engine::general_purpose::URL_SAFE};
    let app = TestApp::spawn(backend).await;
    let email = unique_email("spoof");
    app.sign_up(&email).await;
    let res = app
        .post_plain_form(
            "sign_in",
            "/sign-in",
            &[("email", email.as_str()), ("password", "wrong")],
        )
        .await;
    let genuine = reqwest::Url::parse(res.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    let param = |name: &str| {
        genuine
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("{name} in {genuine}"))
    };
    let (path, sig) = (param("__path"), param("__sig"));
    let lure = "Your account is locked for fraud. Call +1-555-0100 now.";
    let spoofs = [
        serde_json::json!({"kind": "invalid", "field": "email", "message": lure}),
        serde_json::json!({"kind": "bad_request", "message": lure}),
        serde_json::json!({"kind": "not_found", "what": lure}),
        serde_json::json!({"kind": "cross_origin", "expected": lure}),
        serde_json::json!({"kind": "unavailable", "message": lure}),
        serde_json::json!({"kind": "internal", "reference": lure}),
    ];
    for spoof in spoofs {
        let err = URL_SAFE.encode(spoof.to_string());
        // Unsigned, with junk, and with the genuine error's signature moved onto it.
        for signature in [None, Some("123.v1.test.AAAA"), Some(sig.as_str())] {
            let mut url = app.url("/sign-in");
            url.push_str(&format!(
                "?__path={}&__err={err}",
                url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
            ));
            if let Some(signature) = signature {
                url.push_str(&format!("&__sig={signature}"));
            }
            let page = app.client.get(&url).send().await.unwrap().text().await.unwrap();
            assert!(page.contains("Sign in"), "the page still renders: {url}");
            assert!(
                !page.contains("locked for fraud"),
                "{spoof} with {signature:?} is shown"
            );
        }
    }
    // The genuine one is shown, also after a second failure piled onto the same URL.
    let page = app
        .client
        .get(genuine.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("That email and password do not match an account."));
    let referer = format!("{}?{}", genuine.path(), genuine.query().unwrap());
    let res = app
        .post_plain_form(
            "sign_in",
            &referer,
            &[("email", "x@example.org"), ("password", "wrong")],
        )
        .await;
    let again = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(again.matches("__err=").count(), 1, "{again}");
    let page = app.client.get(&again).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"role="alert""#), "{again}");
}

/// Sign-ups from one client are bounded per window, every attempt counted (an "already exists" answer tells
/// whether an email has an account); another client is not affected.
async fn sign_ups_are_throttled_per_client(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.auth.throttle.sign_ups_per_client = 3;
        s.server.client_ip_header = Some("x-forwarded-for".into());
    })
    .await;
    let sign_up = |email: String, from: &'static str| {
        let request = app
            .client
            .post(app.url("/api/sign_up"))
            .header(header::ORIGIN, app.origin())
            .header("x-forwarded-for", from)
            .form(&[
                ("email", email.as_str()),
                ("display_name", "Spray"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ]);
        async move { request.send().await.unwrap() }
    };
    let taken = unique_email("taken");
    assert_eq!(sign_up(taken.clone(), "203.0.113.1").await.status(), StatusCode::OK);
    assert_eq!(
        sign_up(taken, "203.0.113.1").await.status(),
        StatusCode::CONFLICT,
        "counted too"
    );
    assert_eq!(
        sign_up(unique_email("third"), "203.0.113.1").await.status(),
        StatusCode::OK
    );
    let refused = sign_up(unique_email("fourth"), "203.0.113.1").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    let (_, kind, message) = error_kind(refused).await;
    assert_eq!(kind, "sign_ups_throttled");
    assert!(
        message.contains("Too many accounts were created from your network"),
        "{message}"
    );
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(users, 2, "nothing made while refused");
    // Malformed input is told what is wrong before the throttle is asked; another network signs up as usual.
    let bad = sign_up("not an email".into(), "203.0.113.1").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        sign_up(unique_email("other"), "198.51.100.7").await.status(),
        StatusCode::OK
    );
}

async fn sign_in_never_redirects_off_site(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("redir");
    app.sign_up(&email).await;
    for (next, expected) in [
        ("/account?tab=1", "/account?tab=1"),
        ("//evil.example/x", "/account"),
        ("https://evil.example", "/account"),
        ("/\\evil.example", "/account"),
    ] {
        let res = app
            .post_plain_form(
                "sign_in",
                "/sign-in",
                &[("email", email.as_str()), ("password", PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FOUND);
        assert_eq!(res.headers()[header::LOCATION], expected, "next={next}");
    }
}

async fn account_page_sends_visitors_to_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/account", None).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/sign-in?next=/account");

    let email = unique_email("page");
    let cookie = app.sign_up(&email).await;
    let res = app.get("/account", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains(&email) && html.contains("Change password"));

    // Every page arrives complete, signed-in header included: nothing is left for JavaScript to stream into place.
    for path in ["/", "/sign-in", "/sign-up", "/account"] {
        let html = app.get(path, Some(&cookie)).await.text().await.unwrap();
        let nav = &html[html.find("<nav").unwrap()..html.find("</nav>").unwrap()];
        assert!(
            nav.contains("Sign out") && nav.contains("/account"),
            "{path}: header without the user: {nav}"
        );
        assert!(!html.contains("<template"), "{path} streams parts that need JavaScript");
    }
}

async fn parallel_guesses_get_no_more_tries_than_sequential_ones(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        let t = &mut s.auth.throttle;
        t.account_free_failures = 3;
        t.account_base_delay = Duration::from_secs(60);
        t.account_max_delay = Duration::from_secs(60);
        t.client_account_lockout_failures = 1000;
        t.client_lockout_failures = 1000;
    })
    .await;
    let email = unique_email("burst");
    app.sign_up(&email).await;
    // 30 guesses at once, as a script fires them: only the 3 free ones may reach the password check.
    let guesses: Vec<_> = (0..30)
        .map(|_| {
            let (client, url, origin, email) =
                (app.client.clone(), app.url("/api/sign_in"), app.origin(), email.clone());
            tokio::spawn(async move {
                let form = [("email", email.as_str()), ("password", "a wrong guess")];
                client
                    .post(url)
                    .header(header::ORIGIN, origin)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, refused), (3, 27), "{statuses:?}");
}

async fn guessing_the_current_password_is_throttled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.auth.throttle.account_free_failures = 2;
        s.auth.throttle.account_base_delay = Duration::from_secs(60);
    })
    .await;
    let cookie = app.sign_up(&unique_email("borrowed")).await;
    let guess = |current: &'static str| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let form = [
                ("current_password", current),
                ("new_password", "new passphrase"),
                ("new_password_confirm", "new passphrase"),
            ];
            app.call("change_password", &form, Some(&cookie)).await.status()
        }
    };
    assert_eq!(guess("guess one").await, StatusCode::BAD_REQUEST);
    assert_eq!(guess("guess two").await, StatusCode::BAD_REQUEST);
    assert_eq!(
        guess(PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right one waits now"
    );
}

async fn idle_sessions_slide_with_use_and_end_without_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.auth.session_idle_timeout = Duration::from_secs(2);
        s.auth.session_absolute_timeout = Duration::from_secs(60);
    })
    .await;
    let cookie = app.sign_up(&unique_email("idle")).await;
    for _ in 0..3 {
        // Used every 0.8 s: alive after 2.4 s, longer than the idle timeout, as each use moves the end forward.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let res = app.call("get_current_user", &[], Some(&cookie)).await;
        let renewed = session_cookie(&res).expect("the cookie's lifetime is renewed");
        assert_eq!(renewed.value, cookie);
        assert!(renewed.has("max-age=2") || renewed.has("max-age=1"), "{renewed:?}");
        assert!(res.text().await.unwrap().contains("@example.org"), "still signed in");
    }
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        app.whoami(&cookie).await,
        None,
        "unused for longer than the idle timeout"
    );
}

async fn sessions_end_at_the_absolute_timeout_however_active(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.auth.session_idle_timeout = Duration::from_secs(2);
        s.auth.session_absolute_timeout = Duration::from_secs(3);
    })
    .await;
    let cookie = app.sign_up(&unique_email("absolute")).await;
    let mut alive = 0;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if app.whoami(&cookie).await.is_some() {
            alive += 1;
        }
    }
    assert!(
        (4..=6).contains(&alive),
        "alive for about 3 s of 4 s of constant use, got {alive} half-seconds"
    );
    assert_eq!(app.whoami(&cookie).await, None);
}
