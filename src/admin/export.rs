//! `GET /admin/audit/export?format=csv|jsonl&<the audit log's filters>`: the filtered audit log as a download,
//! streamed.
//!
//! The export reads the log in batches in the list's order (newest first by time, then id), each batch one short
//! keyset query, so memory stays flat however many events match. It is exactly the filtered set as of the moment
//! it began: the same rows, in the same order, as paging through the audit log page (`tests/it/admin.rs`).
//! - On SQLite, writes are serial, so events commit in id order: leaving out ids above the newest one at the start
//!   is that moment, and no read transaction is held (a long one would hold back the WAL's checkpoints).
//! - On PostgreSQL, ids are handed out at insert but commit in any order (an id below the newest can still be
//!   in flight), so the whole export reads one `REPEATABLE READ` snapshot, on one connection.
//!
//! At most [`AT_ONCE`] exports run at a time (each may hold a connection for minutes); more get 429.

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use sqlx::Row;
use tower_sessions::Session;

use super::{AuditQuery, audit_log, sql::Value};
use crate::{components::time::iso_time, error::AppError, state::AppState};

/// Events per query.
const BATCH: i64 = 1000;
/// Exports running at once.
const AT_ONCE: usize = 2;
static RUNNING: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(AT_ONCE)));

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/audit/export", get(export))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
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
    let filter = match audit_log::filter(&state, &query).await {
        Ok(filter) => filter,
        Err(err) => return refuse(err),
    };
    let Ok(permit) = RUNNING.clone().try_acquire_owned() else {
        let message = format!("{AT_ONCE} exports are already running; try again when one has finished.");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "30"), (header::CACHE_CONTROL, "no-store")],
            message,
        )
            .into_response();
    };
    let mut reader = match Reader::open(&state.db).await {
        Ok(reader) => reader,
        Err(err) => return refuse(AppError::internal(err)),
    };
    let newest: Option<i64> = match reader
        .fetch(sqlx::query("SELECT MAX(id) AS newest FROM audit_events"))
        .await
    {
        Ok(rows) => rows.first().and_then(|r| r.try_get("newest").ok()).flatten(),
        Err(err) => return refuse(AppError::internal(err)),
    };
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::JsonLines => ("application/jsonl; charset=utf-8", "jsonl"),
    };
    let header_row = (format == Format::Csv).then(|| Bytes::from_static(CSV_HEADER.as_bytes()));
    let mut filter = filter;
    filter.and("e.id <= {}", [Value::Int(newest.unwrap_or(0))]);
    let pages = futures::stream::try_unfold(
        Batch {
            reader,
            filter,
            after: None,
            done: newest.is_none(),
            format,
            _permit: permit,
        },
        next_batch,
    );
    let body = futures::stream::iter(header_row.map(Ok)).chain(pages);
    let filename = format!(
        "attachment; filename=\"onbehalf-audit-{}.{extension}\"",
        crate::db::now_ms() / 1000
    );
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

use futures::StreamExt as _;

/// Where the export reads: the pool (SQLite), or one snapshot (PostgreSQL; see the module documentation).
enum Reader {
    Pool(sqlx::AnyPool),
    Snapshot(sqlx::Transaction<'static, sqlx::Any>),
}

impl Reader {
    async fn open(db: &crate::db::Db) -> Result<Self, sqlx::Error> {
        match db.backend {
            crate::db::Backend::Sqlite => Ok(Reader::Pool(db.pool.clone())),
            crate::db::Backend::Postgres => {
                let mut tx = db.pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                Ok(Reader::Snapshot(tx))
            }
        }
    }

    async fn fetch<'q>(
        &mut self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
        match self {
            Reader::Pool(pool) => query.fetch_all(&*pool).await,
            Reader::Snapshot(tx) => query.fetch_all(&mut **tx).await,
        }
    }
}

