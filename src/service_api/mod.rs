//! The service API (`/api/v1`, JSON) for the platform's own backend: what the invenio use case needs without
//! re-implementing OAuth. A backend authenticates with a key (`keys`), lists a user's linked accounts, and gets a
//! valid access token for an account and resource server, refreshed through the same exactly-once path as every
//! other use of a token. Every call is audited with the key's name, as an event of the user it concerns.
//!
//! Not a browser surface: no session, no cookies, so no cross-site request forgery to defend against (the router
//! mounts it outside the Origin check and the session layer).

pub mod keys;

use axum::{
    Json, Router,
    extract::{
        FromRequestParts, Path, Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use crate::{
    accounts,
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    auth,
    db::now_ms,
    delegation::Unavailable,
    state::AppState,
};
use keys::ApiKey;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts", get(list_accounts))
        .route("/api/v1/accounts/{account}/token", post(token))
}

/// An error answer: `{"error": code, "message": text}` plus what the code needs (scopes, retry time).
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: serde_json::Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: json!({}),
        }
    }

    fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("service API: {err}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), self.extra.as_object()) {
            body.extend(extra.clone());
        }
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, "Bearer realm=\"onbehalf\"".parse().unwrap());
        }
        if let Some(retry_after) = self.extra.get("retry_after_seconds").and_then(|v| v.as_i64()) {
            headers.insert(header::RETRY_AFTER, retry_after.into());
        }
        response
    }
}

impl From<Unavailable> for ApiError {
    fn from(u: Unavailable) -> Self {
        let status = match &u {
            Unavailable::NotFound => StatusCode::NOT_FOUND,
            Unavailable::NeedsReconnect { .. } | Unavailable::NeedsConsent { .. } => StatusCode::CONFLICT,
            Unavailable::ProviderUnavailable { .. } | Unavailable::Busy => StatusCode::SERVICE_UNAVAILABLE,
            // Ours to fix, not the caller's: the details (key ids, provider ids) go to the log only.
            Unavailable::KeyNotConfigured(_) | Unavailable::ProviderGone(_) | Unavailable::Internal(_) => {
                return Self::internal(u);
            }
        };
        let mut error = Self::new(status, u.code(), u.to_string());
        error.extra = match u {
            Unavailable::NeedsConsent { scopes } => json!({ "scopes": scopes }),
            Unavailable::ProviderUnavailable { retry_at } => {
                // Rounded up: a client that waits exactly this long finds the cooldown over.
                json!({ "retry_after_seconds": ((retry_at - now_ms() + 999) / 1000).max(1) })
            }
            Unavailable::Busy => json!({ "retry_after_seconds": 1 }),
            _ => json!({}),
        };
        error
    }
}

/// The key a request presents, checked: extracting this is what makes a handler require a live key.
struct Caller(ApiKey);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(presented) = crate::http::bearer_credentials(&parts.headers) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Send an API key as `Authorization: Bearer obk_…` (onbehalf apikey create).",
            ));
        };
        match keys::authenticate(&state.db.pool, presented).await {
            Ok(Some(key)) => Ok(Caller(key)),
            Ok(None) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "This API key is unknown or revoked.",
            )),
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

/// One call's audit: an event about a user, by the key (named in the details; no user acted), with the request id
/// that ties it to the logs.
struct Audit<'a> {
    state: &'a AppState,
    key: &'a ApiKey,
    request_id: Option<String>,
}

