//! HTTP hygiene around every route: each request under no leaked Leptos owner, same-origin checks for state changes,
//! UTF-8 and bounded form bodies, security headers with a per-response CSP nonce, error statuses for server
//! functions, signed form errors in URLs, the health probes and the metrics scrape.

pub mod database_gate;
pub mod form_encoding;
pub mod form_errors;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod origin;
pub mod owner;
pub mod server_fn_status;

/// The credentials of an `Authorization: Bearer <credentials>` header (the scheme in any case, RFC 7235), for the
/// machine surfaces (metrics, service API).
pub fn bearer_credentials(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or `::1` (the url crate lower-cases names). Where
/// plain http is tolerated: a loopback issuer, a loopback webhook receiver, a development `public_url`.
pub fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
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

/// `response` with `Referrer-Policy: no-referrer`: for answers whose URL is a credential until used (an OAuth
/// callback, a connect link), so the next site is not told it.
pub fn without_referrer(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A 303 to `location` that tells it nothing of where the browser came from.
pub fn see_other(location: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    without_referrer(axum::response::Redirect::to(location).into_response())
}

/// Whether `path` holds a percent-encoded dot, slash or backslash: a router or proxy that decodes it could resolve
/// the path to another one than the text says (`/pkg/%2e%2e/account`, `/app/..%2fadmin`).
pub fn has_encoded_separator(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ["%2e", "%2f", "%5c"].iter().any(|encoded| lower.contains(encoded))
}
