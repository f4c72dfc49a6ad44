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
}
