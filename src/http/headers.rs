//! Security headers on every response, and the CSP nonce that lets exactly our own inline scripts run.
//!
//! The nonce is minted here, per response, and handed to Leptos through the request extensions
//! (`provide_csp_nonce`), so the `Content-Security-Policy` header and the `nonce` attributes Leptos writes on its
//! hydration and streaming scripts always agree.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};

#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// What the headers depend on, fixed at start-up.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    pub https: bool,
    /// Extra `connect-src` (cargo-leptos' live-reload websocket in development).
    pub extra_connect_src: Option<String>,
    /// Origins forms may lead to besides our own: the providers' authorization endpoints, because the link form
    /// posts to us and is redirected there (browsers apply `form-action` to redirects too).
    pub form_action_origins: Vec<String>,
}

pub async fn security_headers(State(policy): State<HeaderPolicy>, mut req: Request, next: Next) -> Response {
    let nonce = format!("{:032x}", rand::random::<u128>());
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut res = next.run(req).await;
    let connect_extra = policy
        .extra_connect_src
        .as_deref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    let form_action: String = policy.form_action_origins.iter().map(|o| format!(" {o}")).collect();
    // 'wasm-unsafe-eval' allows compiling our WASM module and nothing else that eval would.
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'{connect_extra}; base-uri 'none'; form-action 'self'{form_action}; \
         frame-ancestors 'none'; object-src 'none'"
    );
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // same-origin, not no-referrer: a form posted without JavaScript is redirected back to its page through the
    // Referer, and other sites still learn nothing.
    // A route may be stricter (the OAuth callback sends no-referrer).
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    // Pages and API answers are per user: no browser (back button after sign-out) or proxy may keep them.
    // Static assets (their own content types) stay cacheable.
    let per_user = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if per_user {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if policy.https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

/// An incoming `X-Request-Id` is kept (to follow a request across services) only when it is safe to log: up to
/// 64 characters of `[A-Za-z0-9._-]`. Anything else is dropped, and a fresh id is made for the request.
pub async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let safe = |v: &HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= 64 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
    };
    if req.headers().get("x-request-id").is_some_and(|v| !safe(v)) {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

/// Leptos context hook: uses the nonce minted by [`security_headers`] for this request's inline scripts.
pub fn provide_csp_nonce() {
    use leptos::prelude::*;
    if let Some(parts) = use_context::<axum::http::request::Parts>()
        && let Some(CspNonce(nonce)) = parts.extensions.get::<CspNonce>()
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.as_str()));
    }
}
