//! Pages, probes and response headers, on SQLite and PostgreSQL.

mod common;

use common::{Backend, TestApp};
use reqwest::{StatusCode, header};

on_both_backends!(
    pages_render_on_the_server,
    unknown_paths_are_404_pages,
    every_response_has_security_headers_and_a_request_id,
    csp_nonce_matches_the_inline_scripts,
    health_and_readiness_probes_answer,
);

async fn pages_render_on_the_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, text) in [
        ("/", "Act on behalf of your users"),
        ("/sign-in", "Sign in"),
        ("/sign-up", "Create an account"),
    ] {
        let res = app.get(path, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = res.text().await.unwrap();
        assert!(html.contains(text), "{path} lacks {text:?}");
        assert!(html.contains(r#"<html lang="en""#));
    }
    let sign_in = app.get("/sign-in", None).await.text().await.unwrap();
    for label in [
        r#"<label for="field-email">Email</label>"#,
        r#"<label for="field-password">Password</label>"#,
    ] {
        assert!(sign_in.contains(label), "missing {label}");
    }
    assert!(
        sign_in.contains(r#"action="/api/sign_in""#),
        "the form must post without JavaScript"
    );
    // The islands loader, and the form as an island: with the whole-page loader the forms never become live.
    assert!(
        sign_in.contains("hydrateIslands"),
        "the page must load the islands loader"
    );
    assert!(
        sign_in.contains(r#"<leptos-island data-component="SignInForm_"#),
        "the form must be an island"
    );
}

async fn unknown_paths_are_404_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/no/such/page", None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("Page not found"));
}

async fn every_response_has_security_headers_and_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/", "/healthz", "/favicon.ico"] {
        let res = app.get(path, None).await;
        let h = res.headers();
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
            "{path}: {csp}"
        );
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert_eq!(h["x-request-id"].len(), 36, "{path}: a UUID request id");
        assert!(
            !h.contains_key(header::STRICT_TRANSPORT_SECURITY),
            "no HSTS over plain http"
        );
    }
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"],
        "trace-me-123",
        "an incoming request id is kept"
    );
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a user_id=1 forged")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"].len(),
        36,
        "an id unsafe to log is replaced by a fresh one"
    );

    // Pages are per user and must not be kept by browsers or proxies; static files may be.
    let page = app.get("/sign-in", None).await;
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    let asset = app.get("/favicon.svg", None).await;
    assert_ne!(
        asset.headers().get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
}

async fn csp_nonce_matches_the_inline_scripts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/sign-in", None).await;
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("CSP has a nonce")
        .to_owned();
    let html = res.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(
        html.matches(&format!(r#"nonce="{nonce}""#)).count(),
        scripts,
        "every script carries this response's nonce"
    );
    let again = app.get("/sign-in", None).await;
    assert!(
        !again.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains(&nonce),
        "nonces are per response"
    );
}

async fn health_and_readiness_probes_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/healthz", None).await;
    assert_eq!(
        (res.status(), res.text().await.unwrap().as_str()),
        (StatusCode::OK, "ok")
    );
    let res = app.get("/readyz", None).await;
    assert_eq!(
        (res.status(), res.text().await.unwrap().as_str()),
        (StatusCode::OK, "ready")
    );
    app.state.db.pool.close().await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::SERVICE_UNAVAILABLE);
}
