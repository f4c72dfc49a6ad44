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

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
