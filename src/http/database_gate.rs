//! Requests while PostgreSQL is away (a restart, a failover): refused at once with 503 and `Retry-After`, in the form
//! the caller reads (the service API's error body, a server function's `AppError`, a page), instead of each one
//! waiting out the connection pool's acquire timeout (10 s) while sqlx keeps trying to connect. Whether the database
//! answers is `Db::watch_reachability`'s to say; on SQLite (a file) it always does.
//!
//! Requests already past the gate when the database goes away are not cancelled: cancelling a handler mid-way could
//! drop work it has done at a provider (a rotated refresh token). Their database calls fail instead, at once (the
//! watch makes the pool's new connections fail while it is away, `db::away_options`), so each handler decides what to
//! keep (a refresh keeps its new tokens in memory and tries the write again, `delegation::refresh`), and the 500 it
//! ends with is answered 503 here.

use std::time::Duration;

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};

use crate::{db::Db, error::AppError};

/// Seconds a caller is asked to wait (the watch asks again every 100 ms; a restart takes a few seconds).
const RETRY_AFTER_SECONDS: u32 = 1;

/// How long a request that failed with a 500 waits to learn whether the database answers (see below).
const PROBE: Duration = Duration::from_millis(300);

/// Who is asking, by path: which form a refusal takes. Decided before the request is handed on (no copy of the path
/// on every request).
#[derive(Clone, Copy)]
enum Caller {
    ServiceApi,
    ServerFunction,
    Page,
}

impl Caller {
    fn of(path: &str) -> Self {
        if path.starts_with("/api/v1/") {
            Caller::ServiceApi
        } else if path.starts_with("/api/") {
            Caller::ServerFunction
        } else {
            Caller::Page
        }
    }
}

pub async fn refuse_while_unreachable(State(db): State<Db>, req: Request, next: Next) -> Response {
    if !needs_database(req.uri().path()) {
        return next.run(req).await;
    }
    let caller = Caller::of(req.uri().path());
    if !db.is_reachable() {
        return unavailable(caller);
    }
    let response = next.run(req).await;
    // A request the outage caught mid-way (its connection cut under it, before the watch saw it go) fails with a
    // 500; when the database does not answer now either, that failure is the outage's, and answered as such.
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR && !db.answers_within(PROBE).await {
        return unavailable(caller);
    }
    response
}

fn unavailable(caller: Caller) -> Response {
    let error = AppError::DatabaseUnavailable;
    let mut response = match caller {
        Caller::ServiceApi => {
            let body = serde_json::json!({
                "error": "unavailable",
                "message": error.to_string(),
                "retry_after_seconds": RETRY_AFTER_SECONDS,
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
        Caller::ServerFunction => (StatusCode::SERVICE_UNAVAILABLE, Json(error)).into_response(),
        Caller::Page => {
            let page = format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Briefly unavailable · onbehalf\
             </title></head><body><main><h1>Briefly unavailable</h1><p>{}</p></main></body></html>",
                crate::http::escape_html(&error.to_string())
            );
            (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response()
        }
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// Everything but the probes (liveness needs no database; readiness says itself that it is away) and static files
/// (served from disk).
fn needs_database(path: &str) -> bool {
    let static_file = path.starts_with("/pkg/") || path.rsplit('/').next().is_some_and(|last| last.contains('.'));
    !(path == "/healthz" || path == "/readyz" || static_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_files_pass_everything_else_needs_the_database() {
        for path in [
            "/healthz",
            "/readyz",
            "/pkg/onbehalf.js",
            "/favicon.ico",
            "/style/main.css",
        ] {
            assert!(!needs_database(path), "{path}");
        }
        for path in [
            "/",
            "/linked-accounts",
            "/api/actions_page",
            "/api/v1/accounts",
            "/metrics",
        ] {
            assert!(needs_database(path), "{path}");
        }
    }
}
