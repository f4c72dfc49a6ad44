//! Form bodies must be UTF-8 text. Our pages declare UTF-8, so browsers always send it; anything else is a broken
//! or hostile client. Without this check the form decoder replaces bad bytes with U+FFFD and the request fails
//! later with a misleading message ("enter an email address"), or is counted as a wrong password. Here it is
//! refused up front, raw or percent-encoded, with a message that says what is wrong. Bodies are also bounded.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::AppError;

/// The largest form we read: far above any real form (passwords are capped at 1024 characters).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn is_utf8_form(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
        && bytes
            .split(|&b| b == b'&')
            .all(|pair| percent_encoding::percent_decode(pair).decode_utf8().is_ok())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_string(&AppError::BadRequest {
        message: message.to_owned(),
    })
    .unwrap_or_default();
    let mut res = (status, body).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

pub async fn require_utf8_forms(req: Request, next: Next) -> Response {
    if !is_form(&req) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the form is larger than 64 KB");
    };
    if !is_utf8_form(&bytes) {
        return refuse(StatusCode::BAD_REQUEST, "it is not valid UTF-8 text");
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_forms_pass_and_others_do_not() {
        assert!(is_utf8_form(b"email=a%40b.org&name=J%C3%BCrgen+K"));
        assert!(!is_utf8_form(b"email=\xff\xfe"));
        assert!(!is_utf8_form(b"email=%FF%FE"));
        assert!(is_utf8_form(b""));
    }
}
