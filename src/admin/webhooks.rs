//! The admin's view of webhooks: endpoints and their health, recent deliveries, one delivery's request and answers,
//! and the buttons (send a test event, redeliver, replay since, disable / enable). The rules are
//! `webhooks::endpoints`'; this module only reads for the pages and maps errors.

use super::{DeliveryDetail, WebhookDetail, WebhookList};
use crate::{
    db::now_ms,
    error::AppError,
    state::AppState,
    webhooks::{
        endpoints::{self, ChangedBy, EndpointError, Replay, ReplayError},
        repo,
    },
};

/// How many deliveries the endpoint page lists.
const RECENT: i64 = 50;

fn not_found() -> AppError {
    AppError::NotFound {
        what: "webhook endpoint".into(),
    }
}

fn endpoint_error(err: EndpointError) -> AppError {
    match err {
        EndpointError::NotFound(_) => not_found(),
        EndpointError::Database(e) => AppError::internal(e),
        other => AppError::invalid("endpoint", other.to_string()),
    }
}

pub async fn list(state: &AppState) -> Result<WebhookList, AppError> {
    Ok(WebhookList {
        endpoints: endpoints::list(&state.db).await.map_err(AppError::internal)?,
        now: now_ms(),
    })
}

pub async fn detail(state: &AppState, endpoint_id: &str, delivery: Option<i64>) -> Result<WebhookDetail, AppError> {
    let endpoint = repo::endpoint(&state.db.pool, endpoint_id)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(not_found)?;
    let deliveries = repo::recent_deliveries(&state.db.pool, endpoint_id, RECENT)
        .await
        .map_err(AppError::internal)?;
    let delivery = match delivery {
        None => None,
        Some(id) => match repo::delivery(&state.db.pool, id).await.map_err(AppError::internal)? {
            // Only a delivery of this endpoint is shown on its page.
            Some((delivery, body)) if delivery.endpoint_id == endpoint.id => {
                let attempts = repo::attempts(&state.db.pool, id).await.map_err(AppError::internal)?;
                Some(DeliveryDetail {
                    request_headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("webhook-id".into(), delivery.event_id.clone()),
                        ("webhook-timestamp".into(), "(per attempt, below)".into()),
                        ("webhook-signature".into(), "v1,… (redacted)".into()),
                    ],
                    url: endpoint.url.clone(),
                    delivery,
                    body,
                    attempts,
                })
            }
            _ => None,
        },
    };
    Ok(WebhookDetail {
        endpoint: endpoint.view(),
        deliveries,
        delivery,
        now: now_ms(),
    })
}

/// What the buttons of the webhook pages do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    Test,
    Disable,
    Enable,
    Redeliver {
        event: &'a str,
    },
    /// `since`: an HTML `datetime-local` value (taken as UTC) or Unix milliseconds.
    ReplaySince {
        since: &'a str,
    },
}

/// Runs one button; returns the notice for the page (`test`, `disabled`, `enabled`, `queued-<n>`).
pub async fn act(
    state: &AppState,
    admin_id: i64,
    endpoint_id: &str,
    action: Action<'_>,
    request_id: Option<&str>,
) -> Result<String, AppError> {
    let by = ChangedBy {
        actor_user_id: Some(admin_id),
        key: None,
        request_id,
    };
    let db = &state.db;
    let replayed = |result: Result<u64, ReplayError>| match result {
        Ok(n) => Ok(format!("queued-{n}")),
        Err(ReplayError::Endpoint(e)) => Err(endpoint_error(e)),
        Err(e @ ReplayError::NoSuchEvent(_)) => Err(AppError::invalid("event", e.to_string())),
    };
    match action {
        Action::Test => {
            let (_, enabled) = endpoints::send_test(db, endpoint_id).await.map_err(endpoint_error)?;
            Ok(if enabled { "test" } else { "test-waits" }.into())
        }
        Action::Disable => {
            endpoints::set_disabled(db, endpoint_id, Some("disabled by an admin"), by)
                .await
                .map_err(endpoint_error)?;
            Ok("disabled".into())
        }
        Action::Enable => {
            endpoints::set_disabled(db, endpoint_id, None, by)
                .await
                .map_err(endpoint_error)?;
            Ok("enabled".into())
        }
        Action::Redeliver { event } => replayed(endpoints::replay(db, endpoint_id, Replay::Event(event), by).await),
        Action::ReplaySince { since } => {
            let since = parse_since(since)?;
            replayed(endpoints::replay(db, endpoint_id, Replay::Since(since), by).await)
        }
    }
}

/// `2026-12-01T09:30` (a `datetime-local` field, UTC), with optional seconds, or Unix milliseconds.
fn parse_since(text: &str) -> Result<i64, AppError> {
    use time::{PrimitiveDateTime, macros::format_description};
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text, minutes)
        .or_else(|_| PrimitiveDateTime::parse(text, seconds))
        .map(|t| (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| AppError::invalid("since", "Give a date and time (UTC), e.g. 2026-12-01T09:30."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_form_time_in_utc_or_milliseconds() {
        assert_eq!(parse_since("2026-12-01T09:30").unwrap(), 1_796_117_400_000);
        assert_eq!(parse_since("2026-12-01T09:30:15").unwrap(), 1_796_117_415_000);
        assert_eq!(parse_since(" 1796117400000 ").unwrap(), 1_796_117_400_000);
        assert!(parse_since("yesterday").is_err());
    }
}
