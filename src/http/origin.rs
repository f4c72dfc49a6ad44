//! Cross-site request forgery defence: a request that can change state (anything but GET, HEAD, OPTIONS) must come
//! from our own origin. Browsers send `Origin` on such requests (forms and fetch alike); when it is missing we fall
//! back to `Referer`, and when both are missing we refuse: a browser that sends neither cannot be told apart from a
//! forged request. SameSite=Lax cookies are the second layer, not the only one.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use url::Url;

use crate::error::AppError;

/// The origin every state-changing request must come from (`scheme://host[:port]`).
#[derive(Debug, Clone)]
pub struct AllowedOrigin(pub Arc<str>);

fn request_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.to_str().ok().map(str::to_owned);
    }
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    Url::parse(referer).ok().map(|u| u.origin().ascii_serialization())
}

/// Whether a GET came from a page of our own origin (a form or link on our pages), not from another site: the
/// browser's `Sec-Fetch-Site` when it sends one (every current browser does, on navigations too), else `Origin` or
/// `Referer`. A GET that would act on the user's behalf (run a provider action) runs only then: "GET must not act"
/// for anything another site can make the browser load.
pub fn is_same_origin_navigation(headers: &HeaderMap, allowed: &str) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin",
        None => request_origin(headers).is_some_and(|origin| origin == allowed),
    }
}

pub async fn require_same_origin(State(allowed): State<AllowedOrigin>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    match request_origin(req.headers()) {
        Some(origin) if origin == *allowed.0 => next.run(req).await,
        seen => {
            tracing::warn!(origin = ?seen, path = %req.uri().path(), "cross-origin request refused");
            // An AppError body, so a hydrated form shows the reason like any other error.
            let body = serde_json::to_string(&AppError::CrossOrigin {
                expected: allowed.0.to_string(),
            })
            .unwrap_or_default();
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_falls_back_to_referer() {
        let mut h = HeaderMap::new();
        assert_eq!(request_origin(&h), None);
        h.insert(
            header::REFERER,
            "http://127.0.0.1:3000/sign-in?next=/x".parse().unwrap(),
        );
        assert_eq!(request_origin(&h).as_deref(), Some("http://127.0.0.1:3000"));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert_eq!(request_origin(&h).as_deref(), Some("https://evil.example"));
    }

    #[test]
    fn a_navigation_is_same_origin_by_sec_fetch_site_else_by_origin_or_referer() {
        let ours = "http://127.0.0.1:3000";
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                h.insert(*name, value.parse().unwrap());
            }
            h
        };
        let same = |pairs: &[(&'static str, &str)]| is_same_origin_navigation(&headers(pairs), ours);
        assert!(same(&[("sec-fetch-site", "same-origin")]));
        for site in ["cross-site", "same-site", "none"] {
            assert!(
                !same(&[("sec-fetch-site", site), ("referer", "http://127.0.0.1:3000/actions")]),
                "{site}"
            );
        }
        assert!(same(&[("referer", "http://127.0.0.1:3000/actions?account=a")]));
        assert!(!same(&[("referer", "https://evil.example/")]));
        assert!(
            !same(&[]),
            "no evidence: a typed URL or a stripped referrer does not act"
        );
    }
}
