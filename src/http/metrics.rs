//! `GET /metrics`: the counters of `crate::metrics` in OpenMetrics text, and the linked accounts by provider and
//! status, read from the database at each scrape.
//!
//! Off (404) unless `metrics.token` is configured, and then answered only to a scraper that sends it as a bearer
//! token: metrics name providers and show activity, which is not for the public.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::{accounts::AccountStatus, state::AppState};

pub async fn serve(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.settings.metrics.token.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = super::bearer_credentials(&headers);
    // Compared as digests: equal-length inputs, so the comparison's time tells nothing about the token.
    let digest = |s: &str| Sha256::digest(s.as_bytes());
    if presented.is_none_or(|p| digest(p) != digest(token.expose_secret())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            "A valid metrics token is required.",
        )
            .into_response();
    }
    let counted = match crate::accounts::repo::count_by_provider_and_status(&state.db.pool).await {
        Ok(counted) => counted,
        Err(e) => {
            tracing::error!("metrics: could not count linked accounts: {e}");
            return (StatusCode::SERVICE_UNAVAILABLE, "The database is unavailable.").into_response();
        }
    };
    // Every configured provider has every status, at 0 when no account is in it: a series that vanished would read
    // as "no data", not as "none".
    let mut links: Vec<(String, String, i64)> = Vec::new();
    for provider in state.catalog.all() {
        links.extend(AccountStatus::ALL.map(|status| (provider.id.clone(), status.as_str().to_owned(), 0)));
    }
    links.extend(counted);
    match crate::metrics::encode_with_links(links).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