/// Where the export is: the filter, the last event sent (at, id), and its place among the exports running.
struct Batch {
    reader: Reader,
    filter: audit_log::AuditFilter,
    after: Option<(i64, i64)>,
    done: bool,
    format: Format,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

const EXPORT_SQL: &str = "SELECT e.id, e.at, e.actor_user_id, actor.email AS actor_email, e.subject_user_id, \
     subject.email AS subject_email, e.action, e.outcome, e.provider, e.account_id, e.resource_server, e.request_id, \
     e.details FROM audit_events e LEFT JOIN users actor ON actor.id = e.actor_user_id \
     LEFT JOIN users subject ON subject.id = e.subject_user_id";

const CSV_HEADER: &str = "id,at,actor_user_id,actor_email,subject_user_id,subject_email,action,outcome,provider,\
                          account_id,resource_server,request_id,details\r\n";

/// The next batch, encoded; `None` when the log is exhausted. A database error ends the stream with an error, so
/// the client sees a broken download rather than a short file that looks complete.
async fn next_batch(mut batch: Batch) -> Result<Option<(Bytes, Batch)>, std::io::Error> {
    if batch.done {
        return Ok(None);
    }
    let mut filter = batch.filter.older_than(batch.after);
    let limit = filter.placeholder(Value::Int(BATCH));
    let sql = format!(
        "{EXPORT_SQL} WHERE {} ORDER BY {} LIMIT {limit}",
        filter.sql(),
        audit_log::ORDER
    );
    let rows = batch.reader.fetch(filter.bind(sqlx::query(&sql))).await.map_err(|e| {
        tracing::error!("audit export failed: {e}");
        std::io::Error::other(e)
    })?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(rows.len() * 256);
    for row in &rows {
        let event = ExportedEvent::read(row).map_err(std::io::Error::other)?;
        batch.after = Some((event.at, event.id));
        match batch.format {
            Format::Csv => event.write_csv(&mut out),
            Format::JsonLines => event.write_json_line(&mut out),
        }
    }
    batch.done = (rows.len() as i64) < BATCH;
    Ok(Some((Bytes::from(out), batch)))
}

struct ExportedEvent {
    id: i64,
    at: i64,
    actor_user_id: Option<i64>,
    actor_email: Option<String>,
    subject_user_id: Option<i64>,
    subject_email: Option<String>,
    action: String,
    outcome: String,
    provider: Option<String>,
    account_id: Option<String>,
    resource_server: Option<String>,
    request_id: Option<String>,
    details: String,
}

impl ExportedEvent {
    fn read(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            actor_user_id: row.try_get("actor_user_id")?,
            actor_email: row.try_get("actor_email")?,
            subject_user_id: row.try_get("subject_user_id")?,
            subject_email: row.try_get("subject_email")?,
            action: row.try_get("action")?,
            outcome: row.try_get("outcome")?,
            provider: row.try_get("provider")?,
            account_id: row.try_get("account_id")?,
            resource_server: row.try_get("resource_server")?,
            request_id: row.try_get("request_id")?,
            details: row.try_get("details")?,
        })
    }

    fn write_csv(&self, out: &mut String) {
        let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        let cells = [
            self.id.to_string(),
            iso_time(self.at),
            number(self.actor_user_id),
            self.actor_email.clone().unwrap_or_default(),
            number(self.subject_user_id),
            self.subject_email.clone().unwrap_or_default(),
            self.action.clone(),
            self.outcome.clone(),
            self.provider.clone().unwrap_or_default(),
            self.account_id.clone().unwrap_or_default(),
            self.resource_server.clone().unwrap_or_default(),
            self.request_id.clone().unwrap_or_default(),
            self.details.clone(),
        ];
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_cell(out, cell);
        }
        out.push_str("\r\n");
    }

    fn write_json_line(&self, out: &mut String) {
        let details: serde_json::Value =
            serde_json::from_str(&self.details).unwrap_or(serde_json::Value::String(self.details.clone()));
        let line = serde_json::json!({
            "id": self.id,
            "at": iso_time(self.at),
            "actor_user_id": self.actor_user_id,
            "actor_email": self.actor_email,
            "subject_user_id": self.subject_user_id,
            "subject_email": self.subject_email,
            "action": self.action,
            "outcome": self.outcome,
            "provider": self.provider,
            "account_id": self.account_id,
            "resource_server": self.resource_server,
            "request_id": self.request_id,
            "details": details,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break. A cell a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`; OWASP "CSV injection") gets a leading `'`: the values come from providers and users.
fn csv_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = formula || value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        let cell = |v: &str| {
            let mut s = String::new();
            csv_cell(&mut s, v);
            s
        };
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("{\"k\":1}"), "\"{\"\"k\"\":1}\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1"), "\"'-1\"");
    }
}
