//! HTTP hygiene around every route: same-origin checks for state changes, UTF-8 and bounded form bodies, security headers with a per-response
//! CSP nonce, error statuses for server functions, and the health probes.

pub mod form_encoding;
pub mod headers;
pub mod health;
pub mod origin;
pub mod server_fn_status;

/// The credentials of an `Authorization: Bearer <credentials>` header (the scheme in any case, RFC 7235), for the
/// machine surfaces (metrics, service API).
pub fn bearer_credentials(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}