impl Audit<'_> {
    fn new<'a>(state: &'a AppState, key: &'a ApiKey, headers: &HeaderMap) -> Audit<'a> {
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Audit { state, key, request_id }
    }

    async fn record(&self, mut event: NewEvent<'_>) -> Result<(), ApiError> {
        event.actor_user_id = None;
        event.request_id = self.request_id.as_deref();
        if let Some(details) = event.details.as_object_mut() {
            details.insert("key".into(), self.key.name.clone().into());
        }
        let mut conn = self.state.db.pool.acquire().await.map_err(ApiError::internal)?;
        audit::record(&mut conn, &event, now_ms())
            .await
            .map_err(ApiError::internal)
    }

    /// Records a refused call (`rejected`, with the error code) and hands the error back.
    async fn refused(&self, mut event: NewEvent<'_>, error: ApiError) -> ApiError {
        event.outcome = Outcome::Rejected;
        event.details = json!({ "error": error.code });
        match self.record(event).await {
            Ok(()) => error,
            Err(audit_failed) => audit_failed,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    /// The user's id, or email.
    user: String,
}

/// `GET /api/v1/accounts?user=<id or email>`: the user's accounts at the providers the key may use, with status and
/// consent status per resource server; never a token. (A query parameter, not a path segment: request paths are
/// logged, and an email is personal data.)
async fn list_accounts(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(ListQuery { user }) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Name the user: ?user=<id or email>.",
        )
    })?;
    let audit = Audit::new(&state, &key, &headers);
    let found = match user.trim().parse::<i64>() {
        Ok(id) => auth::repo::find_by_id(&state.db.pool, id).await,
        Err(_) => auth::repo::find_by_email(&state.db.pool, &user.trim().to_lowercase()).await,
    }
    .map_err(ApiError::internal)?;
    let Some(user) = found else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "No such user."));
    };
    let event = NewEvent::by_user(AuditAction::ServiceAccountsListed, Outcome::Success, user.id);
    if user.is_disabled() {
        return Err(audit.refused(event, user_disabled()).await);
    }
    let page = accounts::service::linked_accounts(&state, user.id)
        .await
        .map_err(ApiError::internal)?;
    let accounts: Vec<_> = page
        .accounts
        .into_iter()
        .filter(|a| key.allows(&a.provider_id))
        .collect();
    let mut event = event;
    event.details = json!({ "accounts": accounts.len() });
    audit.record(event).await?;
    Ok(Json(json!({
        "user": { "id": user.id, "email": user.email },
        "accounts": accounts,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    resource_server: String,
}

/// `POST /api/v1/accounts/{account}/token` with `{"resource_server": …}`: a valid access token, refreshed first
/// when due (exactly once however many ask at the same moment).
async fn token(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    Path(account_id): Path<String>,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(TokenRequest { resource_server }) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let audit = Audit::new(&state, &key, &headers);
    let account = accounts::repo::find(&state.db.pool, &account_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such linked account."))?;
    let mut event = NewEvent::by_user(AuditAction::ServiceTokenIssued, Outcome::Success, account.user_id);
    event.provider = Some(&account.provider);
    event.account_id = Some(&account.id);
    event.resource_server = Some(&resource_server);
    // The key's scope first: a key learns nothing about the users of providers it may not use.
    if !key.allows(&account.provider) {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "provider_not_allowed",
            format!("This API key may not act with {} accounts.", account.provider),
        );
        return Err(audit.refused(event, error).await);
    }
    let user = auth::repo::find_by_id(&state.db.pool, account.user_id)
        .await
        .map_err(ApiError::internal)?;
    if user.is_none_or(|u| u.is_disabled()) {
        return Err(audit.refused(event, user_disabled()).await);
    }
    let result = state
        .delegation
        .bearer(account.user_id, &account.id, &resource_server)
        .await;
    if let Err(e) = &result {
        event.outcome = Outcome::Failure;
        event.details = json!({ "error": e.code() });
    }
    audit.record(event).await?;
    let bearer = result?;
    let body = Json(json!({
        "access_token": bearer.secret().expose_secret(),
        "token_type": "Bearer",
        "expires_at": bearer.expires_at,
        "scopes": bearer.scopes,
        "resource_server": bearer.resource_server,
        "account_id": bearer.account_id,
        "provider": bearer.provider,
    }));
    Ok(([(header::CACHE_CONTROL, "no-store")], body).into_response())
}

fn user_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "user_disabled",
        "This user is disabled: nothing is done on their behalf.",
    )
}
