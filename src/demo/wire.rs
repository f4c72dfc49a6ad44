//! Request parsing and replies shared by the endpoints: form and query parameters, bearer tokens, JSON bodies.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;

/// Form or query parameters, kept in order so duplicates can be refused (RFC 6749 §3.1 and §3.2: parameters "MUST
/// NOT be included more than once").
pub(crate) struct Params(Vec<(String, String)>);

/// A parameter was given more than once.
#[derive(Debug)]
pub(crate) struct Duplicate(pub String);

impl Params {
    pub fn parse(encoded: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(encoded).into_owned().collect())
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Result<Option<&str>, Duplicate> {
        let mut values = self.0.iter().filter(|(key, value)| key == name && !value.is_empty());
        let first = values.next().map(|(_, value)| value.as_str());
        if values.next().is_some() {
            return Err(Duplicate(name.to_owned()));
        }
        Ok(first)
    }

    /// The first parameter given more than once, if any.
    pub fn first_duplicate(&self) -> Option<&str> {
        self.0
            .iter()
            .enumerate()
            .find(|(at, (key, _))| self.0[..*at].iter().any(|(earlier, _)| earlier == key))
            .map(|(_, (key, _))| key.as_str())
    }
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1; the scheme is case-insensitive).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the request body is declared as a form.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// A JSON reply.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A JSON reply that carries or concerns credentials: never cached (RFC 6749 §5.1).
pub(crate) fn json_no_store(status: StatusCode, body: &Value) -> Response {
    let mut response = json(status, body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_empty_values() {
        let params = Params::parse(b"a=1&b=&c=x%20y&a=2");
        assert!(params.get("a").is_err());
        assert_eq!(params.get("b").unwrap(), None);
        assert_eq!(params.get("c").unwrap(), Some("x y"));
        assert_eq!(params.first_duplicate(), Some("a"));
        assert_eq!(Params::parse(b"a=1&b=2").first_duplicate(), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }
}
