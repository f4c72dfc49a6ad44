//! The few HTML pages of the demo provider (consent, errors): escaping, the page frame and its headers.
//!
//! Every dynamic value goes through [`escape`]. Pages have no script; the inline style is allowed by a per-response
//! nonce, and framing is forbidden so the consent page cannot be clickjacked.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::store::random_string;

pub(crate) use crate::http::escape_html as escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;\
line-height:1.5;color:#1b1b1b}h1{font-size:1.5rem}fieldset{border:1px solid #bbb;border-radius:.5rem;margin:1rem 0}\
label{display:block;padding:.25rem 0}ul{padding-left:1.25rem}.client{font-weight:600}\
button{font-size:1rem;padding:.5rem 1.5rem;margin-right:1rem;border-radius:.4rem;border:1px solid #555;cursor:pointer}\
button[value=allow]{background:#0b5cad;color:#fff;border-color:#0b5cad}.note{color:#555;font-size:.9rem}";

/// A complete page. `body` must already be escaped HTML. `form_action` is the origin a form's decision redirects
/// to: CSP `form-action` also governs where a form submission may be redirected.
pub(crate) fn page(status: StatusCode, title: &str, body: &str, form_action: Option<&str>) -> Response {
    let nonce = random_string(22);
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style nonce=\"{nonce}\">{STYLE}</style></head>\
         <body><main>{body}</main></body></html>\n",
        title = escape(title),
    );
    let form_action = match form_action {
        Some(origin) => format!("'self' {origin}"),
        None => "'none'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; form-action {form_action}; frame-ancestors 'none'; \
         base-uri 'none'"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// An error page, for the authorize errors that must not redirect (RFC 6749 §4.1.2.1).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Demo Globus: this request cannot be completed</h1><p role=\"alert\">{}</p>\
         <p class=\"note\">Go back to the application and start again.</p>",
        escape(message)
    );
    page(status, "Demo Globus — Error", &body, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }
}
