//! The OAuth redirect legs as plain axum routes (STYLE: not server functions — the browser navigates to them).
//!
//! `POST /oauth/{provider}/start` (a form; the Origin check covers it) answers 303 to the provider.
//! `GET /oauth/{provider}/callback` answers 303 to a clean local URL — the code never stays in the address bar or
//! history — with `Referrer-Policy: no-referrer` so the callback URL is not leaked to the next page either.

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    LinkIntent,
    link::{self, CallbackParams, Caller, Linked, StartError, StartRequest},
};
use crate::{
    connect::{ConnectMode, ConnectResult},
    http::see_other,
    state::{AppState, current_user},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/{provider}/start", post(start))
        .route("/oauth/{provider}/callback", get(callback))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StartForm {
    pub intent: Option<String>,
    pub account: Option<String>,
    /// Space-separated scopes (each one required, granted or asked for by the provider; see `link::StartRequest`).
    pub scopes: Option<String>,
    pub return_to: Option<String>,
}

fn unknown_provider(id: &str) -> Response {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    (
        StatusCode::NOT_FOUND,
        Html(format!(
            "<!doctype html><title>Unknown provider</title><h1>Unknown provider</h1><p>No provider `{id}` is \
             configured here. <a href=\"/linked-accounts\">Back to linked accounts</a></p>"
        )),
    )
        .into_response()
}

fn internal_error(cause: impl std::fmt::Display) -> Response {
    let error = crate::error::AppError::internal(cause);
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
}

fn error_location(provider: &str, error: super::LinkError) -> String {
    format!("{}?error={}&provider={provider}", link::DEFAULT_RETURN, error.code())
}

async fn start(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    session: Session,
    Form(form): Form<StartForm>,
) -> Response {
    let Some(provider) = state.catalog.get(&provider_id) else {
        return unknown_provider(&provider_id);
    };
    let user = match current_user(&state, &session).await {
        Ok(Some(user)) => user,
        Ok(None) => return see_other(&format!("/sign-in?next={}", link::DEFAULT_RETURN)),
        Err(err) => return internal_error(err),
    };
    let Some(session_id) = session.id() else {
        return see_other(&format!("/sign-in?next={}", link::DEFAULT_RETURN));
    };
    if !user.may_use_provider(&provider.id) {
        // A connect session's gate refuses this already; the check stays where the flow starts.
        return (StatusCode::FORBIDDEN, "this provider is not offered here").into_response();
    }
    let Some(intent) = LinkIntent::parse(form.intent.as_deref().unwrap_or("link")) else {
        return (StatusCode::BAD_REQUEST, "intent must be link, reconnect or grant").into_response();
    };
    let request = StartRequest {
        intent,
        account_id: form.account,
        extra_scopes: form
            .scopes
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        return_to: link::local_return_path(form.return_to.as_deref()),
    };
    match link::start(&state.linker(), &provider, user.id, &session_id.to_string(), request).await {
        Ok(url) => see_other(url.as_str()),
        Err(StartError::NoSuchAccount) => see_other(&error_location(&provider.id, super::LinkError::AccountGone)),
        // Only a hand-made form sends these: our pages never name scopes.
        Err(err @ StartError::ScopeNotOffered(_)) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
        Err(StartError::Provider(reason)) => {
            tracing::warn!(provider = %provider.id, "cannot start a link: {reason}");
            see_other(&error_location(&provider.id, super::LinkError::ProviderUnavailable))
        }
        Err(StartError::Db(err)) => internal_error(err),
    }
}

async fn callback(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    session: Session,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let Some(provider) = state.catalog.get(&provider_id) else {
        return unknown_provider(&provider_id);
    };
    let user = match current_user(&state, &session).await {
        Ok(user) => user,
        Err(err) => return internal_error(err),
    };
    let session_id = session.id().map(|id| id.to_string());
    let caller = Caller {
        user_id: user.as_ref().map(|u| u.id),
        session_id: session_id.as_deref(),
        request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()),
    };
    let result = link::complete(&state.linker(), &provider, caller, params).await;
    // A platform's `connect` session goes back to the platform with the result, and ends.
    if let Some(grant) = user
        .as_ref()
        .and_then(|u| u.connect.as_ref())
        .filter(|g| g.mode == ConnectMode::Connect)
    {
        let result = match &result {
            Ok((Linked::New { account_id } | Linked::Again { account_id }, _)) => ConnectResult::Linked {
                account_id: account_id.clone(),
            },
            Err(refused) if refused.error == super::LinkError::AccessDenied => ConnectResult::Denied,
            Err(refused) => ConnectResult::Failed {
                reason: refused.error.code(),
            },
        };
        let url = crate::connect::service::finish(&session, grant, result).await;
        return crate::connect::routes::forward(&grant.platform_name, &url);
    }
    match result {
        Ok((linked, return_to)) => {
            let (outcome, account_id) = match linked {
                Linked::New { account_id } => ("linked", account_id),
                Linked::Again { account_id } => ("relinked", account_id),
            };
            let separator = if return_to.contains('?') { '&' } else { '?' };
            see_other(&format!("{return_to}{separator}{outcome}={account_id}"))
        }
        Err(refused) => see_other(&error_location(&provider.id, refused.error)),
    }
}
