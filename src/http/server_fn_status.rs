//! Server functions answer every error with status 500; this layer gives each `AppError` its real status
//! (400 for bad input, 401, 403, 409, 429 with `Retry-After`), so only our own faults are 500s, for clients and
//! logs alike. The browser's server-function client decodes the error from any 4xx/5xx body, so it is unaffected.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};

use crate::error::AppError;

/// The header server_fn puts on its error responses.
const SERVER_FN_ERROR_HEADER: &str = "serverfnerror";
/// Serialized `AppError`s are a few hundred bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn server_fn_error_status(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR || !res.headers().contains_key(SERVER_FN_ERROR_HEADER) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let AppError::Throttled { retry_after_secs } | AppError::SignUpsThrottled { retry_after_secs } = err {
            parts
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
