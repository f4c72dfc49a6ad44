//! `GET /admin/audit/export?format=csv|jsonl&<the audit log's filters>`: the filtered audit log as a download,
//! streamed. This file is the HTTP of it: who may, the query string, the headers, how many at once. What is
//! exported and how the export stays one moment's is `service::Export`'s; each format's encoder is its own file.
//!
//! At most [`AT_ONCE`] exports of one app run at a time (each may hold a connection for minutes); more get 429. A
//! database error mid-way ends the stream with an error, so the client sees a broken download rather than a short
//! file that looks complete.

mod csv;
mod jsonl;

use std::sync::Arc;

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::StreamExt as _;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tower_sessions::Session;

use super::{AuditQuery, repo::ExportRow, service};
use crate::{error::AppError, state::AppState};

/// Exports running at once.
const AT_ONCE: usize = 2;

/// The exports under way in this app: a permit each. The app's own, not the process's, so that apps sharing a
/// process (the tests) do not take each other's turns.
#[derive(Clone)]
struct Running(Arc<Semaphore>);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/audit/export", get(export))
        .layer(Extension(Running(Arc::new(Semaphore::new(AT_ONCE)))))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => csv::CONTENT_TYPE,
            Format::JsonLines => jsonl::CONTENT_TYPE,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }

    /// What the file begins with, before any event.
    fn header(self) -> Option<&'static str> {
        (self == Format::Csv).then_some(csv::HEADER)
    }

    fn encode(self, events: &[ExportRow]) -> Bytes {
        let write = match self {
            Format::Csv => csv::write_event,
            Format::JsonLines => jsonl::write_event,
        };
        let mut out = String::with_capacity(events.len() * 256);
        for event in events {
            write(&mut out, event);
        }
        Bytes::from(out)
    }
}

/// The query string: the format and the audit log's filters (each a string, as the form sends them).
#[derive(Debug, Deserialize)]
struct ExportParams {
    format: Option<String>,
    actor: Option<String>,
    subject: Option<String>,
    action: Option<String>,
    provider: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn refuse(err: AppError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CACHE_CONTROL, "no-store")], err.to_string()).into_response()
}

async fn export(
    State(state): State<AppState>,
    Extension(Running(running)): Extension<Running>,
    session: Session,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(err) = super::require_admin(&state, &session).await {
        return refuse(err);
    }
    let Ok(Query(params)) = params else {
        return refuse(AppError::BadRequest {
            message: "the export's query string".into(),
        });
    };
    let format = match params.format.as_deref().unwrap_or("csv") {
        "csv" => Format::Csv,
        "jsonl" => Format::JsonLines,
        _ => return refuse(AppError::invalid("format", "Export as csv or jsonl.")),
    };
    let query = AuditQuery {
        actor: params.actor,
        subject: params.subject,
        action: params.action,
        provider: params.provider,
        outcome: params.outcome,
        from: params.from,
        to: params.to,
        before: None,
    };
    let filter = match service::audit_filter(&state.db, &query).await {
        Ok(filter) => filter,
        Err(err) => return refuse(err.into()),
    };
    let Ok(permit) = running.try_acquire_owned() else {
        let message = format!("{AT_ONCE} exports are already running; try again when one has finished.");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "30"), (header::CACHE_CONTROL, "no-store")],
            message,
        )
            .into_response();
    };
    let export = match service::Export::begin(&state.db, filter).await {
        Ok(export) => export,
        Err(err) => return refuse(err.into()),
    };
    // The permit travels with the stream: it is given back when the body is done or dropped.
    let batches = futures::stream::try_unfold((export, permit), move |(mut export, permit)| async move {
        match export.next_batch().await {
            Ok(Some(events)) => Ok(Some((format.encode(&events), (export, permit)))),
            Ok(None) => Ok(None),
            Err(err) => {
                tracing::error!("audit export failed: {err}");
                Err(std::io::Error::other(err))
            }
        }
    });
    let header_row = format.header().map(|h| Ok(Bytes::from_static(h.as_bytes())));
    let body = futures::stream::iter(header_row).chain(batches);
    let filename = format!(
        "attachment; filename=\"onbehalf-audit-{}.{}\"",
        crate::db::now_ms() / 1000,
        format.extension()
    );
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// An event for the encoders' tests.
#[cfg(test)]
fn example(details: &str) -> ExportRow {
    ExportRow {
        id: 7,
        at: 1_796_117_400_000,
        actor_user_id: None,
        actor_email: None,
        subject_user_id: Some(2),
        subject_email: Some("ada@example.org".into()),
        action: "delegated_call".into(),
        outcome: "success".into(),
        provider: Some("demo".into()),
        account_id: None,
        resource_server: None,
        request_id: None,
        details: details.into(),
    }
}
